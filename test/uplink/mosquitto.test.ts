import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../scripts/support/measurements.js';
import {
  mosquittoAvailable,
  type RunningMosquitto,
  startMosquitto,
} from '../../scripts/support/mosquitto.js';
import { GatewayDirectory } from '../../src/clinic/gateway-directory.js';
import { ClinicReceiver } from '../../src/clinic/receiver.js';
import type { Measurement } from '../../src/model/measurement.js';
import {
  createDevelopmentPki,
  type DevelopmentPki,
  loadTlsCredentials,
  signingCredentials,
} from '../../src/pki/index.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { Outbox } from '../../src/store/outbox.js';
import { wireItemRecords } from '../../src/uplink/record-codec.js';
import { signedCodec } from '../../src/uplink/signed-codec.js';
import { Uplink } from '../../src/uplink/uplink.js';
import { gatewayTopics } from '../../src/wire/index.js';
import { until } from '../support/until.js';

/**
 * Interoperability with a real, independent broker: Debian's Mosquitto 2.0 with require_certificate,
 * use_identity_as_username and an ACL file (scripts/support/mosquitto.ts), certificates from our PKI. .ci/run
 * installs mosquitto, so in CI its absence fails this suite instead of skipping it.
 */
const available = mosquittoAvailable();
if (!available && process.env.CI)
  throw new Error('mosquitto is not installed (.ci/run should have installed it)');
/** A real broker on a shared machine: waits get more room than in-process ones. */
const WAIT = { timeoutMs: 15_000 };

let dir: string;
let pki: DevelopmentPki;
let mosquitto: RunningMosquitto;

beforeAll(async () => {
  if (!available) return;
  dir = await mkdtemp(join(tmpdir(), 'rpm-mosquitto-'));
  pki = await createDevelopmentPki(dir);
  mosquitto = await startMosquitto({
    dir,
    caFile: pki.files.ca,
    certFile: pki.files.broker,
    keyFile: pki.files.brokerKey,
    clinicName: 'clinic-test',
  });
});

afterAll(async () => {
  await mosquitto?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!available)('uplink against Mosquitto', () => {
  it.each([4, 5] as const)(
    'delivers live and backlog readings with MQTT %s over mutual TLS',
    async (protocolVersion) => {
      const outbox = new Outbox({
        path: join(dir, `m${protocolVersion}.db`),
        keys: new EnvKeyProvider('K', { K: 'f0'.repeat(32) }),
        recordCodec: wireItemRecords,
      });
      await outbox.open();
      const received: Measurement[] = [];
      const directory = new GatewayDirectory(pki.pem.ca);
      directory.add(pki.pem.gateway);
      const receiver = new ClinicReceiver({
        broker: { host: '127.0.0.1', port: mosquitto.port, servername: 'localhost' },
        tls: { ca: pki.pem.ca, cert: pki.pem.clinic, key: pki.pem.clinicKey },
        clientId: `clinic-test-v${protocolVersion}`,
        directory,
        protocolVersion,
        onMeasurement: (_gw, m) => received.push(m),
      });
      await receiver.start();
      const base = protocolVersion * 100_000;
      await Promise.all(
        Array.from({ length: 500 }, (_, i) => outbox.append(spo2Measurement(base + i), 'backlog')),
      );
      const uplink = new Uplink({
        gatewayId: pki.gatewayId,
        brokers: [{ host: '127.0.0.1', port: mosquitto.port, servername: 'localhost' }],
        protocolVersion,
        tls: () =>
          loadTlsCredentials({
            caFile: pki.files.ca,
            certFile: pki.files.gateway,
            keyFile: pki.files.gatewayKey,
          }),
        outbox,
        codec: signedCodec({
          gatewayId: pki.gatewayId,
          version: '0.1.0',
          outbox,
          credentials: () => signingCredentials(pki.pem.gateway, pki.pem.gatewayKey),
        }),
        topics: gatewayTopics(pki.gatewayId),
      });
      uplink.start();
      try {
        await until('the clinic to receive the 500 backlog readings', () => received.length === 500, WAIT);
        await outbox.append(spo2Measurement(base + 999), 'live');
        await until('the clinic to receive the live reading', () => received.length === 501, WAIT);
        expect(new Set(received.map((m) => m.id)).size).toBe(501);
        await until('the outbox to be empty', () => outbox.stats().rows === 0, WAIT);
      } finally {
        await uplink.stop();
        await receiver.stop();
        outbox.close();
      }
    },
  );

  it("keeps a hub out of another hub's topics through the ACL (identity = certificate CN)", async () => {
    const seen: string[] = [];
    const clinic = await mqtt.connectAsync({
      protocol: 'mqtts',
      host: '127.0.0.1',
      port: mosquitto.port,
      servername: 'localhost',
      ca: pki.pem.ca,
      cert: pki.pem.clinic,
      key: pki.pem.clinicKey,
      clientId: 'clinic-acl-watch',
      rejectUnauthorized: true,
      reconnectPeriod: 0,
    });
    clinic.on('message', (topic) => seen.push(topic));
    await clinic.subscribeAsync('rpm/v1/#', { qos: 1 });
    const hub = await mqtt.connectAsync({
      protocol: 'mqtts',
      host: '127.0.0.1',
      port: mosquitto.port,
      servername: 'localhost',
      ca: pki.pem.ca,
      cert: pki.pem.gateway,
      key: pki.pem.gatewayKey,
      clientId: pki.gatewayId,
      rejectUnauthorized: true,
      reconnectPeriod: 0,
    });
    try {
      await hub.publishAsync('rpm/v1/gw-victim-0002/obs', Buffer.from('forged'), { qos: 1 });
      await hub.publishAsync(`rpm/v1/${pki.gatewayId}/obs`, Buffer.from('own topic'), { qos: 1 });
      await until(
        'the clinic to see the hub publish on its own topic',
        () => seen.includes(`rpm/v1/${pki.gatewayId}/obs`),
        WAIT,
      );
      expect(seen).not.toContain('rpm/v1/gw-victim-0002/obs');
    } finally {
      hub.end(true);
      clinic.end(true);
    }
  });

  it('refuses a client without a certificate', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const client = mqtt.connect({
        protocol: 'mqtts',
        host: '127.0.0.1',
        port: mosquitto.port,
        servername: 'localhost',
        ca: pki.pem.ca,
        clientId: 'anonymous',
        reconnectPeriod: 0,
        connectTimeout: 5_000,
      });
      const settle = (result: string) => {
        client.end(true);
        resolve(result);
      };
      client.once('connect', () => settle('connected'));
      client.once('error', () => settle('refused'));
      client.once('close', () => settle('refused'));
    });
    expect(outcome).toBe('refused');
  });
});
