/**
 * `npm run bench:store`: the encrypted outbox against plain SQLite, in one run, printed as a table.
 *
 * Each variant runs in its own child process (two SQLite builds must never share a process, and RSS must be
 * per variant). Every variant appends the same N SpO2 measurements as JSON rows in the same bursts (a burst is
 * the appends of one event-loop turn, 1-200 readings, mean ~100: a 1 Hz oximeter pair plus a backlog
 * replay), with WAL and synchronous=FULL:
 *   outbox            this project's Outbox (ChaCha20-Poly1305, group commit, idempotency, retention), rows
 *                     as JSON (its default record codec)
 *   outbox-wire       the same with the gateway's record codec: each row stored as its checked wire-format
 *                     batch item (CBOR), what the running gateway does (src/uplink/record-codec.ts)
 *   plain             better-sqlite3 without encryption, same schema, one transaction per burst
 *   raw-chacha20      SQLite3MultipleCiphers ChaCha20-Poly1305, same schema and batching (no outbox logic)
 *   raw-sqlcipher     SQLite3MultipleCiphers SQLCipher v4 (AES-256-CBC + HMAC-SHA512), same again
 *   row-per-txn       ChaCha20 with one transaction (one fsync) per reading: what group commit avoids
 * and what the store's damage detection and WAL bound cost (docs/store.md, "Damage"):
 *   outbox-wire-nomark  outbox-wire without the high-water mark (its pwrite + fdatasync after each commit)
 *   outbox-wire-wal1000 outbox-wire with SQLite's default WAL bound (1,000 pages) instead of the outbox's 256
 *   outbox-1by1         the outbox with one reading per commit (each append awaited): the mark's worst case
 *   outbox-1by1-nomark  the same without the mark
 * Then the outbox drains its N rows (lease 500 + ack) and reports RSS before and after.
 * fsync latency dominates and wanders on shared disks, so every batched variant runs twice, in opposite
 * orders, and the table shows the better run of each (the "runs" column lists both).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    'row-per-txn-rows': { type: 'string', default: '20000' },
    worker: { type: 'string' },
    dir: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help) {
  console.log('Usage: npm run bench:store [-- --rows 1000000 --row-per-txn-rows 20000]');
  process.exit(0);
}

interface Result {
  variant: string;
  rows: number;
  seconds: number;
  peakRssMb: number;
  fileMb: number;
  drain?: { seconds: number; rssBeforeMb: number; rssAfterMb: number; peakRssMb: number };
}

const KEY = 'ab'.repeat(32);

function bursts(total: number): number[] {
  let seed = 42;
  const sizes: number[] = [];
  for (let left = total; left > 0; ) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const size = Math.min(left, 1 + Math.floor((seed / 2147483648) * 200));
    sizes.push(size);
    left -= size;
  }
  return sizes;
}

function measurement(n: number) {
  const at = new Date(Date.UTC(2026, 10, 28) + n * 1000).toISOString();
  return {
    id: `m1-${n.toString(16).padStart(32, '0')}`,
    deviceId: n % 2 === 0 ? 'dev-ox-1' : 'dev-ox-2',
    driver: 'sig/pulse-oximeter@1.0.0',
    characteristic: '2a5f',
    time: at,
    timeSource: 'gateway' as const,
    deviceTime: null,
    receivedAt: at,
    kind: 'measurement' as const,
    observations: [
      { code: 'MDC_PULS_OXIM_SAT_O2' as const, value: 90 + (n % 10), unit: '%' as const },
      { code: 'MDC_PULS_OXIM_PULS_RATE' as const, value: 60 + (n % 40), unit: '/min' as const },
    ],
    status: [],
    details: {},
  };
}

let peakRss = 0;
const sampler = () => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
};
const mb = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;
function fileSize(path: string): number {
  let size = 0;
  for (const suffix of ['', '-wal']) {
    try {
      size += statSync(`${path}${suffix}`).size;
    } catch {
      // absent
    }
  }
  return size;
}

async function worker(variant: string, dir: string, rows: number): Promise<Result> {
  const timer = setInterval(sampler, 50);
  const path = join(dir, `${variant}.db`);
  const oneByOne = variant.startsWith('outbox-1by1');
  const sizes = oneByOne ? new Array<number>(rows).fill(1) : bursts(rows);
  let result: Result;
  if (variant.startsWith('outbox')) {
    const { Outbox } = await import('../src/store/outbox.js');
    const { EnvKeyProvider } = await import('../src/store/keys.js');
    const { wireItemRecords } = await import('../src/uplink/record-codec.js');
    const outbox = new Outbox({
      path,
      keys: new EnvKeyProvider('K', { K: KEY }),
      retention: { maxRows: rows * 2, maxBytes: 1e12 },
      ...(variant.startsWith('outbox-wire') ? { recordCodec: wireItemRecords } : {}),
      ...(variant.endsWith('-nomark') ? { benchmarkWithoutHighWater: true } : {}),
      ...(variant.endsWith('-wal1000') ? { walCheckpointPages: 1000 } : {}),
    });
    await outbox.open();
    let n = 0;
    const start = performance.now();
    for (const size of sizes) {
      const appends = [];
      for (let i = 0; i < size; i++) appends.push(outbox.append(measurement(n++)));
      await Promise.all(appends);
    }
    const seconds = (performance.now() - start) / 1000;
    sampler();
    result = { variant, rows, seconds, peakRssMb: mb(peakRss), fileMb: mb(fileSize(path)) };
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    peakRss = rssBefore;
    const drainStart = performance.now();
    for (;;) {
      const lease = outbox.lease({ maxRows: 500, maxBytes: 256 * 1024 });
      if (lease.records.length === 0) break;
      outbox.ack(lease.records.map((r) => r.seq));
    }
    const drainSeconds = (performance.now() - drainStart) / 1000;
    sampler();
    // What the drain still holds once its garbage is collected (bodies are Buffers, freed only by a GC).
    global.gc?.();
    result.drain = {
      seconds: drainSeconds,
      rssBeforeMb: mb(rssBefore),
      rssAfterMb: mb(process.memoryUsage().rss),
      peakRssMb: mb(peakRss),
    };
    outbox.close();
  } else {
    const plain = variant === 'plain';
    const Database = (await import(plain ? 'better-sqlite3' : 'better-sqlite3-multiple-ciphers')).default;
    const { MIGRATIONS } = await import('../src/store/migrations.js');
    const db = new Database(path);
    if (variant === 'raw-sqlcipher') {
      db.pragma(`cipher = 'sqlcipher'`);
      db.pragma('legacy = 4');
    } else if (!plain) {
      db.pragma(`cipher = 'chacha20'`);
    }
    if (!plain) db.pragma(`key = "raw:${KEY}"`);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('secure_delete = ON');
    for (const migration of MIGRATIONS) db.exec(migration.sql);
    const insert = db.prepare(
      `INSERT OR IGNORE INTO outbox (id, kind, lane, device, stable, measured_at, appended_ms, size, body)
       VALUES (?, 0, 1, ?, 0, ?, ?, ?, ?)`,
    );
    const add = (n: number) => {
      const m = measurement(n);
      const body = Buffer.from(JSON.stringify({ type: 'measurement', measurement: m }));
      insert.run(m.id, m.deviceId, m.time, Date.now(), body.length, body);
    };
    const oneTransaction = db.transaction((first: number, count: number) => {
      for (let i = 0; i < count; i++) add(first + i);
    });
    let n = 0;
    const start = performance.now();
    if (variant === 'row-per-txn') {
      for (; n < rows; n++) oneTransaction(n, 1);
    } else {
      for (const size of sizes) {
        oneTransaction(n, size);
        n += size;
        await new Promise((resolve) => setImmediate(resolve)); // the same event-loop turns as the outbox
      }
    }
    const seconds = (performance.now() - start) / 1000;
    sampler();
    db.close();
    result = { variant, rows, seconds, peakRssMb: mb(peakRss), fileMb: mb(fileSize(path)) };
  }
  clearInterval(timer);
  return result;
}

if (values.worker) {
  const result = await worker(values.worker, values.dir as string, Number(values.rows));
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  const rows = Number(values.rows);
  const dir = mkdtempSync(join(tmpdir(), 'rpm-bench-store-'));
  const self = fileURLToPath(import.meta.url);
  const batched = [
    'outbox',
    'outbox-wire',
    'outbox-wire-nomark',
    'outbox-wire-wal1000',
    'plain',
    'raw-chacha20',
    'raw-sqlcipher',
  ];
  const single = Number(values['row-per-txn-rows']);
  const plan: [string, number][] = [
    ...batched.map((v): [string, number] => [v, rows]),
    ['row-per-txn', single],
    ['outbox-1by1', single],
    ['outbox-1by1-nomark', single],
    ['outbox-1by1-nomark', single],
    ['outbox-1by1', single],
    ...[...batched].reverse().map((v): [string, number] => [v, rows]),
  ];
  const runs: Result[] = [];
  try {
    for (const [variant, count] of plan) {
      process.stderr.write(`running ${variant} (${count} rows)...\n`);
      const child = spawnSync(
        process.execPath,
        ['--expose-gc', self, '--worker', variant, '--dir', dir, '--rows', String(count)],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 },
      );
      if (child.status !== 0) throw new Error(`${variant} failed with status ${child.status}`);
      runs.push(JSON.parse(child.stdout.trim().split('\n').at(-1) as string) as Result);
      // every file of the store (WAL, key commitment, high-water mark): a second run starts a new store
      for (const file of readdirSync(dir)) {
        if (file.startsWith(`${variant}.db`)) rmSync(join(dir, file), { force: true });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rate = (r: Result) => r.rows / r.seconds;
  const variants = [...new Set(runs.map((r) => r.variant))];
  const best = (variant: string) =>
    runs.filter((r) => r.variant === variant).reduce((a, b) => (rate(b) > rate(a) ? b : a));
  const plainRate = rate(best('plain'));
  const table = [['variant', 'rows', 'rows/s (best)', 'vs plain', 'runs (rows/s)', 'peak RSS MB', 'file MB']];
  for (const variant of variants) {
    const r = best(variant);
    const all = runs
      .filter((x) => x.variant === variant)
      .map((x) => Math.round(rate(x)).toLocaleString('en'));
    table.push([
      variant,
      String(r.rows),
      Math.round(rate(r)).toLocaleString('en'),
      `${Math.round((rate(r) / plainRate) * 100)} %`,
      all.join(' / '),
      String(Math.max(...runs.filter((x) => x.variant === variant).map((x) => x.peakRssMb))),
      String(r.fileMb),
    ]);
  }
  const widths = (table[0] as string[]).map((_, c) =>
    Math.max(...table.map((row) => (row[c] as string).length)),
  );
  console.log(
    `append, ${rows.toLocaleString('en')} SpO2 readings in bursts, WAL + synchronous=FULL, Node ${process.version}`,
  );
  for (const [i, row] of table.entries()) {
    console.log(
      row
        .map((cell, c) => (c === 0 ? cell.padEnd(widths[c] as number) : cell.padStart(widths[c] as number)))
        .join('  '),
    );
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
  for (const variant of ['outbox', 'outbox-wire']) {
    const drained = runs.filter((r) => r.variant === variant && r.drain && r.rows === rows);
    if (drained.length === 0) continue;
    const drain = drained.reduce((a, b) => ((b.drain?.seconds ?? 1e9) < (a.drain?.seconds ?? 1e9) ? b : a))
      .drain as NonNullable<Result['drain']>;
    console.log(
      `${variant === 'outbox' ? '\n' : ''}${variant} drain (lease 500 + ack, secure_delete): ${Math.round(rows / drain.seconds).toLocaleString('en')} rows/s; ` +
        `RSS ${drain.rssBeforeMb} MB before, ${drain.rssAfterMb} MB after, ${drain.peakRssMb} MB peak while draining`,
    );
  }
}
