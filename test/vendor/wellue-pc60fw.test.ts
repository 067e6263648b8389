import { describe, expect, it } from 'vitest';
import driver from '../../devices/vendor/wellue-pc60fw/driver.js';
import {
  encodeParameters,
  encodeWave,
  frameKind,
  PC60FW_FRAMING,
  PC60FW_TYPE_PARAMETERS,
  parseParameters,
  parseWave,
  pc60fwFrameProblem,
} from '../../devices/vendor/wellue-pc60fw/pc60fw-protocol.js';
import { simulatedDevice } from '../../src/ble/sim/devices/index.js';
import { checkDeviceModel } from '../../src/ble/sim/model-check.js';
import { SimCentral } from '../../src/ble/sim/sim-central.js';
import { loadBundledRegistry } from '../../src/drivers/default-registry.js';
import { createFramer } from '../../src/drivers/sdk/framing.js';
import { DecodeError } from '../../src/errors.js';
import { parseHex, toHex } from '../../src/gatt/hex.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';

const ID = 'vendor/wellue-pc60fw';
const NOTIFY = '6e400003-b5a3-f393-e0a9-e50e24dcca9e';
const decode = (bytes: Uint8Array) => driver.characteristics[0]?.decode(bytes, { characteristic: NOTIFY });

describe('PC-60FW codec against real frames (sycophantic/pc60fw_pulseox raw_data.txt, spo2_combined.csv)', () => {
  it.each([
    ['aa550f08016144000000c094', { spo2: 97, pulseRate: 68, perfusionIndex: 0, status: 0, extra: 0xc0 }],
    ['aa550f08016244004b00c03d', { spo2: 98, pulseRate: 68, perfusionIndex: 75, status: 0, extra: 0xc0 }],
    ['aa550f0801614000730080c6', { spo2: 97, pulseRate: 64, perfusionIndex: 115, status: 0, extra: 0x80 }],
  ])('%s parses, and the simulator encoder rebuilds it byte for byte', (hex, fields) => {
    const bytes = parseHex(hex);
    expect(pc60fwFrameProblem(bytes)).toBeUndefined();
    expect(frameKind(bytes).type).toBe(PC60FW_TYPE_PARAMETERS);
    expect(parseParameters(bytes)).toEqual(fields);
    expect(toHex(encodeParameters(fields))).toBe(hex);
  });

  it('reads the beat marker of a wave frame (cb: sample 0x4b with bit 7) and rebuilds the frame', () => {
    const bytes = parseHex('aa550f07024dcb494643aa');
    const wave = parseWave(bytes);
    expect(wave).toEqual({
      samples: [0x4d, 0x4b, 0x49, 0x46, 0x43],
      beats: [false, true, false, false, false],
    });
    expect(toHex(encodeWave(wave as NonNullable<typeof wave>))).toBe('aa550f07024dcb494643aa');
  });

  it('refuses, with a DecodeError, anything that is not one whole frame when called directly', () => {
    for (const hex of ['', 'aa55', 'aa550f08016144000000c095', 'aa550f08016144000000c094aa', '550f0801']) {
      expect(() => decode(parseHex(hex)), hex).toThrow(DecodeError);
    }
  });
});

describe('PC-60FW simulated device', () => {
  it('streams 20-byte notifications that split and merge frames, all of which frame cleanly', async () => {
    const scheduler = new VirtualScheduler();
    const device = simulatedDevice(ID, { scheduler, seed: 3 });
    const central = new SimCentral({ scheduler, peripherals: [device.peripheral] });
    await central.start();
    const connection = await central.connect(device.peripheral.address, { timeoutMs: 1_000 });
    await connection.discover();
    const notifications: Uint8Array[] = [];
    await connection.subscribe('6e400001-b5a3-f393-e0a9-e50e24dcca9e', NOTIFY, (b) => notifications.push(b));
    await scheduler.advanceAsync(30_000);

    expect(notifications.length).toBeGreaterThan(290);
    expect(Math.max(...notifications.map((n) => n.length))).toBe(20);
    const framer = createFramer(PC60FW_FRAMING);
    let split = 0;
    let merged = 0;
    const values: number[][] = [];
    for (const n of notifications) {
      const events = framer.push(n);
      if (framer.pending > 0) split++; // a frame continues in the next notification
      if (events.length > 1) merged++;
      for (const event of events) {
        expect(event.error).toBeUndefined();
        if (event.frame === undefined) continue;
        for (const reading of decode(event.frame) ?? []) {
          values.push(reading.observations.map((o) => o.value as number));
        }
      }
    }
    expect(split).toBeGreaterThan(0);
    expect(merged).toBeGreaterThan(0);
    // One parameter frame a second, with the simulated patient's PR, SpO2 and PI.
    expect(values.length).toBeGreaterThanOrEqual(29);
    for (const [pr, spo2, pi] of values) {
      expect(pr).toBeGreaterThanOrEqual(45);
      expect(pr).toBeLessThanOrEqual(130);
      expect(spo2).toBeGreaterThanOrEqual(80);
      expect(spo2).toBeLessThanOrEqual(100);
      expect(pi).toBeGreaterThan(0);
    }
  });

  it("passes driver:test's simulator check, which decodes the stream through the driver's framer", async () => {
    const registry = await loadBundledRegistry();
    const result = await checkDeviceModel(driver, (options) => simulatedDevice(ID, options), { registry });
    expect(result.problems).toEqual([]);
    expect(result.readings).toBeGreaterThan(0);
  });
});
