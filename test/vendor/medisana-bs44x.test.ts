import { beforeAll, describe, expect, it } from 'vitest';
import driver from '../../devices/vendor/medisana-bs44x/driver.js';
import {
  EPOCH_2010_S,
  encodeBody,
  encodeWeight,
  parseBody,
  parseWeight,
  scaleClockAt,
  scaleTime,
  TRIGGER_CLOCK,
  TRIGGER_COMMAND,
} from '../../devices/vendor/medisana-bs44x/medisana-protocol.js';
import { SimCentral, simulatedDevice } from '../../src/ble/sim/index.js';
import { loadBundledRegistry } from '../../src/drivers/default-registry.js';
import type { DriverRegistry } from '../../src/drivers/registry.js';
import { type SetupContext, setupValue } from '../../src/drivers/sdk/define-driver.js';
import { toHex } from '../../src/gatt/hex.js';
import { normalizeUuid } from '../../src/gatt/uuid.js';
import type { Reading } from '../../src/model/observation.js';
import { stamp } from '../../src/pipeline/stamp.js';
import type { SessionReading } from '../../src/session/device-session.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';
import { sessionRig } from '../session/session-rig.js';

const DAY_S = 86_400;
const DAY_MS = DAY_S * 1000;

let registry: DriverRegistry;
beforeAll(async () => {
  registry = await loadBundledRegistry();
});

describe('Medisana BS44x clock (vendor/medisana-bs44x)', () => {
  it('writes the hub time as seconds since 2010 when the hub clock is synchronised, else the wiki trigger 02 7B 7B F6 0D', () => {
    expect(toHex(TRIGGER_COMMAND)).toBe('027b7bf60d');
    const [trigger] = driver.setup ?? [];
    if (!trigger) throw new Error('the driver declares no trigger write');
    const at = (now: Date | null): string => toHex(setupValue(trigger, { now, utcOffsetMinutes: 120 }));
    expect(at(null)).toBe('027b7bf60d');
    // 2026-11-20 07:00:00 UTC is 532,854,000 s after 2010-01-01 (0x1FC2B4F0), little-endian; UTC whatever the offset.
    expect(scaleClockAt(new Date(Date.UTC(2026, 10, 20, 7, 0, 0)))).toBe(0x1fc2b4f0);
    expect(at(new Date(Date.UTC(2026, 10, 20, 7, 0, 0)))).toBe('02f0b4c21f');
    // The count it writes reads back as the same time.
    expect(scaleTime(0x1fc2b4f0)).toEqual({ iso: '2026-11-20T07:00:00', epoch: '2010' });
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

  it('sends its memory only after the trigger: true times before the hub, null after a trigger written without a synchronised hub clock', async () => {
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
    const unsynchronised: SetupContext = { now: null, utcOffsetMinutes: 0 };
    await connection.write(trigger.service, trigger.characteristic, setupValue(trigger, unsynchronised));
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

describe('Medisana BS44x through a hub session (virtual time)', () => {
  const WEIGHT = normalizeUuid('8a21');
  const BODY = normalizeUuid('8a22');

  async function connected(mayWriteClock: boolean) {
    const r = sessionRig(driver.id, { session: { mayWriteClock: () => mayWriteClock } });
    // Two weighings a day apart before any hub, the last one now (2026-11-28 08:00 UTC).
    r.device.preload(2, DAY_MS);
    await r.central.start();
    r.session.start();
    while (r.session.state !== 'streaming') await r.advance(100);
    await r.advance(5_000);
    return r;
  }

  const timesOf = (readings: readonly SessionReading[]) =>
    readings
      .filter((x) => x.characteristic === WEIGHT || x.characteristic === BODY)
      .map((x) => x.reading.time);

  it('a weighing after a hub connection keeps its true time, and its id when the scale sends it again', async () => {
    const r = await connected(true);
    expect(timesOf(r.readings)).toEqual([
      '2026-11-27T08:00:00',
      '2026-11-27T08:00:00',
      '2026-11-28T08:00:00',
      '2026-11-28T08:00:00',
    ]);
    // An hour later, on the clock the session's trigger set: sent at once, stamped by the scale.
    await r.advance(3_600_000);
    const before = r.readings.length;
    const weighedAt = new Date(r.scheduler.now()).toISOString().slice(0, 19);
    expect(weighedAt.startsWith('2026-11-28T09:00:')).toBe(true);
    r.device.measure();
    await r.advance(1_000);
    const late = r.readings.slice(before);
    expect(late.map((x) => [x.characteristic, x.reading.time, x.reading.status])).toEqual([
      [WEIGHT, weighedAt, []],
      [BODY, weighedAt, []],
    ]);
    expect(late.every((x) => x.timeSource !== 'gateway')).toBe(true);
    // The next connection: the scale sends its whole memory again, this weighing with the same bytes and so
    // the same measurement id (a hash of its device time and payload), which the outbox drops as a duplicate.
    const ids = (xs: readonly SessionReading[]) => xs.map((x) => stamp(x, driver).id);
    const lateIds = ids(late);
    r.device.peripheral.dropLink('link-loss');
    const afterDrop = r.readings.length;
    while (r.session.state !== 'streaming') await r.advance(100);
    await r.advance(5_000);
    const resent = r.readings.slice(afterDrop).filter((x) => x.reading.time === weighedAt);
    expect(ids(resent)).toEqual(lateIds);
    await r.session.stop();
  });

  it('while the hub clock is not synchronised, the fixed trigger is written and later weighings say so', async () => {
    const r = await connected(false);
    expect(timesOf(r.readings)).toHaveLength(4);
    await r.advance(3_600_000);
    const before = r.readings.length;
    r.device.measure();
    await r.advance(1_000);
    expect(r.readings.slice(before).map((x) => [x.reading.time, x.reading.status, x.timeSource])).toEqual([
      [null, ['clock-set-by-trigger'], 'gateway'],
      [null, ['clock-set-by-trigger'], 'gateway'],
    ]);
    await r.session.stop();
  });
});
