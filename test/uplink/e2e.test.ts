import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../scripts/support/measurements.js';
import type { Refusal } from '../../src/broker/clinical-broker.js';
import { ClinicalBroker } from '../../src/broker/clinical-broker.js';
import { identifyClient } from '../../src/broker/identify.js';
import { GatewayDirectory } from '../../src/clinic/gateway-directory.js';
import { ClinicReceiver } from '../../src/clinic/receiver.js';
import type { Measurement } from '../../src/model/measurement.js';
import {
  createDevelopmentPki,
  type DevelopmentPki,
  issueGatewayCertificate,
  loadTlsCredentials,
  signingCredentials,
  writeCertificateFile,
  writePrivateKeyFile,
} from '../../src/pki/index.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { Outbox } from '../../src/store/outbox.js';
import { wireItemRecords } from '../../src/uplink/record-codec.js';
import { signedCodec } from '../../src/uplink/signed-codec.js';
import { Uplink, type UplinkEvent } from '../../src/uplink/uplink.js';
import { gatewayTopics } from '../../src/wire/index.js';
import { until } from '../support/until.js';

/**
 * The whole uplink over real mutual TLS: outbox -> uplink (signed CBOR batches, QoS 1) -> embedded clinical
 * broker -> clinic receiver (verifies, de-duplicates). No fakes.
 */
let dir: string;
let pki: DevelopmentPki;
let broker: ClinicalBroker;
let port: number;
const refusals: Refusal[] = [];

const identify = identifyClient;

async function startBroker(atPort = 0): Promise<void> {
  broker = new ClinicalBroker({
    ca: pki.pem.ca,
    cert: pki.pem.broker,
    key: pki.pem.brokerKey,
    port: atPort,
    identify,
    onRefusal: (r) => refusals.push(r),
  });
  port = (await broker.start()).port;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-uplink-'));
  pki = await createDevelopmentPki(dir);
  await startBroker();
});

afterAll(async () => {
  await broker.stop();
  await rm(dir, { recursive: true, force: true });
});

interface Rig {
  outbox: Outbox;
  uplink: Uplink;
  receiver: ClinicReceiver;
  received: Measurement[];
  events: UplinkEvent[];
  stop: () => Promise<void>;
}

const rigs: Rig[] = [];
afterEach(async () => {
  for (const rig of rigs.splice(0)) await rig.stop();
});

async function rig(
  name: string,
  options: { window?: number; backlogBatchBytes?: number } = {},
  signing?: () => ReturnType<typeof signingCredentials>,
): Promise<Rig> {
  const outbox = new Outbox({
    path: join(dir, `${name}.db`),
    keys: new EnvKeyProvider('K', { K: 'c4'.repeat(32) }),
    recordCodec: wireItemRecords,
  });
  await outbox.open();
  const received: Measurement[] = [];
  const events: UplinkEvent[] = [];
  const directory = new GatewayDirectory(pki.pem.ca);
  directory.add(pki.pem.gateway);
  const receiver = new ClinicReceiver({
    broker: { host: '127.0.0.1', port, servername: 'localhost' },
    tls: { ca: pki.pem.ca, cert: pki.pem.clinic, key: pki.pem.clinicKey },
    clientId: `clinic-test-${name}`, // clinic-<certificate name>-<suffix> (src/broker/acl.ts)
    directory,
    onMeasurement: (_gw, m) => received.push(m),
  });
  await receiver.start();
  const credentials = signingCredentials(pki.pem.gateway, pki.pem.gatewayKey);
  const uplink = new Uplink({
    gatewayId: pki.gatewayId,
    brokers: [{ host: '127.0.0.1', port, servername: 'localhost' }],
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
      credentials: signing ?? (() => credentials),
    }),
    topics: gatewayTopics(pki.gatewayId),
    backoff: { baseMs: 50, capMs: 200, stableAfterMs: 60_000 },
    onEvent: (e) => events.push(e),
    ...options,
  });
  const r: Rig = {
    outbox,
    uplink,
    receiver,
    received,
    events,
    stop: async () => {
      await uplink.stop();
      await receiver.stop();
      outbox.close();
    },
  };
  rigs.push(r);
  return r;
}

describe('uplink over mutual TLS to the embedded broker', () => {
  it('sends a live reading at once, signed, and deletes it only after the PUBACK', async () => {
    const r = await rig('live');
    r.uplink.start();
    await until('the uplink to connect', () => r.uplink.connected);
    await r.outbox.append(spo2Measurement(1), 'live');
    await until('the clinic to receive the reading', () => r.received.length === 1);
    expect(r.received[0]).toEqual(spo2Measurement(1));
    await until('the outbox to be empty', () => r.outbox.stats().rows === 0);
    expect(r.events.filter((e) => e.type === 'batch-acked')).toHaveLength(1);
  });

  it('drains a backlog in byte-sized batches, each reading exactly once', async () => {
    const r = await rig('backlog');
    await Promise.all(
      Array.from({ length: 3_000 }, (_, i) => r.outbox.append(spo2Measurement(10_000 + i), 'backlog')),
    );
    r.uplink.start();
    await until('the clinic to receive 3,000 readings', () => r.received.length === 3_000, {
      timeoutMs: 30_000,
    });
    const ids = new Set(r.received.map((m) => m.id));
    expect(ids.size).toBe(3_000);
    const batches = r.events.filter((e) => e.type === 'batch-acked');
    expect(batches.length).toBeLessThan(100); // batched, not one message per reading
    await until('the outbox to be empty', () => r.outbox.stats().rows === 0);
  });

  it('loses nothing when the broker drops the connection mid-drain: re-sent, de-duplicated by the clinic', async () => {
    const r = await rig('drop', { window: 4, backlogBatchBytes: 8 * 1024 });
    await Promise.all(
      Array.from({ length: 2_000 }, (_, i) => r.outbox.append(spo2Measurement(20_000 + i), 'backlog')),
    );
    let dropped = false;
    broker.mqtt.on('publish', (_packet, client) => {
      if (!dropped && client?.id === pki.gatewayId && r.received.length > 200) {
        dropped = true;
        client.close(); // the broker closes the hub's connection with batches in flight
      }
    });
    r.uplink.start();
    await until(
      'the outbox to drain and the clinic to see all 2,000 readings',
      () => r.outbox.stats().rows === 0 && r.received.length + r.receiver.duplicates >= 2_000,
      { timeoutMs: 30_000 },
    );
    expect(dropped).toBe(true);
    expect(r.events.some((e) => e.type === 'disconnected' && e.released > 0)).toBe(true);
    expect(new Set(r.received.map((m) => m.id)).size).toBe(2_000);
    expect(r.received).toHaveLength(2_000); // duplicates were dropped by the receiver, none lost
  });

  it('quarantines a record that cannot be encoded instead of blocking the queue behind it', async () => {
    const r = await rig('poison');
    const poison = spo2Measurement(30_000, {
      observations: [{ code: 'MDC_NOT_A_CODE' as 'MDC_PULS_OXIM_SAT_O2', value: 1, unit: '%' }],
    });
    await r.outbox.append(spo2Measurement(30_001), 'backlog');
    await r.outbox.append(poison, 'backlog');
    await r.outbox.append(spo2Measurement(30_002), 'backlog');
    r.uplink.start();
    await until('the clinic to receive the two good readings', () => r.received.length === 2);
    await until('the outbox to be empty', () => r.outbox.stats().rows === 0);
    expect(r.received.map((m) => m.id)).toEqual([spo2Measurement(30_001).id, spo2Measurement(30_002).id]);
    expect(r.outbox.stats().quarantinedTotal).toBe(1);
    expect(r.events).toContainEqual(expect.objectContaining({ type: 'quarantined', records: 1 }));
    const kept = r.outbox.database.prepare('SELECT id FROM quarantine').pluck().all();
    expect(kept).toEqual([poison.id]); // kept for inspection, not deleted
  });

  it('pauses, quarantining nothing, when batches fail for a reason that is not a record (no signing key)', async () => {
    const good = signingCredentials(pki.pem.gateway, pki.pem.gatewayKey);
    let keyMissing = false;
    const r = await rig('no-key', {}, () => {
      if (keyMissing) throw new Error('the signing key is being renewed');
      return good;
    });
    r.uplink.start();
    await until('the uplink to connect', () => r.uplink.connected);
    keyMissing = true;
    for (let n = 0; n < 5; n++) await r.outbox.append(spo2Measurement(31_000 + n), 'backlog');
    await until('a batch to fail', () => r.events.some((e) => e.type === 'batch-failed'));
    expect(r.outbox.stats()).toMatchObject({ rows: 5, quarantinedTotal: 0 });
    keyMissing = false;
    await r.outbox.append(spo2Measurement(31_005), 'live'); // the next commit wakes the pump
    await until('the clinic to receive all six readings', () => r.received.length === 6);
    await until('the outbox to be empty', () => r.outbox.stats().rows === 0);
    expect(r.outbox.stats().quarantinedTotal).toBe(0);
  });

  it('a stop ends with the offline status and a DISCONNECT, so the broker never publishes the Last Will', async () => {
    const r = await rig('graceful');
    const disconnected = new Promise<void>((resolve) => {
      const onGone = (client: { id: string }) => {
        if (client.id !== pki.gatewayId) return;
        broker.mqtt.removeListener('clientDisconnect', onGone);
        resolve();
      };
      broker.mqtt.on('clientDisconnect', onGone);
    });
    r.uplink.start();
    await until('the hub to connect', () => r.events.some((e) => e.type === 'connected'));
    const stoppedAt = Date.now();
    await r.uplink.stop();
    expect(r.events.at(-1)).toEqual({ type: 'stopped', graceful: true });
    await disconnected;
    // The broker has let the hub go. Had it published the Will (offline, signed at connect time), the
    // retained status would be the Will now; with a DISCONNECT there is no Will, so a clinic that subscribes
    // from here on is handed the status the hub sent at its stop.
    const statuses: { state: string; sentAt: number }[] = [];
    const directory = new GatewayDirectory(pki.pem.ca);
    directory.add(pki.pem.gateway);
    const late = new ClinicReceiver({
      broker: { host: '127.0.0.1', port, servername: 'localhost' },
      tls: { ca: pki.pem.ca, cert: pki.pem.clinic, key: pki.pem.clinicKey },
      clientId: 'clinic-test-graceful-late',
      directory,
      onMeasurement: () => undefined,
      onStatus: (s) => statuses.push({ state: s.state, sentAt: s.sentAt }),
    });
    await late.start();
    try {
      await until('the retained status', () => statuses.length > 0);
      expect(statuses[0]?.state).toBe('offline');
      expect(statuses[0]?.sentAt).toBeGreaterThanOrEqual(stoppedAt);
    } finally {
      await late.stop();
    }
  });

  it('uses a renewed certificate at the next reconnect, without a restart, and leaves a retained Last Will', async () => {
    const r = await rig('renew');
    const statuses: string[] = [];
    const watcher = new ClinicReceiver({
      broker: { host: '127.0.0.1', port, servername: 'localhost' },
      tls: { ca: pki.pem.ca, cert: pki.pem.clinic, key: pki.pem.clinicKey },
      clientId: 'clinic-test-renew-status',
      directory: (() => {
        const d = new GatewayDirectory(pki.pem.ca);
        d.add(pki.pem.gateway);
        return d;
      })(),
      onMeasurement: () => undefined,
      onStatus: (s) => statuses.push(s.state),
    });
    await watcher.start();
    const serials: string[] = [];
    let hubClient: { close: () => void } | undefined;
    const onClient = (client: { id: string; conn: unknown; close: () => void }) => {
      if (client.id !== pki.gatewayId) return;
      hubClient = client;
      const socket = client.conn as { getPeerCertificate?: () => { serialNumber?: string } };
      serials.push(socket.getPeerCertificate?.().serialNumber?.toLowerCase() ?? '');
    };
    broker.mqtt.on('client', onClient);
    try {
      r.uplink.start();
      await until(
        'the hub to connect and the clinic to see it online',
        () => serials.length === 1 && statuses.includes('online'),
      );
      // the clinic renews the hub's certificate; the hub's files are replaced while it runs
      const renewed = await issueGatewayCertificate(pki.ca, { gatewayId: pki.gatewayId });
      await writeCertificateFile(pki.files.gateway, renewed.certificatePem);
      await writePrivateKeyFile(pki.files.gatewayKey, renewed.privateKeyPem, { force: true });
      hubClient?.close(); // the broker drops the connection: the hub reconnects with what is on disk now
      await until('the hub to reconnect', () => serials.length === 2);
      expect(serials[1]).toBe(renewed.certificate.serialNumber.toLowerCase());
      expect(serials[1]).not.toBe(serials[0]);
      await until(
        'the clinic to see the hub online again',
        () => statuses.filter((s) => s === 'online').length >= 2,
      );
      expect(statuses).toContain('offline'); // the broker published the Last Will when the connection died
    } finally {
      broker.mqtt.removeListener('client', onClient);
      await watcher.stop();
      // restore the original credentials for the other tests
      await writeCertificateFile(pki.files.gateway, pki.pem.gateway);
      await writePrivateKeyFile(pki.files.gatewayKey, pki.pem.gatewayKey, { force: true });
    }
  });
});
