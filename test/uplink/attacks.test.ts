import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { auditBrokerRefusals } from '../../src/broker/audit-refusals.js';
import { ClinicalBroker, type Refusal } from '../../src/broker/clinical-broker.js';
import { identifyClient } from '../../src/broker/identify.js';
import { GatewayDirectory } from '../../src/clinic/gateway-directory.js';
import { ClinicReceiver } from '../../src/clinic/receiver.js';
import { checkServerCertificate, createDevelopmentCa, issueGatewayCertificate } from '../../src/pki/index.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { Outbox } from '../../src/store/outbox.js';
import { type CommandEvent, commandHandler } from '../../src/uplink/commands.js';
import { signedCodec } from '../../src/uplink/signed-codec.js';
import { Uplink, type UplinkEvent } from '../../src/uplink/uplink.js';
import { ManualClock } from '../../src/util/clock.js';
import {
  decodeCommandResult,
  encodeCommand,
  gatewayTopics,
  kidForCertificate,
  MemoryReplayCache,
  newCommand,
  signCommandResult,
  verifyEnvelope,
  type WireError,
} from '../../src/wire/index.js';
import { wireItemRecords } from '../../src/wire/record-codec.js';
import { createTestPki, signingCredentials, type TestPki } from '../support/pki-setup.js';

/** Each attack from the uplink issue, over real TLS sockets against the real broker. */
let dir: string;
let pki: TestPki;
let broker: ClinicalBroker;
let port: number;
const refusals: Refusal[] = [];

const identify = identifyClient;

let audit: AuditLog;
let auditRefusal: (refusal: Refusal) => void;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-attacks-'));
  pki = await createTestPki(dir);
  audit = new AuditLog(join(dir, 'audit.log'));
  auditRefusal = auditBrokerRefusals(audit, Date.now);
  broker = new ClinicalBroker({
    ca: pki.pem.ca,
    cert: pki.pem.broker,
    key: pki.pem.brokerKey,
    port: 0,
    identify,
    onRefusal: (r) => {
      refusals.push(r);
      auditRefusal(r);
    },
  });
  port = (await broker.start()).port;
});

afterAll(async () => {
  // every refusal above went to the tamper-evident audit log, the chain intact
  const { entries } = audit.verify();
  expect(entries).toBeGreaterThan(0);
  const types = readFileSync(join(dir, 'audit.log'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { type: string }).type);
  expect(types).toEqual(
    expect.arrayContaining([
      'broker.refused.tls',
      'broker.refused.connect',
      'broker.refused.publish',
      'broker.refused.subscribe',
    ]),
  );
  await broker.stop();
  await rm(dir, { recursive: true, force: true });
});

function connect(options: {
  cert?: string;
  key?: string;
  clientId: string;
  ca?: string;
  maxVersion?: 'TLSv1.1';
}): Promise<MqttClient> {
  return mqtt.connectAsync({
    protocol: 'mqtts',
    host: '127.0.0.1',
    port,
    servername: 'localhost',
    ca: options.ca ?? pki.pem.ca,
    ...(options.cert ? { cert: options.cert, key: options.key } : {}),
    clientId: options.clientId,
    rejectUnauthorized: true,
    checkServerIdentity: checkServerCertificate,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    ...(options.maxVersion ? { maxVersion: options.maxVersion, minVersion: 'TLSv1' } : {}),
  } as mqtt.IClientOptions);
}

/**
 * Connects and reports the outcome. With TLS 1.3 a refused client certificate surfaces after the client's side
 * of the handshake, as a closed connection rather than a handshake error, so both count as refused (and
 * mqtt.js's connectAsync does not settle then).
 */
function attempt(options: Parameters<typeof connect>[0]): Promise<'connected' | 'refused'> {
  return new Promise((resolve) => {
    const client = mqtt.connect({
      protocol: 'mqtts',
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: pki.pem.ca,
      cert: options.cert,
      key: options.key,
      clientId: options.clientId,
      rejectUnauthorized: true,
      reconnectPeriod: 0,
      connectTimeout: 5_000,
    });
    const settle = (outcome: 'connected' | 'refused') => {
      client.end(true);
      resolve(outcome);
    };
    client.once('connect', () => settle('connected'));
    client.once('error', () => settle('refused'));
    client.once('close', () => settle('refused'));
  });
}

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('TLS-level attacks', () => {
  it('refuses a client without a certificate', async () => {
    const before = refusals.length;
    await expect(connect({ clientId: pki.gatewayId })).rejects.toThrow();
    await until(() => refusals.slice(before).some((r) => r.stage === 'tls'));
  });

  it('refuses a certificate from another CA', async () => {
    const otherCa = await createDevelopmentCa({ commonName: 'attacker CA' });
    const forged = await issueGatewayCertificate(otherCa, { gatewayId: pki.gatewayId });
    const before = refusals.length;
    expect(
      await attempt({ clientId: pki.gatewayId, cert: forged.certificatePem, key: forged.privateKeyPem }),
    ).toBe('refused');
    await until(() => refusals.slice(before).some((r) => r.stage === 'tls'));
  });

  it('refuses an expired certificate', async () => {
    const longAgo = new ManualClock(Date.now() - 10 * 24 * 3600 * 1000);
    const expired = await issueGatewayCertificate(pki.ca, {
      gatewayId: pki.gatewayId,
      validityDays: 1,
      clock: longAgo,
    });
    const before = refusals.length;
    expect(
      await attempt({ clientId: pki.gatewayId, cert: expired.certificatePem, key: expired.privateKeyPem }),
    ).toBe('refused');
    await until(() => refusals.slice(before).some((r) => r.stage === 'tls'));
    // and the hub itself will not even try with it
    const { writeCertificateFile, writePrivateKeyFile, loadTlsCredentials } = await import(
      '../../src/pki/index.js'
    );
    await writeCertificateFile(join(dir, 'expired.crt'), expired.certificatePem);
    await writePrivateKeyFile(join(dir, 'expired.key'), expired.privateKeyPem);
    await expect(
      loadTlsCredentials({
        caFile: pki.files.ca,
        certFile: join(dir, 'expired.crt'),
        keyFile: join(dir, 'expired.key'),
      }),
    ).rejects.toMatchObject({ code: 'PKI_EXPIRED' });
  });

  it('refuses TLS 1.1', async () => {
    const error = await new Promise<Error>((resolve) => {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: pki.pem.ca,
        cert: pki.pem.gateway,
        key: pki.pem.gatewayKey,
        minVersion: 'TLSv1',
        maxVersion: 'TLSv1.1',
      });
      socket.once('secureConnect', () => {
        socket.destroy();
        resolve(new Error('connected with TLS 1.1'));
      });
      socket.once('error', resolve);
    });
    expect(error.message).not.toBe('connected with TLS 1.1');
    expect(`${(error as NodeJS.ErrnoException).code} ${error.message}`).toMatch(/PROTOCOL|VERSION|version/i);
  });

  it('a hub refuses a broker that presents a gateway certificate (no serverAuth)', async () => {
    const impostor = new ClinicalBroker({
      ca: pki.pem.ca,
      cert: pki.pem.gateway,
      key: pki.pem.gatewayKey,
      port: 0,
      identify,
    });
    const impostorPort = (await impostor.start()).port;
    const outbox = new Outbox({
      path: join(dir, 'impostor.db'),
      keys: new EnvKeyProvider('K', { K: 'd1'.repeat(32) }),
      recordCodec: wireItemRecords,
    });
    await outbox.open();
    const events: UplinkEvent[] = [];
    const uplink = new Uplink({
      gatewayId: pki.gatewayId,
      broker: { host: '127.0.0.1', port: impostorPort, servername: 'localhost' },
      tls: async () => ({ ca: pki.pem.ca, cert: pki.pem.gateway, key: pki.pem.gatewayKey }),
      outbox,
      codec: signedCodec({
        gatewayId: pki.gatewayId,
        version: 't',
        outbox,
        credentials: () => signingCredentials(pki.pem.gateway, pki.pem.gatewayKey),
      }),
      topics: gatewayTopics(pki.gatewayId),
      backoff: { baseMs: 10_000, capMs: 10_000, stableAfterMs: 1 },
      onEvent: (e) => events.push(e),
    });
    uplink.start();
    try {
      await until(() => events.some((e) => e.type === 'connect-failed'));
      const failure = events.find((e) => e.type === 'connect-failed') as Extract<
        UplinkEvent,
        { type: 'connect-failed' }
      >;
      expect(failure.error).toMatch(/serverAuth|purpose|unsupported certificate/i);
      expect(uplink.connected).toBe(false);
    } finally {
      await uplink.stop();
      outbox.close();
      await impostor.stop();
    }
  });
});

describe('MQTT-level attacks', () => {
  it('refuses a client id that is not the certificate gateway id', async () => {
    const before = refusals.length;
    await expect(
      connect({ clientId: 'gw-someone-else', cert: pki.pem.gateway, key: pki.pem.gatewayKey }),
    ).rejects.toThrow(/Not authorized|not authorized|5/);
    expect(refusals.slice(before).some((r) => r.stage === 'connect')).toBe(true);
  });

  it("refuses a hub publishing under another hub's topic, and records it", async () => {
    const client = await connect({ clientId: pki.gatewayId, cert: pki.pem.gateway, key: pki.pem.gatewayKey });
    const before = refusals.length;
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.publish('rpm/v1/gw-victim-0002/obs', Buffer.from('forged'), { qos: 1 });
    await closed;
    client.end(true);
    expect(refusals.slice(before)).toContainEqual(
      expect.objectContaining({
        stage: 'publish',
        identity: `gateway:${pki.gatewayId}`,
        detail: 'rpm/v1/gw-victim-0002/obs',
      }),
    );
  });

  it("gives a hub a negative SUBACK for another hub's command topic", async () => {
    const client = await connect({ clientId: pki.gatewayId, cert: pki.pem.gateway, key: pki.pem.gatewayKey });
    const before = refusals.length;
    try {
      // SUBACK return code 0x80 (failure, MQTT 3.1.1 section 3.9.3), which mqtt.js reports as an error
      await expect(client.subscribeAsync('rpm/v1/gw-victim-0002/cmd', { qos: 1 })).rejects.toThrow(
        /Subscribe error/,
      );
      expect(refusals.slice(before)).toContainEqual(expect.objectContaining({ stage: 'subscribe' }));
      expect(client.connected).toBe(true);
    } finally {
      client.end(true);
    }
  });

  it('refuses oversized payloads at the broker and truncated envelopes at the receiver', async () => {
    const directory = new GatewayDirectory(pki.pem.ca);
    directory.add(pki.pem.gateway);
    const rejected: WireError[] = [];
    const receiver = new ClinicReceiver({
      broker: { host: '127.0.0.1', port, servername: 'localhost' },
      tls: { ca: pki.pem.ca, cert: pki.pem.clinic, key: pki.pem.clinicKey },
      clientId: 'clinic-attacks',
      directory,
      onMeasurement: () => {
        throw new Error('nothing valid was sent');
      },
      onRejected: (_topic, error) => rejected.push(error),
    });
    await receiver.start();
    const client = await connect({ clientId: pki.gatewayId, cert: pki.pem.gateway, key: pki.pem.gatewayKey });
    try {
      await client.publishAsync(`rpm/v1/${pki.gatewayId}/obs`, Buffer.from([0xd2, 0x84, 0x43, 0xa1]), {
        qos: 1,
      });
      await until(() => rejected.length === 1);
      expect(rejected[0]?.code).toBe('WIRE_MALFORMED');
      const before = refusals.length;
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      client.publish(`rpm/v1/${pki.gatewayId}/obs`, Buffer.alloc(300 * 1024, 0xa5), { qos: 1 });
      await closed;
      expect(refusals.slice(before)).toContainEqual(
        expect.objectContaining({ stage: 'publish', reason: expect.stringMatching(/payload over/) }),
      );
    } finally {
      client.end(true);
      await receiver.stop();
    }
  });
});

describe('downlink commands', () => {
  it('runs a signed ping once, refuses its replay and a forged command', async () => {
    const clinicCert = new X509Certificate(pki.pem.clinic);
    const clinicKid = kidForCertificate(new Uint8Array(clinicCert.raw));
    const gatewaySigning = signingCredentials(pki.pem.gateway, pki.pem.gatewayKey);
    const gatewayKid = kidForCertificate(gatewaySigning.certificateDer);
    const commandEvents: CommandEvent[] = [];
    const outbox = new Outbox({
      path: join(dir, 'commands.db'),
      keys: new EnvKeyProvider('K', { K: 'e2'.repeat(32) }),
      recordCodec: wireItemRecords,
    });
    await outbox.open();
    const clock = { now: () => Date.now() };
    const uplink = new Uplink({
      gatewayId: pki.gatewayId,
      broker: { host: '127.0.0.1', port, servername: 'localhost' },
      tls: async () => ({ ca: pki.pem.ca, cert: pki.pem.gateway, key: pki.pem.gatewayKey }),
      outbox,
      codec: signedCodec({
        gatewayId: pki.gatewayId,
        version: 't',
        outbox,
        credentials: () => gatewaySigning,
      }),
      topics: gatewayTopics(pki.gatewayId),
      onCommand: commandHandler({
        gatewayId: pki.gatewayId,
        clock,
        resolveClinicKey: (kid) =>
          Buffer.from(kid).equals(Buffer.from(clinicKid)) ? clinicCert.publicKey : undefined,
        replayCache: new MemoryReplayCache(),
        allowedConfigKeys: new Set(['uplink.window']),
        notBefore: Date.now() - 60_000,
        actions: {},
        sign: (result) => signCommandResult(result, gatewaySigning.key, gatewayKid),
        onEvent: (e) => commandEvents.push(e),
      }),
    });
    uplink.start();
    await until(() => uplink.connected);
    const clinic = await connect({
      clientId: 'clinic-commander',
      cert: pki.pem.clinic,
      key: pki.pem.clinicKey,
    });
    const replies: ReturnType<typeof decodeCommandResult>[] = [];
    const gatewayPublicKey = new X509Certificate(pki.pem.gateway).publicKey;
    clinic.on('message', (_topic, payload) => {
      // replies are signed by the gateway: verify before reading
      const { payload: result } = verifyEnvelope(new Uint8Array(payload), () => gatewayPublicKey);
      replies.push(decodeCommandResult(result));
    });
    await clinic.subscribeAsync(`rpm/v1/${pki.gatewayId}/cmd/res`, { qos: 1 });
    try {
      const ping = encodeCommand(
        newCommand({ cmd: 'ping', args: {} }, { gatewayId: pki.gatewayId, now: Date.now() }),
        createPrivateKey(pki.pem.clinicKey),
        clinicKid,
      );
      await clinic.publishAsync(`rpm/v1/${pki.gatewayId}/cmd`, Buffer.from(ping), { qos: 1 });
      await until(() => replies.length === 1);
      expect(replies[0]).toMatchObject({ ok: true, result: { pong: true } });
      await clinic.publishAsync(`rpm/v1/${pki.gatewayId}/cmd`, Buffer.from(ping), { qos: 1 }); // replay
      await until(() => replies.length === 2);
      expect(replies[1]).toMatchObject({ ok: false, error: { code: 'WIRE_CMD_REPLAYED' } });
      // forged: signed with the gateway's own key, which is not a clinic key
      const forged = encodeCommand(
        newCommand({ cmd: 'ping', args: {} }, { gatewayId: pki.gatewayId, now: Date.now() }),
        gatewaySigning.key,
        gatewayKid,
      );
      await clinic.publishAsync(`rpm/v1/${pki.gatewayId}/cmd`, Buffer.from(forged), { qos: 1 });
      await until(() => commandEvents.length === 3);
      expect(commandEvents.map((e) => (e.type === 'command.refused' ? e.code : e.type))).toEqual([
        'command.accepted',
        'WIRE_CMD_REPLAYED',
        'WIRE_UNKNOWN_KID',
      ]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(replies).toHaveLength(2); // no reply to a forgery
    } finally {
      clinic.end(true);
      await uplink.stop();
      outbox.close();
    }
  });
});
