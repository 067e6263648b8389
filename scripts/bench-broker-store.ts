/**
 * `npm run bench:broker-store`: what synced LevelDB writes cost the embedded broker, printed as a table.
 *
 * For `sync` on and off (src/broker/persistence.ts), on a store in --dir (default: the OS temp directory; give
 * a directory on the disk the broker will use, fsync cost is a property of the disk):
 *   store 1-by-1       one QoS 1 message queued for one offline session at a time (each awaited): one write,
 *                      hence one fsync, per message: the cost a single hub publishing one reading at a time sees
 *   store 64 parallel  64 queue writes in flight: LevelDB groups concurrent writers into one log write + fsync
 *   hub 1-by-1         end to end over mutual TLS: one hub, QoS 1, each PUBLISH awaits its PUBACK, the intake
 *                      offline (every message is queued on disk before its PUBACK); PUBACK latency p50/p99
 *   hub pipelined      the same hub with every PUBLISH in flight at once (mqtt.js does not bound it)
 * Payloads are 2 KiB (a backlog batch of the wire format is larger, a live message smaller).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { ClinicalBroker } from '../src/broker/clinical-broker.js';
import { intakeSubscriptions } from '../src/broker/durable-subscribers.js';
import { identifyClient } from '../src/broker/identify.js';
import { openLevelPersistence } from '../src/broker/persistence.js';
import { checkServerCertificate, createDevelopmentPki } from '../src/pki/index.js';
import { printTable } from './support/table.js';

const { values } = parseArgs({
  options: {
    help: { type: 'boolean', short: 'h' },
    dir: { type: 'string', default: tmpdir() },
    count: { type: 'string', default: '2000' },
  },
});

if (values.help) {
  console.log(
    [
      'Usage: npm run bench:broker-store [-- options]',
      "  the embedded broker's LevelDB persistence, sync on and off (docs/brokers.md)",
      '  --count 2000   QoS 1 messages stored and acknowledged per variant',
      '  --dir DIR      where the stores go (default: the OS temporary directory)',
    ].join('\n'),
  );
  process.exit(0);
}
const root = mkdtempSync(join(values.dir as string, 'rpm-bench-broker-'));
const count = Number(values.count);
const payload = Buffer.alloc(2048, 0x61);
// Values are sealed as in production (AES-256-GCM, src/broker/value-cipher.ts).
const key = randomBytes(32);

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

interface Row {
  readonly name: string;
  readonly perSecond: number;
  readonly latencies?: number[];
}

async function storeBench(sync: boolean, parallel: number): Promise<Row> {
  const persistence = await openLevelPersistence({
    dir: join(root, `store-${sync}-${parallel}`),
    sync,
    key,
  });
  await persistence.setup({ id: 'bench' });
  const sub = { clientId: 'clinic-bench', topic: 'rpm/v1/+/obs', qos: 1 };
  const packet = (i: number) => ({
    cmd: 'publish',
    topic: 'rpm/v1/gw-bench/obs',
    payload,
    qos: 1,
    retain: false,
    dup: false,
    brokerId: 'bench',
    brokerCounter: i,
  });
  const latencies: number[] = [];
  const started = performance.now();
  let next = 0;
  async function worker(): Promise<void> {
    while (next < count) {
      const i = next++;
      const t0 = performance.now();
      await persistence.outgoingEnqueueCombi([sub], packet(i));
      latencies.push(performance.now() - t0);
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker));
  const seconds = (performance.now() - started) / 1000;
  await persistence.destroy();
  return {
    name: `store ${parallel === 1 ? '1-by-1' : `${parallel} parallel`}`,
    perSecond: count / seconds,
    latencies,
  };
}

async function hubBench(sync: boolean, pipelined: boolean): Promise<Row> {
  const pki = await createDevelopmentPki(mkdtempSync(join(root, 'pki-')));
  const broker = new ClinicalBroker({
    ca: pki.pem.ca,
    cert: pki.pem.broker,
    key: pki.pem.brokerKey,
    port: 0,
    identify: identifyClient,
    persistence: { dir: join(root, `hub-${sync}-${pipelined}`), sync, key },
    durableSubscribers: [{ clientId: 'clinic-test-intake', subscriptions: intakeSubscriptions() }],
  });
  const { port } = await broker.start();
  const hub = await mqtt.connectAsync({
    protocol: 'mqtts',
    host: '127.0.0.1',
    port,
    servername: 'localhost',
    ca: pki.pem.ca,
    cert: pki.pem.gateway,
    key: pki.pem.gatewayKey,
    clientId: pki.gatewayId,
    rejectUnauthorized: true,
    checkServerIdentity: checkServerCertificate,
    reconnectPeriod: 0,
    protocolVersion: 4,
  } as mqtt.IClientOptions);
  const topic = `rpm/v1/${pki.gatewayId}/obs`;
  const latencies: number[] = [];
  const timed = async () => {
    const t0 = performance.now();
    await hub.publishAsync(topic, payload, { qos: 1 });
    latencies.push(performance.now() - t0);
  };
  const started = performance.now();
  if (pipelined) await Promise.all(Array.from({ length: count }, timed));
  else for (let i = 0; i < count; i++) await timed();
  const seconds = (performance.now() - started) / 1000;
  await hub.endAsync();
  await broker.stop();
  return { name: `hub ${pipelined ? 'pipelined' : '1-by-1'}`, perSecond: count / seconds, latencies };
}

const table: string[][] = [['variant', 'sync', 'msgs/s', 'p50 ms', 'p99 ms']];
try {
  for (const sync of [true, false]) {
    for (const row of [
      await storeBench(sync, 1),
      await storeBench(sync, 64),
      await hubBench(sync, false),
      await hubBench(sync, true),
    ]) {
      const sorted = [...(row.latencies ?? [])].sort((a, b) => a - b);
      table.push([
        row.name,
        String(sync),
        row.perSecond.toFixed(0),
        percentile(sorted, 50).toFixed(2),
        percentile(sorted, 99).toFixed(2),
      ]);
    }
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
console.log(`${count} messages of ${payload.length} bytes per variant, store under ${values.dir}`);
printTable(table);
