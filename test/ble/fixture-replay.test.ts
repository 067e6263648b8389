import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildDevice,
  type DeviceModelEntry,
  deviceModelEntry,
  discoverDeviceModels,
} from '../../src/ble/sim/devices/discover.js';
import { expectedReplay, nameFor } from '../../src/ble/sim/devices/fixture-replay.js';
import { checkDeviceModel } from '../../src/ble/sim/model-check.js';
import { readFixtureFile } from '../../src/drivers/fixtures.js';
import { type DriverModule, loadDriverModules } from '../../src/drivers/loader.js';
import { DriverRegistry } from '../../src/drivers/registry.js';
import { scaffoldDriver } from '../../src/drivers/scaffold.js';

// Driver folders written inside the repository (.tmp/ is git-ignored) so that their `rpm-gateway/sdk` imports
// resolve as a vendor's would.
await mkdir(join(import.meta.dirname, '../../.tmp'), { recursive: true });
const root = await mkdtemp(join(import.meta.dirname, '../../.tmp/replay-'));
afterAll(() => rm(root, { recursive: true, force: true }));

const CUFF_DRIVER = `import { type Decoder, DecodeError, defineDriver, observeInteger } from 'rpm-gateway/sdk';

const decode: Decoder = (bytes) => {
  if (bytes.length !== 2) throw new DecodeError('DECODE_TRUNCATED', 'two bytes', bytes.length);
  return [
    {
      observations: [
        observeInteger('MDC_PRESS_BLD_NONINV_SYS', bytes[0] as number, 'mm[Hg]'),
        observeInteger('MDC_PRESS_BLD_NONINV_DIA', bytes[1] as number, 'mm[Hg]'),
      ],
      time: null,
    },
  ];
};

export default defineDriver({
  id: 'vendor/acme-cuff1',
  version: '0.1.0',
  name: 'Acme cuff',
  category: 'blood-pressure',
  match: { manufacturerId: 0x0ace },
  characteristics: [
    {
      uuid: 'aa01',
      service: 'aa00',
      access: 'indicate',
      name: 'record',
      decode,
      emits: [
        { code: 'MDC_PRESS_BLD_NONINV_SYS', units: ['mm[Hg]'] },
        { code: 'MDC_PRESS_BLD_NONINV_DIA', units: ['mm[Hg]'] },
      ],
    },
  ],
  setup: [
    { service: 'aa00', characteristic: 'aa02', value: Uint8Array.of(1), reason: 'send records', repeatEveryMs: 5000 },
  ],
  sources: ['Acme cuff protocol (test)'],
});
`;

const CUFF_FIXTURES = {
  sources: { doc: { kind: 'constructed', cite: 'Acme cuff protocol (test)' } },
  fixtures: [
    {
      name: '120/80',
      char: 'aa01',
      hex: '7850',
      source: 'doc',
      expect: {
        observations: [
          { code: 'MDC_PRESS_BLD_NONINV_SYS', value: 120, unit: 'mm[Hg]' },
          { code: 'MDC_PRESS_BLD_NONINV_DIA', value: 80, unit: 'mm[Hg]' },
        ],
        time: null,
      },
    },
    {
      name: '131/85',
      char: 'aa01',
      hex: '8355',
      source: 'doc',
      expect: {
        observations: [
          { code: 'MDC_PRESS_BLD_NONINV_SYS', value: 131, unit: 'mm[Hg]' },
          { code: 'MDC_PRESS_BLD_NONINV_DIA', value: 85, unit: 'mm[Hg]' },
        ],
        time: null,
      },
    },
    { name: 'cut', char: 'aa01', hex: '78', source: 'doc', error: { code: 'DECODE_TRUNCATED' } },
  ],
};

async function write(dir: string, files: Record<string, string>): Promise<void> {
  await mkdir(join(root, dir), { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(join(root, dir, name), text);
}

/** A scaffold whose match rule is replaced by `match` (its driver source is edited as a vendor would). */
async function scaffoldWithMatch(
  id: string,
  match: string,
  files: Record<string, string> = {},
): Promise<void> {
  await scaffoldDriver({ root, id, service: 'fe00', characteristic: 'fe01' });
  const path = join(root, id, 'driver.ts');
  const { readFile } = await import('node:fs/promises');
  const source = await readFile(path, 'utf8');
  await writeFile(path, source.replace("match: { services: ['fe00'] }", `match: ${match}`));
  await write(id, files);
}

await scaffoldDriver({ root, id: 'vendor/acme-ox1', service: 'fd00', characteristic: 'fd01' });
await write('vendor/acme-cuff1', {
  'driver.ts': CUFF_DRIVER,
  'fixtures.json': JSON.stringify(CUFF_FIXTURES),
});
await scaffoldWithMatch('vendor/acme-digits', "{ services: ['fe00'], name: /^\\d{6}$/ }");
await scaffoldWithMatch('vendor/acme-named', "{ services: ['fe00'], name: /^\\d{6}$/ }", {
  'sim.ts':
    "import { defineDeviceModel } from 'rpm-gateway/sdk/sim';\n\nexport default defineDeviceModel({ name: '204816' });\n",
});
await scaffoldWithMatch('vendor/acme-broken', "{ services: ['fc00'] }", { 'sim.ts': 'export default {};\n' });

const modules = await loadDriverModules(root);
const moduleOf = (id: string) => modules.find((m) => m.driver.id === id) as DriverModule;

async function check(id: string, entry: DeviceModelEntry, payloads = 50) {
  const { driver, dir } = moduleOf(id);
  const file = await readFixtureFile(join(dir, 'fixtures.json'));
  const device = buildDevice(entry);
  return checkDeviceModel(driver, (options) => buildDevice(entry, options), {
    payloads,
    registry: new DriverRegistry([driver]),
    expected: expectedReplay(file, device.measurement.characteristic),
  });
}

describe('devices found by driver folder', () => {
  it('replays fixtures when a folder has no sim.ts, takes its sim.ts when it has one, and reports the rest', async () => {
    const found = await discoverDeviceModels(root, new Map());
    expect(Object.fromEntries([...found.models].map(([id, e]) => [id, e.origin]))).toEqual({
      'vendor/acme-cuff1': 'fixtures',
      'vendor/acme-named': 'folder',
      'vendor/acme-ox1': 'fixtures',
    });
    expect(found.models.get('vendor/acme-named')?.identity.name).toBe('204816');
    expect(found.problems.get('vendor/acme-digits')).toMatch(/name pattern .* give one in sim\.ts/);
    expect(found.problems.get('vendor/acme-broken')).toMatch(/must be defineDeviceModel/);
    const addresses = [...found.models.values()].map((e) => e.identity.address);
    expect(new Set(addresses).size).toBe(addresses.length);
    for (const address of addresses) expect(address).toMatch(/^D0:5E:F0(:[0-9A-F]{2}){3}$/);
  });
});

describe('a fixture replay', () => {
  it('streams a notify characteristic once a second, decoding as its fixtures say', async () => {
    const entry = await deviceModelEntry(moduleOf('vendor/acme-ox1'));
    const result = await check('vendor/acme-ox1', entry);
    expect(result.problems).toEqual([]);
    expect(result).toMatchObject({ payloads: 50, readings: 50, refused: 0, ok: true });
  });

  it('keeps indicated records for the next connection, advertises the manufacturer id, accepts setup writes', async () => {
    const entry = await deviceModelEntry(moduleOf('vendor/acme-cuff1'));
    const device = buildDevice(entry, { preload: 3 });
    expect(device.streams).toBe(false);
    expect(device.peripheral.storedRecords('aa01').map((b) => Buffer.from(b).toString('hex'))).toEqual([
      '7850',
      '8355',
      '7850',
    ]);
    expect([...device.peripheral.manufacturerData.keys()]).toEqual([0x0ace]);
    const result = await check('vendor/acme-cuff1', entry, 10);
    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
  });

  it('fails the check when the bytes do not decode as the fixtures say', async () => {
    const entry = await deviceModelEntry(moduleOf('vendor/acme-ox1'));
    const { driver, dir } = moduleOf('vendor/acme-ox1');
    const file = await readFixtureFile(join(dir, 'fixtures.json'));
    const [first] = expectedReplay(file, 'fd01');
    const wrong = [[{ ...first?.[0], observations: [] }]] as unknown as ReturnType<typeof expectedReplay>;
    const result = await checkDeviceModel(driver, (options) => buildDevice(entry, options), {
      payloads: 5,
      expected: wrong,
    });
    expect(result.ok).toBe(false);
    expect(result.problems.join('\n')).toMatch(/replayed value 1: observations/);
  });
});

describe('nameFor: a local name a match rule accepts', () => {
  it.each([
    [/^PC-60F/, 'PC-60F'],
    [/^BM8\d/i, undefined],
    [/^SpO2\d*/, 'SpO2'],
    [/^Medisana-?BS/, undefined],
    [/^O2Ring\b/, 'O2Ring'],
    [/^A\.B/, 'A.B'],
    [/^(BerryMed|BM1000)/, undefined],
    [/Checkme/g, 'Checkme'],
  ])('%s gives %s', (pattern, name) => {
    expect(nameFor(pattern)).toBe(name);
  });
});
