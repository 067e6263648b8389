import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { MqttClient } from 'mqtt';
import { ClinicalBroker } from '../../src/broker/clinical-broker.js';
import { intakeSubscriptions } from '../../src/broker/durable-subscribers.js';
import { identifyClient } from '../../src/broker/identify.js';
import {
  type BenchPlan,
  type PhaseName,
  type PlannedMessage,
  planPhase,
  probeId,
} from './clinic-bench-plan.js';
import {
  connectFleet,
  type FleetGateway,
  readFleetFile,
  type SignedMessage,
  signedBatch,
} from './gateway-fleet.js';

/**
 * The gateways of bench:clinic in one process (forked with IPC): one mutual-TLS MQTT 3.1.1 connection per
 * gateway (mqtt.js, the gateway's own certificate, client id = gateway id, as a hub connects; the broker's ACL
 * lets a gateway publish only under its own topics, so one connection cannot carry several gateways). Optionally
 * the embedded ClinicalBroker runs here too, with its LevelDB persistence and the intake's session provisioned.
 *
 * Messages are signed before the phase starts ('prepare'), so signing is not in the timed window. In a phase
 * each gateway publishes its messages in order at QoS 1 with up to `window` PUBLISHes awaiting their PUBACK (a
 * hub's uplink keeps a small window too); the mixed phase's live messages go at their due times instead. Each
 * publish is stamped just before `client.publish` with performance.timeOrigin + performance.now(), and the
 * stamps of each message's first reading go back to the orchestrator.
 *
 * argv[2]: JSON Config. In: 'connect', { type: 'prepare', phase }, 'go', 'stop'. Out: 'ready' { port },
 * 'connected', 'prepared', 'published' { publishedAt: [probeId, ms][], firstAt, lastAckAt }, 'error'.
 */
interface Config {
  readonly fleetFile: string;
  readonly ca: string;
  readonly plan: BenchPlan;
  readonly window: number;
  /** Mosquitto's port, or the embedded broker to start here. */
  readonly broker:
    | { readonly port: number }
    | {
        readonly embedded: {
          readonly cert: string;
          readonly key: string;
          readonly persistenceDir: string;
          readonly sync: boolean;
          readonly intakeClientId: string;
        };
      };
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const send = (message: object) => process.send?.(message);
const ca = readFileSync(config.ca);
const fleet: FleetGateway[] = readFleetFile(config.fleetFile);
const gatewayIds = fleet.map((g) => g.id);

function now(): number {
  return performance.timeOrigin + performance.now();
}

let broker: ClinicalBroker | undefined;
let port: number;
if ('embedded' in config.broker) {
  const embedded = config.broker.embedded;
  broker = new ClinicalBroker({
    ca,
    cert: readFileSync(embedded.cert),
    key: readFileSync(embedded.key),
    identify: identifyClient,
    port: 0,
    // sealed with a key, as `rpm-gateway broker` runs it
    persistence: { dir: embedded.persistenceDir, sync: embedded.sync, key: randomBytes(32) },
    durableSubscribers: [{ clientId: embedded.intakeClientId, subscriptions: intakeSubscriptions() }],
    onError: (error) => send({ type: 'event', event: { type: 'broker-error', message: error.message } }),
  });
  port = (await broker.start()).port;
} else {
  port = config.broker.port;
}

const clients: MqttClient[] = [];

function connectAll(): Promise<void> {
  return connectFleet(fleet, { port, ca }, clients, 32);
}

interface Prepared {
  readonly planned: PlannedMessage;
  readonly signed: SignedMessage;
}
let prepared: Prepared[] = [];

function prepare(phase: PhaseName): void {
  // Sign each distinct message once; a duplicate is the same bytes sent again.
  const byKey = new Map<string, SignedMessage>();
  const sentAt = Date.now();
  prepared = planPhase(config.plan, phase).map((planned) => {
    const key = `${planned.gateway}:${planned.first}:${planned.count}`;
    let signed = byKey.get(key);
    if (!signed) {
      signed = signedBatch(fleet[planned.gateway] as FleetGateway, {
        seq: planned.seq,
        first: planned.first,
        count: planned.count,
        sentAt,
      });
      byKey.set(key, signed);
    }
    return { planned, signed };
  });
}

async function go(): Promise<void> {
  const publishedAt: [string, number][] = [];
  const perGateway = new Map<number, Prepared[]>();
  const timed: Prepared[] = [];
  for (const message of prepared) {
    if (message.planned.dueMs !== undefined) {
      timed.push(message);
      continue;
    }
    const list = perGateway.get(message.planned.gateway) ?? [];
    list.push(message);
    perGateway.set(message.planned.gateway, list);
  }
  const publish = async (message: Prepared) => {
    const client = clients[message.planned.gateway] as MqttClient;
    const at = now();
    if (!message.planned.duplicate) publishedAt.push([probeId(gatewayIds, message.planned), at]);
    await client.publishAsync(message.signed.topic, message.signed.payload, { qos: 1 });
  };
  const firstAt = now();
  const queues = [...perGateway.values()].map(async (list) => {
    let next = 0;
    const lane = async () => {
      while (next < list.length) await publish(list[next++] as Prepared);
    };
    await Promise.all(Array.from({ length: Math.min(config.window, list.length) }, lane));
  });
  const paced = (async () => {
    const inFlight: Promise<void>[] = [];
    for (const message of timed) {
      const wait = firstAt + (message.planned.dueMs as number) - now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      inFlight.push(publish(message));
    }
    await Promise.all(inFlight);
  })();
  await Promise.all([...queues, paced]);
  send({ type: 'published', publishedAt, firstAt, lastAckAt: now() });
}

process.on('message', (message: { type: string; phase?: PhaseName }) => {
  const fail = (error: unknown) => send({ type: 'error', message: (error as Error).message });
  switch (message.type) {
    case 'connect':
      connectAll().then(() => send({ type: 'connected' }), fail);
      break;
    case 'prepare':
      try {
        prepare(message.phase as PhaseName);
        send({ type: 'prepared', messages: prepared.length });
      } catch (error) {
        fail(error);
      }
      break;
    case 'go':
      go().catch(fail);
      break;
    case 'stop':
      void Promise.all(clients.map((c) => c.endAsync(true)))
        .then(() => broker?.stop())
        .finally(() => process.exit(0));
      break;
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready', port });
