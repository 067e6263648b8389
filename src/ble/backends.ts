import type { AgentOptions } from './bluez/agent.js';
import type { CentralPort } from './central.js';

/**
 * Picks a Central backend by name. `bluez` is the default on Linux; `sim` builds virtual devices for every
 * bundled driver (demos, tests, a hub without a radio). Each is imported only when chosen, so a hub without
 * D-Bus can still run the simulator. (The optional noble backend is not part of this release.)
 */
export type BackendName = 'bluez' | 'sim';

export const BACKEND_NAMES: readonly BackendName[] = ['bluez', 'sim'];

export async function createCentral(
  name: BackendName,
  options: { agent?: AgentOptions | false } = {},
): Promise<CentralPort> {
  switch (name) {
    case 'bluez': {
      const { BluezCentral } = await import('./bluez/central.js');
      return new BluezCentral(options.agent === undefined ? {} : { agent: options.agent });
    }
    case 'sim': {
      const { SimCentral, SIMULATED_DRIVER_IDS, simulatedDevice } = await import('./sim/index.js');
      const devices = SIMULATED_DRIVER_IDS.map((id, i) => simulatedDevice(id, { seed: i + 1 }));
      return new SimCentral({
        peripherals: devices.map((d) => d.peripheral),
        passkeyProvider: () => '123456',
      });
    }
  }
}
