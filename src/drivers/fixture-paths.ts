import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: two folders above src/drivers, three above dist/src/drivers. */
export function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/**
 * fixtures.json and README.md live beside the driver's source; when running from dist/, map
 * dist/devices/<id> back to devices/<id>. An installed package has no devices/ folder: there the build's copy
 * of fixtures.json beside the compiled driver is used (scripts/copy-driver-fixtures.ts).
 */
export function sourceDirOf(driverDir: string): string {
  const root = repositoryRoot();
  const rel = relative(join(root, 'dist'), driverDir);
  if (rel.startsWith('..') || resolve(root, 'dist', rel) !== resolve(driverDir)) return driverDir;
  const source = join(root, rel);
  return existsSync(source) ? source : driverDir;
}

/** The driver id a devices/ folder stands for, e.g. devices/vendor/acme-ox1 -> vendor/acme-ox1. */
export function driverIdOf(dir: string): string | undefined {
  const parts = resolve(dir).split(sep);
  const at = parts.lastIndexOf('devices');
  if (at < 0 || parts.length !== at + 3) return undefined;
  return `${parts[at + 1]}/${parts[at + 2]}`;
}
