import { normalizeAddress } from './address.js';
import type { AgentOptions } from './bluez/agent.js';
import type { CentralPort } from './central.js';
import type { SimScenario } from './sim/scenario.js';

/**
 * Picks a Central backend by name. `bluez` is the default on Linux; `noble` drives the adapter over a raw HCI
 * socket without BlueZ or D-Bus (optional package @abandonware/noble, no bonding); `sim` builds virtual devices
 * for every bundled driver (demos, tests, a hub without a radio). Each is imported only when chosen, so a hub
 * without D-Bus can still run the simulator, and one without noble installed the other two.
 */
export type BackendName = 'bluez' | 'noble' | 'sim';

export const BACKEND_NAMES: readonly BackendName[] = ['bluez', 'noble', 'sim'];

/**
 * Asks the user for the 6-digit passkey a device shows while bonding (the CLI prompts on the terminal). One
 * shape for every backend; each backend adapts it to its own pairing mechanism and says which device asks
 * (its address in the form of src/ble/address.ts; undefined when the backend cannot tell), so a caller can
 * refuse requests from any device but the one being enrolled.
 */
export type PasskeyPrompt = (request: { readonly address: string | undefined }) => Promise<number>;

/** The simulator's devices all show this passkey (printed by `scan --backend sim` and `pair --backend sim`). */
export const SIM_PASSKEY = 123456;

export interface CentralChoice {
  /** Pairing agent options for bluez (false: do not register an agent, e.g. read-only tools). */
  readonly agent?: AgentOptions | false;
  /** Passkey entry; overrides `agent.passkey` for bluez. Without it the sim answers with SIM_PASSKEY. */
  readonly passkey?: PasskeyPrompt;
  /** sim only: which devices exist and what they hold (src/ble/sim/scenario.ts); default one per driver. */
  readonly simScenario?: SimScenario;
}

export async function createCentral(name: BackendName, options: CentralChoice = {}): Promise<CentralPort> {
  const { passkey } = options;
  switch (name) {
    case 'bluez': {
      const { BluezCentral } = await import('./bluez/central.js');
      if (options.agent === false) return new BluezCentral({ agent: false });
      const agent: AgentOptions = {
        ...(options.agent ?? {}),
        ...(passkey ? { passkey } : {}),
      };
      return new BluezCentral({ agent });
    }
    case 'noble': {
      // noble has no pairing API, so neither the agent nor the passkey prompt applies (bond() says so).
      const { NobleCentral } = await import('./noble/central.js');
      return new NobleCentral();
    }
    case 'sim': {
      const { SimCentral, SIMULATED_DRIVER_IDS, simulatedDevice } = await import('./sim/index.js');
      const passkeyProvider = async (address: string) =>
        String(passkey ? await passkey({ address: normalizeAddress(address) }) : SIM_PASSKEY).padStart(
          6,
          '0',
        );
      if (options.simScenario) {
        const { scenarioCentral } = await import('./sim/scenario.js');
        return scenarioCentral(options.simScenario, { passkeyProvider });
      }
      const devices = SIMULATED_DRIVER_IDS.map((id, i) => simulatedDevice(id, { seed: i + 1 }));
      return new SimCentral({ peripherals: devices.map((d) => d.peripheral), passkeyProvider });
    }
  }
}
