import { describe, expect, it } from 'vitest';
import {
  CHECKSUMS,
  CRC8_MAXIM_DOW,
  CRC8_SMBUS,
  CRC16_IBM_3740,
  CRC16_MODBUS,
  type CrcModel,
  crc,
  crc8,
  crc8Maxim,
  crc16CcittFalse,
  crc16Modbus,
  sum7,
  xor8,
} from '../../src/drivers/sdk/checksums.js';

// The check value of every CRC RevEng catalogue entry is its CRC over these nine ASCII bytes
// (https://reveng.sourceforge.io/crc-catalogue/, "check" column).
const CHECK_INPUT = new TextEncoder().encode('123456789');

describe('CRC presets (CRC RevEng catalogue check values)', () => {
  it.each([
    [CRC8_MAXIM_DOW, 0xa1],
    [CRC8_SMBUS, 0xf4],
    [CRC16_IBM_3740, 0x29b1],
    [CRC16_MODBUS, 0x4b37],
  ] as const)('%s', (model, check) => {
    expect(model.check).toBe(check);
    expect(crc(model).compute(CHECK_INPUT)).toBe(check);
  });

  it('has one named helper per preset, each giving the check value', () => {
    expect(crc8Maxim(CHECK_INPUT)).toBe(0xa1);
    expect(crc8(CHECK_INPUT)).toBe(0xf4);
    expect(crc16CcittFalse(CHECK_INPUT)).toBe(0x29b1);
    expect(crc16Modbus(CHECK_INPUT)).toBe(0x4b37);
    expect(CHECKSUMS['crc8-maxim'].compute(CHECK_INPUT)).toBe(0xa1);
    expect(CHECKSUMS.crc8.compute(CHECK_INPUT)).toBe(0xf4);
    expect(CHECKSUMS['crc16-ccitt-false'].compute(CHECK_INPUT)).toBe(0x29b1);
    expect(CHECKSUMS['crc16-modbus'].compute(CHECK_INPUT)).toBe(0x4b37);
    expect(CHECKSUMS['crc16-modbus'].bytes).toBe(2);
    expect(CHECKSUMS['crc8-maxim'].bytes).toBe(1);
  });

  // Other catalogue entries exercise the parts of the model the four presets do not: 32-bit width with
  // xorout, refin without refout (CRC-12/UMTS), a width that is not a whole number of bytes.
  it.each([
    [
      {
        name: 'CRC-32/ISO-HDLC',
        width: 32,
        poly: 0x04c11db7,
        init: 0xffffffff,
        refin: true,
        refout: true,
        xorout: 0xffffffff,
      },
      0xcbf43926,
    ],
    [
      {
        name: 'CRC-32/BZIP2',
        width: 32,
        poly: 0x04c11db7,
        init: 0xffffffff,
        refin: false,
        refout: false,
        xorout: 0xffffffff,
      },
      0xfc891918,
    ],
    [
      { name: 'CRC-16/XMODEM', width: 16, poly: 0x1021, init: 0, refin: false, refout: false, xorout: 0 },
      0x31c3,
    ],
    [
      { name: 'CRC-16/KERMIT', width: 16, poly: 0x1021, init: 0, refin: true, refout: true, xorout: 0 },
      0x2189,
    ],
    [{ name: 'CRC-12/UMTS', width: 12, poly: 0x80f, init: 0, refin: false, refout: true, xorout: 0 }, 0xdaf],
    [{ name: 'CRC-8/ROHC', width: 8, poly: 0x07, init: 0xff, refin: true, refout: true, xorout: 0 }, 0xd0],
  ] as [CrcModel, number][])('general model: %s', (model, check) => {
    expect(crc(model).compute(CHECK_INPUT)).toBe(check);
  });

  it('refuses a width it cannot run', () => {
    expect(() => crc({ ...CRC8_SMBUS, width: 7 })).toThrow(RangeError);
    expect(() => crc({ ...CRC8_SMBUS, width: 33 })).toThrow(RangeError);
  });
});

describe('sums', () => {
  it('XOR of bytes', () => {
    expect(xor8(CHECK_INPUT)).toBe(0x31);
    expect(xor8(Uint8Array.of(0xaa, 0x55, 0x0f))).toBe(0xf0);
    expect(xor8(new Uint8Array(0))).toBe(0);
  });

  it('7-bit sum: the Contec checksum of its published commands', () => {
    // icefest/pulseoxdl src/exchange.h: 9B 01 -> 1C, 9A -> 1A; OxiVis issue #2 capture EB 01 04 40 63 7F 00 -> 12.
    expect(sum7(Uint8Array.of(0x9b, 0x01))).toBe(0x1c);
    expect(sum7(Uint8Array.of(0x9a))).toBe(0x1a);
    expect(sum7(Uint8Array.of(0xeb, 0x01, 0x04, 0x40, 0x63, 0x7f, 0x00))).toBe(0x12);
    expect(sum7(CHECK_INPUT)).toBe(0x5d); // 477 & 0x7f
  });
});

describe('range arguments', () => {
  it('checks a slice in place, the same as the slice alone', () => {
    const framed = Uint8Array.of(0xaa, 0x55, ...CHECK_INPUT, 0x00);
    const start = 2;
    const end = 2 + CHECK_INPUT.length;
    expect(crc8Maxim(framed, start, end)).toBe(0xa1);
    expect(crc8(framed, start, end)).toBe(0xf4);
    expect(crc16CcittFalse(framed, start, end)).toBe(0x29b1);
    expect(crc16Modbus(framed, start, end)).toBe(0x4b37);
    expect(xor8(framed, start, end)).toBe(0x31);
    expect(sum7(framed, start, end)).toBe(0x5d);
    expect(crc8(framed, start)).toBe(crc8(framed.subarray(start)));
    expect(crc8(framed, 3, 3)).toBe(0);
  });

  it('refuses a range outside the data (a driver bug) instead of reading undefined', () => {
    const data = Uint8Array.of(1, 2, 3);
    expect(() => crc8(data, 0, 4)).toThrow(RangeError);
    expect(() => xor8(data, -1)).toThrow(RangeError);
    expect(() => sum7(data, 2, 1)).toThrow(RangeError);
    expect(() => crc16Modbus(data, 1.5)).toThrow(RangeError);
  });
});
