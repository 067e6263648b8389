import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrokerOptions, ClinicalBroker } from '../../src/broker/clinical-broker.js';
import { type DurableSubscriber, intakeSubscriptions } from '../../src/broker/durable-subscribers.js';
import type { BrokerError } from '../../src/broker/errors.js';
import { identifyClient } from '../../src/broker/identify.js';
import { ValueCipher } from '../../src/broker/value-cipher.js';
import { createDevelopmentPki, type DevelopmentPki } from '../../src/pki/index.js';
import { KeyFileProvider } from '../../src/store/keys.js';
import { until } from '../support/until.js';
import { brokerClientOptions } from './client-options.js';

/**
 * The broker's store holds no reading in the clear: real LevelDB files scanned byte by byte, real TLS, the
 * intake offline so that every message is queued on disk. Then what a damaged value, a missing key and a
 * wrong key do.
 */
const INTAKE = 'clinic-test-intake';
const durableSubscribers: DurableSubscriber[] = [{ clientId: INTAKE, subscriptions: intakeSubscriptions() }];

let dir: string;
let pki: DevelopmentPki;
let obs: string;
let runs = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-broker-sealed-'));
  pki = await createDevelopmentPki(dir);
  obs = `rpm/v1/${pki.gatewayId}/obs`;
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const newStore = () => join(dir, `store-${++runs}`);

function broker(
  persistence: BrokerOptions['persistence'],
  onError?: (e: BrokerError) => void,
): ClinicalBroker {
  return new ClinicalBroker({
    ca: pki.pem.ca,
    cert: pki.pem.broker,
    key: pki.pem.brokerKey,
    port: 0,
    identify: identifyClient,
    ...(persistence ? { persistence } : {}),
    durableSubscribers,
    ...(onError ? { onError } : {}),
  });
}

function options(port: number, clientId: string, cert: string, key: string): mqtt.IClientOptions {
  return brokerClientOptions(pki.pem.ca, port, clientId, cert, key);
}

/** Publishes each payload at QoS 1 and waits for every PUBACK: each is then queued on disk for the intake. */
async function hubPublishes(port: number, payloads: readonly string[]): Promise<void> {
  const hub = await mqtt.connectAsync(options(port, pki.gatewayId, pki.pem.gateway, pki.pem.gatewayKey));
  try {
    await Promise.all(payloads.map((p) => hub.publishAsync(obs, p, { qos: 1 })));
  } finally {
    await hub.endAsync();
  }
}

/** Every file under `root` that contains `marker`. */
async function filesContaining(root: string, marker: Buffer): Promise<string[]> {
  const found: string[] = [];
  const names = await readdir(root, { recursive: true });
  for (const name of names) {
    const path = join(root, name);
    if (!(await stat(path)).isFile()) continue;
    if ((await readFile(path)).includes(marker)) found.push(name);
  }
  return found;
}

describe('a queued reading is not on disk in the clear', () => {
  /** A reading as a batch carries it: an MDC code and a value, with a marker no other bytes contain. */
  const reading = () => `MDC_PRESS_BLD_NONINV_SYS=128 ${randomBytes(8).toString('hex')}`;

  it.each([
    ['encrypted: not found', 'sealed', false],
    ["tests' unencrypted mode: found (the scan sees plain bytes)", 'none-for-tests', true],
  ] as const)('%s', async (_name, mode, expected) => {
    const store = newStore();
    const marker = reading();
    const b = broker({
      dir: store,
      sync: true,
      key: mode === 'sealed' ? new KeyFileProvider(join(dir, `broker-${runs}.key`)) : 'none-for-tests',
    });
    const { port } = await b.start();
    try {
      await hubPublishes(port, [marker]);
      // in LevelDB's log now (synced before the PUBACK)
      expect((await filesContaining(store, Buffer.from(marker))).length > 0).toBe(expected);
    } finally {
      await b.stop();
    }
    // and after close, which may have written the log into a table
    expect((await filesContaining(store, Buffer.from(marker))).length > 0).toBe(expected);
  });

  it('the key file is made on the first start: 256 random bits as 64 hex digits, mode 0600', async () => {
    const keyFile = join(dir, 'fresh', 'broker.key');
    const b = broker({ dir: newStore(), sync: true, key: new KeyFileProvider(keyFile) });
    await b.start();
    await b.stop();
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    expect((await readFile(keyFile, 'utf8')).trim()).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('a stored value that fails authentication', () => {
  it('is reported (BROKER_PERSISTENCE_CORRUPT, no reading in the message), skipped, and the rest is delivered', async () => {
    const store = newStore();
    const key = randomBytes(32);
    const first = broker({ dir: store, sync: true, key });
    const { port } = await first.start();
    await hubPublishes(port, ['m-0', 'm-1', 'm-2']);
    await first.stop();

    // flip one ciphertext byte of the queued m-1, through LevelDB itself (its own checksums stay valid)
    const raw = new ClassicLevel<string, Buffer>(store, { valueEncoding: 'buffer' });
    const cipher = new ValueCipher(key);
    let flipped = 0;
    for await (const [k, v] of raw.iterator({ gte: 'outgoing:', lt: 'outgoing;' })) {
      if (!cipher.unseal(k, v).includes('m-1')) continue;
      const damaged = Buffer.from(v);
      damaged[40] = (damaged[40] as number) ^ 0x01;
      await raw.put(k, damaged);
      flipped++;
    }
    await raw.close();
    expect(flipped).toBe(1);

    const errors: BrokerError[] = [];
    const second = broker({ dir: store, sync: true, key }, (e) => errors.push(e));
    const again = await second.start();
    const received: string[] = [];
    const intake = mqtt.connect(options(again.port, INTAKE, pki.pem.clinic, pki.pem.clinicKey));
    intake.on('message', (_topic, payload) => received.push(payload.toString()));
    try {
      await until('the two undamaged messages', () => received.length >= 2);
      // queued after the others: once it is in, nothing earlier can still come
      await hubPublishes(again.port, ['sentinel']);
      await until('the sentinel', () => received.includes('sentinel'));
      expect(received.sort()).toEqual(['m-0', 'm-2', 'sentinel']);
      expect(errors.map((e) => e.code)).toEqual(['BROKER_PERSISTENCE_CORRUPT']);
      expect(errors[0]?.message).toMatch(/^the stored value of outgoing:clinic-test-intake:/);
      expect(errors[0]?.message).not.toContain('m-1');
    } finally {
      await intake.endAsync();
      await second.stop();
    }
  });
});

describe('the store key', () => {
  it('missing beside an existing store: refused (BROKER_PERSISTENCE_KEY_MISSING), no new key made', async () => {
    const store = newStore();
    const keyFile = join(dir, `missing-${runs}.key`);
    const first = broker({ dir: store, sync: true, key: new KeyFileProvider(keyFile) });
    await first.start();
    await first.stop();
    await unlink(keyFile);
    await expect(
      broker({ dir: store, sync: true, key: new KeyFileProvider(keyFile) }).start(),
    ).rejects.toMatchObject({ code: 'BROKER_PERSISTENCE_KEY_MISSING' });
    await expect(stat(keyFile)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('another key than the one the store was made with: refused (BROKER_PERSISTENCE_KEY_WRONG)', async () => {
    const store = newStore();
    const first = broker({ dir: store, sync: true, key: randomBytes(32) });
    await first.start();
    await first.stop();
    await expect(broker({ dir: store, sync: true, key: randomBytes(32) }).start()).rejects.toMatchObject({
      code: 'BROKER_PERSISTENCE_KEY_WRONG',
    });
  });

  it('a store written unencrypted: refused (BROKER_PERSISTENCE_KEY_WRONG), not read as damage', async () => {
    const store = newStore();
    const first = broker({ dir: store, sync: true, key: 'none-for-tests' });
    await first.start();
    await first.stop();
    await expect(broker({ dir: store, sync: true, key: randomBytes(32) }).start()).rejects.toMatchObject({
      code: 'BROKER_PERSISTENCE_KEY_WRONG',
      message: expect.stringMatching(/no key check/),
    });
  });

  it('the refused store opens again with its own key (the refusals locked nothing)', async () => {
    const store = newStore();
    const key = randomBytes(32);
    const first = broker({ dir: store, sync: true, key });
    await first.start();
    await first.stop();
    await expect(broker({ dir: store, sync: true, key: randomBytes(32) }).start()).rejects.toThrow();
    const again = broker({ dir: store, sync: true, key });
    await again.start();
    await again.stop();
  });
});
