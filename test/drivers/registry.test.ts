import { describe, expect, it } from 'vitest';
import { DriverRegistry } from '../../src/drivers/registry.js';
import { type DriverDefinition, defineDriver } from '../../src/drivers/sdk/define-driver.js';
import { DriverError } from '../../src/errors.js';
import { thrownBy } from '../support/errors.js';

function driver(overrides: Partial<DriverDefinition> & { id: string }): ReturnType<typeof defineDriver> {
  return defineDriver({
    version: '1.0.0',
    name: overrides.id,
    category: 'other',
    match: { services: ['1810'] },
    characteristics: [
      { uuid: '2a35', service: '1810', access: 'indicate', name: 'x', decode: () => [], emits: [] },
    ],
    sources: ['test'],
    ...overrides,
  });
}

const driverError = (fn: () => unknown): DriverError => thrownBy(DriverError, fn);

describe('defineDriver', () => {
  it.each([
    [{ id: 'Acme' }, /id must be/],
    [{ id: 'vendor/acme', version: 'one' }, /not semver/],
    [{ id: 'vendor/acme', characteristics: [] }, /no characteristics/],
    [{ id: 'vendor/acme', match: {} }, /match rule/],
    [{ id: 'vendor/acme', quirks: { slow: { reason: '' } } }, /one-line reason/],
    [{ id: 'vendor/acme', sources: [] }, /source/],
    [{ id: 'vendor/acme', characteristics: [thinned('read', 1_000)] }, /thin applies to notify\/indicate/],
    [{ id: 'vendor/acme', characteristics: [thinned('notify', 99)] }, /thin.everyMs must be/],
    [{ id: 'vendor/acme', characteristics: [thinned('notify', 600_001)] }, /thin.everyMs must be/],
    [{ id: 'vendor/acme', characteristics: [thinned('notify', 1_000.5)] }, /thin.everyMs must be/],
  ])('refuses %j', (overrides, message) => {
    const error = driverError(() => driver(overrides as { id: string }));
    expect(error.code).toBe('DRIVER_INVALID');
    expect(error.message).toMatch(message);
  });

  it('accepts thinning on a notify or indicate characteristic, from 100 ms to 10 minutes', () => {
    for (const [access, everyMs] of [
      ['notify', 100],
      ['indicate', 600_000],
    ] as const) {
      const d = driver({ id: 'vendor/acme', characteristics: [thinned(access, everyMs)] });
      expect(d.characteristics[0]?.thin).toEqual({ everyMs });
    }
  });
});

function thinned(access: 'read' | 'notify' | 'indicate', everyMs: number) {
  return { uuid: 'fff1', service: 'fff0', access, name: 'x', decode: () => [], emits: [], thin: { everyMs } };
}

describe('DriverRegistry', () => {
  it('refuses duplicate ids', () => {
    const a = driver({ id: 'vendor/acme' });
    expect(driverError(() => new DriverRegistry([a, a])).code).toBe('DRIVER_DUPLICATE_ID');
  });

  it('refuses match rules that overlap silently', () => {
    const sig = driver({ id: 'sig/bp' });
    const vendor = driver({ id: 'vendor/omron', match: { services: ['1810'], name: /^BLEsmart_/ } });
    expect(driverError(() => new DriverRegistry([sig, vendor])).code).toBe('DRIVER_MATCH_OVERLAP');
  });

  it('accepts an overlap that is declared, and prefers the superseding driver', () => {
    const sig = driver({ id: 'sig/bp' });
    const vendor = driver({
      id: 'vendor/omron',
      match: { services: ['1810'], name: /^BLEsmart_/, supersedes: ['sig/bp'] },
    });
    const registry = new DriverRegistry([vendor, sig]);
    expect(
      registry.match({ services: ['00001810-0000-1000-8000-00805f9b34fb'], name: 'BLEsmart_0001' })?.id,
    ).toBe('vendor/omron');
    expect(registry.match({ services: ['1810'], name: 'Other cuff' })?.id).toBe('sig/bp');
    expect(registry.match({ services: ['1822'] })).toBeUndefined();
    // the SIG decoder is the default for a SIG characteristic; a vendor's is used when named
    expect(registry.decoderFor('2A35').driver.id).toBe('sig/bp');
    expect(registry.decoderFor('2a35', 'vendor/omron').driver.id).toBe('vendor/omron');
  });

  it('keeps drivers apart by service list or manufacturer id', () => {
    const a = driver({ id: 'vendor/a', match: { services: ['1809'] } });
    const b = driver({ id: 'vendor/b', match: { services: ['1810'] } });
    const c = driver({ id: 'vendor/c', match: { services: ['1822'], manufacturerId: 0x020e } });
    const d = driver({ id: 'vendor/d', match: { services: ['1822'], manufacturerId: 0x0059 } });
    expect(new DriverRegistry([a, b, c, d]).drivers).toHaveLength(4);
    // a manufacturer id alone does not set a driver apart from one that matches by service
    const e = driver({ id: 'vendor/e', match: { manufacturerId: 0x0059 } });
    expect(driverError(() => new DriverRegistry([a, e])).code).toBe('DRIVER_MATCH_OVERLAP');
  });

  it('refuses a supersedes entry naming no driver', () => {
    const vendor = driver({ id: 'vendor/omron', match: { services: ['1810'], supersedes: ['sig/nope'] } });
    expect(driverError(() => new DriverRegistry([vendor])).message).toMatch(/unknown driver sig\/nope/);
  });

  it('refuses codes and units outside the tables', () => {
    const badCode = driver({
      id: 'vendor/a',
      characteristics: [
        {
          uuid: '2a35',
          service: '1810',
          access: 'notify',
          name: 'x',
          decode: () => [],
          // @ts-expect-error: the type system already refuses it; the registry checks JavaScript drivers too
          emits: [{ code: 'MDC_FOO', units: ['%'] }],
        },
      ],
    });
    expect(driverError(() => new DriverRegistry([badCode])).code).toBe('DRIVER_UNKNOWN_CODE');
    const badUnit = driver({
      id: 'vendor/b',
      characteristics: [
        {
          uuid: '2a35',
          service: '1810',
          access: 'notify',
          name: 'x',
          decode: () => [],
          // @ts-expect-error: see above
          emits: [{ code: 'MDC_PULS_OXIM_SAT_O2', units: ['percent'] }],
        },
      ],
    });
    expect(driverError(() => new DriverRegistry([badUnit])).code).toBe('DRIVER_UNKNOWN_UNIT');
  });

  it('refuses a characteristic declared twice in one driver', () => {
    const spec = {
      uuid: '2a35',
      service: '1810',
      access: 'notify',
      name: 'x',
      decode: () => [],
      emits: [],
    } as const;
    const twice = driver({ id: 'vendor/a', characteristics: [spec, { ...spec, uuid: '0x2A35' }] });
    expect(driverError(() => new DriverRegistry([twice])).message).toMatch(/twice/);
  });

  it('names unknown characteristics with a DecodeError', () => {
    const registry = new DriverRegistry([driver({ id: 'sig/bp' })]);
    expect(() => registry.decoderFor('2a99')).toThrow(
      expect.objectContaining({ code: 'DECODE_UNKNOWN_CHARACTERISTIC' }),
    );
    expect(() => registry.decoderFor('nope')).toThrow(expect.objectContaining({ code: 'DECODE_BAD_UUID' }));
  });
});
