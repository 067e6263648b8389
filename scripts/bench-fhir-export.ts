/**
 * `npm run bench:fhir`: how fast the FHIR exporter (src/clinic/fhir) drains the clinic database's export queue,
 * against issue 11's goal "FHIR export keeping up with 1,000 readings/s". docs/fhir.md, "Throughput", has the
 * method and results.
 *
 * For each store (SQLite encrypted in a temporary folder; PostgreSQL on a throwaway server with fsync on, when
 * installed) and each target (a folder; an HTTP FHIR endpoint):
 *   1. a fresh store is filled with N spot readings (blood pressure, weight, SpO2 spot checks:
 *      scripts/support/fhir-bench-readings.ts) from G gateways, each gateway assigned to its own patient;
 *   2. a child process (scripts/support/fhir-bench-exporter.ts) runs one FhirExporter until the queue is empty
 *      and reports wall time, CPU and peak RSS: the figure is the exporter's (lease, policy, map, build,
 *      serialize, POST or write, complete);
 *   3. the Observations are counted at the target (the endpoint's creations, or the entries of the files).
 * The HTTP endpoint is scripts/support/fhir-bench-endpoint.ts (a minimal transaction endpoint with conditional
 * create semantics) in this process, which is otherwise idle while the exporter runs.
 *
 * Options: --readings 100000 --gateways 1000 --batch-size (exporter default) --stores sqlite,pg
 * --targets folder,http --cpu-prof DIR (profile the exporter child) --keep (keep the temporary folder).
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Bundle } from 'fhir/r4.js';
import type { FhirTargetOptions } from '../src/clinic/fhir/exporter.js';
import type { ClinicStore, IncomingMeasurement } from '../src/clinic/storage/clinic-store.js';
import { SqliteClinicStore } from '../src/clinic/storage/sqlite/sqlite-clinic-store.js';
import { openPgStore, postgresMissing, startBenchPostgres } from './support/clinic-bench-pg.js';
import { BenchFhirEndpoint } from './support/fhir-bench-endpoint.js';
import type { BenchExporterJob, BenchStoreRef } from './support/fhir-bench-exporter.js';
import { spotReading } from './support/fhir-bench-readings.js';
import { printTable } from './support/table.js';

const { values } = parseArgs({
  options: {
    help: { type: 'boolean', short: 'h' },
    readings: { type: 'string', default: '100000' },
    gateways: { type: 'string', default: '1000' },
    'batch-size': { type: 'string', default: '100' },
    stores: { type: 'string', default: 'sqlite,pg' },
    targets: { type: 'string', default: 'folder,http' },
    'cpu-prof': { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});

if (values.help) {
  console.log(
    [
      'Usage: npm run bench:fhir [-- options]',
      '  FHIR export from the clinic database to a folder and to a FHIR server over HTTP (docs/fhir.md, "Throughput")',
      '  --readings 100000       spot readings exported per case',
      '  --gateways 1000         gateways (and patients) they come from',
      '  --batch-size 100        readings per transaction Bundle',
      '  --stores sqlite,pg      clinic databases (default both; pg needs Debian postgresql-15)',
      '  --targets folder,http   where the Bundles go',
      '  --cpu-prof DIR          write a CPU profile of the exporter process to DIR',
      '  --keep                  keep the temporary folder',
    ].join('\n'),
  );
  process.exit(0);
}

/** Issue 11, "Benchmark": FHIR export keeping up with 1,000 readings/s. */
const GOAL_READINGS = 1_000;
const READINGS = Number(values.readings);
const GATEWAYS = Number(values.gateways);
const BATCH_SIZE = Number(values['batch-size']);
const START = Date.UTC(2026, 10, 1);
const COMMIT_CHUNK = 1_000;

const here = fileURLToPath(new URL('.', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'rpm-bench-fhir-'));

function loadText(): string {
  return loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');
}

/** Fills a store: G gateways, each its own patient from a day before the first reading, N readings in turn. */
async function fill(store: ClinicStore): Promise<number> {
  const started = performance.now();
  for (let g = 0; g < GATEWAYS; g++) {
    await store.assign({
      gatewayId: gatewayId(g),
      mrn: `MRN-${g.toString().padStart(6, '0')}`,
      from: START - 86_400_000,
      timeZone: 'Europe/Berlin',
      createdBy: 'bench',
      at: START,
    });
  }
  let chunk: IncomingMeasurement[] = [];
  for (let i = 0; i < READINGS; i++) {
    chunk.push(spotReading(gatewayId(i % GATEWAYS), Math.floor(i / GATEWAYS), START));
    if (chunk.length === COMMIT_CHUNK || i === READINGS - 1) {
      await store.commit({ measurements: chunk, gaps: [], statuses: [], rejections: [] });
      chunk = [];
    }
  }
  return (performance.now() - started) / 1000;
}

function gatewayId(g: number): string {
  return `gw-fhir-${g.toString().padStart(4, '0')}`;
}

interface ExporterReport {
  readonly seconds: number;
  readonly cpuUserMs: number;
  readonly cpuSystemMs: number;
  readonly maxRssMb: number;
  readonly cycles: number;
  readonly exported: number;
  readonly skipped: number;
  readonly failed: number;
  readonly counts: { pending: number; exported: number; skipped: number; failing: number };
}

function runExporter(job: BenchExporterJob, label: string): Promise<ExporterReport> {
  const execArgv = [...process.execArgv];
  if (values['cpu-prof'] !== undefined) {
    mkdirSync(values['cpu-prof'], { recursive: true });
    execArgv.push(
      '--cpu-prof',
      '--cpu-prof-dir',
      values['cpu-prof'],
      '--cpu-prof-name',
      `fhir-export-${label}.cpuprofile`,
    );
  }
  const child = fork(join(here, 'support', 'fhir-bench-exporter.js'), [], { execArgv });
  return new Promise((resolve, reject) => {
    let report: ExporterReport | undefined;
    child.on('message', (m: { type: string; message?: string } & ExporterReport) => {
      if (m.type === 'done') report = m;
      else reject(new Error(`the exporter failed: ${m.message}`));
    });
    child.on('error', reject);
    // The profile is written at exit: wait for it, not only for the report.
    child.on('exit', (code) =>
      report !== undefined ? resolve(report) : reject(new Error(`the exporter exited with ${code}`)),
    );
    child.send(job);
  });
}

/** Observations in the folder's Bundles (every entry of every file). */
function observationsInFolder(folder: string): number {
  let n = 0;
  for (const name of readdirSync(folder)) {
    const bundle = JSON.parse(readFileSync(join(folder, name), 'utf8')) as Bundle;
    for (const e of bundle.entry ?? []) if (e.resource?.resourceType === 'Observation') n++;
  }
  return n;
}

interface Row {
  readonly store: string;
  readonly target: string;
  readonly fillSeconds: number;
  readonly report: ExporterReport;
  readonly observations: number;
}

async function benchStore(
  storeName: 'sqlite' | 'pg',
  target: 'folder' | 'http',
  open: () => Promise<{ store: ClinicStore; ref: BenchStoreRef }>,
): Promise<Row> {
  const { store, ref } = await open();
  const fillSeconds = await fill(store);
  await store.close();

  const label = `${storeName}-${target}`;
  let targetOptions: FhirTargetOptions;
  let endpoint: BenchFhirEndpoint | undefined;
  const folder = join(root, `bundles-${label}`);
  if (target === 'http') {
    endpoint = new BenchFhirEndpoint();
    await endpoint.start();
    targetOptions = { kind: 'http', baseUrl: endpoint.url };
  } else {
    mkdirSync(folder, { mode: 0o700 });
    targetOptions = { kind: 'folder', folder };
  }
  try {
    const report = await runExporter({ store: ref, target: targetOptions, batchSize: BATCH_SIZE }, label);
    const observations =
      endpoint !== undefined ? (endpoint.stats().created.Observation ?? 0) : observationsInFolder(folder);
    if (report.counts.exported !== READINGS || report.counts.pending + report.counts.failing !== 0) {
      throw new Error(`${label}: not every reading was exported: ${JSON.stringify(report.counts)}`);
    }
    return { store: storeName, target, fillSeconds, report, observations };
  } finally {
    await endpoint?.stop();
    rmSync(folder, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const stores = (values.stores as string).split(',');
  const targets = (values.targets as string).split(',') as ('folder' | 'http')[];
  console.log(
    `bench:fhir: ${READINGS} spot readings from ${GATEWAYS} gateways (one patient each), batch ${BATCH_SIZE}; load ${loadText()}`,
  );
  const rows: Row[] = [];
  const notes: string[] = [];
  const loads: string[] = [`start ${loadText()}`];

  if (stores.includes('sqlite')) {
    for (const target of targets) {
      rows.push(
        await benchStore('sqlite', target, async () => {
          const dir = mkdtempSync(join(root, 'sqlite-'));
          const key = randomBytes(32);
          const path = join(dir, 'clinic.db');
          const store = await SqliteClinicStore.open({ path, key });
          return { store, ref: { kind: 'sqlite', path, keyHex: key.toString('hex') } };
        }),
      );
      loads.push(`sqlite/${target} ${loadText()}`);
    }
  }
  if (stores.includes('pg')) {
    const missing = postgresMissing();
    if (missing !== undefined) notes.push(`PostgreSQL skipped: ${missing}`);
    else {
      const server = await startBenchPostgres();
      try {
        for (const target of targets) {
          rows.push(
            await benchStore('pg', target, async () => {
              const url = await server.database();
              return { store: await openPgStore(url), ref: { kind: 'pg', url } };
            }),
          );
          loads.push(`pg/${target} ${loadText()}`);
        }
      } finally {
        // The helper's watchdog (which stops the server) is unref'd: hold the event loop open until it is done,
        // or the process would end here with the table unprinted.
        const hold = setInterval(() => undefined, 1_000);
        await server.stop();
        clearInterval(hold);
      }
    }
  }

  const table: string[][] = [
    [
      'store / target',
      'readings',
      'Observations',
      'seconds',
      'readings/s',
      'Observations/s',
      'CPU s (user+sys)',
      'CPU %',
      'max RSS MB',
      `>= ${GOAL_READINGS} readings/s`,
    ],
  ];
  for (const r of rows) {
    const cpu = (r.report.cpuUserMs + r.report.cpuSystemMs) / 1000;
    const rate = r.report.exported / r.report.seconds;
    table.push([
      `${r.store} / ${r.target}`,
      String(r.report.exported),
      String(r.observations),
      r.report.seconds.toFixed(1),
      rate.toFixed(0),
      (r.observations / r.report.seconds).toFixed(0),
      cpu.toFixed(1),
      ((100 * cpu) / r.report.seconds).toFixed(0),
      r.report.maxRssMb.toFixed(0),
      rate >= GOAL_READINGS ? 'met' : 'NOT met',
    ]);
  }
  printTable(table);
  for (const r of rows) {
    console.log(
      `${r.store}/${r.target}: filled in ${r.fillSeconds.toFixed(1)} s, ${r.report.cycles} cycles, skipped ${r.report.skipped}, failed ${r.report.failed}`,
    );
  }
  for (const n of notes) console.log(n);
  console.log(`load average (1/5/15 min): ${loads.join('; ')}`);
}

main()
  .catch((error: unknown) => {
    console.error((error as Error).message);
    process.exitCode = 1;
  })
  .finally(() => {
    if (!values.keep) rmSync(root, { recursive: true, force: true });
    else console.log(`kept ${root}`);
  });
