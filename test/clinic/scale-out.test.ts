import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
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
import { PgClinicStore } from '../../src/clinic/storage/postgres/pg-clinic-store.js';
import { checkServerCertificate, createDevelopmentPki, type DevelopmentPki } from '../../src/pki/index.js';
import { signEnvelope } from '../../src/wire/cose.js';
import { encodeStatus } from '../../src/wire/index.js';
import { type RunningPostgres, startPostgres } from '../support/postgres.js';
import { until } from '../support/until.js';

/**
 * Scale-out on existing engines (docs/brokers.md, "Several intake processes"): three intake processes on one
 * PostgreSQL database split one stream through MQTT 5 shared subscriptions on a real Mosquitto 2.0, and one of
 * them is SIGKILLed mid-stream. Each process is test/support/clinic-intake-child.ts (built into dist/), doing
 * what `rpm-gateway clinic intake` with `intake.sharedGroup` is to do: obs and status in `$share/intake/...`,
 * alerts on a connection of their own in `$share/intake-alert/...`.
 *
 * Provisioning, which Mosquitto needs: the three intakes connect (Clean Start 0, a Session Expiry Interval)
 * and subscribe before any hub publishes. Mosquitto PUBACKs a publish that matches no subscription and drops
 * it, so a reading published before the first intake subscribed would be lost with the hub told it was
 * delivered.
 *
 * The story, per gateway (six simulated hubs, each with its own certificate, signing as a hub does):
 * A. backlog batches of 100 readings with their seqs out of order, single-reading live messages in reverse seq
 *    order, alerts, a status. Once intake B has committed something, it is SIGKILLed.
 * B. more of the same while B is dead, and a batch re-sent byte for byte (the same ids again). Mosquitto keeps
 *    distributing to B's session (its share of the group) and queues those messages for it.
 * C. B restarts under the same client ids and resumes its sessions (MQTT 5 section 4.8.2: the server may keep
 *    a disconnected member's messages for it): it receives what was queued and what it had not acknowledged.
 *    The last messages, and readings re-sent re-batched under a new seq spanning two earlier batches.
 * End: the database holds every reading the broker PUBACKed to a hub exactly once (count and a checksum of the
 * sorted ids), and each of the three processes stored some.
 */
const available = mosquittoAvailable();
if (!available && process.env.CI)
  throw new Error('mosquitto is not installed (.ci/run should have installed it)');

const CHILD = join(import.meta.dirname, '../../dist/test/support/clinic-intake-child.js');
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
const children = new Set<ChildProcess>();

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
  // Migrated once here, so the children start on a current schema (they would also migrate, under a lock).
  await (await PgClinicStore.open({ connection: server.connection(database) })).close();
}, 60_000);

afterAll(async () => {
  await Promise.all([...children].map((child) => ended(child, 'SIGKILL')));
  await mosquitto?.stop();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!available)(
  'scale-out: three intake processes on PostgreSQL, MQTT 5 shared subscriptions',
  () => {
    it('stores every PUBACKed reading exactly once while one intake is SIGKILLed mid-stream, and all three share the work', async () => {
      const started = Date.now();
      const stored = new Map<string, number>(NAMES.map((name) => [name, 0]));
      const intakes = new Map<string, Intake>();
      // Provisioning: every intake has its sessions and subscriptions before the first hub publishes.
      for (const intake of await Promise.all(NAMES.map((name) => startIntake(name, stored)))) {
        intakes.set(intake.name, intake);
        expect(intake.resumed).toEqual([false, false]);
      }
      const hubs = await Promise.all(fleet.map((gateway, i) => connectHub(gateway, i % 2 === 0 ? 5 : 4)));
      const acked = new Set<string>();
      let storedFromQueue = 0;
      try {
        const plans = fleet.map(plan);

        // A: the victim is killed as soon as it has stored something, while the hubs may still be publishing.
        const phaseA = publishAll(hubs, plans, 'A', acked);
        await until('intake B to store readings', () => (stored.get(VICTIM) ?? 0) > 0, WAIT);
        const victim = intakes.get(VICTIM) as Intake;
        await ended(victim.process, 'SIGKILL');
        const storedByFirstB = stored.get(VICTIM) ?? 0;
        await phaseA;

        // B: published while the victim is dead; its share waits in its sessions.
        await publishAll(hubs, plans, 'B', acked);

        const db = new pg.Client(server.connection(database));
        await db.connect();
        try {
          const count = async () =>
            Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM measurements')).rows[0]?.n);

          // C: the victim is back under the same client ids and finds its sessions, with its share of B queued:
          // Mosquitto's round robin over a shared subscription does not skip a member whose session is offline.
          const restarted = await startIntake(VICTIM, stored);
          intakes.set(VICTIM, restarted);
          expect(restarted.resumed).toEqual([true, true]);
          const beforeC = acked.size;
          await until(`A and B stored (${beforeC} readings)`, async () => (await count()) >= beforeC, WAIT);
          storedFromQueue = (stored.get(VICTIM) ?? 0) - storedByFirstB;
          expect(
            storedFromQueue,
            'readings the restarted intake B received from its session',
          ).toBeGreaterThan(0);
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
        } finally {
          await db.end();
        }

        const expected = [...acked];
        const perProcess = Object.fromEntries(stored);
        for (const name of NAMES)
          expect(stored.get(name), `intake ${name} stored readings`).toBeGreaterThan(0);
        // Lower bounds: a COMMIT line is written after its commit, so B's last commit before the SIGKILL may have
        // no line, and the last lines of the others may still be on their way when the database count is reached.
        const total = [...stored.values()].reduce((a, b) => a + b, 0);
        expect(total).toBeLessThanOrEqual(expected.length);
        console.info(
          `scale-out: ${expected.length} readings in ${Date.now() - started} ms; stored per process ${JSON.stringify(perProcess)} (B before SIGKILL: ${storedByFirstB}, B after restart before C: ${storedFromQueue})`,
        );
      } finally {
        await Promise.all(hubs.map((hub) => hub.endAsync()));
        await Promise.all([...intakes.values()].map((intake) => ended(intake.process, 'SIGTERM')));
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
  readonly process: ChildProcess;
  /** Whether the broker had each connection's session (obs/status, then alert) at the first connect. */
  readonly resumed: readonly boolean[];
}

/** Starts intake `name` (client ids clinic-test-<name> and clinic-test-<name>-alert) and waits until subscribed. */
async function startIntake(name: string, stored: Map<string, number>): Promise<Intake> {
  const clientId = `clinic-test-${name}`;
  const proc = spawn(
    process.execPath,
    [
      CHILD,
      JSON.stringify({
        port: mosquitto.port,
        ca: pki.files.ca,
        cert: pki.files.clinic,
        key: pki.files.clinicKey,
        gateways: join(dir, 'gateways'),
        database: server.connection(database),
        clientId,
        sharedGroup: GROUP,
      }),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  const resumed = new Map<string, boolean>();
  const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
  await new Promise<void>((resolve, reject) => {
    const exited = (code: number | null) => reject(new Error(`intake ${name} exited (${code}) before READY`));
    proc.once('exit', exited);
    lines.on('line', (line) => {
      const [word, a, b] = line.split(' ');
      if (word === 'COMMIT') stored.set(name, (stored.get(name) ?? 0) + Number(a));
      else if (word === 'CONNECTED' && a && !resumed.has(a)) resumed.set(a, b === 'true');
      else if (word === 'READY') {
        proc.off('exit', exited);
        resolve();
      }
    });
  });
  return {
    name,
    process: proc,
    resumed: [resumed.get(clientId), resumed.get(`${clientId}-alert`)] as boolean[],
  };
}

function ended(proc: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill(signal);
  });
}

function checksum(ids: readonly string[]): string {
  return createHash('sha256').update(ids.join('\n')).digest('hex');
}
