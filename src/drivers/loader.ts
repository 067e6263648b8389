import { readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DriverError } from '../errors.js';
import { type Driver, isDriver } from './sdk/define-driver.js';

/** One driver module found under a devices/ folder. */
export interface DriverModule {
  readonly driver: Driver;
  /** Folder of the driver (holds fixtures.json and README.md). */
  readonly dir: string;
}

const DRIVER_FILES = ['driver.js', 'driver.ts'];

/**
 * Finds every `<kind>/<name>/driver.{js,ts}` under `root` (devices/ in the source tree, dist/devices once
 * built) and imports its default export. A driver whose id does not equal its folder path is refused, so the
 * id always tells where the code lives.
 */
export async function loadDriverModules(root: string): Promise<DriverModule[]> {
  const found: DriverModule[] = [];
  for (const dir of await driverDirs(root)) {
    const entries = new Set(await readdir(dir));
    const file = DRIVER_FILES.find((name) => entries.has(name));
    if (!file) continue;
    const path = join(dir, file);
    let module: { default?: unknown };
    try {
      module = (await import(pathToFileURL(path).href)) as { default?: unknown };
    } catch (cause) {
      throw new DriverError(
        'DRIVER_LOAD_FAILED',
        `cannot load ${path}: ${(cause as Error).message}`,
        undefined,
        {
          cause,
        },
      );
    }
    if (!isDriver(module.default)) {
      throw new DriverError('DRIVER_INVALID', `${path}: the default export must be defineDriver({...})`);
    }
    const expectedId = relative(root, dir).split(sep).join('/');
    if (module.default.id !== expectedId) {
      throw new DriverError(
        'DRIVER_INVALID',
        `${path}: id ${module.default.id} must equal its folder ${expectedId}`,
        module.default.id,
      );
    }
    found.push({ driver: module.default, dir });
  }
  return found;
}

async function driverDirs(root: string): Promise<string[]> {
  const dirs: string[] = [];
  for (const kind of ['sig', 'vendor']) {
    let names: string[];
    try {
      names = (await readdir(join(root, kind), { withFileTypes: true }))
        .filter((d) => d.isDirectory())
        .map((d) => d.name);
    } catch {
      continue; // a devices tree without vendor drivers is fine
    }
    for (const name of names.sort()) dirs.push(join(root, kind, name));
  }
  return dirs;
}
