import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClinicalBroker, type Refusal } from '../../src/broker/clinical-broker.js';
import {
  checkDurableSubscribers,
  type DurableSubscriber,
  intakeSubscriptions,
} from '../../src/broker/durable-subscribers.js';
import { identifyClient } from '../../src/broker/identify.js';
import type { BrokerPersistence } from '../../src/broker/persistence.js';
import { createDevelopmentPki, type DevelopmentPki } from '../../src/pki/index.js';
import { until } from '../support/until.js';
import { brokerClientOptions } from './client-options.js';

/**
 * The embedded broker loses nothing it PUBACKed to a hub: sessions and QoS 1 queues in LevelDB, the intake's
 * session provisioned before hubs connect, and the PUBACK sent only after the queue write. Real TLS, real
 * LevelDB files; the broker runs in a child process where it must be SIGKILLed (test/support/broker-child.ts).
 */
const INTAKE = 'clinic-test-intake';
const N = 40;
const child = join(import.meta.dirname, '../../dist/test/support/broker-child.js');
const durableSubscribers: DurableSubscriber[] = [{ clientId: INTAKE, subscriptions: intakeSubscriptions() }];

let dir: string;
let pki: DevelopmentPki;
let obs: string;
let runs = 0;
/** The store key of the in-process brokers (the child reads its own key file). */
const storeKey = randomBytes(32);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-broker-persist-'));
  pki = await createDevelopmentPki(dir);
  obs = `rpm/v1/${pki.gatewayId}/obs`;
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const newStore = () => join(dir, `store-${++runs}`);

function options(port: number, clientId: string, cert: string, key: string): mqtt.IClientOptions {
  return brokerClientOptions(pki.pem.ca, port, clientId, cert, key);
}

function inProcess(store: string | undefined, onRefusal?: (r: Refusal) => void): ClinicalBroker {
  return new ClinicalBroker({
    ca: pki.pem.ca,
    cert: pki.pem.broker,
    key: pki.pem.brokerKey,
    port: 0,
    identify: identifyClient,
    ...(store === undefined ? {} : { persistence: { dir: store, sync: true, key: storeKey } }),
    durableSubscribers,
    ...(onRefusal ? { onRefusal } : {}),
  });
}

/** The hub publishes N readings at QoS 1 and returns the ids whose PUBACK it received (all of them). */
async function hubPublishes(port: number, prefix: string, count = N): Promise<string[]> {
  const hub = await mqtt.connectAsync(options(port, pki.gatewayId, pki.pem.gateway, pki.pem.gatewayKey));
  try {
    const ids = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
    await Promise.all(ids.map((id) => hub.publishAsync(obs, id, { qos: 1 })));
    return ids;
  } finally {
    await hub.endAsync();
  }
}

/**
 * The intake connects (CleanSession 0) and collects everything up to a sentinel the hub publishes after it has
 * the expected count: the sentinel is queued after every earlier message, so nothing more can still come.
 */
async function intakeReceives(port: number, expected: number): Promise<string[]> {
  const received: string[] = [];
  const intake = mqtt.connect(options(port, INTAKE, pki.pem.clinic, pki.pem.clinicKey));
  intake.on('message', (_topic, payload) => received.push(payload.toString()));
  try {
    await until(`${expected} messages at the intake`, () => received.length >= expected, {
      timeoutMs: 20_000,
    });
    await hubPublishes(port, 'sentinel', 1);
    await until('the sentinel', () => received.includes('sentinel-0'), { timeoutMs: 20_000 });
    return received.filter((id) => id !== 'sentinel-0');
  } finally {
    await intake.endAsync();
  }
}

interface Child {
  readonly process: ChildProcess;
  readonly port: number;
}

async function startChild(store: string): Promise<Child> {
  const proc = spawn(
    process.execPath,
    [
      child,
      JSON.stringify({
        ca: pki.files.ca,
        broker: pki.files.broker,
        brokerKey: pki.files.brokerKey,
        dir: store,
        keyFile: `${store}.key`,
        sync: true,
        durableSubscribers,
      }),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
  const port = await new Promise<number>((resolve, reject) => {
    lines.once('line', (line) => resolve(Number(line.split(' ')[1])));
    proc.once('exit', (code) => reject(new Error(`broker child exited (${code}) before READY`)));
  });
  return { process: proc, port };
}

function ended(proc: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    proc.once('exit', () => resolve());
    proc.kill(signal);
  });
}

describe('intake never connected: its provisioned session queues from the first hub message', () => {
  it.each([
    ['LevelDB', true],
    ['in memory', false],
  ])('%s', async (_name, onDisk) => {
    const broker = inProcess(onDisk ? newStore() : undefined);
    const { port } = await broker.start();
    try {
      const acked = await hubPublishes(port, 'never');
      expect(acked).toHaveLength(N);
      const received = await intakeReceives(port, N);
      expect(received.sort()).toEqual([...acked].sort());
    } finally {
      await broker.stop();
    }
  });
});

describe('restarts on the same store lose nothing that was PUBACKed', () => {
  it('the built child exists (npm run build)', () => {
    expect(existsSync(child)).toBe(true);
  });

  it('broker SIGKILLed with the intake offline: after a restart the intake receives exactly the PUBACKed messages', async () => {
    const store = newStore();
    let broker = await startChild(store);
    try {
      // the intake connects once, then goes away (its session stays: CleanSession 0)
      const intake = await mqtt.connectAsync(options(broker.port, INTAKE, pki.pem.clinic, pki.pem.clinicKey));
      await intake.endAsync();
      const acked = await hubPublishes(broker.port, 'killed');
      await ended(broker.process, 'SIGKILL');
      broker = await startChild(store);
      const received = await intakeReceives(broker.port, N);
      expect(received).toHaveLength(N);
      expect(received.sort()).toEqual([...acked].sort());
    } finally {
      await ended(broker.process, 'SIGKILL');
    }
  });

  it('a clean restart (stop, start) keeps the queue too', async () => {
    const store = newStore();
    let broker = inProcess(store);
    const first = await broker.start();
    const acked = await hubPublishes(first.port, 'clean');
    await broker.stop();
    broker = inProcess(store);
    const { port } = await broker.start();
    try {
      const received = await intakeReceives(port, N);
      expect(received).toHaveLength(N);
      expect(received.sort()).toEqual([...acked].sort());
    } finally {
      await broker.stop();
    }
  });
});

describe('the PUBACK waits for the queue write', () => {
  it('sends no PUBACK while the offline enqueue is held, and one once it completed', async () => {
    const broker = inProcess(newStore());
    const { port } = await broker.start();
    const aedes = broker.mqtt;
    const store = (aedes as unknown as { persistence: BrokerPersistence }).persistence;
    const enqueue = store.outgoingEnqueueCombi.bind(store);
    let entered: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      entered = resolve;
    });
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    store.outgoingEnqueueCombi = async (subscriptions, packet) => {
      entered();
      await released;
      return enqueue(subscriptions, packet);
    };
    // every byte the broker writes to the hub's socket after the hub is connected
    const written: Buffer[] = [];
    let recording = false;
    aedes.on('client', (client) => {
      if (client.id !== pki.gatewayId) return;
      const socket = client.conn as unknown as { write: (chunk: Buffer, ...rest: unknown[]) => boolean };
      const write = socket.write.bind(socket);
      socket.write = (chunk, ...rest) => {
        if (recording) written.push(Buffer.from(chunk));
        return write(chunk, ...rest);
      };
    });
    const hub = await mqtt.connectAsync(options(port, pki.gatewayId, pki.pem.gateway, pki.pem.gatewayKey));
    try {
      const order: string[] = [];
      recording = true;
      const acked = hub.publishAsync(obs, 'held', { qos: 1 }).then(() => order.push('puback'));
      await held;
      // aedes 1.2 unchanged writes the PUBACK before it starts the publish: it would be here already
      expect(Buffer.concat(written)).toEqual(Buffer.alloc(0));
      order.push('released');
      release();
      await acked;
      expect(order).toEqual(['released', 'puback']);
      const bytes = Buffer.concat(written);
      expect(bytes[0]).toBe(0x40); // PUBACK (MQTT 3.1.1 section 3.4)
      expect(bytes).toHaveLength(4);
      await hub.endAsync();
      // published once, not again by aedes after the PUBACK: the intake gets it exactly once
      expect(await intakeReceives(port, 1)).toEqual(['held']);
    } finally {
      release();
      hub.end(true);
      await broker.stop();
    }
  });
});

describe('a store write that fails', () => {
  it('is reported, never PUBACKed, and the hub is disconnected so it sends the message again later', async () => {
    const errors: { code: string }[] = [];
    const broker = new ClinicalBroker({
      ca: pki.pem.ca,
      cert: pki.pem.broker,
      key: pki.pem.brokerKey,
      port: 0,
      identify: identifyClient,
      persistence: { dir: newStore(), sync: true, key: storeKey },
      durableSubscribers,
      onError: (error) => errors.push(error),
    });
    const { port } = await broker.start();
    const store = (broker.mqtt as unknown as { persistence: BrokerPersistence }).persistence;
    store.outgoingEnqueueCombi = async () => {
      throw new Error('disk full');
    };
    const hub = await mqtt.connectAsync(options(port, pki.gatewayId, pki.pem.gateway, pki.pem.gatewayKey));
    try {
      const received: string[] = [];
      hub.on('packetreceive', (packet) => received.push(packet.cmd));
      const closed = new Promise<void>((resolve) => hub.once('close', () => resolve()));
      hub.publish(obs, 'lost?', { qos: 1 });
      // a PUBACK would come before the close on the same TLS stream
      await closed;
      expect(received).not.toContain('puback');
      expect(errors).toEqual([expect.objectContaining({ code: 'BROKER_PERSISTENCE' })]);
    } finally {
      hub.end(true);
      await broker.stop();
    }
  });
});

describe('durable subscribers', () => {
  it('refuses a CleanSession 1 connect under a durable id (it would delete the queue)', async () => {
    const refusals: Refusal[] = [];
    const broker = inProcess(newStore(), (r) => refusals.push(r));
    const { port } = await broker.start();
    try {
      await expect(
        mqtt.connectAsync({ ...options(port, INTAKE, pki.pem.clinic, pki.pem.clinicKey), clean: true }),
      ).rejects.toThrow(/Not authorized/i);
      expect(refusals).toEqual([
        {
          stage: 'connect',
          identity: 'clinic:clinic-test',
          reason: `durable subscriber ${INTAKE} must connect with CleanSession 0`,
        },
      ]);
    } finally {
      await broker.stop();
    }
  });

  it('only clinic client ids with clinic subscriptions at QoS 1 or 2 are provisioned', () => {
    const bad = (subscriber: DurableSubscriber) => () => checkDurableSubscribers([subscriber]);
    const subscriptions = intakeSubscriptions();
    expect(bad({ clientId: 'gw-test-0001', subscriptions })).toThrow(/not a clinic client id/);
    expect(bad({ clientId: 'clinic-', subscriptions })).toThrow(/not a clinic client id/);
    expect(bad({ clientId: 'clinic-a-very-long-intake-name', subscriptions })).toThrow(/at most 23/);
    expect(bad({ clientId: 'clinic-x', subscriptions: [] })).toThrow(/no subscriptions/);
    expect(bad({ clientId: 'clinic-x', subscriptions: [{ topic: '#', qos: 1 }] })).toThrow(
      /stay under rpm\/v1/,
    );
    expect(bad({ clientId: 'clinic-x', subscriptions: [{ topic: 'rpm/v1/+/obs', qos: 0 as 1 }] })).toThrow(
      /QoS must be 1 or 2/,
    );
    expect(() =>
      checkDurableSubscribers([
        { clientId: 'clinic-x', subscriptions },
        { clientId: 'clinic-x', subscriptions },
      ]),
    ).toThrow(expect.objectContaining({ code: 'BROKER_BAD_DURABLE_SUBSCRIBER' }));
    expect(() => checkDurableSubscribers(durableSubscribers)).not.toThrow();
  });
});
