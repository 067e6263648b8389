import { readFileSync } from 'node:fs';
import type { MqttClient } from 'mqtt';
import { connectFleet, type FleetGateway, readFleetFile, signedBatch } from './gateway-fleet.js';

/**
 * The hubs of bench:dashboard in one process (forked with IPC): one mutual-TLS MQTT 3.1.1 connection per hub
 * (its own certificate, client id = gateway id, as a hub connects), each publishing one signed reading a second
 * (a pulse oximeter's SpO2 and pulse rate, one message each) at QoS 1. The hubs take turns evenly within each
 * second, so the clinic gets a steady P readings a second rather than P at once.
 *
 * Rounds 0 .. warmup-1 are the warm-up, warmup .. warmup+seconds-1 are measured. After the last measured round
 * (and every measured PUBACK: the broker has the message) it reports the measured readings and waits; the
 * orchestrator checks that the intake has committed them, then asks for one closing round, one reading per hub.
 * A commit holding a closing reading then comes after every measured commit, and the dashboard tells commits in
 * order: a connection that received a closing reading has received every measured one it ever will.
 *
 * Each reading's measurement time is its due time, so the clinic sees live readings (not a back-fill).
 *
 * argv[2]: JSON Config. In: 'connect', 'go', 'close', 'stop'. Out: 'connected'; 'measuring' (the first
 * measured reading) and 'measured' (the measured readings, ids with their hub's index, once the broker has
 * them all and the last measured second is over: the CPU samples' window); 'done' (the closing readings, the
 * failed publishes and how late the publisher ran); 'error'.
 */
interface Config {
  readonly fleetFile: string;
  readonly ca: string;
  readonly port: number;
  readonly warmupSeconds: number;
  readonly seconds: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const send = (message: object) => process.send?.(message);
const ca = readFileSync(config.ca);
const fleet: FleetGateway[] = readFleetFile(config.fleetFile);
const clients: MqttClient[] = [];
let closeRequested: (() => void) | undefined;

function connectAll(): Promise<void> {
  return connectFleet(fleet, { port: config.port, ca }, clients, 16);
}

interface Failures {
  count: number;
  first?: string;
}

/** Publishes reading `n` of hub `g`, measured at `measuredAt`; resolves with its id once PUBACKed. */
async function publish(
  g: number,
  n: number,
  measuredAt: number,
  failures: Failures,
): Promise<string | undefined> {
  const gateway = fleet[g] as FleetGateway;
  // fleetMeasurement dates reading n at start + n seconds: start is chosen so that this one is measuredAt.
  const message = signedBatch(gateway, {
    seq: n,
    first: n,
    count: 1,
    sentAt: Date.now(),
    start: measuredAt - n * 1000,
  });
  try {
    await (clients[g] as MqttClient).publishAsync(message.topic, message.payload, { qos: 1 });
    return message.ids[0];
  } catch (error) {
    failures.count++;
    failures.first ??= (error as Error).message;
    return undefined;
  }
}

function sleepUntil(at: number): Promise<void> {
  const wait = at - Date.now();
  return wait > 1 ? new Promise((resolve) => setTimeout(resolve, wait)) : Promise.resolve();
}

async function go(): Promise<void> {
  const hubs = fleet.length;
  const spacing = 1000 / hubs;
  const rounds = config.warmupSeconds + config.seconds;
  const failures: Failures = { count: 0 };
  const measured: Promise<[string | undefined, number]>[] = [];
  const warmup: Promise<unknown>[] = [];
  let maxLateMs = 0;
  // The first slot a little ahead, so the first round is not late already.
  const t0 = Date.now() + 200;
  for (let n = 0; n < rounds; n++) {
    for (let g = 0; g < hubs; g++) {
      const due = Math.round(t0 + n * 1000 + g * spacing);
      await sleepUntil(due);
      maxLateMs = Math.max(maxLateMs, Date.now() - due);
      if (n === config.warmupSeconds && g === 0) send({ type: 'measuring', at: Date.now() });
      const published = publish(g, n, due, failures);
      if (n < config.warmupSeconds) warmup.push(published);
      else measured.push(published.then((id) => [id, g]));
    }
  }
  const known = (list: [string | undefined, number][]) =>
    list.filter((entry): entry is [string, number] => entry[0] !== undefined);
  // The measured window ends with its last second (or the last measured PUBACK, if that comes later).
  const measuredIds = await Promise.all(measured);
  await sleepUntil(t0 + rounds * 1000);
  await Promise.all(warmup);
  const closed = new Promise<void>((resolve) => {
    closeRequested = resolve;
  });
  send({ type: 'measured', measured: known(measuredIds) });
  await closed;
  // The closing round: each hub's next reading on its own schedule (at once if its slot has passed).
  const closing: Promise<[string | undefined, number]>[] = [];
  for (let g = 0; g < hubs; g++) {
    const due = Math.round(t0 + rounds * 1000 + g * spacing);
    await sleepUntil(due);
    closing.push(publish(g, rounds, due, failures).then((id) => [id, g]));
  }
  const closingIds = await Promise.all(closing);
  send({
    type: 'done',
    closing: known(closingIds),
    published: rounds * hubs + hubs,
    failures,
    maxLateMs,
  });
}

process.on('message', (message: { type: string }) => {
  const fail = (error: unknown) => send({ type: 'error', message: (error as Error).message });
  switch (message.type) {
    case 'connect':
      connectAll().then(() => send({ type: 'connected' }), fail);
      break;
    case 'go':
      go().catch(fail);
      break;
    case 'close':
      closeRequested?.();
      break;
    case 'stop':
      void Promise.all(clients.map((c) => c.endAsync(true))).finally(() => process.exit(0));
      break;
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
