/**
 * The clinic stores alone, without MQTT, signatures or the intake: how many readings per second each
 * ClinicStore commits (src/clinic/storage), so a change to a store can be measured on its own before
 * `npm run bench:clinic` measures the whole path. docs/clinic-intake.md, "Benchmark", has the results.
 *
 * Two commit shapes, both as the intake makes them (one `commit` per group, awaited before the next):
 *   backlog  commits of one 250-reading batch (one gateway, one receipt)
 *   live     commits of 100 one-reading messages (100 gateways, a receipt each)
 * Readings are the bench fleet's pulse-oximeter readings (scripts/support/gateway-fleet.ts), two observations
 * each, spread over 1,000 gateways; every database starts empty.
 *
 * SQLite: the encrypted store with its defaults (synchronous=FULL). PostgreSQL: a throwaway server with fsync
 * ON and wal_buffers 16MB (scripts/support/clinic-bench-pg.ts, BENCH_PG_SETTINGS), as production would run it.
 *
 * Options: --stores sqlite,pg --readings 50000 (per case) --backlog-commit 250 (readings per backlog commit, in
 * 250-reading messages: the intake's group commit puts several in one) --dir DIR (where the SQLite files go; a temporary
 * folder, deleted afterwards, by default).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ClinicStore, IncomingMeasurement } from '../src/clinic/storage/clinic-store.js';
import { SqliteClinicStore } from '../src/clinic/storage/sqlite/sqlite-clinic-store.js';
import { openPgStore, postgresMissing, startBenchPostgres } from './support/clinic-bench-pg.js';
import { fleetMeasurement } from './support/gateway-fleet.js';
import { printTable } from './support/table.js';

const { values } = parseArgs({
  options: {
    help: { type: 'boolean', short: 'h' },
    stores: { type: 'string', default: 'sqlite,pg' },
    readings: { type: 'string', default: '50000' },
    'backlog-commit': { type: 'string', default: '250' },
    dir: { type: 'string' },
  },
});

if (values.help) {
  console.log(
    [
      'Usage: npm run bench:clinic-store [-- options]',
      '  the clinic stores alone: commits as the intake makes them, no MQTT (docs/clinic-intake.md, "Benchmark")',
      '  --stores sqlite,pg     stores to measure (default both; pg needs Debian postgresql-15)',
      '  --readings 50000       readings per case',
      '  --backlog-commit 250   readings per backlog commit, in 250-reading messages',
      '  --dir DIR              where the SQLite files go (default: a temporary folder, removed after)',
    ].join('\n'),
  );
  process.exit(0);
}

const READINGS = Number(values.readings);
const GATEWAYS = 1000;
const SHAPES = [
  { name: 'backlog', perCommit: Number(values['backlog-commit']), perMessage: 250 },
  { name: 'live', perCommit: 100, perMessage: 1 },
] as const;

type Shape = (typeof SHAPES)[number];

/** The commits of one case, built before the clock starts. */
function commitsOf(shape: Shape): IncomingMeasurement[][] {
  const commits: IncomingMeasurement[][] = [];
  const next = new Map<number, number>();
  let message = 0;
  for (let done = 0; done < READINGS; done += shape.perCommit) {
    const commit: IncomingMeasurement[] = [];
    for (let i = 0; i < shape.perCommit; i += shape.perMessage) {
      const gateway = message % GATEWAYS;
      const gatewayId = `gw-${String(gateway).padStart(4, '0')}`;
      const receipt = {
        gatewayId,
        topic: 'obs' as const,
        batchSeq: message,
        sentAt: Date.UTC(2027, 0, 1) + message,
        signerSerial: '0a1b2c3d4e5f',
        receivedAt: Date.UTC(2027, 0, 1) + message + 5,
      };
      message++;
      for (let r = 0; r < shape.perMessage; r++) {
        const n = next.get(gateway) ?? 0;
        next.set(gateway, n + 1);
        const measurement = fleetMeasurement(gatewayId, n);
        commit.push({ measurement, measuredAt: Date.parse(measurement.time), receipt });
      }
    }
    commits.push(commit);
  }
  return commits;
}

/** Wall seconds, and this process's CPU seconds (user + system: SQLite's work, not PostgreSQL's server's). */
async function timeCommits(
  store: ClinicStore,
  commits: IncomingMeasurement[][],
): Promise<{ seconds: number; cpu: number }> {
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  let stored = 0;
  for (const measurements of commits) {
    const outcome = await store.commit({ measurements, gaps: [], statuses: [], rejections: [] });
    stored += outcome.inserted.length;
  }
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  if (stored !== READINGS) throw new Error(`stored ${stored} readings of ${READINGS}`);
  return { seconds, cpu: (cpu.user + cpu.system) / 1e6 };
}

const stores = values.stores.split(',');
const rows: string[][] = [['store', 'shape', 'readings', 'commits', 's', 'readings/s', 'ms/commit', 'CPU s']];
const dir = values.dir ?? mkdtempSync(join(tmpdir(), 'bench-clinic-store-'));
const loadBefore = loadavg()[0] as number;

function row(
  store: string,
  shape: Shape,
  commits: number,
  { seconds, cpu }: { seconds: number; cpu: number },
): string[] {
  return [
    store,
    shape.name,
    READINGS.toLocaleString('en-US'),
    commits.toLocaleString('en-US'),
    seconds.toFixed(1),
    Math.round(READINGS / seconds).toLocaleString('en-US'),
    ((seconds * 1000) / commits).toFixed(1),
    cpu.toFixed(1),
  ];
}

try {
  for (const shape of SHAPES) {
    const commits = commitsOf(shape);
    if (stores.includes('sqlite')) {
      const path = join(dir, `${shape.name}-${Date.now()}.db`);
      const store = await SqliteClinicStore.open({ path, key: randomBytes(32) });
      try {
        rows.push(row('sqlite', shape, commits.length, await timeCommits(store, commits)));
      } finally {
        await store.close();
      }
      console.error(`sqlite ${shape.name} done`);
    }
  }
  if (stores.includes('pg')) {
    const missing = postgresMissing();
    if (missing !== undefined) {
      console.error(`PostgreSQL skipped: ${missing}`);
    } else {
      const server = await startBenchPostgres();
      try {
        for (const shape of SHAPES) {
          const commits = commitsOf(shape);
          const store = await openPgStore(await server.database());
          try {
            rows.push(row('pg', shape, commits.length, await timeCommits(store, commits)));
          } finally {
            await store.close();
          }
          console.error(`pg ${shape.name} done`);
        }
      } finally {
        // Bounded: a stop that hangs must not keep the table from printing.
        await Promise.race([server.stop(), new Promise((resolve) => setTimeout(resolve, 15_000))]);
      }
    }
  }
} finally {
  if (values.dir === undefined) rmSync(dir, { recursive: true, force: true });
}

printTable(rows);
console.log(
  `load average ${loadBefore.toFixed(1)} before, ${(loadavg()[0] as number).toFixed(1)} after (2 cores, shared)`,
);
