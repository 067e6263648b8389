import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../../scripts/support/measurements.js';
import type {
  ClinicStore,
  CommittedEvent,
  IncomingGap,
  IncomingMeasurement,
  IncomingRejection,
  IncomingStatus,
  IntakeWrite,
  Receipt,
} from '../../../src/clinic/storage/clinic-store.js';
import { ClinicStoreError } from '../../../src/clinic/storage/errors.js';
import type { Gap } from '../../../src/model/gap.js';
import type { Measurement } from '../../../src/model/measurement.js';
import { ManualClock } from '../../../src/util/clock.js';
import type { GatewayStatus } from '../../../src/wire/status.js';
import { until } from '../../support/until.js';

/**
 * THE contract every ClinicStore implementation passes (src/clinic/storage/clinic-store.ts): the SQLite test
 * (test/clinic/storage/sqlite.test.ts) and the PostgreSQL test each call `clinicStoreContract` with a factory
 * that makes a new, empty database. Everything here goes through the interface only.
 */

/** What the contract asks of the database it is given. */
export interface ContractOptions {
  /** Stamps `committedAt`: the store must use it. */
  readonly clock: ManualClock;
  /** Bounds on rejected-message rows and quarantined payload bytes (small, so a flood reaches them). */
  readonly maxRejectedRows: number;
  readonly maxQuarantineBytes: number;
}

export interface ContractSubject {
  /** An open store on a new, empty database. */
  readonly store: ClinicStore;
  /** Opens the same database again (with the same options), e.g. after the test closed `store`. */
  readonly reopen: () => Promise<ClinicStore>;
  /** Closes every store it opened (close is idempotent) and removes the database. */
  readonly cleanup: () => Promise<void>;
}

export type ContractFactory = (options: ContractOptions) => Promise<ContractSubject>;

export const CONTRACT_MAX_REJECTED_ROWS = 25;
export const CONTRACT_MAX_QUARANTINE_BYTES = 1_000;

const T0 = Date.UTC(2026, 0, 10, 8, 0, 0);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const GW = 'gw-alpha';
const GW2 = 'gw-bravo';
const SPO2 = 'MDC_PULS_OXIM_SAT_O2';
const PULSE = 'MDC_PULS_OXIM_PULS_RATE';

function receipt(gatewayId = GW, overrides: Partial<Receipt> = {}): Receipt {
  return {
    gatewayId,
    topic: 'obs',
    batchSeq: 7,
    sentAt: T0 + DAY,
    signerSerial: '3f9a01',
    receivedAt: T0 + DAY + 250,
    ...overrides,
  };
}

/** Reading `n` of a gateway, measured at `at` (its id depends on `n` and the gateway, so gateways never share ids). */
function reading(
  n: number,
  at: number,
  options: { gateway?: string; measurement?: Partial<Measurement>; receipt?: Partial<Receipt> } = {},
): IncomingMeasurement {
  const gateway = options.gateway ?? GW;
  const base = spo2Measurement(n, { time: new Date(at).toISOString(), ...options.measurement });
  const id = options.measurement?.id ?? `${base.id}-${gateway}`;
  return { measurement: { ...base, id }, measuredAt: at, receipt: receipt(gateway, options.receipt) };
}

function gap(id: string, gatewayId = GW): IncomingGap {
  const value: Gap = {
    type: 'gap',
    id,
    deviceId: 'dev-ox-1',
    count: 12,
    firstTime: new Date(T0).toISOString(),
    lastTime: new Date(T0 + MINUTE).toISOString(),
    reason: 'evicted-full',
    recordedAt: new Date(T0 + HOUR).toISOString(),
  };
  return { gap: value, receipt: receipt(gatewayId) };
}

function status(
  gatewayId: string,
  state: GatewayStatus['state'],
  sentAt: number,
  receivedAt: number,
): IncomingStatus {
  return {
    status: {
      gatewayId,
      state,
      version: '1.4.0',
      sentAt,
      backlog: { alert: 0, live: 1, backlog: 42 },
      certExpiresAt: T0 + 365 * DAY,
    },
    signerSerial: '3f9a01',
    receivedAt,
  };
}

function rejection(n: number, payloadBytes?: number, code = 'WIRE_BAD_SIGNATURE'): IncomingRejection {
  return {
    topic: `rpm/v1/${GW}/obs`,
    code,
    message: `rejection ${n}`,
    receivedAt: T0 + n,
    gatewayId: GW,
    ...(payloadBytes === undefined ? {} : { payload: new Uint8Array(payloadBytes).fill(n % 256) }),
  };
}

function write(parts: Partial<IntakeWrite>): IntakeWrite {
  return { measurements: [], gaps: [], statuses: [], rejections: [], ...parts };
}

const ids = (items: readonly { readonly measurement: Measurement }[]) => items.map((i) => i.measurement.id);

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<ClinicStoreError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ClinicStoreError);
  expect((error as ClinicStoreError).code).toBe(code);
  return error as ClinicStoreError;
}

export function clinicStoreContract(name: string, open: ContractFactory): void {
  describe(`ClinicStore contract: ${name}`, () => {
    let clock: ManualClock;
    let subject: ContractSubject;
    let store: ClinicStore;

    beforeEach(async () => {
      clock = new ManualClock(T0 + 2 * DAY);
      subject = await open({
        clock,
        maxRejectedRows: CONTRACT_MAX_REJECTED_ROWS,
        maxQuarantineBytes: CONTRACT_MAX_QUARANTINE_BYTES,
      });
      store = subject.store;
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    describe('exactly once', () => {
      it('stores new measurements and counts repeats, across commits and within one write', async () => {
        const a = reading(1, T0);
        const b = reading(2, T0 + MINUTE);
        const c = reading(3, T0 + 2 * MINUTE);
        expect(await store.commit(write({ measurements: [a, b] }))).toEqual({
          inserted: [a.measurement.id, b.measurement.id],
          duplicates: 0,
          gapsInserted: 0,
          gapDuplicates: 0,
        });
        // b again from an earlier commit, c twice in this write: c stored once.
        const outcome = await store.commit(write({ measurements: [b, c, c] }));
        expect(outcome.inserted).toEqual([c.measurement.id]);
        expect(outcome.duplicates).toBe(2);
        expect(await store.countMeasurements()).toBe(3);
        expect((await store.measurementIds()).sort()).toEqual(ids([a, b, c]).sort());
      });

      it('a redelivery with another receipt does not replace the stored provenance', async () => {
        const first = reading(1, T0, { receipt: { batchSeq: 1 } });
        await store.commit(write({ measurements: [first] }));
        clock.advance(MINUTE);
        const again = reading(1, T0, { receipt: { batchSeq: 2, receivedAt: T0 + 3 * DAY } });
        expect((await store.commit(write({ measurements: [again] }))).duplicates).toBe(1);
        const stored = await store.measurement(first.measurement.id);
        expect(stored?.receipt).toEqual(first.receipt);
        expect(stored?.committedAt).toBe(T0 + 2 * DAY);
      });

      it('keeps exactly-once across close and reopen', async () => {
        const a = reading(1, T0);
        const b = reading(2, T0 + MINUTE);
        await store.commit(write({ measurements: [a], gaps: [gap('g1-1')] }));
        await store.close();
        store = await subject.reopen();
        const outcome = await store.commit(write({ measurements: [a, b], gaps: [gap('g1-1')] }));
        expect(outcome).toEqual({
          inserted: [b.measurement.id],
          duplicates: 1,
          gapsInserted: 0,
          gapDuplicates: 1,
        });
        expect(await store.countMeasurements()).toBe(2);
        expect(await store.measurement(a.measurement.id)).toBeDefined();
      });

      it('two concurrent commits with overlapping items store each measurement once', async () => {
        const items = Array.from({ length: 40 }, (_, i) => reading(i, T0 + i * 1000));
        const first = write({ measurements: items.slice(0, 30), gaps: [gap('g1-shared')] });
        const second = write({ measurements: items.slice(10), gaps: [gap('g1-shared')] });
        const [x, y] = await Promise.all([store.commit(first), store.commit(second)]);
        // Every id inserted by exactly one of them; the overlap (20 items, 1 gap) counted as duplicates once.
        expect([...x.inserted, ...y.inserted].sort()).toEqual(ids(items).sort());
        expect(x.duplicates + y.duplicates).toBe(20);
        expect(x.gapsInserted + y.gapsInserted).toBe(1);
        expect(x.gapDuplicates + y.gapDuplicates).toBe(1);
        expect(await store.countMeasurements()).toBe(40);
      });

      it('an empty write commits nothing and fails nothing', async () => {
        expect(await store.commit(write({}))).toEqual({
          inserted: [],
          duplicates: 0,
          gapsInserted: 0,
          gapDuplicates: 0,
        });
        expect(await store.countMeasurements()).toBe(0);
      });
    });

    describe('provenance', () => {
      it('returns a stored measurement exactly as committed, with its receipt and commit time', async () => {
        const rich = reading(5, T0 + 5 * MINUTE, {
          measurement: {
            timeSource: 'device-corrected',
            deviceTime: '2026-01-10T09:05:00',
            time: '2026-01-10T08:05:00.000Z',
            stored: true,
            alert: { rule: 'spo2-low', late: true },
            status: ['irregular-pulse'],
            details: { sequence: 17, location: 'finger', nested: { a: [1, 'two', null, true] } },
            observations: [
              { code: 'MDC_PULS_OXIM_SAT_O2', value: 88.5, unit: '%', qualifier: 'fast' },
              { code: 'MDC_PULS_OXIM_SAT_O2', value: null, unit: '%', invalid: 'nres', qualifier: 'slow' },
              { code: 'MDC_PULS_OXIM_PULS_RATE', value: 61, unit: '/min' },
            ],
          },
          receipt: { topic: 'alert', batchSeq: 123456, sentAt: T0 + DAY + 5, signerSerial: '0a1b2c3d' },
        });
        const plain = reading(6, T0 + 6 * MINUTE);
        await store.commit(write({ measurements: [rich, plain] }));
        expect(await store.measurement(rich.measurement.id)).toEqual({
          measurement: rich.measurement,
          measuredAt: rich.measuredAt,
          receipt: rich.receipt,
          committedAt: clock.now(),
        });
        expect(await store.measurement(plain.measurement.id)).toEqual({
          measurement: plain.measurement,
          measuredAt: plain.measuredAt,
          receipt: plain.receipt,
          committedAt: clock.now(),
        });
        expect(await store.measurement('m1-not-there')).toBeUndefined();
      });

      it('stores text with tabs, newlines, backslashes, quotes and non-ASCII exactly (bodies and series)', async () => {
        // Characters that a bulk format must escape (PostgreSQL's COPY text format: backslash, tab, newline,
        // carriage return) or that JSON escapes (quote, backslash, control characters).
        const awkward = 'a\tb\nc\rd\\e"f\\\\N\u00e9\u2603\u{1F600}\u0001';
        const r = reading(9, T0 + 9 * MINUTE, {
          measurement: {
            details: { note: awkward, [awkward]: [awkward], path: 'C:\\dir\\file', nullish: '\\N' },
            observations: [{ code: SPO2, value: 95, unit: '%', qualifier: awkward }],
          },
        });
        await store.assign({ gatewayId: GW, mrn: 'MRN-1', from: T0, createdBy: 'nurse', at: T0 });
        await store.commit(write({ measurements: [r] }));
        expect((await store.measurement(r.measurement.id))?.measurement).toEqual(r.measurement);
        const series = await store.series({ mrn: 'MRN-1', code: SPO2, from: T0, to: T0 + DAY });
        expect(series.map((p) => p.qualifier)).toEqual([awkward]);
      });
    });

    describe('attribution and series', () => {
      it('gives a patient their readings of one code, ordered by time, within [from, to)', async () => {
        await store.assign({ gatewayId: GW, mrn: 'MRN-1', from: T0, createdBy: 'nurse', at: T0 });
        // Committed out of time order, one outside the assignment (before it), one of another gateway.
        const times = [5, 1, 3, 0, 4, 2].map((k) => T0 + k * MINUTE);
        const readings = times.map((at, i) => reading(i, at));
        const before = reading(50, T0 - MINUTE);
        const other = reading(51, T0 + 2 * MINUTE, { gateway: GW2 });
        await store.commit(write({ measurements: [...readings.slice(0, 3), before] }));
        await store.commit(write({ measurements: [...readings.slice(3), other] }));

        const all = await store.series({ mrn: 'MRN-1', code: SPO2, from: T0 - HOUR, to: T0 + HOUR });
        expect(all.map((p) => p.measuredAt)).toEqual([0, 1, 2, 3, 4, 5].map((k) => T0 + k * MINUTE));
        const point = all[0];
        const source = readings[3];
        expect(point).toEqual({
          measurementId: source?.measurement.id,
          measuredAt: T0,
          code: SPO2,
          value: source?.measurement.observations[0]?.value,
          unit: '%',
          stored: false,
          gatewayId: GW,
          deviceId: 'dev-ox-1',
          driver: 'sig/pulse-oximeter@1.0.0',
        });
        // [from, to): from included, to excluded.
        const window = await store.series({
          mrn: 'MRN-1',
          code: SPO2,
          from: T0 + MINUTE,
          to: T0 + 4 * MINUTE,
        });
        expect(window.map((p) => p.measuredAt)).toEqual([1, 2, 3].map((k) => T0 + k * MINUTE));
        const limited = await store.series({ mrn: 'MRN-1', code: PULSE, from: T0, to: T0 + HOUR, limit: 2 });
        expect(limited.map((p) => [p.code, p.measuredAt])).toEqual([
          [PULSE, T0],
          [PULSE, T0 + MINUTE],
        ]);
        expect(await store.series({ mrn: 'MRN-2', code: SPO2, from: T0, to: T0 + HOUR })).toEqual([]);
        // measurementsOf: the same attribution, whole measurements.
        const of = await store.measurementsOf('MRN-1', T0, T0 + HOUR);
        expect(of.map((m) => m.measuredAt)).toEqual([0, 1, 2, 3, 4, 5].map((k) => T0 + k * MINUTE));
      });

      it('keeps invalid values, qualifiers and the stored flag in a series', async () => {
        await store.assign({ gatewayId: GW, mrn: 'MRN-1', from: T0, createdBy: 'nurse', at: T0 });
        const r = reading(1, T0 + MINUTE, {
          measurement: {
            stored: true,
            observations: [
              { code: 'MDC_PULS_OXIM_SAT_O2', value: 97, unit: '%', qualifier: 'fast' },
              { code: 'MDC_PULS_OXIM_SAT_O2', value: null, unit: '%', invalid: 'nan', qualifier: 'slow' },
            ],
          },
        });
        await store.commit(write({ measurements: [r] }));
        const points = await store.series({ mrn: 'MRN-1', code: SPO2, from: T0, to: T0 + HOUR });
        expect(points.map((p) => [p.value, p.invalid, p.qualifier, p.stored])).toEqual([
          [97, undefined, 'fast', true],
          [null, 'nan', 'slow', true],
        ]);
      });

      it('a reassignment followed by back-filled readings of the earlier patient: they stay with that patient', async () => {
        const handover = T0 + DAY;
        await store.assign({ gatewayId: GW, mrn: 'MRN-A', from: T0, createdBy: 'nurse', at: T0 });
        const early = reading(1, T0 + HOUR);
        await store.commit(write({ measurements: [early] }));
        // The hub goes to patient B; later, the earlier patient's meter uploads readings it had stored.
        await store.assign({ gatewayId: GW, mrn: 'MRN-B', from: handover, createdBy: 'nurse', at: handover });
        clock.set(handover + 2 * HOUR);
        const backfilled = [reading(2, handover - 2 * HOUR), reading(3, handover - 1)].map((r) => ({
          ...r,
          measurement: { ...r.measurement, stored: true as const },
        }));
        const afterwards = reading(4, handover);
        await store.commit(write({ measurements: [...backfilled, afterwards] }));

        const a = await store.series({ mrn: 'MRN-A', code: SPO2, from: 0, to: handover + 7 * DAY });
        expect(a.map((p) => p.measurementId)).toEqual(ids([early, ...backfilled]));
        expect(a.every((p, i) => i === 0 || p.stored)).toBe(true);
        const b = await store.series({ mrn: 'MRN-B', code: SPO2, from: 0, to: handover + 7 * DAY });
        expect(b.map((p) => p.measurementId)).toEqual(ids([afterwards]));
        expect(ids(await store.measurementsOf('MRN-A', 0, handover + 7 * DAY))).toEqual(
          ids([early, ...backfilled]),
        );
        expect(ids(await store.measurementsOf('MRN-B', 0, handover + 7 * DAY))).toEqual(ids([afterwards]));
        expect(await store.unassigned(100)).toEqual([]);
      });

      it('lists readings outside every assignment, and attributes them once an assignment covers them', async () => {
        const r1 = reading(1, T0 + MINUTE);
        const r2 = reading(2, T0 + 2 * MINUTE);
        const r3 = reading(3, T0 + 3 * MINUTE, { gateway: GW2 });
        await store.commit(write({ measurements: [r1, r2, r3] }));
        expect(ids(await store.unassigned(100))).toEqual(ids([r1, r2, r3]));
        expect(ids(await store.unassigned(2))).toEqual(ids([r1, r2]));
        expect(await store.series({ mrn: 'MRN-1', code: SPO2, from: 0, to: T0 + DAY })).toEqual([]);

        // Assigned from between r1 and r2: r2 is attributed, r1 (measured before) stays unassigned.
        await store.assign({
          gatewayId: GW,
          mrn: 'MRN-1',
          from: T0 + 90_000,
          createdBy: 'admin',
          at: T0 + DAY,
        });
        expect(ids(await store.unassigned(100))).toEqual(ids([r1, r3]));
        const series = await store.series({ mrn: 'MRN-1', code: SPO2, from: 0, to: T0 + DAY });
        expect(series.map((p) => p.measurementId)).toEqual(ids([r2]));
        const stored = await store.unassigned(100);
        expect(stored[0]).toEqual({
          measurement: r1.measurement,
          measuredAt: r1.measuredAt,
          receipt: r1.receipt,
          committedAt: clock.now(),
        });
      });

      it('readings in the gap between two assignments are unassigned', async () => {
        await store.assign({ gatewayId: GW, mrn: 'MRN-A', from: T0, createdBy: 'admin', at: T0 });
        await store.unassign(GW, T0 + HOUR);
        await store.assign({ gatewayId: GW, mrn: 'MRN-B', from: T0 + 3 * HOUR, createdBy: 'admin', at: T0 });
        const [a, none, b] = [
          reading(1, T0 + 30 * MINUTE),
          reading(2, T0 + 2 * HOUR),
          reading(3, T0 + 4 * HOUR),
        ];
        await store.commit(write({ measurements: [a, none, b].filter((r) => r !== undefined) }));
        expect(ids(await store.unassigned(10))).toEqual(ids([none]));
        expect(ids(await store.measurementsOf('MRN-A', 0, T0 + DAY))).toEqual(ids([a]));
        expect(ids(await store.measurementsOf('MRN-B', 0, T0 + DAY))).toEqual(ids([b]));
      });
      it("walks a patient's measurements page by page in (time, id) order: two hubs at once, a handover, ties, [from, to)", async () => {
        // MRN-1: GW from T0 until the handover at T0 + 2 h (then MRN-2), and GW2 from T0 + 1 h on, both at once.
        await store.assign({ gatewayId: GW, mrn: 'MRN-1', from: T0, createdBy: 'admin', at: T0 });
        await store.assign({ gatewayId: GW2, mrn: 'MRN-1', from: T0 + HOUR, createdBy: 'admin', at: T0 });
        await store.assign({ gatewayId: GW, mrn: 'MRN-2', from: T0 + 2 * HOUR, createdBy: 'admin', at: T0 });
        const id = (text: string) => ({ measurement: { id: text } });
        const tie = T0 + HOUR + MINUTE;
        const all = [
          reading(1, T0 - MINUTE), // before GW's assignment: unassigned
          reading(2, T0), // from is included
          // Three at one instant on both hubs: byte order of the ids decides ('B' < 'a' < 'b' as bytes; a
          // natural-language collation would put 'a' first).
          reading(3, tie, id('m1-b-tie')),
          reading(4, tie, { gateway: GW2, ...id('m1-B-tie') }),
          reading(5, tie, { gateway: GW2, ...id('m1-a-tie') }),
          reading(6, T0 + HOUR + 30 * MINUTE, { gateway: GW2 }),
          reading(7, T0 + 2 * HOUR - 1), // GW's last millisecond with MRN-1
          reading(8, T0 + 2 * HOUR), // GW is MRN-2's now
          reading(9, T0 + 3 * HOUR, { gateway: GW2 }),
          reading(10, T0 + 5 * HOUR, { gateway: GW2 }), // at `to`: excluded
        ];
        // Committed out of order, in two commits.
        await store.commit(
          write({ measurements: [all[9], all[4], all[0], all[7], all[2]].filter((r) => r !== undefined) }),
        );
        await store.commit(
          write({ measurements: [all[3], all[8], all[1], all[6], all[5]].filter((r) => r !== undefined) }),
        );

        const expected = ['m1-00000000000000000000000000000002-gw-alpha', 'm1-B-tie', 'm1-a-tie', 'm1-b-tie'];
        expected.push(...ids([all[5], all[6], all[8]].filter((r) => r !== undefined)));
        const range = { mrn: 'MRN-1', from: T0, to: T0 + 5 * HOUR };
        for (const limit of [1, 2, 3, 100]) {
          const walked: string[] = [];
          let after: { measuredAt: number; measurementId: string } | undefined;
          for (;;) {
            const page = await store.measurementPage({ ...range, limit, ...(after ? { after } : {}) });
            expect(page.length).toBeLessThanOrEqual(limit);
            if (page.length === 0) break;
            walked.push(...ids(page));
            const last = page[page.length - 1] as (typeof page)[number];
            after = { measuredAt: last.measuredAt, measurementId: last.measurement.id };
          }
          expect(walked, `pages of ${limit}`).toEqual(expected);
        }
        // Whole measurements, as measurementsOf gives them.
        const page = await store.measurementPage({ ...range, limit: 100 });
        const of = await store.measurementsOf('MRN-1', range.from, range.to);
        expect(new Set(page)).toEqual(new Set(of));
        // A cursor inside the range, a range starting later, another patient.
        const fromTie = await store.measurementPage({
          ...range,
          after: { measuredAt: tie, measurementId: 'm1-B-tie' },
          limit: 2,
        });
        expect(ids(fromTie)).toEqual(['m1-a-tie', 'm1-b-tie']);
        expect(ids(await store.measurementPage({ ...range, from: T0 + 2 * HOUR, limit: 10 }))).toEqual(
          ids([all[8]].filter((r) => r !== undefined)),
        );
        expect(ids(await store.measurementPage({ mrn: 'MRN-2', from: 0, to: T0 + DAY, limit: 10 }))).toEqual(
          ids([all[7]].filter((r) => r !== undefined)),
        );
        expect(await store.measurementPage({ mrn: 'MRN-9', from: 0, to: T0 + DAY, limit: 10 })).toEqual([]);
        await rejectsWith(store.measurementPage({ ...range, limit: 0 }), 'CLINIC_STORE_IO');
      });
    });

    describe('latest per patient', () => {
      it("gives the newest observation per code by measurement time over all the patient's assignments", async () => {
        const handover = T0 + DAY;
        await store.assign({ gatewayId: GW, mrn: 'MRN-A', from: T0, createdBy: 'nurse', at: T0 });
        await store.assign({ gatewayId: GW2, mrn: 'MRN-A', from: T0, createdBy: 'nurse', at: T0 });
        expect(await store.latest('MRN-A')).toEqual({
          observations: [],
          hubs: [
            { gatewayId: GW, since: T0 },
            { gatewayId: GW2, since: T0 },
          ],
        });
        const first = reading(1, T0 + MINUTE);
        const newest = reading(2, T0 + 5 * MINUTE);
        // Committed after `newest` but measured before it: not the latest.
        const older = reading(3, T0 + 3 * MINUTE, { measurement: { stored: true } });
        const temperature = reading(4, T0 + 2 * MINUTE, {
          gateway: GW2,
          measurement: { observations: [{ code: 'MDC_TEMP_BODY', value: 37.2, unit: 'Cel' }] },
        });
        await store.commit(write({ measurements: [first, newest, temperature] }));
        await store.commit(write({ measurements: [older] }));
        const latest = await store.latest('MRN-A');
        expect(latest.observations.map((o) => [o.code, o.measurementId])).toEqual([
          ['MDC_PULS_OXIM_PULS_RATE', newest.measurement.id],
          [SPO2, newest.measurement.id],
          ['MDC_TEMP_BODY', temperature.measurement.id],
        ]);
        expect(latest.observations[1]).toEqual({
          measurementId: newest.measurement.id,
          measuredAt: T0 + 5 * MINUTE,
          code: SPO2,
          value: newest.measurement.observations[0]?.value,
          unit: '%',
          stored: false,
          gatewayId: GW,
          deviceId: 'dev-ox-1',
          driver: 'sig/pulse-oximeter@1.0.0',
        });

        // GW goes to patient B. B's readings are not A's; a back-filled reading of A's time, sent after the
        // handover, becomes A's latest (and is marked stored); the other hub's newer SpO2 beats both.
        await store.assign({ gatewayId: GW, mrn: 'MRN-B', from: handover, createdBy: 'nurse', at: handover });
        const ofB = reading(5, handover + HOUR, {
          measurement: { observations: [{ code: 'MDC_MASS_BODY_ACTUAL', value: 80.1, unit: 'kg' }] },
        });
        const backfilled = reading(6, handover - 1, { measurement: { stored: true } });
        await store.commit(write({ measurements: [ofB, backfilled] }));
        let a = await store.latest('MRN-A');
        expect(a.observations.map((o) => [o.code, o.measuredAt, o.stored])).toEqual([
          ['MDC_PULS_OXIM_PULS_RATE', handover - 1, true],
          [SPO2, handover - 1, true],
          ['MDC_TEMP_BODY', T0 + 2 * MINUTE, false],
        ]);
        const later = reading(7, handover + 2 * HOUR, { gateway: GW2 });
        await store.commit(write({ measurements: [later] }));
        a = await store.latest('MRN-A');
        expect(a.observations.map((o) => [o.code, o.gatewayId, o.measuredAt])).toEqual([
          ['MDC_PULS_OXIM_PULS_RATE', GW2, handover + 2 * HOUR],
          [SPO2, GW2, handover + 2 * HOUR],
          ['MDC_TEMP_BODY', GW2, T0 + 2 * MINUTE],
        ]);
        const b = await store.latest('MRN-B');
        expect(b.observations.map((o) => [o.code, o.measurementId])).toEqual([
          ['MDC_MASS_BODY_ACTUAL', ofB.measurement.id],
        ]);
        expect(await store.latest('MRN-none')).toEqual({ observations: [], hubs: [] });
      });

      it('two values of one code in one measurement: the last one, as series ends with', async () => {
        await store.assign({ gatewayId: GW, mrn: 'MRN-1', from: T0, createdBy: 'nurse', at: T0 });
        const r = reading(1, T0 + MINUTE, {
          measurement: {
            observations: [
              { code: SPO2, value: 97, unit: '%', qualifier: 'fast' },
              { code: SPO2, value: null, unit: '%', invalid: 'nan', qualifier: 'slow' },
            ],
          },
        });
        await store.commit(write({ measurements: [r] }));
        const [only] = (await store.latest('MRN-1')).observations;
        const series = await store.series({ mrn: 'MRN-1', code: SPO2, from: T0, to: T0 + HOUR });
        expect(only).toEqual(series.at(-1));
        expect(only?.invalid).toBe('nan');
      });

      it("lists the patient's current hubs with the last status each received", async () => {
        await store.assign({ gatewayId: GW, mrn: 'MRN-A', from: T0, createdBy: 'nurse', at: T0 });
        await store.assign({ gatewayId: GW2, mrn: 'MRN-A', from: T0, createdBy: 'nurse', at: T0 });
        const online = status(GW, 'online', T0, T0 + 10);
        const will = status(GW, 'offline', T0, T0 + HOUR);
        await store.commit(write({ statuses: [online] }));
        await store.commit(write({ statuses: [will] }));
        expect((await store.latest('MRN-A')).hubs).toEqual([
          { gatewayId: GW, since: T0, status: will },
          { gatewayId: GW2, since: T0 },
        ]);
        // An ended assignment is not a current hub.
        await store.unassign(GW2, T0 + DAY);
        expect((await store.latest('MRN-A')).hubs.map((h) => h.gatewayId)).toEqual([GW]);
      });
    });

    describe('dated assignment', () => {
      it('assigning from T ends the open assignment at T', async () => {
        const first = await store.assign({
          gatewayId: GW,
          mrn: 'MRN-A',
          from: T0,
          timeZone: 'Europe/Berlin',
          createdBy: 'nurse-1',
          at: T0 + 5,
        });
        expect(first).toEqual({
          id: first.id,
          gatewayId: GW,
          mrn: 'MRN-A',
          from: T0,
          timeZone: 'Europe/Berlin',
          createdBy: 'nurse-1',
          createdAt: T0 + 5,
        });
        const second = await store.assign({
          gatewayId: GW,
          mrn: 'MRN-B',
          from: T0 + DAY,
          createdBy: 'nurse-2',
          at: T0 + DAY,
        });
        expect(second.to).toBeUndefined();
        expect(second.id).not.toBe(first.id);
        await store.assign({ gatewayId: GW2, mrn: 'MRN-C', from: T0, createdBy: 'nurse-2', at: T0 });
        expect(await store.assignments(GW)).toEqual([{ ...first, to: T0 + DAY }, second]);
        expect((await store.assignments()).map((a) => [a.gatewayId, a.mrn])).toEqual([
          [GW, 'MRN-A'],
          [GW, 'MRN-B'],
          [GW2, 'MRN-C'],
        ]);
      });

      it('refuses an assignment starting at or before the open one, or inside an ended one', async () => {
        await store.assign({ gatewayId: GW, mrn: 'MRN-A', from: T0, createdBy: 'admin', at: T0 });
        await rejectsWith(
          store.assign({ gatewayId: GW, mrn: 'MRN-B', from: T0 - HOUR, createdBy: 'admin', at: T0 }),
          'CLINIC_ASSIGNMENT_CONFLICT',
        );
        await rejectsWith(
          store.assign({ gatewayId: GW, mrn: 'MRN-B', from: T0, createdBy: 'admin', at: T0 }),
          'CLINIC_ASSIGNMENT_CONFLICT',
        );
        const ended = await store.unassign(GW, T0 + DAY);
        expect(ended?.to).toBe(T0 + DAY);
        const error = await rejectsWith(
          store.assign({ gatewayId: GW, mrn: 'MRN-SECRET-9', from: T0 + HOUR, createdBy: 'admin', at: T0 }),
          'CLINIC_ASSIGNMENT_CONFLICT',
        );
        expect(error.message).not.toContain('MRN-SECRET-9'); // no PHI in errors
        // Nothing changed by the refusals.
        expect((await store.assignments(GW)).map((a) => [a.mrn, a.from, a.to])).toEqual([
          ['MRN-A', T0, T0 + DAY],
        ]);
        // From the end of the ended one on is fine.
        const next = await store.assign({
          gatewayId: GW,
          mrn: 'MRN-B',
          from: T0 + DAY,
          createdBy: 'admin',
          at: T0,
        });
        expect(next.from).toBe(T0 + DAY);
      });

      it('unassign ends the open assignment, refuses an end at or before its start, and is a no-op without one', async () => {
        expect(await store.unassign(GW, T0)).toBeUndefined();
        await store.assign({ gatewayId: GW, mrn: 'MRN-A', from: T0, createdBy: 'admin', at: T0 });
        await rejectsWith(store.unassign(GW, T0), 'CLINIC_ASSIGNMENT_CONFLICT');
        const ended = await store.unassign(GW, T0 + HOUR);
        expect(ended).toMatchObject({ gatewayId: GW, mrn: 'MRN-A', from: T0, to: T0 + HOUR });
        expect(await store.unassign(GW, T0 + 2 * HOUR)).toBeUndefined();
      });

      it('refuses invalid assignments with a typed error', async () => {
        const valid = { gatewayId: GW, mrn: 'MRN-A', from: T0, createdBy: 'admin', at: T0 };
        for (const bad of [
          { ...valid, gatewayId: 'Not A Gateway' },
          { ...valid, mrn: '  ' },
          { ...valid, mrn: 'MRN\n1' },
          { ...valid, createdBy: '' },
          { ...valid, from: Number.NaN },
          { ...valid, from: 1.5 },
          { ...valid, timeZone: 'Mars/Olympus_Mons' },
        ]) {
          await rejectsWith(store.assign(bad), 'CLINIC_ASSIGNMENT_INVALID');
        }
        expect(await store.assignments()).toEqual([]);
      });
    });

    describe('gaps and statuses', () => {
      it('stores gap records once per id, with their receipt', async () => {
        const g1 = gap('g1-a');
        const g2 = gap('g1-b');
        const outcome = await store.commit(write({ gaps: [g1, g2, g1] }));
        expect([outcome.gapsInserted, outcome.gapDuplicates]).toEqual([2, 1]);
        expect((await store.commit(write({ gaps: [g2, gap('g1-c', GW2)] }))).gapDuplicates).toBe(1);
        expect(await store.gaps(GW)).toEqual([g1, g2]);
        expect((await store.gaps(GW2)).map((g) => g.gap.id)).toEqual(['g1-c']);
        expect(await store.gaps('gw-none')).toEqual([]);
      });

      it('keeps the latest status per gateway by receipt', async () => {
        expect(await store.latestStatus(GW)).toBeUndefined();
        const online = status(GW, 'online', T0, T0 + 10);
        await store.commit(write({ statuses: [online, status(GW2, 'online', T0, T0 + 11)] }));
        expect(await store.latestStatus(GW)).toEqual(online);
        // The Last Will is signed at connect time (sent = T0) but received later: it is the latest.
        const will = status(GW, 'offline', T0, T0 + HOUR);
        await store.commit(write({ statuses: [will] }));
        expect(await store.latestStatus(GW)).toEqual(will);
        // An older message received late (an earlier receipt time) does not replace it.
        await store.commit(write({ statuses: [status(GW, 'online', T0 - DAY, T0 + 5)] }));
        expect(await store.latestStatus(GW)).toEqual(will);
        expect((await store.latestStatus(GW2))?.status.gatewayId).toBe(GW2);
      });
    });

    describe('rejections', () => {
      it('bounds the rows of a junk flood while the counts per code keep growing', async () => {
        const flood = 600;
        for (let start = 0; start < flood; start += 100) {
          const batch = Array.from({ length: 100 }, (_, i) =>
            rejection(start + i, 4, (start + i) % 3 === 0 ? 'WIRE_MALFORMED' : 'WIRE_BAD_SIGNATURE'),
          );
          await store.commit(write({ rejections: batch }));
        }
        expect(await store.rejectionCounts()).toEqual([
          { code: 'WIRE_BAD_SIGNATURE', count: 400 },
          { code: 'WIRE_MALFORMED', count: 200 },
        ]);
        const kept = await store.quarantined(10_000);
        expect(kept).toHaveLength(CONTRACT_MAX_REJECTED_ROWS);
        // The newest are kept, oldest first.
        expect(kept.map((r) => r.receivedAt)).toEqual(
          Array.from(
            { length: CONTRACT_MAX_REJECTED_ROWS },
            (_, i) => T0 + flood - CONTRACT_MAX_REJECTED_ROWS + i,
          ),
        );
        // Rejections without a payload count against the same row bound: they push the quarantine out.
        await store.commit(
          write({
            rejections: Array.from({ length: CONTRACT_MAX_REJECTED_ROWS }, (_, i) => rejection(flood + i)),
          }),
        );
        expect(await store.quarantined(10_000)).toEqual([]);
        const counts = await store.rejectionCounts();
        expect(counts.reduce((sum, c) => sum + c.count, 0)).toBe(flood + CONTRACT_MAX_REJECTED_ROWS);
      });

      it('bounds quarantined payload bytes, keeping the newest', async () => {
        const size = 300; // 3 fit in the contract's 1,000 bytes
        await store.commit(write({ rejections: [1, 2, 3, 4, 5].map((n) => rejection(n, size)) }));
        const kept = await store.quarantined(100);
        expect(kept.map((r) => r.message)).toEqual(['rejection 3', 'rejection 4', 'rejection 5']);
        expect(kept.reduce((sum, r) => sum + (r.payload?.length ?? 0), 0)).toBeLessThanOrEqual(
          CONTRACT_MAX_QUARANTINE_BYTES,
        );
      });

      it('lists quarantined messages with their payload, oldest first, and releases them', async () => {
        const plain = rejection(1);
        const [q1, q2] = [rejection(2, 8, 'INTAKE_UNKNOWN_KID'), rejection(3, 9, 'INTAKE_UNKNOWN_KID')];
        if (q1 === undefined || q2 === undefined) throw new Error('unreachable');
        await store.commit(write({ rejections: [plain, q1, q2] }));
        const listed = await store.quarantined(10);
        expect(listed.map(({ id: _, ...r }) => r)).toEqual([q1, q2]);
        expect(listed[0]?.payload).toBeInstanceOf(Uint8Array);
        expect(await store.quarantined(1)).toHaveLength(1);
        const first = listed[0];
        if (first === undefined) throw new Error('unreachable');
        await store.releaseQuarantined([first.id]);
        expect((await store.quarantined(10)).map((r) => r.message)).toEqual([q2.message]);
        // Counts stay.
        expect(await store.rejectionCounts()).toEqual([
          { code: 'INTAKE_UNKNOWN_KID', count: 2 },
          { code: 'WIRE_BAD_SIGNATURE', count: 1 },
        ]);
      });
    });

    describe('export queue', () => {
      const LEASE = 5 * MINUTE;

      it('leases only attributed items, and leased ones not again until the lease passes', async () => {
        const now = T0 + 3 * DAY;
        const items = [1, 2, 3].map((n) => reading(n, T0 + n * MINUTE));
        await store.commit(write({ measurements: items }));
        expect(await store.leaseExports(10, now, LEASE)).toEqual([]); // unassigned: they wait
        expect(await store.exportCounts()).toEqual({ pending: 3, exported: 0, skipped: 0, failing: 0 });

        await store.assign({ gatewayId: GW, mrn: 'MRN-1', from: T0, createdBy: 'admin', at: now });
        const leased = await store.leaseExports(2, now, LEASE);
        expect(leased.map((i) => [i.stored.measurement.id, i.mrn, i.attempts])).toEqual(
          items.slice(0, 2).map((i) => [i.measurement.id, 'MRN-1', 0]),
        );
        expect(leased[0]?.stored).toEqual({
          measurement: items[0]?.measurement,
          measuredAt: items[0]?.measuredAt,
          receipt: items[0]?.receipt,
          committedAt: T0 + 2 * DAY,
        });
        // Leased: only the third is due; then nothing.
        expect(ids((await store.leaseExports(10, now + 1, LEASE)).map((i) => i.stored))).toEqual(
          ids(items.slice(2)),
        );
        expect(await store.leaseExports(10, now + LEASE - 1, LEASE)).toEqual([]);
        // Lease expired (the exporter died): due again, all three.
        const again = await store.leaseExports(10, now + LEASE + 1, LEASE);
        expect(again.map((i) => i.stored.measurement.id).sort()).toEqual(ids(items).sort());
        expect(await store.exportCounts()).toEqual({ pending: 3, exported: 0, skipped: 0, failing: 0 });
      });

      it('attributes each export item by its measurement time', async () => {
        const now = T0 + 3 * DAY;
        await store.assign({ gatewayId: GW, mrn: 'MRN-A', from: T0, createdBy: 'admin', at: T0 });
        await store.assign({ gatewayId: GW, mrn: 'MRN-B', from: T0 + DAY, createdBy: 'admin', at: T0 });
        const a = reading(1, T0 + DAY - 1);
        const b = reading(2, T0 + DAY);
        await store.commit(write({ measurements: [b, a] }));
        const leased = await store.leaseExports(10, now, LEASE);
        expect(leased.map((i) => [i.stored.measurement.id, i.mrn]).sort()).toEqual(
          [
            [a.measurement.id, 'MRN-A'],
            [b.measurement.id, 'MRN-B'],
          ].sort(),
        );
      });

      it('a failed item waits for its retry time; exported and skipped ones are never leased again', async () => {
        const now = T0 + 3 * DAY;
        await store.assign({ gatewayId: GW, mrn: 'MRN-1', from: T0, createdBy: 'admin', at: T0 });
        const [ok, skip, fail] = [1, 2, 3].map((n) => reading(n, T0 + n * MINUTE));
        if (ok === undefined || skip === undefined || fail === undefined) throw new Error('unreachable');
        await store.commit(write({ measurements: [ok, skip, fail] }));
        expect(await store.leaseExports(10, now, LEASE)).toHaveLength(3);
        await store.completeExports([
          { measurementId: ok.measurement.id, outcome: 'exported', at: now + 10 },
          { measurementId: skip.measurement.id, outcome: 'skipped', at: now + 10, why: 'thinned' },
          {
            measurementId: fail.measurement.id,
            outcome: 'failed',
            at: now + 10,
            retryAt: now + HOUR,
            error: 'HTTP 503',
          },
        ]);
        expect(await store.exportCounts()).toEqual({ pending: 0, exported: 1, skipped: 1, failing: 1 });
        // Before the retry time nothing is due, even though the lease was released.
        expect(await store.leaseExports(10, now + 20, LEASE)).toEqual([]);
        expect(await store.leaseExports(10, now + HOUR - 1, LEASE)).toEqual([]);
        const retried = await store.leaseExports(10, now + HOUR, LEASE);
        expect(retried.map((i) => [i.stored.measurement.id, i.attempts])).toEqual([[fail.measurement.id, 1]]);
        await store.completeExports([
          {
            measurementId: fail.measurement.id,
            outcome: 'failed',
            at: now + HOUR,
            retryAt: now + 2 * HOUR,
            error: 'x',
          },
        ]);
        const third = await store.leaseExports(10, now + 2 * HOUR, LEASE);
        expect(third.map((i) => i.attempts)).toEqual([2]);
        await store.completeExports([
          { measurementId: fail.measurement.id, outcome: 'exported', at: now + 2 * HOUR },
        ]);
        // A late answer for an item already exported changes nothing.
        await store.completeExports([
          {
            measurementId: ok.measurement.id,
            outcome: 'failed',
            at: now + 3 * HOUR,
            retryAt: now,
            error: 'late',
          },
        ]);
        await store.completeExports([
          { measurementId: ok.measurement.id, outcome: 'skipped', at: now + 3 * HOUR, why: 'late' },
        ]);
        expect(await store.exportCounts()).toEqual({ pending: 0, exported: 2, skipped: 1, failing: 0 });
        expect(await store.leaseExports(10, now + 30 * DAY, LEASE)).toEqual([]);
      });

      it('knows the last exported measurement time of a device characteristic at or before a time', async () => {
        const now = T0 + 3 * DAY;
        await store.assign({ gatewayId: GW, mrn: 'MRN-1', from: T0, createdBy: 'admin', at: T0 });
        const stream = [0, 1, 2, 3, 4].map((k) => reading(k, T0 + k * MINUTE));
        const otherChar = reading(9, T0 + 10 * MINUTE, { measurement: { characteristic: '2a5e' } });
        await store.commit(write({ measurements: [...stream, otherChar] }));
        await store.leaseExports(10, now, LEASE);
        const exported = [stream[0], stream[2], otherChar];
        await store.completeExports([
          ...exported.map((r) => ({
            measurementId: r?.measurement.id ?? '',
            outcome: 'exported' as const,
            at: now,
          })),
          { measurementId: stream[1]?.measurement.id ?? '', outcome: 'skipped', at: now, why: 'thinned' },
          { measurementId: stream[4]?.measurement.id ?? '', outcome: 'skipped', at: now, why: 'thinned' },
        ]);
        const last = (at: number, characteristic = '2a5f', device = 'dev-ox-1') =>
          store.lastExportedAt(GW, device, characteristic, at);
        expect(await last(T0 - 1)).toBeUndefined();
        expect(await last(T0)).toBe(T0);
        expect(await last(T0 + 90_000)).toBe(T0);
        expect(await last(T0 + 2 * MINUTE)).toBe(T0 + 2 * MINUTE);
        expect(await last(T0 + HOUR)).toBe(T0 + 2 * MINUTE); // 3 pending, 4 skipped: not exported
        expect(await last(T0 + HOUR, '2a5e')).toBe(T0 + 10 * MINUTE);
        expect(await last(T0 + HOUR, '2a5f', 'dev-other')).toBeUndefined();
        expect(await store.lastExportedAt(GW2, 'dev-ox-1', '2a5f', T0 + HOUR)).toBeUndefined();
      });
    });

    describe('live feed', () => {
      it('tells committed measurements after their commit, and nothing for duplicates', async () => {
        const events: CommittedEvent[] = [];
        const visible: Promise<boolean>[] = [];
        const stop = await store.subscribe((event) => {
          events.push(event);
          // Told after the commit: what the event names can already be read.
          for (const m of event.measurements) {
            visible.push(store.measurement(m.measurement.id).then((found) => found !== undefined));
          }
        });
        const a = reading(1, T0);
        const b = reading(2, T0 + MINUTE);
        const online = status(GW, 'online', T0, T0 + 1);
        await store.commit(write({ measurements: [a], gaps: [gap('g1-live')], statuses: [online] }));
        await store.commit(write({ measurements: [a], gaps: [gap('g1-live')] })); // only duplicates: no event
        await store.commit(write({ rejections: [rejection(1)] })); // rejections are not in the feed
        await store.commit(write({ measurements: [a, b] }));
        // The event of the last commit must come after any event of the two before it.
        await until('the live feed told the second new measurement', () => events.length >= 2);
        expect(events).toHaveLength(2);
        expect(events[0]).toEqual({
          measurements: [
            {
              measurement: a.measurement,
              measuredAt: a.measuredAt,
              receipt: a.receipt,
              committedAt: clock.now(),
            },
          ],
          gaps: [gap('g1-live')],
          statuses: [online],
        });
        expect(events[1]).toEqual({
          measurements: [
            {
              measurement: b.measurement,
              measuredAt: b.measuredAt,
              receipt: b.receipt,
              committedAt: clock.now(),
            },
          ],
          gaps: [],
          statuses: [],
        });
        expect(await Promise.all(visible)).toEqual([true, true]);
        await stop();
      });

      it('stops telling a listener that unsubscribed, and keeps telling the others', async () => {
        const stopped: CommittedEvent[] = [];
        const kept: CommittedEvent[] = [];
        const stop = await store.subscribe((event) => stopped.push(event));
        const stopKept = await store.subscribe((event) => kept.push(event));
        await store.commit(write({ measurements: [reading(1, T0)] }));
        await until('both listeners told the first commit', () => stopped.length === 1 && kept.length === 1);
        await stop();
        await store.commit(write({ measurements: [reading(2, T0 + MINUTE)] }));
        await until('the remaining listener told the second commit', () => kept.length === 2);
        expect(stopped).toHaveLength(1);
        await stopKept();
      });

      it('a listener that throws does not undo or fail the commit', async () => {
        const stop = await store.subscribe(() => {
          throw new Error('listener bug');
        });
        const told: CommittedEvent[] = [];
        const stopOther = await store.subscribe((event) => told.push(event));
        const r = reading(1, T0);
        expect((await store.commit(write({ measurements: [r] }))).inserted).toEqual([r.measurement.id]);
        await until('the other listener was told', () => told.length === 1);
        expect(await store.countMeasurements()).toBe(1);
        await stop();
        await stopOther();
      });
    });

    describe('closing', () => {
      it('refuses use after close with a typed error, and close is idempotent', async () => {
        await store.close();
        await store.close();
        await rejectsWith(store.countMeasurements(), 'CLINIC_STORE_CLOSED');
        await rejectsWith(store.commit(write({ measurements: [reading(1, T0)] })), 'CLINIC_STORE_CLOSED');
      });
    });
  });
}
