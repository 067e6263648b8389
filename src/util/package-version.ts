import { readFileSync } from 'node:fs';

/**
 * This package's version, from the nearest package.json above this module that names rpm-gateway (the same
 * walk works from src/util in a checkout and from dist/src/util in an installed tarball).
 */
export function packageVersion(): string {
  for (let dir = new URL('.', import.meta.url); dir.pathname !== '/'; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'rpm-gateway' && pkg.version) return pkg.version;
    } catch {
      // not here; look one folder up
    }
  }
  return 'unknown';
}
