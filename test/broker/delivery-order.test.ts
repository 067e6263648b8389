import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IPublishPacket } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClinicalBroker } from '../../src/broker/clinical-broker.js';
import { type DurableSubscriber, intakeSubscriptions } from '../../src/broker/durable-subscribers.js';
import { identifyClient } from '../../src/broker/identify.js';
import type { BrokerPersistence } from '../../src/broker/persistence.js';
import { type Ack, holdPubacks } from '../../src/clinic/intake/held-pubacks.js';
import { createDevelopmentPki, type DevelopmentPki } from '../../src/pki/index.js';
import { until } from '../support/until.js';
import { brokerClientOptions } from './client-options.js';

/**
 * Every QoS 1 message the broker PUBACKed reaches a connected persistent session (the intake) while it stays
 * connected, not only after it reconnects. aedes drops a packet for a client when a packet numbered after it
 * reached that client first (lib/client.js `dedupe`), and LevelDB queue writes complete in any order;
 * src/broker/ordered-delivery.ts puts the packets back in order. Real TLS, real LevelDB (encrypted, fsynced),
 * and an intake-like subscriber: CleanSession 0, PUBACKs held and sent in groups after a delay
 * (src/clinic/intake/held-pubacks.ts, as the intake does after its group commit).
 *
 * Absence is proved with a sentinel: the hub publishes it only after every earlier message was PUBACKed, and
 * the broker PUBACKs a message only after it was written to the intake's connection (publish-before-ack.ts:
 * the whole publish, delivery included, completes first), so once the sentinel is in, nothing earlier is
 * still on its way.
 */
const INTAKE = 'clinic-test-intake';
const durableSubscribers: DurableSubscriber[] = [{ clientId: INTAKE, subscriptions: intakeSubscriptions() }];

let dir: string;
let pki: DevelopmentPki;
let obs: string;
let status: string;
let runs = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-broker-order-'));
  pki = await createDevelopmentPki(dir);
  obs = `rpm/v1/${pki.gatewayId}/obs`;
  status = `rpm/v1/${pki.gatewayId}/status`;
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function options(port: number, clientId: string, cert: string, key: string): mqtt.IClientOptions {
  return brokerClientOptions(pki.pem.ca, port, clientId, cert, key);
}

async function startBroker(): Promise<{ broker: ClinicalBroker; port: number }> {
  const broker = new ClinicalBroker({
    ca: pki.pem.ca,
    cert: pki.pem.broker,
    key: pki.pem.brokerKey,
    port: 0,
    identify: identifyClient,
    persistence: { dir: join(dir, `store-${++runs}`), sync: true, key: randomBytes(32) },
    durableSubscribers,
  });
  const { port } = await broker.start();
  return { broker, port };
}

interface Intake {
  readonly client: mqtt.MqttClient;
  /** Payloads in the order they arrived. */
  readonly received: string[];
  /** PUBACKs sent. */
  acked(): number;
}

/**
 * Connects like the clinic intake: CleanSession 0, subscribed to its topics, every PUBACK held and sent in a
 * group every `ackEveryMs` (as after a group commit).
 */
async function connectIntake(port: number, ackEveryMs: number): Promise<Intake> {
  const client = mqtt.connect({
    ...options(port, INTAKE, pki.pem.clinic, pki.pem.clinicKey),
    manualConnect: true,
  } as mqtt.IClientOptions);
  const received: string[] = [];
  let held: Ack[] = [];
  let acked = 0;
  holdPubacks(client, async (packet: IPublishPacket, ack: Ack | undefined) => {
    received.push(packet.payload.toString());
    if (ack) held.push(ack);
  });
  const timer = setInterval(() => {
    const group = held;
    held = [];
    for (const ack of group) if (ack()) acked++;
  }, ackEveryMs);
  client.once('close', () => clearInterval(timer));
  client.connect();
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  await client.subscribeAsync(
    intakeSubscriptions().map((s) => s.topic),
    { qos: 1 },
  );
  return { client, received, acked: () => acked };
}

function persistenceOf(broker: ClinicalBroker): BrokerPersistence & {
  outgoingStream(client: { id: string }): AsyncIterable<unknown>;
} {
  return (broker.mqtt as unknown as { persistence: ReturnType<typeof persistenceOf> }).persistence;
}

async function queued(broker: ClinicalBroker): Promise<number> {
  let count = 0;
  for await (const _ of persistenceOf(broker).outgoingStream({ id: INTAKE })) count++;
  return count;
}

describe('a connected persistent session receives every message the broker PUBACKed', () => {
  it('a message whose queue write finishes last is still delivered live', async () => {
    const { broker, port } = await startBroker();
    const store = persistenceOf(broker);
    const enqueue = store.outgoingEnqueueCombi.bind(store);
    let firstEntered: () => void = () => undefined;
    const entered = new Promise<void>((resolve) => {
      firstEntered = resolve;
    });
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    // The queue write of 'first' is held until 'second' has been written and handed to aedes' bus.
    store.outgoingEnqueueCombi = async (subscriptions, packet) => {
      if ((packet as { payload: Buffer }).payload.toString() === 'first') {
        firstEntered();
        await released;
      }
      return enqueue(subscriptions, packet);
    };
    const bus = (
      broker.mqtt as unknown as { mq: { emit: (p: { payload: Buffer }, cb?: unknown) => unknown } }
    ).mq;
    const emit = bus.emit.bind(bus);
    let secondOnBus: () => void = () => undefined;
    const onBus = new Promise<void>((resolve) => {
      secondOnBus = resolve;
    });
    bus.emit = (packet, cb) => {
      if (packet.payload.toString() === 'second') secondOnBus();
      return emit(packet, cb);
    };
    const intake = await connectIntake(port, 5);
    const hub = await mqtt.connectAsync(options(port, pki.gatewayId, pki.pem.gateway, pki.pem.gatewayKey));
    try {
      const first = hub.publishAsync(obs, 'first', { qos: 1 });
      await entered;
      const second = hub.publishAsync(obs, 'second', { qos: 1 });
      await onBus;
      release();
      await Promise.all([first, second]);
      await hub.publishAsync(obs, 'sentinel', { qos: 1 });
      // aedes 1.2 unchanged: 'first' never comes while the intake stays connected (it waits in the queue for a
      // reconnect). The order they come in is not promised: each delivery to a persistent session first updates
      // its queue entry (aedes deliverQoS, persistence.outgoingUpdate, a LevelDB write on the thread pool), and
      // those writes finish in any order (once ['second', 'first', 'sentinel'] in CI).
      await until('all three at the intake', () => intake.received.length === 3);
      expect([...intake.received].sort()).toEqual(['first', 'second', 'sentinel']);
      await until('every PUBACK', () => intake.acked() === 3);
    } finally {
      release();
      await hub.endAsync();
      await intake.client.endAsync();
      await broker.stop();
    }
  });

  it('hundreds of readings and retained statuses in flight at once: all delivered, and the queue drains', async () => {
    const { broker, port } = await startBroker();
    const intake = await connectIntake(port, 20);
    const hub = await mqtt.connectAsync(options(port, pki.gatewayId, pki.pem.gateway, pki.pem.gatewayKey));
    try {
      const sent: string[] = [];
      const publishes: Promise<unknown>[] = [];
      for (let i = 0; i < 400; i++) {
        // A hub's status is retained: one more store write (storeRetained) before its queue write.
        const [topic, payload, retain] =
          i % 20 === 0 ? [status, `status-${i}`, true] : [obs, `obs-${i}`, false];
        sent.push(payload);
        publishes.push(hub.publishAsync(topic, payload, { qos: 1, retain }));
      }
      await Promise.all(publishes);
      await hub.publishAsync(obs, 'sentinel', { qos: 1 });
      await until('the sentinel at the intake', () => intake.received.includes('sentinel'), {
        timeoutMs: 30_000,
      });
      const received = intake.received.filter((payload) => payload !== 'sentinel');
      // aedes 1.2 unchanged: about a third missing here (LevelDB fsyncs finish out of order)
      expect(received.length).toBe(sent.length);
      expect(new Set(received)).toEqual(new Set(sent));
      // Every PUBACK the intake sent cleared its entry: nothing is left for a reconnect to deliver again.
      await until('every PUBACK', () => intake.acked() === sent.length + 1);
      await until('an empty queue', async () => (await queued(broker)) === 0);
    } finally {
      await hub.endAsync();
      await intake.client.endAsync();
      await broker.stop();
    }
  });

  it('a publish that never completes (its subscriber lookup failed) does not hold back later ones', async () => {
    const errors: string[] = [];
    const broker = new ClinicalBroker({
      ca: pki.pem.ca,
      cert: pki.pem.broker,
      key: pki.pem.brokerKey,
      port: 0,
      identify: identifyClient,
      persistence: { dir: join(dir, `store-${++runs}`), sync: true, key: randomBytes(32) },
      durableSubscribers,
      onError: (error) => errors.push(error.code),
    });
    const { port } = await broker.start();
    const store = persistenceOf(broker) as unknown as {
      subscriptionsByTopic(topic: string): Promise<unknown[]>;
    };
    const lookup = store.subscriptionsByTopic.bind(store);
    let failNext = true;
    // aedes.js enqueueOffline: a failed lookup emits 'error' and that publish never calls back (DoEnqueues).
    store.subscriptionsByTopic = async (topic) => {
      if (topic === obs && failNext) {
        failNext = false;
        throw new Error('store unreadable');
      }
      return lookup(topic);
    };
    let intake = await connectIntake(port, 5);
    const hub = await mqtt.connectAsync(options(port, pki.gatewayId, pki.pem.gateway, pki.pem.gatewayKey));
    try {
      const dropped = new Promise<void>((resolve) => hub.once('close', () => resolve()));
      hub.publish(obs, 'never-acked', { qos: 1 });
      await dropped; // the broker drops every connection on a store failure
      expect(errors).toEqual(['BROKER_PERSISTENCE']);
      hub.end(true);
      await intake.client.endAsync(true);
      intake = await connectIntake(port, 5);
      const again = await mqtt.connectAsync(
        options(port, pki.gatewayId, pki.pem.gateway, pki.pem.gatewayKey),
      );
      try {
        // Without the release in ClinicalBroker.storeFailed this waits forever behind the failed publish.
        await again.publishAsync(obs, 'later', { qos: 1 });
        await until('the later message at the intake', () => intake.received.includes('later'));
      } finally {
        await again.endAsync();
      }
    } finally {
      hub.end(true);
      await intake.client.endAsync();
      await broker.stop();
    }
  });
});
