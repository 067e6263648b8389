import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/gatt/hex.js';
import type { Measurement } from '../../src/model/measurement.js';
import { stamp } from '../../src/pipeline/stamp.js';
import { DeviceSession } from '../../src/session/device-session.js';
import { withinRange } from '../../src/session/racp-download.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { Outbox } from '../../src/store/outbox.js';
import { wireItemRecords } from '../../src/uplink/record-codec.js';
import { type SessionRig, sessionRig } from './session-rig.js';

/**
 * A glucose meter's RACP download through a real encrypted store, in virtual time with the simulated meter:
 * each "life" of the hub opens the store, runs a session whose resume point comes from the store, appends what
 * it delivers with the resume point in the same transaction, and ends (the link cut in the middle of a
 * download, the store closed: a restart). Afterwards the store must hold every record the meter ever made
 * exactly once, measurements and contexts alike (a context carries its measurement's device time, so a re-sent
 * one has the same id and the outbox drops it): no duplicate, no hole. Across the 16-bit wrap and after a meter
 * reset.
 */
const KEY = '5a'.repeat(32);
const dir = await mkdtemp(join(tmpdir(), 'rpm-racp-'));
afterAll(() => rm(dir, { recursive: true, force: true }));
let stores = 0;

interface Meter {
  readonly rig: SessionRig;
  readonly path: string;
  /** Every record the meter ever made, as "sequence@device time". */
  readonly made: Set<string>;
}

function meter(
  options: { preload?: number; firstSequenceNumber?: number; racpOrder?: 'storage' | 'numeric' } = {},
): Meter {
  const rig = sessionRig('sig/glucose', {
    device: { preload: options.preload ?? 0, preloadEveryMs: 3_600_000, ...options },
    session: { requiresBonding: true },
  });
  const m = { rig, path: join(dir, `store-${++stores}.db`), made: new Set<string>() };
  note(m);
  return m;
}

/** Remembers the records in the meter's memory now. */
function note(m: Meter): void {
  for (const r of m.rig.device.racp?.stored ?? []) m.made.add(key(r.sequenceNumber, r.userFacingTime));
}

const key = (sequence: number, time: string | null) => `${sequence}@${time}`;

function open(path: string): Outbox {
  return new Outbox({ path, keys: new EnvKeyProvider('K', { K: KEY }), recordCodec: wireItemRecords });
}

/** What the store answered to each glucose value a life appended, as "characteristic:sequence:result". */
type Appends = string[];

/**
 * One life of the hub: open the store, connect, and end after `cutAfter` delivered glucose records (the link
 * drops, the hub stops and closes the store) or when the download is over. Returns the RACP requests written;
 * `appends` collects what the store answered to each value.
 */
async function life(m: Meter, cutAfter = Number.POSITIVE_INFINITY, appends: Appends = []): Promise<string[]> {
  const { rig } = m;
  const outbox = open(m.path);
  await outbox.open();
  const deviceId = 'dev-glucose';
  const writtenBefore = rig.device.peripheral.written('2a52').length;
  let records = 0;
  const session = new DeviceSession({
    device: { id: deviceId, address: rig.device.peripheral.address, requiresBonding: true },
    driver: rig.driver,
    central: rig.central,
    scheduler: rig.scheduler,
    random: () => 0.5,
    utcOffsetMinutes: () => 0,
    racpResume: () => outbox.racpResumePoint(deviceId),
    onReading: (reading) => {
      if (reading.characteristic === '2a18') records++;
      const progress = reading.racpProgress ? { deviceId, ...reading.racpProgress } : undefined;
      const sequence = reading.reading.details?.['sequenceNumber'];
      void outbox.append(stamp(reading, rig.driver), 'backlog', progress).then((result) => {
        appends.push(`${reading.characteristic}:${sequence}:${result}`);
      });
      outbox.flush(); // committed now, as the group commit would within the turn
      if (records >= cutAfter) rig.device.peripheral.dropLink();
    },
  });
  await rig.central.start();
  session.start();
  for (let i = 0; i < 600 && records < cutAfter && session.state !== 'streaming'; i++) {
    await rig.advance(100);
  }
  await session.stop();
  outbox.close();
  return rig.device.peripheral.written('2a52').slice(writtenBefore).map(toHex);
}

/** The glucose rows of the store, per characteristic, as "sequence@device time". */
async function rows(m: Meter): Promise<{ measurements: string[]; contexts: string[] }> {
  const outbox = open(m.path);
  await outbox.open();
  const lease = outbox.lease({ maxRows: 100_000 });
  const items = lease.records.map((r) => (r.payload as { measurement: Measurement }).measurement);
  outbox.close();
  const sequence = (x: Measurement) => x.details['sequenceNumber'] as number;
  return {
    measurements: items.filter((x) => x.characteristic === '2a18').map((x) => key(sequence(x), x.deviceTime)),
    contexts: items.filter((x) => x.characteristic === '2a34').map((x) => key(sequence(x), x.deviceTime)),
  };
}

/**
 * Every record the meter made is in the store once: its measurement, and its context with the measurement's
 * device time (src/session/glucose-context.ts), re-sent ones included (dropped by id).
 */
async function expectEveryRecordOnce(m: Meter): Promise<void> {
  note(m);
  const { measurements, contexts } = await rows(m);
  expect(new Set(measurements).size).toBe(measurements.length); // no duplicate
  expect([...measurements].sort()).toEqual([...m.made].sort()); // no hole
  expect(new Set(contexts).size).toBe(contexts.length);
  expect([...contexts].sort()).toEqual([...m.made].sort());
}

describe('RACP resume through the store', () => {
  it('a first download ("report all") cut by a restart is asked for again; then it resumes after the newest', async () => {
    const m = meter({ preload: 30 });
    const first = await life(m, 12);
    expect(first).toEqual([toHex(Uint8Array.of(0x01, 0x01))]); // report all: the first download
    const outbox = open(m.path);
    await outbox.open();
    // A "report all" may come in any order: until it ends, the resume point does not move.
    expect(outbox.racpResumePoint('dev-glucose')).toBeUndefined();
    outbox.close();
    const second = await life(m);
    expect(second).toEqual([toHex(Uint8Array.of(0x01, 0x01))]);
    await expectEveryRecordOnce(m); // records 1-12 (measurements and contexts) dropped by id
    const third = await life(m);
    expect(third).toEqual([toHex(withinRange(30, 30 + 0x7fff))]); // gets only the anchor, adds nothing
    await expectEveryRecordOnce(m);
  });

  it("a context the meter sends again carries its measurement's time, so the outbox drops it as a duplicate", async () => {
    const m = meter({ preload: 30 });
    await life(m, 12); // a first download ("report all") cut after record 12
    const appends: Appends = [];
    await life(m, Number.POSITIVE_INFINITY, appends); // asked for again from the start: 1..12 come again
    const bySequence = (a: string, b: string) => Number(a.split(':')[1]) - Number(b.split(':')[1]);
    const contexts = appends.filter((a) => a.startsWith('2a34:')).sort(bySequence);
    const expected = Array.from({ length: 30 }, (_, i) =>
      i < 12 ? `2a34:${i + 1}:duplicate` : `2a34:${i + 1}:stored`,
    );
    expect(contexts).toEqual(expected);
    // The same for the measurements, by the same rule (their own device time).
    const measurements = appends.filter((a) => a.startsWith('2a18:')).sort(bySequence);
    expect(measurements).toEqual(expected.map((a) => a.replace('2a34', '2a18')));
    await expectEveryRecordOnce(m);
  });

  it('a range download cut by a restart resumes after the last record stored whole', async () => {
    const m = meter({ preload: 30 });
    await life(m);
    for (let i = 0; i < 20; i++) {
      await m.rig.advance(60_000);
      m.rig.device.measure(); // 31..50
    }
    note(m);
    await life(m, 12);
    const outbox = open(m.path);
    await outbox.open();
    const point = outbox.racpResumePoint('dev-glucose');
    outbox.close();
    // The link dropped between record 42's measurement and its context: the store holds 42's measurement but
    // the resume point stays at 41, the last record stored whole; 42 is asked for again, its measurement is a
    // duplicate by id the outbox drops, and its context arrives.
    expect(point?.sequence).toBe(41);
    const again = await life(m);
    expect(again).toEqual([toHex(withinRange(41, 41 + 0x7fff))]);
    await expectEveryRecordOnce(m);
  });

  for (const cut of [1, 2, 3, 10]) {
    it(`across the 16-bit wrap (65535 -> 0), cut after ${cut} new record(s)`, async () => {
      const m = meter({ preload: 4, firstSequenceNumber: 65530 });
      await life(m);
      for (let i = 0; i < 40; i++) {
        await m.rig.advance(60_000);
        m.rig.device.measure(); // 65534, 65535, 0, 1, ..., 37
      }
      note(m);
      await life(m, cut);
      const requests = await life(m);
      const outbox = open(m.path);
      await outbox.open();
      const point = outbox.racpResumePoint('dev-glucose');
      outbox.close();
      expect(point?.sequence).toBe(37);
      // The resume after the cut: from the record it stopped at, the window crossing 65535 in two halves
      // unless it starts after the wrap.
      const at = (65533 + cut - 1) & 0xffff; // the record before the cut one (see the first test)
      expect(requests[0]).toBe(toHex(withinRange(at, at <= 0x8000 ? at + 0x7fff : 0xffff)));
      await expectEveryRecordOnce(m);
    });
  }

  for (const racpOrder of ['storage', 'numeric'] as const) {
    it(`a first download of a memory that already spans the wrap, cut by a restart (${racpOrder} order)`, async () => {
      // 65520..65535 then 0..23: a meter that reports by number sends 0..23 first, and a resume point moved
      // to the 10th record delivered would skip 65520..65535 for good.
      const m = meter({ preload: 40, firstSequenceNumber: 65520, racpOrder });
      expect(m.made.size).toBe(40);
      await life(m, 10);
      await life(m);
      await expectEveryRecordOnce(m); // the 10 delivered before the cut came again, dropped by id
      const outbox = open(m.path);
      await outbox.open();
      expect(outbox.racpResumePoint('dev-glucose')?.sequence).toBe(23); // the newest record, serially
      outbox.close();
      // Nothing new: nothing added; a new record after it: that one only.
      await life(m);
      await expectEveryRecordOnce(m);
      await m.rig.advance(60_000);
      m.rig.device.measure(); // 24
      await life(m);
      await expectEveryRecordOnce(m);
    });

    it(`a first download of a wrapped memory cut twice, then complete (${racpOrder} order)`, async () => {
      const m = meter({ preload: 40, firstSequenceNumber: 65520, racpOrder });
      await life(m, 5);
      await life(m, 25);
      await life(m);
      await expectEveryRecordOnce(m);
    });
  }

  it('after a meter reset with fewer new records than before: all of them, once', async () => {
    const m = meter({ preload: 20 });
    await life(m);
    m.rig.device.resetMemory?.();
    for (let i = 0; i < 5; i++) {
      await m.rig.advance(60_000);
      m.rig.device.measure(); // 1..5, below the resume point 20
    }
    note(m);
    const requests = await life(m);
    expect(requests).toEqual([toHex(withinRange(20, 20 + 0x7fff)), toHex(Uint8Array.of(0x01, 0x01))]);
    await expectEveryRecordOnce(m);
    await life(m); // resumes after the new record 5: nothing again
    await expectEveryRecordOnce(m);
  });

  it('after a meter reset with more new records than before: the old number is another record', async () => {
    const m = meter({ preload: 20 });
    await life(m);
    m.rig.device.resetMemory?.();
    for (let i = 0; i < 30; i++) {
      await m.rig.advance(60_000);
      m.rig.device.measure(); // 1..30: number 20 comes again, with another time
    }
    note(m);
    const requests = await life(m);
    expect(requests).toEqual([toHex(withinRange(20, 20 + 0x7fff)), toHex(Uint8Array.of(0x01, 0x01))]);
    await expectEveryRecordOnce(m);
    m.rig.device.measure(); // 31
    await life(m);
    await expectEveryRecordOnce(m);
  });
});
