import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bundle, Observation } from 'fhir/r4.js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ExportCycle,
  FhirExporter,
  type FhirExporterOptions,
} from '../../../src/clinic/fhir/exporter.js';
import { mapMeasurement } from '../../../src/clinic/fhir/mapping.js';
import type { ClinicStore, ExportResult } from '../../../src/clinic/storage/clinic-store.js';
import { SqliteClinicStore } from '../../../src/clinic/storage/sqlite/sqlite-clinic-store.js';
import { createDevelopmentPki } from '../../../src/pki/dev-pki.js';
import { VirtualScheduler } from '../../../src/util/scheduler.js';
import { TestFhirServer } from './fhir-server.js';
import { validate } from './r4.js';
import {
  battery,
  bloodPressure,
  continuous,
  cuffInflating,
  GATEWAY,
  glucose,
  heartRate,
  MRN,
  PATIENT_SYSTEM,
  SYSTEM_BASE,
  sample,
  spotCheck,
  T0,
  temperature,
  weight,
} from './samples.js';

const MINUTE = 60_000;
const mapping = { patientIdentifierSystem: PATIENT_SYSTEM, systemBase: SYSTEM_BASE };

/** Drives an exporter in virtual time: each step moves the clock to the next cycle and waits for it to finish. */
function driver(exporter: FhirExporter, scheduler: VirtualScheduler) {
  let nextAt = scheduler.now();
  return async (): Promise<ExportCycle> => {
    const done = once(exporter, 'cycle') as Promise<[ExportCycle]>;
    await scheduler.advanceAsync(Math.max(0, nextAt - scheduler.now()));
    const [cycle] = await done;
    nextAt = cycle.nextAt ?? scheduler.now();
    return cycle;
  };
}

async function assigned(store: ClinicStore, gatewayId = GATEWAY, mrn = MRN): Promise<void> {
  await store.assign({ gatewayId, mrn, from: T0 - 24 * 60 * MINUTE, createdBy: 'test', at: T0 });
}

const KEY = Uint8Array.from(Buffer.from('5e'.repeat(32), 'hex'));
const stores: ClinicStore[] = [];

/**
 * The real (encrypted) SQLite ClinicStore in a temporary folder, with completeExports recorded so a test can
 * say which measurement ended how (the interface has counts only).
 */
async function openStore(): Promise<ClinicStore & { readonly completed: ExportResult[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'fhir-store-'));
  folders.push(dir);
  const store = await SqliteClinicStore.open({
    path: join(dir, 'clinic.db'),
    key: KEY,
    clock: { now: () => T0 },
  });
  stores.push(store);
  const completed: ExportResult[] = [];
  return new Proxy(store, {
    get(target, property) {
      if (property === 'completed') return completed;
      if (property === 'completeExports') {
        return async (results: readonly ExportResult[]) => {
          await target.completeExports(results);
          completed.push(...results);
        };
      }
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as SqliteClinicStore & { readonly completed: ExportResult[] };
}

const servers: TestFhirServer[] = [];
const folders: string[] = [];
const exporters: FhirExporter[] = [];
afterEach(async () => {
  for (const e of exporters.splice(0)) await e.stop();
  for (const s of servers.splice(0)) await s.stop();
  for (const s of stores.splice(0)) await s.close();
  for (const f of folders.splice(0)) await rm(f, { recursive: true, force: true });
});

function exporterFor(options: Partial<FhirExporterOptions> & Pick<FhirExporterOptions, 'store' | 'target'>) {
  const scheduler = new VirtualScheduler(T0 + 60 * MINUTE);
  const exporter = new FhirExporter({ mapping, scheduler, random: () => 0.5, idleMs: 10_000, ...options });
  exporters.push(exporter);
  return { exporter, scheduler, step: driver(exporter, scheduler) };
}

describe('FhirExporter', () => {
  it('loses nothing while the FHIR server is down: retries with backoff in virtual time, then exports each once', async () => {
    const server = new TestFhirServer();
    servers.push(server);
    await server.start(); // learn a free port, then take the endpoint down
    await server.stop();
    const store = await openStore();
    const readings = [spotCheck(), bloodPressure({ skewMs: -90_000 }), temperature(), weight(), glucose()];
    await store.commit({ measurements: readings, gaps: [], statuses: [], rejections: [] });
    await assigned(store);

    const { exporter, scheduler, step } = exporterFor({
      store,
      target: { kind: 'http', baseUrl: server.url },
    });
    exporter.start();
    const failures: ExportCycle[] = [];
    const startedAt = scheduler.now();
    while (scheduler.now() - startedAt < 10 * MINUTE) {
      const cycle = await step();
      expect(cycle).toMatchObject({ leased: 5, exported: 0, failed: 5, error: 'FHIR_UNREACHABLE' });
      failures.push(cycle);
    }
    // Full-jitter backoff (random 0.5): 0.5 s, 1 s, 2 s ... doubling to the 5 min cap: a few attempts, not a storm.
    expect(failures.length).toBeGreaterThanOrEqual(8);
    expect(failures.length).toBeLessThan(14);
    expect(await store.exportCounts()).toEqual({ pending: 0, exported: 0, skipped: 0, failing: 5 });

    await server.start(); // back on the same port, with the same (empty) repository
    let cycle = await step();
    expect(cycle).toMatchObject({ leased: 5, exported: 5, failed: 0 });
    cycle = await step();
    expect(cycle.leased).toBe(0);

    expect(await store.exportCounts()).toEqual({ pending: 0, exported: 5, skipped: 0, failing: 0 });
    const exportedIds = store.completed.filter((r) => r.outcome === 'exported').map((r) => r.measurementId);
    expect(exportedIds.sort()).toEqual(readings.map((r) => r.measurement.id).sort());
    // 3 (spot check) + 2 (BP panel, pulse) + 1 + 3 (weight, BMI, height) + 1 = 10, plus one coincident time stamp.
    const observations = await server.all<Observation>('Observation');
    expect(observations).toHaveLength(11);
    const ids = new Set(
      observations
        .flatMap((o) => o.identifier?.filter((i) => i.system?.endsWith('/measurement-id')) ?? [])
        .map((i) => i.value?.split('/')[0]),
    );
    expect([...ids].sort()).toEqual(readings.map((r) => r.measurement.id).sort());
  });

  it('holds an unassigned gateway readings in the queue and exports them once the gateway is assigned', async () => {
    const server = new TestFhirServer();
    servers.push(server);
    await server.start();
    const store = await openStore();
    await store.commit({
      measurements: [spotCheck(), temperature()],
      gaps: [],
      statuses: [],
      rejections: [],
    });
    const { exporter, step } = exporterFor({ store, target: { kind: 'http', baseUrl: server.url } });
    exporter.start();
    expect(await step()).toMatchObject({ leased: 0 });
    expect(await step()).toMatchObject({ leased: 0 });
    expect(server.requests).toBe(0);
    expect(await store.exportCounts()).toMatchObject({ pending: 2, exported: 0 });

    await assigned(store);
    expect(await step()).toMatchObject({ leased: 2, exported: 2 });
    expect(await server.all<Observation>('Observation')).toHaveLength(4);
    const subjects = new Set(
      (await server.all<Observation>('Observation')).map((o) => o.subject?.identifier?.value),
    );
    expect([...subjects]).toEqual([MRN]);
  });

  it('thins a 1 Hz stream to one per interval and exports every spot measurement', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fhir-export-'));
    folders.push(dir);
    const store = await openStore();
    // 20 minutes of PLX continuous and heart rate at 1 Hz, spot readings in between, and non-results.
    const stream = Array.from({ length: 20 * 60 }, (_, i) => continuous(T0 + i * 1000));
    const hr = Array.from({ length: 20 * 60 }, (_, i) => heartRate(T0 + i * 1000 + 500));
    const spots = [spotCheck(T0 + 30_000), bloodPressure({ at: T0 + 7 * MINUTE }), glucose(T0 + 12 * MINUTE)];
    const notResults = [battery(T0 + 1000), cuffInflating(T0 + 2000)];
    await store.commit({
      measurements: [...stream, ...hr, ...spots, ...notResults],
      gaps: [],
      statuses: [],
      rejections: [],
    });
    await assigned(store);

    const { exporter, step } = exporterFor({
      store,
      target: { kind: 'folder', folder: dir },
      batchSize: 250,
    });
    exporter.start();
    for (;;) if ((await step()).leased === 0) break;

    const exported = new Set(
      store.completed.filter((r) => r.outcome === 'exported').map((r) => r.measurementId),
    );
    const at = (list: typeof stream) =>
      list.filter((m) => exported.has(m.measurement.id)).map((m) => (m.measuredAt - T0) / 1000);
    expect(at(stream)).toEqual([0, 300, 600, 900]);
    expect(at(hr)).toEqual([0.5, 300.5, 600.5, 900.5]);
    for (const s of spots) expect(exported).toContain(s.measurement.id);
    expect(await store.exportCounts()).toEqual({
      pending: 0,
      exported: 11,
      skipped: 2 * 1200 - 8 + 2,
      failing: 0,
    });
    const why = new Map(
      store.completed.filter((r) => r.outcome === 'skipped').map((r) => [r.measurementId, r.why]),
    );
    expect(why.get((notResults[0] ?? battery()).measurement.id)).toBe('info reading, not a result');
    expect(why.get((stream[1] ?? continuous(0)).measurement.id)).toMatch(/thinned/);

    // The folder holds one file per Bundle (no temporary files left), each a valid transaction, mode 0600.
    const files = await readdir(dir);
    expect(files.every((f) => /^bundle-[0-9a-f]{32}\.json$/.test(f))).toBe(true);
    expect(files.length).toBeGreaterThan(1);
    let observations = 0;
    for (const f of files) {
      expect((await stat(join(dir, f))).mode & 0o777).toBe(0o600);
      const bundle = JSON.parse(await readFile(join(dir, f), 'utf8')) as Bundle;
      expect(validate(bundle).filter((v) => v.errors.length > 0)).toEqual([]);
      observations += (bundle.entry ?? []).filter((e) => e.resource?.resourceType === 'Observation').length;
    }
    // 4 x 3 (PLX fast/slow) + 4 (heart rate) + 3 + 2 + 1 (spots)
    expect(observations).toBe(22);
  });

  it('escapes FHIR search characters in ifNoneExist, so a replay still finds the resources', async () => {
    const server = new TestFhirServer();
    servers.push(server);
    await server.start();
    const store = await openStore();
    const odd = sample({
      characteristic: '2a1c',
      deviceId: 'dev|a,b$c\\d',
      observations: [{ code: 'MDC_TEMP_BODY', value: 36.9, unit: 'Cel' }],
    });
    await store.commit({ measurements: [odd], gaps: [], statuses: [], rejections: [] });
    await assigned(store);
    const { exporter, step } = exporterFor({ store, target: { kind: 'http', baseUrl: server.url } });
    exporter.start();
    expect(await step()).toMatchObject({ leased: 1, exported: 1 });
    // Export it again (a crash between upload and completeExports): nothing new is created.
    const second = await openStore();
    await second.commit({ measurements: [odd], gaps: [], statuses: [], rejections: [] });
    await assigned(second);
    const again = exporterFor({ store: second, target: { kind: 'http', baseUrl: server.url } });
    again.exporter.start();
    expect(await again.step()).toMatchObject({ leased: 1, exported: 1 });
    expect(await server.all<Observation>('Observation')).toHaveLength(1);
    expect(await server.all('Device')).toHaveLength(2);
  });

  it('sends a Bundle the server refuses one measurement at a time, so one bad reading holds back nothing', async () => {
    const server = new TestFhirServer();
    servers.push(server);
    await server.start();
    const store = await openStore();
    const good = spotCheck();
    const bad = temperature();
    await store.commit({ measurements: [good, bad], gaps: [], statuses: [], rejections: [] });
    await assigned(store);
    // Someone else already stored two Observations under the bad reading's identifier: its conditional create
    // matches twice, which the server refuses (R4 http.html#ccreate: 412 Precondition Failed).
    const clash = mapMeasurement({ ...bad, committedAt: T0 }, MRN, mapping).observations[0]
      ?.resource as Observation;
    for (let i = 0; i < 2; i++) await server.repo.createResource(clash as never);
    const { exporter, step } = exporterFor({ store, target: { kind: 'http', baseUrl: server.url } });
    exporter.start();
    const cycle = await step();
    expect(cycle).toMatchObject({ leased: 2, exported: 1, failed: 1, error: 'FHIR_REJECTED' });
    expect(store.completed.find((r) => r.measurementId === good.measurement.id)?.outcome).toBe('exported');
    const failed = store.completed.find((r) => r.measurementId === bad.measurement.id);
    expect(failed).toMatchObject({
      outcome: 'failed',
      error: expect.stringMatching(/^FHIR_REJECTED: .*HTTP 412/),
    });
    expect(await server.all<Observation>('Observation')).toHaveLength(2 + 3);
  });

  it('posts over HTTPS trusting the clinic CA, with the bearer token read from its file at every send', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fhir-tls-'));
    folders.push(dir);
    const pki = await createDevelopmentPki(dir);
    const server = new TestFhirServer({
      tls: { cert: pki.pem.broker, key: pki.pem.brokerKey },
      bearerToken: 'tok-2',
    });
    servers.push(server);
    await server.start();
    const tokenFile = join(dir, 'fhir.token');
    await writeFile(tokenFile, 'tok-1\n', { mode: 0o600 });
    const store = await openStore();
    await store.commit({ measurements: [temperature()], gaps: [], statuses: [], rejections: [] });
    await assigned(store);
    const { exporter, step } = exporterFor({
      store,
      target: { kind: 'http', baseUrl: server.url, caFile: pki.files.ca, bearerTokenFile: tokenFile },
    });
    exporter.start();
    expect(await step()).toMatchObject({ leased: 1, failed: 1, error: 'FHIR_UNAUTHORIZED' });
    await writeFile(tokenFile, 'tok-2\n', { mode: 0o600 }); // rotated: the next attempt uses it
    expect(await step()).toMatchObject({ leased: 1, exported: 1 });
    expect(await server.all<Observation>('Observation')).toHaveLength(1);

    // Without the clinic CA the server's certificate is not trusted: an unreachable server, nothing lost.
    const other = await openStore();
    await other.commit({ measurements: [temperature(T0 + MINUTE)], gaps: [], statuses: [], rejections: [] });
    await assigned(other);
    const untrusting = exporterFor({
      store: other,
      target: { kind: 'http', baseUrl: server.url, bearerTokenFile: tokenFile },
    });
    untrusting.exporter.start();
    expect(await untrusting.step()).toMatchObject({ leased: 1, failed: 1, error: 'FHIR_UNREACHABLE' });
    expect(await other.exportCounts()).toMatchObject({ failing: 1 });
  });
});
