import { beforeAll, describe, expect, it } from 'vitest';
import {
  decodeBeurerMeasurement,
  encodeBeurerMeasurement,
} from '../../devices/vendor/beurer-bm85/beurer-protocol.js';
import { decodePayload } from '../../src/drivers/decode-payload.js';
import { loadBundledRegistry } from '../../src/drivers/default-registry.js';
import type { DriverRegistry } from '../../src/drivers/registry.js';
import { DecodeError } from '../../src/errors.js';
import { parseHex, toHex } from '../../src/gatt/hex.js';
import { runCli } from '../support/cli.js';

/**
 * Beurer BM85 frames on the standard Blood Pressure Measurement characteristic: the BM85-named device gets the
 * vendor driver and its real captures decode; the same bytes from any other cuff stay refused by the strict SIG
 * decoder. Captures: derdilla/blood-pressure-monitor-fl ble_measurement_data_test.dart (PR #735, #737).
 */
const E1 = '566a0047000000ea07080b121f00003f000000'; // user 0, 106/71, pulse 63
const E2 = '56710049000000ea07080b1438000041010000'; // user 1, 113/73, pulse 65
const E4 = '56760050000000ea07080b141b00003c000004'; // user 0, 118/80, pulse 60, irregular pulse

const ad = (name?: string, services = ['00001810-0000-1000-8000-00805f9b34fb']) => ({
  address: 'D0:5E:00:00:01:85',
  services,
  manufacturerData: new Map<number, Uint8Array>(),
  ...(name === undefined ? {} : { name }),
});

const value = (out: { observations: readonly { code: string; value: number | null }[] }, code: string) =>
  out.observations.find((o) => o.code === code)?.value;

let registry: DriverRegistry;
beforeAll(async () => {
  registry = await loadBundledRegistry();
});

describe('Beurer BM85 driver selection (vendor/beurer-bm85)', () => {
  it('is picked for a 0x1810 cuff named BM85, BM48 or ELITE900, and nothing else', () => {
    for (const name of ['BM85', 'Beurer BM85', 'bm85', 'BM 85', 'BM48', 'ELITE900', 'Elite-900']) {
      expect(registry.match(ad(name))?.id, name).toBe('vendor/beurer-bm85');
    }
    for (const name of [undefined, 'BM59', 'BLESmart_0000', 'BM8', 'BC85']) {
      expect(registry.match(ad(name))?.id, String(name)).toBe('sig/blood-pressure');
    }
    // The name alone, without the Blood Pressure Service, is not a cuff.
    expect(registry.match(ad('BM85', []))).toBeUndefined();
  });

  it('decodes the real BM85 captures when the device is named, and the SIG driver keeps refusing them', () => {
    const named = decodePayload(registry, '2a35', E1, { service: '1810', name: 'BM85' });
    expect(named.driver).toMatch(/^vendor\/beurer-bm85@/);
    expect(value(named, 'MDC_PRESS_BLD_NONINV_SYS')).toBe(106);
    expect(value(named, 'MDC_PRESS_BLD_NONINV_DIA')).toBe(71);
    expect(value(named, 'MDC_PULS_RATE_NON_INV')).toBe(63);
    expect(value(named, 'MDC_PRESS_BLD_NONINV_MEAN')).toBeUndefined();
    expect(named.time).toBe('2026-08-11T18:31:00');
    expect(named.details).toMatchObject({ userId: 0 });
    const irregular = decodePayload(registry, '2a35', E4, { service: '1810', name: 'BM85' });
    expect(irregular.status).toEqual(['irregular-pulse']);

    for (const hex of [E1, E2, E4]) {
      for (const selection of [{}, { service: '1810' }, { service: '1810', name: 'BM59' }]) {
        let thrown: unknown;
        try {
          decodePayload(registry, '2a35', hex, selection);
        } catch (error) {
          thrown = error;
        }
        expect(thrown).toBeInstanceOf(DecodeError);
        expect((thrown as DecodeError).code).toBe('DECODE_TRAILING_BYTES');
      }
    }
  });

  it('answers `decode --ndjson` lines the same way (named: decoded; unnamed: refused)', async () => {
    const lines = [
      { char: '2a35', hex: E2, service: '1810', name: 'BM85' },
      { char: '2a35', hex: E2 },
      { char: '2a35', hex: E2, service: '1810', name: 'Other cuff' },
    ];
    const { code, stdout, stderr } = await runCli(['decode', '--ndjson'], {
      stdin: `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`,
    });
    expect(code).toBe(0);
    expect(stderr).toBe('');
    const [named, plain, other] = stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(named.driver).toMatch(/^vendor\/beurer-bm85@/);
    expect(value(named, 'MDC_PULS_RATE_NON_INV')).toBe(65);
    expect(named.details.userId).toBe(1);
    expect(plain.error.code).toBe('DECODE_TRAILING_BYTES');
    expect(other.error.code).toBe('DECODE_TRAILING_BYTES');
  });
});

describe('Beurer BM85 codec', () => {
  it('reads the pulse rate and the status most significant byte first', () => {
    const m = decodeBeurerMeasurement(parseHex(E4));
    expect(m.pulseRate).toEqual({ value: 60 });
    expect(m.status).toBe(0x0004);
    expect(m.userId).toBe(0);
  });

  it('encodes what it decodes (the simulator sends the capture layout)', () => {
    const frame = encodeBeurerMeasurement({
      systolic: 106,
      diastolic: 71,
      pulseRate: 63,
      time: { year: 2026, month: 8, day: 11, hours: 18, minutes: 31, seconds: 0 },
      userId: 0,
      status: 0,
    });
    expect(toHex(frame)).toBe(E1);
  });

  it('refuses a standard frame with a user id instead of reading its pulse byte-swapped', () => {
    // Flags 0x1E (time stamp, pulse, user id, status): pulse 48 00 little-endian = 72; big-endian 0x4800 is not.
    const standard = parseHex(['1e', '780050000000', 'ea07080b121f00', '4800', '01', '0000'].join(''));
    expect(standard).toHaveLength(19);
    expect(() => decodeBeurerMeasurement(standard)).toThrow(
      expect.objectContaining({ code: 'DECODE_INVALID_FIELD', offset: 14 }),
    );
  });
});
