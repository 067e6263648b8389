import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AlarmChange, AlarmStore } from '../../../src/clinic/alarms/alarm-store.js';
import { AlarmError } from '../../../src/clinic/alarms/errors.js';
import type { AlarmLimit, NewAlarm } from '../../../src/clinic/alarms/model.js';
import { until } from '../../support/until.js';

/**
 * THE contract every AlarmStore implementation passes (src/clinic/alarms/alarm-store.ts): the SQLite test
 * (test/clinic/alarms/sqlite.test.ts) and the PostgreSQL test each call `alarmStoreContract` with a factory that
 * makes a new, empty database. Everything here goes through the interface only.
 */
export interface AlarmContractSubject {
  readonly store: AlarmStore;
  /** Opens the same database again: another store object, as a second process would hold. */
  readonly reopen: () => Promise<AlarmStore>;
  readonly cleanup: () => Promise<void>;
}

export type AlarmContractFactory = () => Promise<AlarmContractSubject>;

const T0 = Date.UTC(2026, 2, 2, 8, 0, 0);
const MINUTE = 60_000;
const MRN = 'MRN-7|"x"'; // characters a key or a query must not trip over

const SPO2: AlarmLimit = {
  code: 'MDC_PULS_OXIM_SAT_O2',
  unit: '%',
  below: 88.5,
  forMs: 120_000,
  hysteresis: 1.5,
  priority: 'high',
};
const PULSE: AlarmLimit = {
  code: 'MDC_PULS_OXIM_PULS_RATE',
  unit: '/min',
  below: 45,
  above: 125,
  forMs: 0,
  hysteresis: 5,
  priority: 'medium',
};

function newAlarm(key: string, overrides: Partial<NewAlarm> = {}): NewAlarm {
  return {
    conditionKey: key,
    mrn: MRN,
    gatewayId: 'gw-contract-1',
    deviceId: 'dev-ox-1',
    kind: 'physiological',
    code: 'MDC_PULS_OXIM_SAT_O2',
    priority: 'high',
    late: false,
    raisedAt: T0,
    measuredAt: T0 - 1000,
    value: 86.25,
    unit: '%',
    details: { side: 'below', limit: 88.5, nested: { a: [1, 'two', null] } },
    ...overrides,
  };
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AlarmError);
  expect((error as AlarmError).code).toBe(code);
}

export function alarmStoreContract(name: string, open: AlarmContractFactory): void {
  describe(`AlarmStore contract: ${name}`, () => {
    let subject: AlarmContractSubject;
    let store: AlarmStore;

    beforeEach(async () => {
      subject = await open();
      store = subject.store;
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    describe('limits', () => {
      it('has none until an admin sets them, then keeps them with who and when, replaced as a whole', async () => {
        expect(await store.limitsOf(MRN)).toBeUndefined();
        await store.setLimits({ mrn: MRN, limits: [SPO2, PULSE], setBy: 'dr.admin', setAt: T0 });
        expect(await store.limitsOf(MRN)).toEqual({
          mrn: MRN,
          limits: [PULSE, SPO2],
          setBy: 'dr.admin',
          setAt: T0,
        });
        await store.setLimits({ mrn: MRN, limits: [SPO2], setBy: 'dr.other', setAt: T0 + MINUTE });
        expect(await store.limitsOf(MRN)).toEqual({
          mrn: MRN,
          limits: [SPO2],
          setBy: 'dr.other',
          setAt: T0 + MINUTE,
        });
        // An empty set is kept: no physiological alarms for this patient, not the defaults.
        await store.setLimits({ mrn: 'MRN-2', limits: [], setBy: 'dr.admin', setAt: T0 });
        expect((await store.allLimits()).map((l) => [l.mrn, l.limits.length])).toEqual([
          ['MRN-2', 0],
          [MRN, 1],
        ]);
      });

      it('refuses limits the hub could not hold and bad fields, changing nothing', async () => {
        await store.setLimits({ mrn: MRN, limits: [SPO2], setBy: 'dr.admin', setAt: T0 });
        const bad: AlarmLimit[][] = [
          [{ ...SPO2, below: 95, above: 90 }],
          [{ ...SPO2, code: 'MDC_NOT_A_CODE' }],
          [{ ...SPO2, unit: 'furlongs' }],
          [SPO2, { ...SPO2, below: 80 }],
          [{ ...SPO2, priority: 'urgent' as AlarmLimit['priority'] }],
          [{ ...SPO2, forMs: -1 }],
          [{ ...SPO2, hysteresis: -1 }],
        ];
        for (const limits of bad) {
          await rejectsWith(
            store.setLimits({ mrn: MRN, limits, setBy: 'x', setAt: T0 }),
            'ALARM_LIMITS_INVALID',
          );
        }
        await rejectsWith(
          store.setLimits({ mrn: ' ', limits: [], setBy: 'x', setAt: T0 }),
          'ALARM_FIELD_INVALID',
        );
        await rejectsWith(
          store.setLimits({ mrn: MRN, limits: [], setBy: '', setAt: T0 }),
          'ALARM_FIELD_INVALID',
        );
        await rejectsWith(
          store.setLimits({ mrn: MRN, limits: [], setBy: 'x', setAt: -5 }),
          'ALARM_FIELD_INVALID',
        );
        expect((await store.limitsOf(MRN))?.limits).toEqual([SPO2]);
      });
    });

    describe('lifecycle', () => {
      it('raises once per open condition and keeps every field, the value and the details included', async () => {
        const first = await store.raise(newAlarm('k1'));
        expect(first.change).toBe('raised');
        expect(first.alarm).toEqual({
          id: first.alarm.id,
          conditionKey: 'k1',
          mrn: MRN,
          gatewayId: 'gw-contract-1',
          deviceId: 'dev-ox-1',
          kind: 'physiological',
          code: 'MDC_PULS_OXIM_SAT_O2',
          priority: 'high',
          state: 'active',
          late: false,
          raisedAt: T0,
          measuredAt: T0 - 1000,
          value: 86.25,
          unit: '%',
          details: { side: 'below', limit: 88.5, nested: { a: [1, 'two', null] } },
        });
        const again = await store.raise(newAlarm('k1', { raisedAt: T0 + MINUTE, value: 80 }));
        expect(again).toEqual({ alarm: first.alarm, change: 'unchanged' });
        expect(await store.alarm(first.alarm.id)).toEqual(first.alarm);
        expect(await store.openAlarms()).toEqual([first.alarm]);
      });

      it('a high alarm latches when its condition ends; the condition coming back reactivates it', async () => {
        const { alarm } = await store.raise(newAlarm('k1'));
        const ended = await store.endCondition('k1', T0 + MINUTE);
        expect(ended?.change).toBe('latched');
        expect(ended?.alarm).toMatchObject({ state: 'latched', conditionEndedAt: T0 + MINUTE });
        expect(await store.endCondition('k1', T0 + 2 * MINUTE)).toBeUndefined();
        const back = await store.raise(newAlarm('k1', { raisedAt: T0 + 3 * MINUTE }));
        expect(back.change).toBe('reactivated');
        expect(back.alarm.id).toBe(alarm.id);
        expect(back.alarm.state).toBe('active');
        expect(back.alarm.conditionEndedAt).toBeUndefined();
      });

      it('a medium or low alarm clears when its condition ends; the next occurrence is a new alarm', async () => {
        const { alarm } = await store.raise(newAlarm('k2', { priority: 'medium' }));
        const ended = await store.endCondition('k2', T0 + MINUTE);
        expect(ended?.change).toBe('cleared');
        expect(ended?.alarm).toMatchObject({
          state: 'cleared',
          clearedAt: T0 + MINUTE,
          conditionEndedAt: T0 + MINUTE,
        });
        const next = await store.raise(newAlarm('k2', { priority: 'medium', raisedAt: T0 + 2 * MINUTE }));
        expect(next.change).toBe('raised');
        expect(next.alarm.id).not.toBe(alarm.id);
      });

      it('late and event alarms latch whatever their priority', async () => {
        const late = await store.raise(newAlarm('late', { priority: 'low', late: true, endedAt: T0 }));
        expect(late.alarm).toMatchObject({ state: 'latched', late: true, conditionEndedAt: T0 });
        const gap = await store.raise(
          newAlarm('gap', { kind: 'gap', priority: 'low', endedAt: T0, details: { count: 3 } }),
        );
        expect(gap.alarm.state).toBe('latched');
        const low = await store.raise(newAlarm('low', { kind: 'battery-low', priority: 'low', endedAt: T0 }));
        expect(low.alarm).toMatchObject({ state: 'cleared', clearedAt: T0 });
      });

      it('acknowledges once: who and when are the first acknowledgement, a latched alarm clears', async () => {
        const { alarm } = await store.raise(newAlarm('k1'));
        const ack = await store.acknowledge(alarm.id, 'nurse.kim', T0 + MINUTE);
        expect(ack.change).toBe('acknowledged');
        expect(ack.alarm).toMatchObject({
          state: 'active',
          acknowledgedBy: 'nurse.kim',
          acknowledgedAt: T0 + MINUTE,
        });
        const twice = await store.acknowledge(alarm.id, 'dr.other', T0 + 2 * MINUTE);
        expect(twice.change).toBe('unchanged');
        expect(twice.alarm.acknowledgedBy).toBe('nurse.kim');
        // Acknowledged while present: its end clears it, even though it is high priority.
        expect((await store.endCondition('k1', T0 + 3 * MINUTE))?.change).toBe('cleared');

        const latched = (await store.raise(newAlarm('k3'))).alarm;
        await store.endCondition('k3', T0 + MINUTE);
        const cleared = await store.acknowledge(latched.id, 'nurse.kim', T0 + 5 * MINUTE);
        expect(cleared.change).toBe('cleared');
        expect(cleared.alarm).toMatchObject({ state: 'cleared', clearedAt: T0 + 5 * MINUTE });
        expect(await store.openAlarms()).toEqual([]);
      });

      it('refuses an unknown alarm, a bad actor and bad alarm fields with typed codes', async () => {
        await rejectsWith(store.acknowledge(4242, 'nurse.kim', T0), 'ALARM_UNKNOWN');
        await rejectsWith(store.acknowledge(0, 'nurse.kim', T0), 'ALARM_UNKNOWN');
        const { alarm } = await store.raise(newAlarm('k1'));
        await rejectsWith(store.acknowledge(alarm.id, '', T0), 'ALARM_FIELD_INVALID');
        await rejectsWith(
          store.raise(newAlarm('k9', { gatewayId: 'not a gateway!' })),
          'ALARM_FIELD_INVALID',
        );
        await rejectsWith(
          store.raise(newAlarm('k9', { kind: 'fire' as NewAlarm['kind'] })),
          'ALARM_FIELD_INVALID',
        );
        await rejectsWith(store.raise(newAlarm('k9', { value: Number.NaN })), 'ALARM_FIELD_INVALID');
        await rejectsWith(store.raise(newAlarm('')), 'ALARM_FIELD_INVALID');
        expect(await store.alarm(4242)).toBeUndefined();
      });
    });

    describe('lists', () => {
      it('lists a patient and the clinic open first, then by priority, then newest first', async () => {
        const low = (await store.raise(newAlarm('a', { priority: 'low', raisedAt: T0 + 3 * MINUTE }))).alarm;
        const high = (await store.raise(newAlarm('b', { priority: 'high', raisedAt: T0 + MINUTE }))).alarm;
        const medium = (await store.raise(newAlarm('c', { priority: 'medium', raisedAt: T0 + 2 * MINUTE })))
          .alarm;
        const older = (await store.raise(newAlarm('d', { priority: 'high', raisedAt: T0 }))).alarm;
        const done = (await store.raise(newAlarm('e', { priority: 'high', raisedAt: T0 + 9 * MINUTE })))
          .alarm;
        await store.acknowledge(done.id, 'nurse.kim', T0 + 9 * MINUTE);
        await store.endCondition('e', T0 + 10 * MINUTE);
        const other = (await store.raise(newAlarm('f', { mrn: 'MRN-other', priority: 'low' }))).alarm;
        expect((await store.alarmsOf(MRN)).map((a) => a.id)).toEqual([
          high.id,
          older.id,
          medium.id,
          low.id,
          done.id,
        ]);
        expect((await store.alarmsOf(MRN, { openOnly: true })).map((a) => a.id)).toEqual([
          high.id,
          older.id,
          medium.id,
          low.id,
        ]);
        expect((await store.alarmsOf(MRN, { limit: 2 })).map((a) => a.id)).toEqual([high.id, older.id]);
        expect((await store.alarms()).map((a) => a.id)).toEqual([
          high.id,
          older.id,
          medium.id,
          low.id,
          other.id,
          done.id,
        ]);
        expect((await store.alarms({ openOnly: true })).length).toBe(5);
        expect(await store.alarmsOf('MRN-nobody')).toEqual([]);
      });
    });

    describe('contacts', () => {
      it('keeps the latest contact per hub and device, never moving back', async () => {
        await store.noteContacts([
          { gatewayId: 'gw-b', at: T0 + 5 },
          { gatewayId: 'gw-a', deviceId: 'dev-1', at: T0 + 10 },
          { gatewayId: 'gw-a', at: T0 + 10 },
        ]);
        await store.noteContacts([
          { gatewayId: 'gw-a', deviceId: 'dev-1', at: T0 },
          { gatewayId: 'gw-b', at: T0 + 20 },
        ]);
        expect(await store.contacts()).toEqual([
          { gatewayId: 'gw-a', at: T0 + 10 },
          { gatewayId: 'gw-a', deviceId: 'dev-1', at: T0 + 10 },
          { gatewayId: 'gw-b', at: T0 + 20 },
        ]);
      });
    });

    describe('the alarm feed', () => {
      it('tells every stored change in order, an unchanged raise or acknowledgement not at all, until unsubscribed', async () => {
        const heard: AlarmChange[] = [];
        const stop = await store.subscribe((change) => heard.push(change));
        const told = (n: number) => until(`${n} alarm changes told`, () => heard.length >= n);

        const { alarm } = await store.raise(newAlarm('feed'));
        await told(1);
        await store.raise(newAlarm('feed', { raisedAt: T0 + MINUTE })); // unchanged: told nothing
        await store.endCondition('feed', T0 + 2 * MINUTE); // high: latches
        await told(2);
        await store.raise(newAlarm('feed', { raisedAt: T0 + 3 * MINUTE })); // back: reactivated
        await store.acknowledge(alarm.id, 'dr.ack', T0 + 4 * MINUTE); // still active
        await store.acknowledge(alarm.id, 'dr.late', T0 + 5 * MINUTE); // unchanged: told nothing
        await store.endCondition('feed', T0 + 6 * MINUTE); // acknowledged: cleared
        await told(5);
        // Each later change arrived after the unchanged ones, so those were not told.
        expect(heard.map((c) => [c.type, c.alarm.id, c.alarm.state])).toEqual([
          ['raised', alarm.id, 'active'],
          ['latched', alarm.id, 'latched'],
          ['reactivated', alarm.id, 'active'],
          ['acknowledged', alarm.id, 'active'],
          ['cleared', alarm.id, 'cleared'],
        ]);
        // The alarm as stored, who acknowledged included (the first acknowledgement stands).
        expect(heard.at(-1)?.alarm).toEqual(await store.alarm(alarm.id));
        expect(heard.at(-1)?.alarm.acknowledgedBy).toBe('dr.ack');

        // Unsubscribed: a second subscriber hears the next change; the first, nothing more.
        await stop();
        const later: AlarmChange[] = [];
        const stopLater = await store.subscribe((change) => later.push(change));
        const gap = await store.raise(newAlarm('feed-gap', { kind: 'gap', priority: 'low', endedAt: T0 }));
        await until('the change at the second subscriber', () => later.length === 1);
        expect(later[0]).toMatchObject({ type: 'raised', alarm: { id: gap.alarm.id, state: 'latched' } });
        await store.acknowledge(gap.alarm.id, 'dr.ack', T0 + MINUTE); // latched: acknowledging clears it
        await until('the acknowledgement at the second subscriber', () => later.length === 2);
        expect(later[1]).toMatchObject({ type: 'acknowledged', alarm: { state: 'cleared' } });
        expect(heard).toHaveLength(5);
        await stopLater();
      });
    });

    describe('two processes', () => {
      it('of concurrent raises of one condition, exactly one raises; of concurrent acknowledgements, one records', async () => {
        const other = await subject.reopen();
        const raises = await Promise.all(
          Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? store : other).raise(newAlarm('race'))),
        );
        expect(raises.filter((r) => r.change === 'raised')).toHaveLength(1);
        expect(new Set(raises.map((r) => r.alarm.id)).size).toBe(1);
        const id = raises[0]?.alarm.id as number;
        const acks = await Promise.all(
          Array.from({ length: 6 }, (_, i) =>
            (i % 2 === 0 ? store : other).acknowledge(id, `user-${i}`, T0 + i),
          ),
        );
        expect(acks.filter((a) => a.change !== 'unchanged')).toHaveLength(1);
        const recorded = acks.find((a) => a.change !== 'unchanged')?.alarm.acknowledgedBy;
        expect((await other.alarm(id))?.acknowledgedBy).toBe(recorded);
      });

      it('leads: a leadership is given, and released', async () => {
        const leadership = await store.lead(() => undefined);
        expect(leadership).toBeDefined();
        await leadership?.release();
        await leadership?.release();
      });
    });
  });
}
