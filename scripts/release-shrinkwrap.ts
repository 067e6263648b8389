// Writes npm-shrinkwrap.json for the release tarball (`npm pack` runs it from "prepack"; "postpack" deletes it).
//
// npm never packs package-lock.json, but it does pack npm-shrinkwrap.json, and `npm ci` in the unpacked release
// (scripts/install-pi.sh) then installs exactly the tree the project was tested with. The shrinkwrap is the
// lockfile plus one thing: every registry package's `resolved` tarball URL. Lockfiles written with npm's
// `omit-lockfile-registry-resolved` leave it out, and npm must then fetch each package's registry metadata
// just to find the tarball, which fails offline even when every tarball is in the cache (ENOTCACHED). npm
// rewrites registry.npmjs.org in these URLs to the registry the installing host is configured with
// (npm config `replace-registry-host`, default "npmjs"), so a clinic's mirror still works.
//
// Usage: node dist/scripts/release-shrinkwrap.js [project-dir]   (default: the current directory)
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const REGISTRY = 'https://registry.npmjs.org';

interface LockEntry {
  name?: string;
  version?: string;
  resolved?: string;
  integrity?: string;
  link?: boolean;
}

interface Lockfile {
  lockfileVersion?: number;
  packages?: Record<string, LockEntry>;
}

/** The registry tarball URL of name@version, as the npm registry serves it: <registry>/<name>/-/<base>-<version>.tgz. */
function registryTarballUrl(name: string, version: string): string {
  const base = name.startsWith('@') ? name.slice(name.indexOf('/') + 1) : name;
  return `${REGISTRY}/${name}/-/${base}-${version}.tgz`;
}

/** The lockfile with `resolved` filled in for every registry package (those with a version and an integrity). */
function withResolvedUrls(lock: Lockfile): Lockfile {
  if (lock.lockfileVersion === undefined || lock.lockfileVersion < 2 || !lock.packages) {
    throw new Error('package-lock.json must be lockfileVersion 2 or 3 (npm 7 or later)');
  }
  const packages: Record<string, LockEntry> = {};
  for (const [path, entry] of Object.entries(lock.packages)) {
    // "" is the project itself; links and entries without an integrity (git, file:) are not registry tarballs.
    if (path === '' || entry.link || entry.resolved || !entry.integrity || !entry.version) {
      packages[path] = entry;
      continue;
    }
    // An aliased package (e.g. "string-width-cjs": "npm:string-width@4") records its real name.
    const name = entry.name ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    // Keep npm's key order (version, resolved, integrity) so the file reads like one npm wrote.
    const { version, ...rest } = entry;
    packages[path] = { version, resolved: registryTarballUrl(name, version), ...rest };
  }
  return { ...lock, packages };
}

const dir = process.argv[2] ?? process.cwd();
const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as Lockfile;
writeFileSync(join(dir, 'npm-shrinkwrap.json'), `${JSON.stringify(withResolvedUrls(lock), null, 2)}\n`);
