import { beforeAll, describe, expect, it } from 'vitest';
import driver from '../../devices/vendor/medisana-bs44x/driver.js';
import {
  EPOCH_2010_S,
  encodeBody,
  encodeWeight,
  parseBody,
  parseWeight,
  scaleTime,
  TRIGGER_CLOCK,
  TRIGGER_COMMAND,
} from '../../devices/vendor/medisana-bs44x/medisana-protocol.js';
import { SimCentral, simulatedDevice } from '../../src/ble/sim/index.js';
import { loadBundledRegistry } from '../../src/drivers/default-registry.js';
import type { DriverRegistry } from '../../src/drivers/registry.js';
import { toHex } from '../../src/gatt/hex.js';
import { normalizeUuid } from '../../src/gatt/uuid.js';
import type { Reading } from '../../src/model/observation.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';

const DAY_S = 86_400;
const DAY_MS = DAY_S * 1000;

let registry: DriverRegistry;
beforeAll(async () => {
  registry = await loadBundledRegistry();
});

describe('Medisana BS44x clock (vendor/medisana-bs44x)', () => {
  it('writes the openScale wiki trigger 02 7B 7B F6 0D', () => {
    expect(toHex(TRIGGER_COMMAND)).toBe('027b7bf60d');
  });

  it('tells the 2010 clock from the Unix clock by the count itself', () => {
    expect(scaleTime(0x0df40f80)).toEqual({ iso: '2017-06-02T11:22:40', epoch: '2010' }); // BS444 capture
    expect(scaleTime(0x56a00a6e)).toEqual({ iso: '2016-01-20T22:30:06', epoch: 'unix' }); // BS440 capture
    // Either side of the switch: a 2010 count just below 2050, a Unix count of 2010 (a clock never set).
    expect(scaleTime(EPOCH_2010_S - 1)).toEqual({ iso: '2049-12-31T23:59:59', epoch: '2010' });
    expect(scaleTime(EPOCH_2010_S)).toEqual({ iso: null, why: 'clock-not-set' });
  });

  it('takes a year of counts after the trigger clock for a restarted clock, and nothing else', () => {
    expect(scaleTime(TRIGGER_CLOCK - 1)).toEqual({ iso: '2017-06-04T07:27:54', epoch: '2010' });
    expect(scaleTime(TRIGGER_CLOCK)).toEqual({ iso: null, why: 'clock-set-by-trigger' });
    expect(scaleTime(TRIGGER_CLOCK + 366 * DAY_S - 1)).toEqual({ iso: null, why: 'clock-set-by-trigger' });
    expect(scaleTime(TRIGGER_CLOCK + 366 * DAY_S)).toEqual({ iso: '2018-06-05T07:27:55', epoch: '2010' });
  });

  it('encodes what it decodes', () => {
    const weight = { weightKg: 81.37, time: 0x0e000000, person: 3 };
    expect(parseWeight(encodeWeight(weight))).toEqual(weight);
    const body = {
      time: 0x0e000000,
      person: null,
      kcal: 2411,
      fatPercent: 27.4,
      waterPercent: 52.9,
      musclePercent: 36.1,
      boneKg: 3.2,
    };
    const bytes = encodeBody(body);
    expect((bytes[9] ?? 0) >> 4).toBe(0xf); // the top nibble the scale sends
    expect(parseBody(bytes)).toEqual(body);
  });
});

describe('Medisana BS44x simulated scale and hub session', () => {
  it('is picked by its service alone, whatever its random name', () => {
    for (const name of ['0131970144', '7730019', undefined]) {
      expect(registry.match({ services: ['78b2'], ...(name ? { name } : {}), manufacturerIds: [] })?.id).toBe(
        driver.id,
      );
    }
  });

  it('sends its memory only after the trigger: true times before the hub, null after the restarted clock', async () => {
    const scheduler = new VirtualScheduler();
    scheduler.advance(Date.UTC(2026, 10, 20, 7, 0, 0) - scheduler.now());
    const device = simulatedDevice(driver.id, { scheduler, seed: 3 });
    // Three weighings a day apart while no hub was around; the last one at 07:00 on 2026-11-20.
    device.preload(3, DAY_MS);
    const central = new SimCentral({ scheduler, peripherals: [device.peripheral] });
    await central.start();
    const connection = await central.connect(device.peripheral.address, { timeoutMs: 1_000 });
    await connection.discover();
    const readings: { char: string; reading: Reading }[] = [];
    for (const spec of driver.characteristics) {
      const char = normalizeUuid(spec.uuid);
      await connection.subscribe(spec.service, spec.uuid, (bytes) => {
        for (const reading of spec.decode(bytes, { characteristic: char })) readings.push({ char, reading });
      });
    }
    await scheduler.advanceAsync(5_000);
    expect(readings).toEqual([]); // nothing before the trigger

    const [trigger] = driver.setup ?? [];
    if (!trigger) throw new Error('the driver declares no trigger write');
    await connection.write(trigger.service, trigger.characteristic, trigger.value);
    await scheduler.advanceAsync(5_000);
    const weights = readings.filter((r) => r.char === '8a21').map((r) => r.reading);
    const bodies = readings.filter((r) => r.char === '8a22').map((r) => r.reading);
    expect(weights.map((r) => r.time)).toEqual([
      '2026-11-18T07:00:00',
      '2026-11-19T07:00:00',
      '2026-11-20T07:00:00',
    ]);
    expect(bodies.map((r) => r.time)).toEqual(weights.map((r) => r.time));
    for (const r of weights) {
      const kg = r.observations[0]?.value as number;
      expect(kg).toBeGreaterThan(70);
      expect(kg).toBeLessThan(80);
    }

    // A weighing on the clock the trigger restarted: sent at once, with no device time.
    scheduler.advance(3_600_000);
    device.measure();
    await scheduler.advanceAsync(1_000);
    const late = readings.slice(weights.length + bodies.length);
    expect(late.map((r) => [r.char, r.reading.time, r.reading.status])).toEqual([
      ['8a21', null, ['clock-set-by-trigger']],
      ['8a22', null, ['clock-set-by-trigger']],
    ]);
    await connection.disconnect();
  });
});
