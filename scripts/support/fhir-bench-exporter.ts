/**
 * The measured process of `bench:fhir` (forked by scripts/bench-fhir-export.ts): opens the clinic store the
 * orchestrator filled, runs one FhirExporter until the queue is drained, and reports its wall time, CPU and
 * peak RSS. Nothing else runs here, so the CPU and memory are the exporter's own: leasing, the policy, mapping,
 * building and serializing Bundles, the upload (or the folder write) and completing the exports.
 *
 * Message in:  { store: { kind: 'sqlite', path, keyHex } | { kind: 'pg', url }, target, batchSize }
 * Message out: { type: 'done', seconds, cpuUserMs, cpuSystemMs, maxRssMb, cycles, leased, exported, skipped,
 *               failed, counts }
 */
import { FhirExporter, type FhirTargetOptions } from '../../src/clinic/fhir/exporter.js';
import type { ClinicStore } from '../../src/clinic/storage/clinic-store.js';
import { SqliteClinicStore } from '../../src/clinic/storage/sqlite/sqlite-clinic-store.js';
import { openPgStore } from './clinic-bench-pg.js';

export type BenchStoreRef =
  | { readonly kind: 'sqlite'; readonly path: string; readonly keyHex: string }
  | { readonly kind: 'pg'; readonly url: string };

export interface BenchExporterJob {
  readonly store: BenchStoreRef;
  readonly target: FhirTargetOptions;
  readonly batchSize: number;
}

export const BENCH_MAPPING = {
  patientIdentifierSystem: 'urn:oid:2.999.1.2.3',
  systemBase: 'https://clinic.example.org/fhir/rpm-gateway',
};

async function openStore(ref: BenchStoreRef): Promise<ClinicStore> {
  if (ref.kind === 'pg') return openPgStore(ref.url);
  return SqliteClinicStore.open({ path: ref.path, key: Uint8Array.from(Buffer.from(ref.keyHex, 'hex')) });
}

async function run(job: BenchExporterJob): Promise<void> {
  const store = await openStore(job.store);
  const exporter = new FhirExporter({
    store,
    target: job.target,
    mapping: BENCH_MAPPING,
    batchSize: job.batchSize,
  });
  const totals = { cycles: 0, leased: 0, exported: 0, skipped: 0, failed: 0 };
  const cpu = process.cpuUsage();
  const started = performance.now();
  let finished = started;
  // Cycle after cycle until one leases nothing: runOnce is the loop's own cycle, without the timer between.
  for (;;) {
    const cycle = await exporter.runOnce();
    if (cycle.leased === 0) break;
    finished = performance.now();
    totals.cycles++;
    totals.leased += cycle.leased;
    totals.exported += cycle.exported;
    totals.skipped += cycle.skipped;
    totals.failed += cycle.failed;
    if (cycle.error !== undefined) throw new Error(`the export failed: ${cycle.error}`);
  }
  const used = process.cpuUsage(cpu);
  const counts = await store.exportCounts();
  await store.close();
  process.send?.({
    type: 'done',
    seconds: (finished - started) / 1000,
    cpuUserMs: used.user / 1000,
    cpuSystemMs: used.system / 1000,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
    ...totals,
    counts,
  });
}

process.once('message', (job: BenchExporterJob) => {
  run(job).then(
    () => process.disconnect?.(),
    (error: unknown) => {
      process.send?.({ type: 'error', message: (error as Error).message });
      process.disconnect?.();
      process.exitCode = 1;
    },
  );
});
