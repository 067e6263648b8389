import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createFleet,
  type FleetGateway,
  type SignedMessage,
  signedBatch,
  writeFleetCertificates,
} from '../../scripts/support/gateway-fleet.js';
import {
  mosquittoAvailable,
  type RunningMosquitto,
  startMosquitto,
} from '../../scripts/support/mosquitto.js';
import { type RunningPostgres, startPostgres } from '../../scripts/support/postgres.js';
import { PgClinicStore } from '../../src/clinic/storage/postgres/pg-clinic-store.js';
import { checkServerCertificate, createDevelopmentPki, type DevelopmentPki } from '../../src/pki/index.js';
import { signEnvelope } from '../../src/wire/cose.js';
import { encodeStatus } from '../../src/wire/index.js';
import type { CliProcess } from '../support/cli-process.js';
import { until } from '../support/until.js';
import { Children, events, waitFor } from './cli/rig.js';

/**
 * Scale-out on existing engines (docs/brokers.md, "Several intake processes"): three intake processes on one
 * PostgreSQL database split one stream through MQTT 5 shared subscriptions on a real Mosquitto 2.0, and one of
 * them is SIGKILLed mid-stream. Each process is `rpm-gateway clinic intake` (the built CLI, dist/) with a
 * PostgreSQL database, MQTT 5 and `intake.sharedGroup`: obs and status in `$share/intake/...`, alerts on a
 * connection of their own in `$share/intake-alert/...`.
 *
 * Provisioning, which Mosquitto needs: the three intakes connect (Clean Start 0, a Session Expiry Interval)
 * and subscribe before any hub publishes. Mosquitto PUBACKs a publish that matches no subscription and drops
 * it, so a reading published before the first intake subscribed would be lost with the hub told it was
 * delivered.
 *
 * The story, per gateway (six simulated hubs, each with its own certificate, signing as a hub does):
 * A. backlog batches of 100 readings with their seqs out of order, single-reading live messages in reverse seq
 *    order, alerts, a status. Once the database holds a third of it, intake B is SIGKILLed.
 * B. more of the same while B is dead, and a batch re-sent byte for byte (the same ids again). Mosquitto keeps
 *    distributing to B's session (its share of the group) and queues those messages for it.
 * C. B restarts under the same client ids and resumes its sessions (MQTT 5 section 4.8.2: the server may keep
 *    a disconnected member's messages for it): it receives what was queued and what it had not acknowledged.
 *    It is stopped (SIGTERM: its final counts say it stored readings from its session) and started again,
 *    resuming once more. The last messages, and readings re-sent re-batched under a new seq spanning two
 *    earlier batches.
 * End: the database holds every reading the broker PUBACKed to a hub exactly once (count and a checksum of the
 * sorted ids), and each of the three processes stored some.
 */
const available = mosquittoAvailable();
if (!available && process.env.CI)
  throw new Error('mosquitto is not installed (.ci/run should have installed it)');

const GATEWAYS = 6;
const GROUP = 'intake';
const NAMES = ['a', 'b', 'c'] as const;
const VICTIM = 'b';
/** A real broker, database and three Node processes on a shared 2-core machine. */
const WAIT = { timeoutMs: 30_000, intervalMs: 50 };

let dir: string;
let pki: DevelopmentPki;
let mosquitto: RunningMosquitto;
let server: RunningPostgres;
let database: string;
let fleet: FleetGateway[];
let config: string;
const children = new Children();

beforeAll(async () => {
  if (!available) return;
  dir = await mkdtemp(join(tmpdir(), 'rpm-scale-'));
  pki = await createDevelopmentPki(dir, { clinicName: 'clinic-test' });
  [mosquitto, server, fleet] = await Promise.all([
    startMosquitto({
      dir,
      caFile: pki.files.ca,
      certFile: pki.files.broker,
      keyFile: pki.files.brokerKey,
      clinicName: 'clinic-test',
      // docs/brokers.md, "Several intake processes": the default (1000) would drop, after PUBACKing them, the
      // messages queued for the killed intake (or for a live one whose in-flight window is full) beyond 1000.
      settings: ['max_queued_messages 0', 'max_queued_bytes 0', 'max_inflight_messages 256'],
    }),
    startPostgres(),
    createFleet(pki.ca, GATEWAYS, 'gw-scale'),
  ]);
  writeFleetCertificates(fleet, join(dir, 'gateways'));
  database = await server.createDatabase('scale');
  // Migrated once here ("rpm-gateway clinic init" would do the same), so the intakes find the tables.
  await (await PgClinicStore.open({ connection: server.connection(database) })).close();
  const passwordFile = join(dir, 'pg.password');
  writeFileSync(passwordFile, `${server.password}\n`, { mode: 0o600 });
  config = join(dir, 'clinic.yaml');
  writeFileSync(
    config,
    [
      'clinic: { name: clinic-test, timeZone: UTC }',
      `paths: { dataDir: ${join(dir, 'data')} }`,
      `pki: { ca: ${pki.files.ca}, gatewayCerts: ${join(dir, 'gateways')} }`,
      'intake:',
      `  brokers: [{ url: "mqtts://127.0.0.1:${mosquitto.port}", servername: localhost }]`,
      `  cert: ${pki.files.clinic}`,
      `  key: { file: ${pki.files.clinicKey} }`,
      '  protocolVersion: 5',
      `  sharedGroup: ${GROUP}`,
      'database:',
      '  kind: postgres',
      `  postgres: { host: ${server.host}, port: ${server.port}, database: ${database}, user: ${server.user}, password: { file: ${passwordFile} }, ssl: { mode: disable }, poolSize: 4 }`,
    ].join('\n'),
  );
}, 60_000);

afterAll(async () => {
  children.killAll();
  await mosquitto?.stop();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!available)(
  'scale-out: three intake processes on PostgreSQL, MQTT 5 shared subscriptions',
  () => {
    it('stores every PUBACKed reading exactly once while one intake is SIGKILLed mid-stream, and all three share the work', async () => {
      const started = Date.now();
      /** Readings each process stored, from its final counts (intake.stats-final) at each SIGTERM. */
      const stored = new Map<string, number>(NAMES.map((name) => [name, 0]));
      const intakes = new Map<string, Intake>();
      // Provisioning: every intake has its sessions and subscriptions before the first hub publishes.
      for (const intake of await Promise.all(NAMES.map((name) => startIntake(name)))) {
        intakes.set(intake.name, intake);
        expect(intake.resumed).toEqual([false, false]);
      }
      const hubs = await Promise.all(fleet.map((gateway, i) => connectHub(gateway, i % 2 === 0 ? 5 : 4)));
      const acked = new Set<string>();
      let storedFromQueue = 0;
      const db = new pg.Client(server.connection(database));
      await db.connect();
      const count = async () =>
        Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM measurements')).rows[0]?.n);
      try {
        const plans = fleet.map(plan);

        // A: the victim is killed once the database holds a third of what A publishes (the processes share it
        // round robin, so B has had its share to commit), while the hubs may still be publishing.
        const phaseA = publishAll(hubs, plans, 'A', acked);
        const third = Math.floor(plans.reduce((n, p) => n + p.A.flatMap((m) => m.ids).length, 0) / 3);
        await until(`a third of phase A stored (${third})`, async () => (await count()) >= third, WAIT);
        await ended(intakes.get(VICTIM) as Intake, 'SIGKILL');
        await phaseA;

        // B: published while the victim is dead; its share waits in its sessions.
        await publishAll(hubs, plans, 'B', acked);

        // C: the victim is back under the same client ids and finds its sessions, with its share of B queued:
        // Mosquitto's round robin over a shared subscription does not skip a member whose session is offline.
        const restarted = await startIntake(VICTIM);
        expect(restarted.resumed).toEqual([true, true]);
        const beforeC = acked.size;
        await until(`A and B stored (${beforeC} readings)`, async () => (await count()) >= beforeC, WAIT);
        // Stopped, its final counts say how many it stored from its sessions; started again for C.
        storedFromQueue = await ended(restarted, 'SIGTERM');
        expect(storedFromQueue, 'readings the restarted intake B received from its session').toBeGreaterThan(
          0,
        );
        stored.set(VICTIM, storedFromQueue);
        const again = await startIntake(VICTIM);
        expect(again.resumed).toEqual([true, true]);
        intakes.set(VICTIM, again);
        await publishAll(hubs, plans, 'C', acked);

        const expected = [...acked].sort();
        await until(
          `the database to hold ${expected.length} readings`,
          async () => (await count()) >= expected.length,
          WAIT,
        );
        const ids = (
          await db.query<{ id: string }>('SELECT id FROM measurements ORDER BY id COLLATE "C"')
        ).rows.map((r) => r.id);
        expect(ids.length).toBe(expected.length);
        expect(checksum(ids)).toBe(checksum(expected));
        const statuses = await db.query<{ n: string }>(
          'SELECT count(DISTINCT gateway_id) AS n FROM statuses',
        );
        expect(Number(statuses.rows[0]?.n)).toBe(GATEWAYS);

        for (const [name, intake] of intakes)
          stored.set(name, (stored.get(name) ?? 0) + (await ended(intake, 'SIGTERM')));
        for (const name of NAMES)
          expect(stored.get(name), `intake ${name} stored readings`).toBeGreaterThan(0);
        // At most: B's first incarnation was killed before it could report, so its readings are counted by
        // the database but by no process.
        const total = [...stored.values()].reduce((a, b) => a + b, 0);
        expect(total).toBeLessThanOrEqual(expected.length);
        console.info(
          `scale-out: ${expected.length} readings in ${Date.now() - started} ms; stored per process (final counts) ${JSON.stringify(Object.fromEntries(stored))} (B from its sessions after the SIGKILL: ${storedFromQueue})`,
        );
      } finally {
        await db.end();
        await Promise.all(hubs.map((hub) => hub.endAsync()));
        children.killAll();
      }
    });
  },
);

type Phase = 'A' | 'B' | 'C';

/** One gateway's messages by phase (see the file comment): 842 distinct readings in 53 messages. */
function plan(gateway: FleetGateway): Record<Phase, SignedMessage[]> {
  const sentAt = Date.now();
  const backlog = (b: number) => signedBatch(gateway, { seq: b + 1, first: b * 100, count: 100, sentAt });
  // 36 live readings, seqs 20..55, each phase's twelve published in reverse seq order.
  const live = (from: number) =>
    Array.from({ length: 12 }, (_, i) => {
      const k = from + 11 - i;
      return signedBatch(gateway, { seq: 20 + k, first: 800 + k, count: 1, sentAt });
    });
  const alert = (k: number) =>
    signedBatch(gateway, { seq: 100 + k, first: 900 + k, count: 1, sentAt, lane: 'alert' });
  const status: SignedMessage = {
    topic: `rpm/v1/${gateway.id}/status`,
    payload: Buffer.from(
      signEnvelope(
        encodeStatus({
          gatewayId: gateway.id,
          state: 'online',
          version: '1.0.0',
          sentAt,
          backlog: { alert: 0, live: 0, backlog: 8 },
        }),
        gateway.key,
        gateway.kid,
      ),
    ),
    ids: [],
  };
  const first = backlog(3);
  return {
    A: [status, first, alert(0), backlog(0), ...live(0), backlog(5), alert(1)],
    B: [backlog(1), alert(2), ...live(12), first, backlog(7), alert(3), backlog(2)],
    // readings 390..409 again, re-batched with another seq (docs/wire-format.md section 7.3)
    C: [
      backlog(6),
      alert(4),
      signedBatch(gateway, { seq: 200, first: 390, count: 20, sentAt }),
      ...live(24),
      backlog(4),
      alert(5),
    ],
  };
}

/** Each hub publishes its phase's messages one after another (as an uplink does); the hubs run in parallel. */
async function publishAll(
  hubs: readonly MqttClient[],
  plans: readonly Record<Phase, SignedMessage[]>[],
  phase: Phase,
  acked: Set<string>,
): Promise<void> {
  await Promise.all(
    hubs.map(async (hub, i) => {
      for (const message of plans[i]?.[phase] ?? []) {
        // Resolves on the broker's PUBACK: from here the hub would delete the readings from its outbox.
        await hub.publishAsync(message.topic, message.payload, { qos: 1 });
        for (const id of message.ids) acked.add(id);
      }
    }),
  );
}

function connectHub(gateway: FleetGateway, protocolVersion: 4 | 5): Promise<MqttClient> {
  return mqtt.connectAsync({
    protocol: 'mqtts',
    host: '127.0.0.1',
    port: mosquitto.port,
    servername: 'localhost',
    ca: pki.pem.ca,
    cert: gateway.certificatePem,
    key: gateway.privateKeyPem,
    rejectUnauthorized: true,
    checkServerIdentity: checkServerCertificate,
    clientId: gateway.id,
    protocolVersion,
    reconnectPeriod: 0,
  } as mqtt.IClientOptions);
}

interface Intake {
  readonly name: string;
  readonly run: CliProcess;
  /** Whether the broker had each connection's session (obs/status, then alert) at the first connect. */
  readonly resumed: readonly boolean[];
}

/**
 * Starts `rpm-gateway clinic intake` as intake `name` (client ids clinic-test-<name> and clinic-test-<name>-a)
 * and waits until both connections have subscribed (intake.started).
 */
async function startIntake(name: string): Promise<Intake> {
  const run = children.spawn(['clinic', 'intake', '--config', config], {
    RPM_CLINIC_INTAKE_CLIENT_ID: `clinic-test-${name}`,
  });
  await waitFor(run, 'intake.started', WAIT.timeoutMs);
  const connected = events(run).filter((e) => e.event === 'intake.connected');
  const resumed = (lane: string) => connected.find((e) => e.lane === lane)?.state === 'session resumed';
  return { name, run, resumed: [resumed('main'), resumed('alert')] };
}

/** Ends an intake; after a SIGTERM, the readings it stored (its final counts, both lanes). */
async function ended(intake: Intake, signal: NodeJS.Signals): Promise<number> {
  const { child } = intake.run;
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  const { code } = await intake.run.exited;
  if (signal !== 'SIGTERM') return 0;
  expect(code, `intake ${intake.name} stopped cleanly`).toBe(0);
  return events(intake.run)
    .filter((e) => e.event === 'intake.stats-final')
    .reduce((n, e) => n + Number(e.readings), 0);
}

function checksum(ids: readonly string[]): string {
  return createHash('sha256').update(ids.join('\n')).digest('hex');
}
