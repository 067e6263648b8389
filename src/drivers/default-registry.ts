import { fileURLToPath } from 'node:url';
import { loadDriverModules } from './loader.js';
import { DriverRegistry } from './registry.js';

/**
 * The devices/ folder that ships with the gateway: ../../devices from this file, which is devices/ in the
 * source tree (tests) and dist/devices once built.
 */
export const BUNDLED_DEVICES_DIR = fileURLToPath(new URL('../../devices', import.meta.url));

export async function loadBundledRegistry(dir: string = BUNDLED_DEVICES_DIR): Promise<DriverRegistry> {
  const modules = await loadDriverModules(dir);
  return new DriverRegistry(modules.map((m) => m.driver));
}
