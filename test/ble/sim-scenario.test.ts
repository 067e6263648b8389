import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCentral } from '../../src/ble/backends.js';
import { simulatedDevice } from '../../src/ble/sim/index.js';
import { loadSimScenario, scenarioCentral } from '../../src/ble/sim/scenario.js';
import type { SimCentral } from '../../src/ble/sim/sim-central.js';
import { ConfigError } from '../../src/config/errors.js';

const HOUR = 3_600_000;
const END = Date.UTC(2026, 2, 1, 12);
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-scenario-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('simulated device memory that outlives the simulating process', () => {
  it('a meter re-created with the same seed and a later end holds the same records, then more (across the wrap)', () => {
    const records = (preload: number, end: number) =>
      simulatedDevice('sig/glucose', {
        seed: 5,
        preload,
        preloadEveryMs: HOUR,
        preloadEndingAt: end,
        firstSequenceNumber: 65532,
      }).racp?.stored.map((r) => [r.sequenceNumber, hex(r.measurement), hex(r.context ?? new Uint8Array())]);
    const first = records(4, END);
    const later = records(7, END + 3 * HOUR);
    expect(first?.map((r) => r[0])).toEqual([65532, 65533, 65534, 65535]);
    expect(later?.map((r) => r[0])).toEqual([65532, 65533, 65534, 65535, 0, 1, 2]);
    expect(later?.slice(0, 4)).toEqual(first);
  });

  it('a cuff re-created the same way holds the same stored bytes', () => {
    const stored = () =>
      simulatedDevice('sig/blood-pressure', { seed: 2, preload: 3, preloadEndingAt: END })
        .peripheral.storedRecords()
        .map(hex);
    expect(stored()).toHaveLength(3);
    expect(stored()).toEqual(stored());
  });
});

describe('the sim scenario file ($RPM_SIM_SCENARIO)', () => {
  it('builds exactly the devices it lists, with their options', async () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(
      file,
      [
        'maxConnections: 8',
        'devices:',
        '  - driver: sig/heart-rate',
        '    address: D0:5E:00:00:01:06',
        '    streamEveryMs: 1000',
        '  - driver: sig/glucose',
        '    preload: 3',
        '    preloadEndingAt: 2026-03-01T12:00:00Z',
        '    firstSequenceNumber: 65535',
      ].join('\n'),
    );
    const scenario = loadSimScenario(file);
    expect(scenario.devices[1]?.preloadEndingAt).toBe(END);
    const central = (await createCentral('sim', { simScenario: scenario })) as SimCentral;
    expect(central.peripheral('D0:5E:00:00:01:06')).toBeDefined();
    expect(central.peripheral('D0:5E:00:00:00:06')).toBeUndefined(); // not the default set
    expect(central.peripheral('D0:5E:00:00:00:01')).toBeUndefined();
    const meter = scenarioCentral(scenario).peripheral('D0:5E:00:00:00:05');
    expect(meter?.name).toBe('Meter-Sim');
  });

  it('reports every problem at once with its path, and a missing file by name', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      [
        'devices:',
        '  - driver: sig/toaster',
        '    firstSequenceNumber: 70000',
        '  - driver: sig/glucose',
        '    preloadEndingAt: yesterday',
        '    colour: red',
      ].join('\n'),
    );
    let error: unknown;
    try {
      loadSimScenario(file);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const issues = (error as ConfigError).issues.map((i) => `${i.path} ${i.code}`);
    expect(issues).toEqual(
      expect.arrayContaining([
        'devices[0].driver CONFIG_BAD_VALUE',
        'devices[0].firstSequenceNumber CONFIG_BAD_VALUE',
        'devices[1].preloadEndingAt CONFIG_BAD_VALUE',
        'devices[1] CONFIG_UNKNOWN_KEY',
      ]),
    );
    expect(() => loadSimScenario(join(dir, 'nope.yaml'))).toThrow(/nope\.yaml.*cannot be read/);
  });
});
