import { readFileSync } from 'node:fs';
import type { MqttClient } from 'mqtt';
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
 * lets a gateway publish only under its own topics, so one connection cannot carry several gateways), to the
 * broker on `port` (Mosquitto, or the embedded broker in clinic-bench-broker.ts).
 *
 * Messages are signed before the phase starts ('prepare'), so signing is not in the timed window. In a phase
 * each gateway publishes its messages in order at QoS 1 with up to `window` PUBLISHes awaiting their PUBACK (a
 * hub's uplink keeps a small window too); the mixed phase's live messages go at their due times instead. Each
 * publish is stamped just before `client.publish` with performance.timeOrigin + performance.now(), and the
 * stamps of each message's first reading go back to the orchestrator.
 *
 * argv[2]: JSON Config. In: 'connect', { type: 'prepare', phase }, 'go', 'stop'. Out: 'ready',
 * 'connected', 'prepared', 'published' { publishedAt: [probeId, ms][], firstAt, lastAckAt }, 'error'.
 */
interface Config {
  readonly fleetFile: string;
  readonly ca: string;
  readonly plan: BenchPlan;
  readonly window: number;
  /** The broker's port on 127.0.0.1. */
  readonly port: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const send = (message: object) => process.send?.(message);
const ca = readFileSync(config.ca);
const fleet: FleetGateway[] = readFleetFile(config.fleetFile);
const gatewayIds = fleet.map((g) => g.id);

function now(): number {
  return performance.timeOrigin + performance.now();
}

const clients: MqttClient[] = [];

function connectAll(): Promise<void> {
  return connectFleet(fleet, { port: config.port, ca }, clients, 32);
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
      void Promise.all(clients.map((c) => c.endAsync(true))).finally(() => process.exit(0));
      break;
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
