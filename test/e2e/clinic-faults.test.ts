import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Observation } from 'fhir/r4.js';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createFleet,
  type FleetGateway,
  type SignedMessage,
  signedBatch,
  writeFleetCertificates,
} from '../../scripts/support/gateway-fleet.js';
import type { ClinicStore } from '../../src/clinic/storage/clinic-store.js';
import { openClinicStore } from '../../src/clinic/storage/open.js';
import { loadClinicConfig } from '../../src/config/clinic/load.js';
import { Children, type ClinicRig, clinicRig, events, waitFor } from '../clinic/cli/rig.js';
import { TestFhirServer } from '../clinic/fhir/fhir-server.js';
import type { CliProcess } from '../support/cli-process.js';
import { until } from '../support/until.js';

/**
 * The clinic's fault chain (issue 11, "Tests"), with real processes: `rpm-gateway broker` and `rpm-gateway clinic
 * intake` (the built CLI, dist/), simulated hubs publishing signed batches at QoS 1 over mutual TLS and
 * recording the ids the broker PUBACKed (from then on a hub deletes them), and a real FHIR endpoint
 * (@medplum/fhir-router behind HTTP, in this process) the intake exports to. After each fault:
 *
 *   readings PUBACKed to the hubs = readings in the clinic database = Observations at the FHIR endpoint
 *
 * each compared as a count and a checksum of the sorted measurement ids. The hubs' readings are a scale's
 * weights, spot readings the export policy exports every one of (docs/fhir.md, "Export policy"), each one
 * Observation, so the expected number of Observations is exact. The gateways are assigned to patients before
 * anything is published: the export waits for an assignment.
 *
 * The faults, in order, each on top of the previous state:
 * (b) the intake never connected: hubs publish to a broker whose intake has never connected; the broker
 *     provisioned the intake's sessions at start, so the readings wait there;
 * (a) broker SIGKILL with the intake offline: what it PUBACKed is on its disk, queued for the intake;
 * (c) intake SIGKILL with a backlog in flight: killed at its first commit of a stream the hubs are still
 *     publishing, so it dies holding messages received and not committed (the broker delivers them again);
 * (d) the FHIR endpoint down: the export fails, retries with backoff, loses nothing.
 */
const GATEWAYS = 3;
const MRN_SYSTEM = 'https://clinic.example/mrn';
const SYSTEM_BASE = 'https://clinic.example/fhir/rpm';
const MEASUREMENT_ID = `${SYSTEM_BASE}/measurement-id`;
/** Waits for work across processes on a busy 2-core machine. */
const WAIT = { timeoutMs: 60_000, intervalMs: 100 };

let root: string;
let rig: ClinicRig;
let fleet: FleetGateway[];
const fhir = new TestFhirServer();
const children = new Children();
/** Every reading id a broker PUBACKed to a hub. */
const acked = new Set<string>();
/** The next reading number and batch seq of each gateway. */
const next = new Map<string, { n: number; seq: number }>();
let broker: CliProcess | undefined;
let intake: CliProcess | undefined;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rpm-clinic-faults-'));
  await fhir.start();
  // The export's backoff: 200 ms doubling to 2 s (the default is 1 s to 5 min), see fault (d).
  const fhirSection = [
    'fhir:',
    '  enabled: true',
    `  target: { baseUrl: "http://127.0.0.1:${fhir.port}/fhir/R4" }`,
    `  patientIdentifierSystem: ${MRN_SYSTEM}`,
    `  systemBase: ${SYSTEM_BASE}`,
    '  backoff: { base: 200ms, cap: 2s, stableAfter: 0s }',
  ].join('\n');
  rig = await clinicRig(root, fhirSection);
  fleet = await createFleet(rig.pki.ca, GATEWAYS, 'gw-fault');
  writeFleetCertificates(fleet, rig.gatewayCerts);
  for (const g of fleet) next.set(g.id, { n: 0, seq: 1 });
  const init = children.spawn(['clinic', 'init', '--config', rig.config], {});
  expect((await init.exited).code).toBe(0);
  // Every gateway assigned from before its first reading (the fleet measures from 2026-12-01).
  const assigned = await Promise.all(
    fleet.map(
      (g, i) =>
        children.spawn(
          ['clinic', 'assign', g.id, `MRN-${i}`, '--from', '2026-11-30T00:00:00Z', '--config', rig.config],
          {},
        ).exited,
    ),
  );
  expect(assigned.map((a) => a.code)).toEqual(fleet.map(() => 0));
}, 60_000);

afterAll(async () => {
  children.killAll();
  await fhir.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

/** `count` batches of `size` new weight readings per gateway. */
function batches(count: number, size: number): SignedMessage[][] {
  return fleet.map((g) => {
    const at = next.get(g.id) as { n: number; seq: number };
    const messages = Array.from({ length: count }, (_, i) =>
      signedBatch(g, {
        seq: at.seq + i,
        first: at.n + i * size,
        count: size,
        sentAt: Date.now(),
        reading: 'weight',
      }),
    );
    next.set(g.id, { n: at.n + count * size, seq: at.seq + count });
    return messages;
  });
}

/** The hubs publish their messages at QoS 1, in parallel, one after another each (as an uplink does). */
async function publish(perGateway: readonly SignedMessage[][]): Promise<void> {
  await Promise.all(
    fleet.map(async (g, i) => {
      const hub = await mqtt.connectAsync({
        protocol: 'mqtts',
        host: '127.0.0.1',
        port: rig.port,
        servername: 'localhost',
        ca: rig.pki.pem.ca,
        cert: g.certificatePem,
        key: g.privateKeyPem,
        clientId: g.id,
        reconnectPeriod: 0,
      });
      try {
        for (const m of perGateway[i] ?? []) {
          await hub.publishAsync(m.topic, m.payload, { qos: 1 });
          for (const id of m.ids) acked.add(id); // the broker's PUBACK: the hub would delete them now
        }
      } finally {
        await hub.endAsync();
      }
    }),
  );
}

async function withStore<T>(use: (store: ClinicStore) => Promise<T>): Promise<T> {
  const { config } = loadClinicConfig({ configFile: rig.config, env: {}, defaultConfigFile: '/nonexistent' });
  const store = await openClinicStore(config.database, { env: {}, mode: 'existing' });
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}

const storedCount = () => withStore(async (store) => (await store.measurementIds()).length);

async function startBroker(): Promise<void> {
  broker = children.spawn(['broker', '--config', rig.config], {});
  await waitFor(broker, 'broker.listening');
}

async function startIntake(): Promise<CliProcess> {
  intake = children.spawn(['clinic', 'intake', '--config', rig.config], {});
  await waitFor(intake, 'intake.connected');
  return intake;
}

async function stop(run: CliProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (run === undefined || run.child.exitCode !== null || run.child.signalCode !== null) return;
  run.child.kill(signal);
  const { code, signal: got } = await run.exited;
  if (signal === 'SIGTERM') expect(code).toBe(0);
  else expect(got).toBe(signal);
}

const digest = (ids: readonly string[]) =>
  createHash('sha256')
    .update([...ids].sort().join('\n'))
    .digest('hex');

/**
 * The chain: waits until the database holds as many readings as the hubs saw PUBACKed and the export has
 * recorded every one exported, then compares the three by count and checksum.
 */
async function expectChainHolds(): Promise<void> {
  const expected = [...acked];
  await until(
    `the database to hold ${expected.length} readings`,
    async () => (await storedCount()) >= expected.length,
    WAIT,
  );
  await until(
    `the export of ${expected.length} readings`,
    () =>
      withStore(async (store) => {
        const counts = await store.exportCounts();
        return counts.exported >= expected.length && counts.pending === 0 && counts.failing === 0;
      }),
    WAIT,
  );
  const stored = await withStore((store) => store.measurementIds());
  expect(stored.length).toBe(expected.length);
  expect(digest(stored)).toBe(digest(expected));

  const counts = await withStore((store) => store.exportCounts());
  expect(counts).toEqual({ pending: 0, exported: expected.length, skipped: 0, failing: 0 });
  const observations = await fhir.all<Observation>('Observation');
  // One Observation per weight reading: none missing, none twice (each upload a conditional create).
  expect(observations.length).toBe(expected.length);
  const sources = observations.flatMap(
    (o) =>
      o.identifier
        ?.filter((i) => i.system === MEASUREMENT_ID)
        .map((i) => (i.value as string).split('/')[0] as string) ?? [],
  );
  expect(sources.length).toBe(expected.length);
  expect(digest(sources)).toBe(digest(expected));
}

describe('the clinic fault chain: PUBACKed = stored = exported after each fault', () => {
  it('(b) the intake never connected: the broker keeps what it PUBACKed in the provisioned session', async () => {
    await startBroker();
    await publish(batches(2, 50));
    expect(acked.size).toBe(GATEWAYS * 100);
    expect(await storedCount()).toBe(0);
    await startIntake();
    await expectChainHolds();
  }, 90_000);

  it('(a) broker SIGKILL with the intake offline: the queue on disk survives', async () => {
    await stop(intake, 'SIGTERM');
    const before = acked.size;
    await publish(batches(2, 50));
    expect(acked.size).toBe(before + GATEWAYS * 100);
    await stop(broker, 'SIGKILL');
    await startBroker();
    await startIntake();
    await expectChainHolds();
  }, 90_000);

  it('(c) intake SIGKILL with a backlog in flight: nothing lost, nothing twice', async () => {
    const before = await storedCount();
    const publishing = publish(batches(16, 50));
    // Killed at its first commit of the stream, while the hubs are still publishing to it.
    await until('the intake to commit part of the stream', async () => (await storedCount()) > before, {
      timeoutMs: 30_000,
      intervalMs: 20,
    });
    await stop(intake, 'SIGKILL');
    const atKill = await storedCount();
    await publishing;
    expect(atKill, 'killed mid-stream').toBeLessThan(acked.size);
    await startIntake();
    await expectChainHolds();
  }, 120_000);

  it('(d) the FHIR endpoint down: the export retries with backoff and loses nothing', async () => {
    // A minute's outage with the default backoff (1 s doubling to 5 min) is about six failed uploads, the delay
    // doubling throughout. Virtual time does not reach across processes, so the outage here is real and the
    // backoff small (200 ms doubling to 2 s): the endpoint stays down until the exporter has failed at least
    // ten times (about 10-15 s), which goes through the same states, the delay doubling and then held at its
    // cap, with readings arriving meanwhile. What is being shown does not depend on the wall-clock length:
    // readings wait in the clinic database's queue, however long, until an upload succeeds.
    await fhir.stop();
    const failures = () => events(intake as CliProcess).filter((e) => e.event === 'fhir.export.failed');
    const before = failures().length;
    await publish(batches(2, 50));
    await until('ten failed uploads', () => failures().length >= before + 10, WAIT);
    const failing = await withStore(async (store) => (await store.exportCounts()).failing);
    expect(failing, 'readings waiting for the endpoint').toBeGreaterThan(0);
    expect(failures().every((e) => e.code === 'FHIR_UNREACHABLE')).toBe(true);
    await fhir.start(); // the same port and repository
    await expectChainHolds();
    await stop(intake, 'SIGTERM');
    await stop(broker, 'SIGTERM');
  }, 120_000);
});
