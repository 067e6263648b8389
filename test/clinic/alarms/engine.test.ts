import { afterEach, describe, expect, it } from 'vitest';
import { AlarmError } from '../../../src/clinic/alarms/errors.js';
import { patientGateway } from '../../../src/clinic/alarms/hub-limits.js';
import type { AlarmSettingsInput } from '../../../src/clinic/alarms/settings.js';
import { DAY, GW, HOUR, MINUTE, MRN, type Rig, SECOND, startRig, summary, T0 } from './rig.js';

/**
 * The alarm engine in virtual time, on the real encrypted SQLite stores, fed through the clinic record's live
 * feed. Presence is proven by the events the engine emitted after its queue drained (engine.idle()); absence by
 * the same drained queue at a virtual time short of the deadline.
 */
let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

async function start(settings: AlarmSettingsInput = {}): Promise<Rig> {
  rig = await startRig(settings);
  return rig;
}

/** SpO2 readings every 5 s from now, one per value, moving virtual time along. */
async function spo2Series(r: Rig, values: readonly number[]): Promise<void> {
  for (const value of values) {
    await r.read({ value });
    await r.advance(5 * SECOND);
  }
}

describe('physiological alarms: minimum duration and hysteresis (default SpO2 < 90 % for 60 s, hysteresis 1)', () => {
  it('raises only once the value stayed below the limit for the minimum duration, by the readings own times', async () => {
    const r = await start();
    await spo2Series(r, Array(12).fill(88)); // 0 s .. 55 s below: not yet 60 s
    expect(r.events).toEqual([]);
    await r.read({ value: 88 }); // 60 s
    expect(summary(r.events)).toEqual([['raised', 'physiological', 'active']]);
    const alarm = r.events[0]?.alarm;
    expect(alarm).toMatchObject({
      mrn: MRN,
      gatewayId: GW,
      deviceId: 'dev-ox-1',
      code: 'MDC_PULS_OXIM_SAT_O2',
      priority: 'high',
      late: false,
      value: 88,
      unit: '%',
      measuredAt: T0 + 60 * SECOND,
      raisedAt: T0 + 60 * SECOND,
    });
    expect(alarm?.details).toMatchObject({ side: 'below', limit: 90, since: T0 });
  });

  it('restarts the count after a reading above the limit, and after readings too far apart', async () => {
    const r = await start();
    await spo2Series(r, [88, 88, 88, 88, 88, 88, 95]); // 30 s below, then back up
    await spo2Series(r, Array(12).fill(88)); // 55 s below again: the earlier 30 s do not count
    expect(r.events).toEqual([]);
    await r.advance(20 * SECOND); // a 25 s hole between readings (more than maxGapMs, 15 s)
    await spo2Series(r, Array(12).fill(88));
    expect(r.events).toEqual([]);
    await r.read({ value: 88 });
    expect(summary(r.events)).toEqual([['raised', 'physiological', 'active']]);
  });

  it('tells an ongoing condition once, ends it only past the hysteresis, and a high alarm latches', async () => {
    const r = await start();
    await spo2Series(r, Array(13).fill(85));
    await spo2Series(r, Array(20).fill(84)); // still below: no second alarm
    await spo2Series(r, [90, 90, 89, 90]); // back at the limit but not past the hysteresis (91)
    expect(summary(r.events)).toEqual([['raised', 'physiological', 'active']]);
    expect(await r.alarms.openAlarms()).toHaveLength(1);
    await r.read({ value: 91 });
    expect(summary(r.events)).toEqual([
      ['raised', 'physiological', 'active'],
      ['latched', 'physiological', 'latched'],
    ]);
    const latched = r.events[1]?.alarm;
    expect(latched?.conditionEndedAt).toBe(r.scheduler.now());
    expect(latched?.clearedAt).toBeUndefined();
  });

  it('follows the limits an admin set for the patient, with their priority', async () => {
    const r = await start();
    await r.engine.setLimits(
      MRN,
      [{ code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', below: 85, forMs: 0, hysteresis: 2, priority: 'medium' }],
      'dr.admin',
    );
    await r.read({ value: 87 });
    expect(r.events).toEqual([]);
    await r.read({ value: 84 });
    expect(r.events.map((e) => [e.type, e.alarm.priority])).toEqual([['raised', 'medium']]);
    // Medium does not latch: the condition's end clears it.
    await r.read({ value: 87 });
    expect(summary(r.events).at(-1)).toEqual(['cleared', 'physiological', 'cleared']);
    expect((await r.alarms.limitsOf(MRN))?.setBy).toBe('dr.admin');
  });

  it('refuses limits the hub could not hold, naming the code, never the value', async () => {
    const r = await start();
    const error = await r.engine
      .setLimits(
        MRN,
        [
          {
            code: 'MDC_PULS_OXIM_SAT_O2',
            unit: '%',
            below: 97.5,
            above: 93.25,
            forMs: 0,
            hysteresis: 1,
            priority: 'high',
          },
        ],
        'dr.admin',
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AlarmError);
    expect((error as AlarmError).code).toBe('ALARM_LIMITS_INVALID');
    expect((error as AlarmError).message).toContain('MDC_PULS_OXIM_SAT_O2');
    expect((error as AlarmError).message).not.toMatch(/97\.5|93\.25/);
  });
});

describe('latching and acknowledgement', () => {
  async function raiseSpo2(r: Rig): Promise<number> {
    await spo2Series(r, Array(13).fill(85));
    const raised = r.events.find((e) => e.type === 'raised');
    return raised?.alarm.id as number;
  }

  it('a high alarm stays latched after its condition ended until acknowledged, and records who and when', async () => {
    const r = await start();
    const id = await raiseSpo2(r);
    await r.read({ value: 97 });
    await r.advance(HOUR);
    expect((await r.alarms.alarm(id))?.state).toBe('latched');
    const acknowledged = await r.engine.acknowledge(id, 'nurse.kim');
    expect(acknowledged).toMatchObject({
      state: 'cleared',
      acknowledgedBy: 'nurse.kim',
      acknowledgedAt: r.scheduler.now(),
      clearedAt: r.scheduler.now(),
    });
    expect(summary(r.events).slice(-2)).toEqual([
      ['acknowledged', 'physiological', 'cleared'],
      ['cleared', 'physiological', 'cleared'],
    ]);
    // Idempotent: a second acknowledgement changes nothing and tells nothing.
    const count = r.events.length;
    await r.advance(MINUTE);
    const again = await r.engine.acknowledge(id, 'dr.other');
    expect(again.acknowledgedBy).toBe('nurse.kim');
    expect(r.events).toHaveLength(count);
  });

  it('an alarm acknowledged while its condition is present stays active, then clears when the condition ends', async () => {
    const r = await start();
    const id = await raiseSpo2(r);
    expect((await r.engine.acknowledge(id, 'nurse.kim')).state).toBe('active');
    await r.read({ value: 97 });
    expect(summary(r.events).at(-1)).toEqual(['cleared', 'physiological', 'cleared']);
  });

  it('a condition that comes back while its alarm is latched reactivates that alarm, not a second one', async () => {
    const r = await start();
    const id = await raiseSpo2(r);
    await r.read({ value: 97 });
    await r.advance(5 * SECOND);
    await spo2Series(r, Array(13).fill(86));
    expect(summary(r.events)).toEqual([
      ['raised', 'physiological', 'active'],
      ['latched', 'physiological', 'latched'],
      ['reactivated', 'physiological', 'active'],
    ]);
    expect(r.events[2]?.alarm.id).toBe(id);
  });

  it('acknowledging an id that names no alarm is ALARM_UNKNOWN', async () => {
    const r = await start();
    const error = await r.engine.acknowledge(999, 'nurse.kim').catch((e: unknown) => e);
    expect((error as AlarmError).code).toBe('ALARM_UNKNOWN');
  });
});

describe('late alarms', () => {
  it('a stored reading that crosses a limit raises a late alarm with its original time, latched until acknowledged', async () => {
    const r = await start();
    const measuredAt = T0 - 3 * HOUR;
    // Systolic above 180 mmHg fires at once by default (a cuff's single reading), medium priority.
    await r.read({
      code: 'MDC_PRESS_BLD_NONINV_SYS',
      unit: 'mm[Hg]',
      value: 192,
      at: measuredAt,
      stored: true,
      deviceId: 'cuff-1',
    });
    expect(summary(r.events)).toEqual([['raised', 'physiological', 'latched']]);
    const alarm = r.events[0]?.alarm;
    expect(alarm).toMatchObject({ late: true, measuredAt, raisedAt: T0, priority: 'medium', value: 192 });
    // Never current, never silently gone: it waits for somebody to acknowledge it.
    await r.advance(6 * HOUR);
    expect((await r.alarms.alarm(alarm?.id as number))?.state).toBe('latched');
    expect((await r.engine.acknowledge(alarm?.id as number, 'nurse.kim')).state).toBe('cleared');
  });

  it('a reading received long after it was measured is late even when not marked stored (a hub back-fill)', async () => {
    const r = await start();
    const measuredAt = T0 - 20 * MINUTE;
    await r.read({
      code: 'MDC_PRESS_BLD_NONINV_SYS',
      unit: 'mm[Hg]',
      value: 200,
      at: measuredAt,
      deviceId: 'cuff-1',
    });
    expect(r.events[0]?.alarm).toMatchObject({ late: true, measuredAt, state: 'latched' });
  });

  it('a stored episode is one late alarm, and does not make the live stream present', async () => {
    const r = await start();
    const from = T0 - 2 * HOUR;
    const readings = Array.from({ length: 20 }, (_, i) => ({
      value: 85,
      at: from + i * 5 * SECOND,
      stored: true,
    }));
    await r.read(...readings);
    expect(summary(r.events)).toEqual([['raised', 'physiological', 'latched']]);
    expect(r.events[0]?.alarm).toMatchObject({ late: true, measuredAt: from + 60 * SECOND });
    // A live reading in range ends nothing and raises nothing.
    await r.read({ value: 97 });
    expect(r.events).toHaveLength(1);
  });
});

describe('technical alarms in virtual time', () => {
  it('raises hub-offline after the configured silence, and clears it when the hub is heard again', async () => {
    const r = await start({ hubSilenceMs: 30 * MINUTE });
    await r.read({ value: 97 });
    await r.advance(30 * MINUTE - 1);
    expect(r.events).toEqual([]);
    await r.advance(1);
    expect(summary(r.events)).toEqual([['raised', 'hub-offline', 'active']]);
    expect(r.events[0]?.alarm).toMatchObject({ priority: 'medium', raisedAt: T0 + 30 * MINUTE });
    expect(r.events[0]?.alarm.details).toMatchObject({ reason: 'silent', lastContactAt: T0 });
    await r.status('online');
    expect(summary(r.events).at(-1)).toEqual(['cleared', 'hub-offline', 'cleared']);
  });

  it('an offline status raises hub-offline after the grace time, unless the hub is back first', async () => {
    const r = await start({ offlineGraceMs: 2 * MINUTE });
    await r.status('offline');
    await r.advance(MINUTE);
    await r.status('online'); // a restart: back within the grace time
    await r.advance(10 * MINUTE);
    expect(r.events).toEqual([]);
    await r.status('offline');
    await r.advance(2 * MINUTE);
    expect(summary(r.events)).toEqual([['raised', 'hub-offline', 'active']]);
    expect(r.events[0]?.alarm.details.reason).toBe('offline-status');
  });

  it('raises device-silent for an enrolled device that stopped, and not while the hub itself is offline', async () => {
    const r = await start({ deviceSilenceMs: HOUR, hubSilenceMs: 12 * HOUR });
    await r.read({ value: 97, deviceId: 'dev-a' });
    for (let i = 0; i < 6; i++) {
      await r.advance(10 * MINUTE);
      await r.read({ value: 97, deviceId: 'dev-b' });
    }
    expect(summary(r.events)).toEqual([['raised', 'device-silent', 'active']]);
    expect(r.events[0]?.alarm).toMatchObject({ deviceId: 'dev-a', priority: 'low', raisedAt: T0 + HOUR });
    await r.read({ value: 97, deviceId: 'dev-a' });
    expect(summary(r.events).at(-1)).toEqual(['cleared', 'device-silent', 'cleared']);
    // Both silent while the hub is offline: only the hub's alarm.
    await r.status('offline');
    await r.advance(2 * HOUR);
    expect(summary(r.events).slice(2)).toEqual([['raised', 'hub-offline', 'active']]);
  });

  it("a hub passed on to the next patient ends the last patient's technical alarms and forgets their devices", async () => {
    const r = await start({ deviceSilenceMs: HOUR, hubSilenceMs: 12 * HOUR });
    await r.read({ value: 97, deviceId: 'dev-a' });
    await r.advance(HOUR);
    expect(summary(r.events)).toEqual([['raised', 'device-silent', 'active']]);
    await r.clinic.assign({
      gatewayId: GW,
      mrn: 'MRN-next',
      from: r.scheduler.now(),
      createdBy: 'admin',
      at: r.scheduler.now(),
    });
    await r.engine.refresh();
    expect(summary(r.events).at(-1)).toEqual(['cleared', 'device-silent', 'cleared']);
    await r.advance(3 * HOUR);
    expect(r.events).toHaveLength(2);
  });

  it('raises battery-low below 20 % and clears it past the hysteresis (25 %)', async () => {
    const r = await start();
    const battery = (value: number) => r.read({ code: 'MDC_ATTR_VAL_BATT_CHARGE', unit: '%', value });
    await battery(35);
    await battery(15);
    expect(summary(r.events)).toEqual([['raised', 'battery-low', 'active']]);
    expect(r.events[0]?.alarm).toMatchObject({
      priority: 'low',
      value: 15,
      code: 'MDC_ATTR_VAL_BATT_CHARGE',
    });
    await battery(12);
    await battery(22);
    expect(r.events).toHaveLength(1);
    await battery(26);
    expect(summary(r.events).at(-1)).toEqual(['cleared', 'battery-low', 'cleared']);
  });

  it('a gap record raises an alarm that waits, latched, for an acknowledgement', async () => {
    const r = await start();
    await r.gap({ count: 40, reason: 'expired' });
    expect(summary(r.events)).toEqual([['raised', 'gap', 'latched']]);
    expect(r.events[0]?.alarm.details).toMatchObject({ count: 40, reason: 'expired' });
    await r.advance(DAY);
    const gaps = async () => (await r.alarms.openAlarms()).filter((a) => a.kind === 'gap');
    expect(await gaps()).toHaveLength(1);
    await r.engine.acknowledge(r.events[0]?.alarm.id as number, 'nurse.kim');
    expect(await gaps()).toHaveLength(0);
  });

  it('raises cert-expiry when the hub certificate is within the warning time, and clears it on renewal', async () => {
    const r = await start({ certWarningMs: 14 * DAY, hubSilenceMs: 30 * DAY });
    await r.status('online', { certExpiresAt: T0 + 20 * DAY });
    await r.advance(6 * DAY - 1);
    expect(r.events).toEqual([]);
    await r.advance(1);
    expect(summary(r.events)).toEqual([['raised', 'cert-expiry', 'active']]);
    expect(r.events[0]?.alarm.details.certExpiresAt).toBe(T0 + 20 * DAY);
    await r.status('online', { certExpiresAt: T0 + 400 * DAY });
    expect(summary(r.events).at(-1)).toEqual(['cleared', 'cert-expiry', 'cleared']);
  });

  it('raises clock-skew when the hub signs messages ahead of the clinic clock, and clears it when it is back', async () => {
    const r = await start();
    await r.read({ value: 97, sentAt: T0 + 5 * MINUTE });
    expect(summary(r.events)).toEqual([['raised', 'clock-skew', 'active']]);
    await r.advance(MINUTE);
    await r.read({ value: 97 });
    expect(summary(r.events).at(-1)).toEqual(['cleared', 'clock-skew', 'cleared']);
  });
});

describe("the patient's hub for the limits command", () => {
  it('is the gateway assigned now; none is ALARM_NO_GATEWAY', async () => {
    const r = await start();
    expect(await patientGateway(r.clinic, MRN, r.scheduler.now())).toBe(GW);
    await r.clinic.unassign(GW, r.scheduler.now());
    const error = await patientGateway(r.clinic, MRN, r.scheduler.now()).catch((e: unknown) => e);
    expect((error as AlarmError).code).toBe('ALARM_NO_GATEWAY');
    expect((error as AlarmError).message).not.toContain(MRN);
  });
});

describe('restart', () => {
  it('keeps a present condition present, tells nothing twice, and rebuilds the silence timer from the last contact', async () => {
    const r = await start({ hubSilenceMs: 30 * MINUTE });
    await spo2Series(r, Array(13).fill(85)); // raised at T0 + 60 s; last contact T0 + 60 s
    const id = r.events[0]?.alarm.id;
    await r.advance(10 * MINUTE);
    await r.restart();
    expect(summary(r.events)).toEqual([['raised', 'physiological', 'active']]);
    // Silence counts from the last reading before the restart (T0 + 60 s), not from the restart.
    await r.advance(T0 + 60 * SECOND + 30 * MINUTE - r.scheduler.now() - 1);
    expect(r.events).toHaveLength(1);
    await r.advance(1);
    expect(summary(r.events).at(-1)).toEqual(['raised', 'hub-offline', 'active']);
    // The restarted engine knows the SpO2 condition is present: a recovered reading ends that same alarm.
    await r.read({ value: 97 });
    const ended = r.events.find((e) => e.type === 'latched');
    expect(ended?.alarm.id).toBe(id);
  });

  it('on start, raises what the latest status says (offline) for a hub that went offline while no engine ran', async () => {
    const r = await start({ offlineGraceMs: 2 * MINUTE });
    await r.engine.stop();
    await r.clinic.commit({
      measurements: [],
      gaps: [],
      statuses: [
        {
          status: {
            gatewayId: GW,
            state: 'offline',
            version: '1',
            sentAt: T0,
            backlog: { alert: 0, live: 0, backlog: 0 },
          },
          signerSerial: '0a',
          receivedAt: T0,
        },
      ],
      rejections: [],
    });
    await r.scheduler.advanceAsync(10 * MINUTE);
    await r.restart();
    expect(summary(r.events)).toEqual([['raised', 'hub-offline', 'active']]);
  });

  it('a stopped engine refuses work with ALARM_ENGINE_STOPPED', async () => {
    const r = await start();
    await r.engine.stop();
    const error = await r.engine.acknowledge(1, 'x').catch((e: unknown) => e);
    expect((error as AlarmError).code).toBe('ALARM_ENGINE_STOPPED');
  });
});
