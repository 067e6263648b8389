import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { ConfigError, type ConfigIssue } from '../../config/errors.js';
import { isSimulatedDriverId, SIMULATED_DRIVER_IDS, simulatedDevice } from './devices/index.js';
import { SimCentral } from './sim-central.js';

/**
 * Which simulated devices the `sim` backend builds, and what they hold: a development and test hook, not a
 * setting of a real hub. `rpm-gateway start` with `ble.backend: sim` reads it from the file named by
 * $RPM_SIM_SCENARIO (YAML or JSON); without it the backend builds one device per bundled driver, as before.
 *
 *     maxConnections: 8            # the simulated adapter's link limit (default 7)
 *     devices:
 *       - driver: sig/pulse-oximeter
 *         address: D0:5E:00:00:01:01   # default: the model's own address
 *         streamEveryMs: 1000
 *       - driver: sig/glucose
 *         seed: 5
 *         preload: 10                  # records in the meter's memory
 *         preloadEveryMs: 3600000
 *         preloadEndingAt: 2026-03-01T12:00:00Z
 *         firstSequenceNumber: 65530
 *
 * Why it exists: the simulated radio lives in the hub's process, so a device's memory would otherwise be new
 * (and different) at every start. A device's memory outlives a restarted hub; with a fixed `seed` and
 * `preloadEndingAt`, the device is re-created holding the same records, byte for byte (the end-to-end test
 * restarts the hub against "the same meter", then one with more records, then one whose memory was reset).
 */
const ADDRESS = /^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$/;

const instant = z.union([z.number().int().nonnegative(), z.string(), z.date()]).transform((value, ctx) => {
  const ms = value instanceof Date ? value.getTime() : typeof value === 'number' ? value : Date.parse(value);
  if (!Number.isFinite(ms)) {
    ctx.addIssue({ code: 'custom', message: 'expected an ISO 8601 time or epoch milliseconds' });
    return z.NEVER;
  }
  return ms;
});

const deviceEntry = z.strictObject({
  driver: z.string().refine(isSimulatedDriverId, {
    error: (issue) =>
      `no simulated device for driver ${JSON.stringify(issue.input)}; one of ${SIMULATED_DRIVER_IDS.join(', ')}`,
  }),
  address: z.string().regex(ADDRESS, 'expected a Bluetooth address AA:BB:CC:DD:EE:FF').optional(),
  seed: z.number().int().min(1).max(0x7fffffff).optional(),
  streamEveryMs: z.number().int().min(10).max(3_600_000).optional(),
  preload: z.number().int().min(0).max(100_000).optional(),
  preloadEveryMs: z.number().int().min(1).optional(),
  preloadEndingAt: instant.optional(),
  firstSequenceNumber: z.number().int().min(0).max(0xffff).optional(),
  /**
   * The device already holds a bond with this adapter, as a real device and BlueZ keep theirs across a restart
   * of the hub (the simulated ones live only as long as the process). Without it a device that needs a bond
   * asks to pair again, and the hub, which answers pairing requests only during an enrolment, refuses.
   */
  bonded: z.boolean().optional(),
});

export const simScenarioSchema = z.strictObject({
  maxConnections: z.number().int().min(1).max(64).optional(),
  devices: z.array(deviceEntry).min(1),
});

export type SimScenario = z.output<typeof simScenarioSchema>;

/** The variable that names the scenario file. */
export const SIM_SCENARIO_VARIABLE = 'RPM_SIM_SCENARIO';

/** Reads and checks a scenario file; every problem is reported at once (ConfigError CONFIG_INVALID). */
export function loadSimScenario(file: string): SimScenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      'CONFIG_FILE_MISSING',
      `the simulator scenario ${file} (${SIM_SCENARIO_VARIABLE}) cannot be read`,
      { cause: error },
    );
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch {
    throw new ConfigError('CONFIG_SYNTAX', `the simulator scenario ${file} is not valid YAML or JSON`);
  }
  const parsed = simScenarioSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issues: ConfigIssue[] = parsed.error.issues.map((issue) => ({
    code: issue.code === 'unrecognized_keys' ? 'CONFIG_UNKNOWN_KEY' : 'CONFIG_BAD_VALUE',
    path: issue.path
      .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
      .join('')
      .slice(1),
    message: issue.message,
    source: { kind: 'env', variable: SIM_SCENARIO_VARIABLE },
  }));
  throw new ConfigError('CONFIG_INVALID', `the simulator scenario ${file} has problems`, { issues });
}

/** The scenario's devices on a simulated adapter (the passkey provider as the backend gives it). */
export function scenarioCentral(
  scenario: SimScenario,
  options: { passkeyProvider?: (address: string) => Promise<string> | string } = {},
): SimCentral {
  const devices = scenario.devices.map((d, i) =>
    simulatedDevice(d.driver, {
      seed: d.seed ?? i + 1,
      ...(d.address === undefined ? {} : { address: d.address }),
      ...(d.streamEveryMs === undefined ? {} : { streamEveryMs: d.streamEveryMs }),
      ...(d.preload === undefined ? {} : { preload: d.preload }),
      ...(d.preloadEveryMs === undefined ? {} : { preloadEveryMs: d.preloadEveryMs }),
      ...(d.preloadEndingAt === undefined ? {} : { preloadEndingAt: d.preloadEndingAt }),
      ...(d.firstSequenceNumber === undefined ? {} : { firstSequenceNumber: d.firstSequenceNumber }),
    }),
  );
  const central = new SimCentral({
    peripherals: devices.map((d) => d.peripheral),
    ...(scenario.maxConnections === undefined ? {} : { maxConnections: scenario.maxConnections }),
    ...(options.passkeyProvider ? { passkeyProvider: options.passkeyProvider } : {}),
  });
  scenario.devices.forEach((d, i) => {
    if (d.bonded) devices[i]?.peripheral.addBond(central.id);
  });
  return central;
}
