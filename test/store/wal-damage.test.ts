import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../scripts/support/measurements.js';
import { AuditLog } from '../../src/audit/audit-log.js';
import type { Gap } from '../../src/model/gap.js';
import { auditStoreEvents } from '../../src/store/audit-events.js';
import { EnvKeyProvider, KeyFileProvider } from '../../src/store/keys.js';
import { Outbox, type StoreEvent, WAL_CHECKPOINT_PAGES } from '../../src/store/outbox.js';
import { rekeyStore } from '../../src/store/rekey.js';
import { ManualClock } from '../../src/util/clock.js';

/**
 * Damage to the store's files after readings were reported stored (issue 9, defect 1). A real child process
 * appends readings one at a time (each awaited) and is killed with SIGKILL, so they sit in the WAL; then the
 * files are damaged as an SD card or a careless hand would, and the store is opened again. SQLite ignores every
 * WAL frame after a bad checksum (sqlite.org/wal.html), so the store opens cleanly with a prefix of the
 * readings: the outbox must notice from its high-water mark, count what is gone, keep the files, tell the
 * clinic with a gap record and write the audit log.
 */
const KEY = '5d'.repeat(32);
const N = 400;
const child = join(import.meta.dirname, '../../dist/test/support/outbox-fill-child.js');
const root = await mkdtemp(join(tmpdir(), 'rpm-wal-damage-'));
afterAll(() => rm(root, { recursive: true, force: true }));
let cases = 0;

/** Appends `count` readings in a child, one commit each, and kills it with SIGKILL once all were stored. */
function fillAndKill(path: string, count: number, walPages?: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const args = [child, path, String(count), ...(walPages ? [String(walPages)] : [])];
    const proc: ChildProcess = spawn(process.execPath, args, {
      env: { ...process.env, RPM_TEST_STORE_KEY: KEY },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      if (line === `STORED ${count}`) proc.kill('SIGKILL');
    });
    proc.on('error', reject);
    proc.on('close', (_code, signal) =>
      signal === 'SIGKILL' ? resolve() : reject(new Error(`child ended without being killed (${signal})`)),
    );
  });
}

async function newStore(): Promise<{ dir: string; path: string }> {
  const dir = join(root, `case-${cases++}`);
  await mkdir(dir);
  return { dir, path: join(dir, 'outbox.db') };
}

function outboxAt(path: string, events: StoreEvent[], audit?: AuditLog, clock?: ManualClock): Outbox {
  const toAudit = audit ? auditStoreEvents(audit) : undefined;
  return new Outbox({
    path,
    keys: new EnvKeyProvider('K', { K: KEY }),
    ...(clock ? { clock } : {}),
    onEvent: (event) => {
      events.push(event);
      toAudit?.(event);
    },
  });
}

const damageEvents = (events: StoreEvent[]) =>
  events.filter((e): e is DamageEvent => e.type === 'store.damaged');

/** Fills a store in a child (every reading in the WAL alone), damages it, opens it; checks what must hold. */
type DamageEvent = Extract<StoreEvent, { type: 'store.damaged' }>;

async function damageAndOpen(damage: (path: string) => Promise<void>): Promise<DamageEvent> {
  const { dir, path } = await newStore();
  await fillAndKill(path, N, 1_000_000);
  await damage(path);
  const events: StoreEvent[] = [];
  const audit = new AuditLog(join(dir, 'audit.log'));
  const box = outboxAt(path, events, audit);
  await box.open();
  let event: DamageEvent;
  try {
    // what survived is a prefix of what was stored, in order
    const ids = box.database
      .prepare('SELECT id FROM outbox WHERE kind = 0 ORDER BY seq')
      .pluck()
      .all() as string[];
    const survivors = ids.length;
    expect(ids).toEqual(Array.from({ length: survivors }, (_, n) => spo2Measurement(n).id));
    expect(survivors).toBeLessThan(N); // the damage did cost readings
    // reported once, with the count and the seq range of what is gone
    const reported = damageEvents(events);
    expect(reported).toHaveLength(1);
    event = reported[0] as DamageEvent;
    expect(event).toMatchObject({
      code: 'STORE_DAMAGED',
      lost: N - survivors,
      firstSeq: survivors + 1,
      lastSeq: N,
    });
    expect(event.message).toContain(`up to ${N - survivors} stored`);
    // a gap record for the clinic, sent like a reading
    const gaps = box
      .lease({ maxRows: 10 * N })
      .records.map((r) => r.payload)
      .filter((p): p is Gap => p.type === 'gap');
    expect(gaps).toHaveLength(1);
    expect(gaps[0]).toMatchObject({
      id: event.gapId,
      deviceId: '*',
      count: N - survivors,
      reason: 'store-damaged',
      seqs: [survivors + 1, N],
    });
    // audited
    const entries = (await readFile(join(dir, 'audit.log'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; details: Record<string, unknown> });
    expect(entries.filter((e) => e.type === 'store.damaged')).toEqual([
      expect.objectContaining({
        details: expect.objectContaining({ lost: N - survivors, firstSeq: survivors + 1, lastSeq: N }),
      }),
    ]);
    expect(audit.verify().entries).toBe(entries.length);
    // kept aside for inspection
    expect(event.keptAt).toMatch(/outbox\.db\.damaged-/);
    expect(box.damageReports()).toHaveLength(1);
    // new readings are stored after the lost range: no seq is handed out twice
    await box.append(spo2Measurement(10_000));
    const newest = box.database.prepare('SELECT max(seq) FROM outbox').pluck().get() as number;
    expect(newest).toBe(N + 2); // the gap record took N + 1
  } finally {
    box.close();
  }
  // found once: the next open reports nothing new, and the report stays until acknowledged
  const again: StoreEvent[] = [];
  const reopened = outboxAt(path, again);
  await reopened.open();
  try {
    expect(damageEvents(again)).toEqual([]);
    expect(reopened.damageReports()).toHaveLength(1);
    expect(reopened.acknowledgeDamage()).toBe(1);
    expect(reopened.damageReports()).toEqual([]);
  } finally {
    reopened.close();
  }
  return event;
}

function flipByteAt(offsetOf: (size: number) => number): (path: string) => Promise<void> {
  return async (path) => {
    const wal = await readFile(`${path}-wal`);
    const at = offsetOf(wal.length);
    wal[at] = (wal[at] as number) ^ 0x01;
    await writeFile(`${path}-wal`, wal);
  };
}

describe('damage to the store after readings were reported stored', () => {
  it('is built (npm test builds first; run `npm run build` when calling vitest directly)', () => {
    expect(existsSync(child)).toBe(true);
  });

  for (const share of [0.05, 0.4, 0.9]) {
    it(`finds, counts, reports and keeps a WAL with one byte flipped at ${share * 100} %`, async () => {
      let damaged: Buffer | undefined;
      const event = await damageAndOpen(async (path) => {
        await flipByteAt((size) => Math.floor(size * share))(path);
        damaged = await readFile(`${path}-wal`);
      });
      expect(event.kind).toBe('wal-tail');
      // the copy is the damaged WAL byte for byte (the open store has since rewritten its own)
      expect((await readFile(`${event.keptAt}-wal`)).equals(damaged as Buffer)).toBe(true);
    }, 60_000);
  }

  it('finds a flipped byte in the WAL header (every frame ignored)', async () => {
    let damaged: Buffer | undefined;
    const event = await damageAndOpen(async (path) => {
      await flipByteAt(() => 12)(path);
      damaged = await readFile(`${path}-wal`);
    });
    expect(event).toMatchObject({ kind: 'wal-tail', firstSeq: 1, lost: N });
    expect((await readFile(`${event.keptAt}-wal`)).equals(damaged as Buffer)).toBe(true);
  }, 60_000);

  it('finds a deleted WAL', async () => {
    const event = await damageAndOpen((path) => rm(`${path}-wal`));
    expect(event).toMatchObject({ kind: 'wal-tail', firstSeq: 1, lost: N });
    expect(existsSync(event.keptAt as string)).toBe(true); // the main file as it was
  }, 60_000);

  it('treats an outbox.db truncated to 0 bytes as damage, never as a new empty store', async () => {
    const event = await damageAndOpen((path) => truncate(path, 0));
    expect(event).toMatchObject({ kind: 'store-missing', firstSeq: 1, lost: N });
    expect((await stat(event.keptAt as string)).size).toBe(0); // kept as found, with its WAL
    expect(existsSync(`${event.keptAt}-wal`)).toBe(true);
  }, 60_000);

  it('treats a deleted outbox.db as damage', async () => {
    const event = await damageAndOpen((path) => rm(path));
    expect(event).toMatchObject({ kind: 'store-missing', firstSeq: 1, lost: N });
    expect(existsSync(`${event.keptAt}-wal`)).toBe(true);
  }, 60_000);
});

describe('the high-water mark itself', () => {
  it('a mark changed without the key is reported (loss unknown), not trusted', async () => {
    const { dir, path } = await newStore();
    await fillAndKill(path, 50);
    const mark = await readFile(`${path}.hwm`);
    for (const slot of [0, 512]) mark[slot + 23] = 1; // lower the seq of both slots to 1 (low byte)
    await writeFile(`${path}.hwm`, mark);
    const events: StoreEvent[] = [];
    const box = outboxAt(path, events, new AuditLog(join(dir, 'audit.log')));
    await box.open();
    try {
      expect(damageEvents(events)).toEqual([
        expect.objectContaining({ kind: 'high-water-invalid', lost: null, gapId: null }),
      ]);
      expect(box.stats().rows).toBe(50); // nothing of the store was touched
      expect(box.damageReports()).toHaveLength(1);
    } finally {
      box.close();
    }
  }, 60_000);

  it('a deleted mark of a store that had one is reported', async () => {
    const { path } = await newStore();
    await fillAndKill(path, 20);
    await rm(`${path}.hwm`);
    const events: StoreEvent[] = [];
    const box = outboxAt(path, events);
    await box.open();
    box.close();
    expect(damageEvents(events)).toEqual([expect.objectContaining({ kind: 'high-water-missing' })]);
  }, 60_000);

  it('survives a key rotation (carried over under the new key)', async () => {
    const { dir, path } = await newStore();
    const keys = new KeyFileProvider(join(dir, 'store.key'));
    const events: StoreEvent[] = [];
    const box = new Outbox({ path, keys, onEvent: (e) => events.push(e) });
    await box.open();
    for (let n = 0; n < 30; n++) await box.append(spo2Measurement(n));
    box.close();
    await rekeyStore({ path, keys, now: Date.now });
    const after = new Outbox({ path, keys, onEvent: (e) => events.push(e) });
    await after.open();
    expect(after.stats().rows).toBe(30);
    after.close();
    expect(damageEvents(events)).toEqual([]);
  }, 60_000);
});

describe('key rotation of a damaged store', () => {
  it('refuses, keeps the files, and leaves the damage for the outbox to record', async () => {
    const { dir, path } = await newStore();
    await fillAndKill(path, 100, 1_000_000);
    await flipByteAt((size) => Math.floor(size / 2))(path);
    const keyFile = join(dir, 'store.key');
    await writeFile(keyFile, `${KEY}\n`, { mode: 0o600 });
    await expect(
      rekeyStore({ path, keys: new KeyFileProvider(keyFile), now: Date.now }),
    ).rejects.toMatchObject({
      code: 'STORE_REKEY_FAILED',
      message: expect.stringContaining('store status'),
    });
    expect((await readdir(dir)).some((f) => /^outbox\.db\.damaged-.*-wal$/.test(f))).toBe(true);
    const events: StoreEvent[] = [];
    const box = outboxAt(path, events);
    await box.open();
    const survivors = box.database
      .prepare('SELECT count(*) FROM outbox WHERE kind = 0')
      .pluck()
      .get() as number;
    box.close();
    expect(survivors).toBeLessThan(100);
    expect(damageEvents(events)).toEqual([
      expect.objectContaining({
        kind: 'wal-tail',
        lost: 100 - survivors,
        firstSeq: survivors + 1,
        lastSeq: 100,
      }),
    ]);
  }, 60_000);
});

describe('no false alarms', () => {
  it('a clean restart after SIGKILL, with the default checkpoint policy, reports nothing', async () => {
    const { path } = await newStore();
    await fillAndKill(path, N);
    // the checkpoint policy bounds what sits in the WAL alone: at most the bound plus one commit's pages
    const frame = 4096 + 24;
    expect((await stat(`${path}-wal`)).size).toBeLessThanOrEqual(32 + (WAL_CHECKPOINT_PAGES + 16) * frame);
    const events: StoreEvent[] = [];
    const box = outboxAt(path, events);
    await box.open();
    try {
      expect(box.stats().rows).toBe(N);
      expect(damageEvents(events)).toEqual([]);
      expect(box.damageReports()).toEqual([]);
    } finally {
      box.close();
    }
    expect((await readdir(join(path, '..'))).filter((f) => f.includes('damaged'))).toEqual([]);
  }, 60_000);

  it('many append, acknowledge, evict, expire and quarantine cycles with restarts report nothing', async () => {
    const { path } = await newStore();
    const clock = new ManualClock();
    const events: StoreEvent[] = [];
    let n = 0;
    for (let round = 0; round < 25; round++) {
      const box = new Outbox({
        path,
        keys: new EnvKeyProvider('K', { K: KEY }),
        clock,
        retention: { maxRows: 80, maxAgeMs: 3_600_000 },
        onEvent: (e) => events.push(e),
      });
      await box.open();
      try {
        const lanes = ['alert', 'live', 'backlog'] as const;
        await Promise.all(
          Array.from({ length: 30 }, (_, i) => box.append(spo2Measurement(n++), lanes[i % 3])),
        );
        const lease = box.lease({ maxRows: 10 + (round % 7) });
        if (round % 4 === 0) box.release(lease.leaseId);
        else box.ackLeases([lease.leaseId]);
        if (round % 5 === 1) {
          const bad = box.lease({ maxRows: 1 });
          box.quarantine(
            bad.records.map((r) => r.seq),
            'test: cannot encode',
          );
        }
        if (round % 6 === 2) {
          clock.advance(2 * 3_600_000);
          box.maintain(); // expires the older readings into gap records
        }
        clock.advance(1000);
      } finally {
        box.close();
      }
    }
    expect(events.some((e) => e.type === 'store.evicted' && e.reason === 'full')).toBe(true);
    expect(events.some((e) => e.type === 'store.evicted' && e.reason === 'expired')).toBe(true);
    expect(damageEvents(events)).toEqual([]);
  });
});
