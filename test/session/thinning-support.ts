import type { DriverRegistry } from '../../src/drivers/registry.js';
import { type CharacteristicSpec, type Driver, defineDriver } from '../../src/drivers/sdk/define-driver.js';

/** A bundled driver as it would be without its declared thinning: every reading of every frame. */
export function unthinned(registry: DriverRegistry, id: string): Driver {
  const driver = registry.get(id);
  if (!driver) throw new Error(`no driver ${id}`);
  const characteristics = driver.characteristics.map((spec): CharacteristicSpec => {
    const { thin, ...rest } = spec;
    if (thin === undefined) throw new Error(`${id}: ${spec.name} declares no thinning`);
    return rest;
  });
  return defineDriver({ ...driver, characteristics });
}
