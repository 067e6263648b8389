import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { auditBrokerRefusals } from '../../src/broker/audit-refusals.js';
import { ClinicalBroker, type Refusal } from '../../src/broker/clinical-broker.js';
import { identifyClient } from '../../src/broker/identify.js';
import { GatewayDirectory } from '../../src/clinic/gateway-directory.js';
import { ClinicReceiver } from '../../src/clinic/receiver.js';
import {
  checkServerCertificate,
  createDevelopmentCa,
  createDevelopmentPki,
  type DevelopmentPki,
  issueClinicCertificate,
  issueGatewayCertificate,
  signingCredentials,
} from '../../src/pki/index.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { Outbox } from '../../src/store/outbox.js';
import { auditCommandEvents } from '../../src/uplink/command-audit.js';
import { CommandSigners } from '../../src/uplink/command-signers.js';
import { type CommandEvent, commandHandler } from '../../src/uplink/commands.js';
import { wireItemRecords } from '../../src/uplink/record-codec.js';
import { signedCodec } from '../../src/uplink/signed-codec.js';
import { Uplink, type UplinkEvent } from '../../src/uplink/uplink.js';
import { ManualClock } from '../../src/util/clock.js';
import {
  type CommandResult,
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

/** Each attack from the uplink issue, over real TLS sockets against the real broker. */
let dir: string;
let pki: DevelopmentPki;
let broker: ClinicalBroker;
let port: number;
const refusals: Refusal[] = [];

const identify = identifyClient;

let audit: AuditLog;
/** How long a test waits for something that must happen (a TLS handshake on a busy machine can take seconds). */
const WAIT = { timeout: 5_000, interval: 10 };
let auditRefusal: (refusal: Refusal) => void;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-attacks-'));
  pki = await createDevelopmentPki(dir);
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

describe('TLS-level attacks', () => {
  it('refuses a client without a certificate', async () => {
    const before = refusals.length;
    await expect(connect({ clientId: pki.gatewayId })).rejects.toThrow();
    await vi.waitFor(() => expect(refusals.slice(before).some((r) => r.stage === 'tls')).toBe(true), WAIT);
  });

  it('refuses a certificate from another CA', async () => {
    const otherCa = await createDevelopmentCa({ commonName: 'attacker CA' });
    const forged = await issueGatewayCertificate(otherCa, { gatewayId: pki.gatewayId });
    const before = refusals.length;
    expect(
      await attempt({ clientId: pki.gatewayId, cert: forged.certificatePem, key: forged.privateKeyPem }),
    ).toBe('refused');
    await vi.waitFor(() => expect(refusals.slice(before).some((r) => r.stage === 'tls')).toBe(true), WAIT);
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
    await vi.waitFor(() => expect(refusals.slice(before).some((r) => r.stage === 'tls')).toBe(true), WAIT);
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
      brokers: [{ host: '127.0.0.1', port: impostorPort, servername: 'localhost' }],
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
      await vi.waitFor(() => expect(events.some((e) => e.type === 'connect-failed')).toBe(true), WAIT);
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
      clientId: 'clinic-test-attacks',
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
      await vi.waitFor(() => expect(rejected).toHaveLength(1), WAIT);
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
  const DAY = 24 * 3600 * 1000;
  const commandTopic = () => `rpm/v1/${pki.gatewayId}/cmd`;
  const commandEvents: CommandEvent[] = [];
  const replies: CommandResult[] = [];
  /** A command-signing identity: the certificate's key and kid. */
  type Signer = { readonly key: KeyObject; readonly kid: Uint8Array };
  const signers: Record<'clinic' | 'rotated' | 'gateway' | 'expired' | 'otherCa', Signer> = {} as never;
  let outbox: Outbox;
  let uplink: Uplink;
  let clinic: MqttClient;

  function signerOf(issued: { certificatePem: string; privateKeyPem: string }): Signer {
    return {
      key: createPrivateKey(issued.privateKeyPem),
      kid: kidForCertificate(new Uint8Array(new X509Certificate(issued.certificatePem).raw)),
    };
  }

  function ping(signer: Signer, overrides: { now?: number } = {}): { id: string; bytes: Uint8Array } {
    const command = newCommand(
      { cmd: 'ping', args: {} },
      { gatewayId: pki.gatewayId, now: overrides.now ?? Date.now() },
    );
    return { id: command.id, bytes: encodeCommand(command, signer.key, signer.kid) };
  }

  async function send(bytes: Uint8Array): Promise<void> {
    await clinic.publishAsync(commandTopic(), Buffer.from(bytes), { qos: 1 });
  }

  /**
   * Sends a valid ping and waits for its answer. The gateway handles its commands in the order the broker
   * delivers them and publishes a refusal before it starts on the next command; the broker keeps one
   * publisher's messages on one topic in order (MQTT 3.1.1 section 4.6). So once this answer is in, any answer
   * to a command sent before it would have arrived first: what `replies` holds then is complete.
   */
  async function answeredMarker(): Promise<string> {
    const marker = ping(signers.clinic);
    await send(marker.bytes);
    await vi.waitFor(() => expect(replies.map((r) => r.id)).toContain(marker.id), WAIT);
    return marker.id;
  }

  beforeAll(async () => {
    signers.clinic = signerOf({ certificatePem: pki.pem.clinic, privateKeyPem: pki.pem.clinicKey });
    signers.gateway = signerOf({ certificatePem: pki.pem.gateway, privateKeyPem: pki.pem.gatewayKey });
    const expired = await issueClinicCertificate(pki.ca, {
      name: 'clinic-old',
      validityDays: 1,
      clock: new ManualClock(Date.now() - 10 * DAY),
    });
    signers.expired = signerOf(expired);
    const otherCa = await createDevelopmentCa({ commonName: 'attacker CA' });
    const foreign = await issueClinicCertificate(otherCa, { name: 'clinic-test' });
    signers.otherCa = signerOf(foreign);
    const rotated = await issueClinicCertificate(pki.ca, { name: 'clinic-rotated' });
    signers.rotated = signerOf(rotated);

    const gatewaySigning = signingCredentials(pki.pem.gateway, pki.pem.gatewayKey);
    const gatewayKid = kidForCertificate(gatewaySigning.certificateDer);
    const toAudit = auditCommandEvents(audit);
    outbox = new Outbox({
      path: join(dir, 'commands.db'),
      keys: new EnvKeyProvider('K', { K: 'e2'.repeat(32) }),
      recordCodec: wireItemRecords,
    });
    await outbox.open();
    uplink = new Uplink({
      gatewayId: pki.gatewayId,
      brokers: [{ host: '127.0.0.1', port, servername: 'localhost' }],
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
        clock: { now: () => Date.now() },
        // Every certificate this gateway could find, as a careless configuration might list them: only the
        // two valid clinic certificates of the clinic CA may sign.
        signers: new CommandSigners({
          clinicCa: pki.pem.ca,
          certificates: [
            pki.pem.clinic,
            rotated.certificatePem,
            pki.pem.gateway,
            expired.certificatePem,
            foreign.certificatePem,
          ],
        }),
        replayCache: new MemoryReplayCache(),
        allowedConfigKeys: new Set(['uplink.window']),
        notBefore: Date.now() - 60_000,
        actions: {},
        sign: (result) => signCommandResult(result, gatewaySigning.key, gatewayKid),
        onEvent: (event) => {
          commandEvents.push(event);
          toAudit(event);
        },
      }),
    });
    uplink.start();
    await vi.waitFor(() => expect(uplink.connected).toBe(true), WAIT);
    clinic = await connect({
      clientId: 'clinic-test-commander',
      cert: pki.pem.clinic,
      key: pki.pem.clinicKey,
    });
    const gatewayPublicKey = new X509Certificate(pki.pem.gateway).publicKey;
    clinic.on('message', (_topic, payload) => {
      // replies are signed by the gateway: verify before reading
      const { payload: result } = verifyEnvelope(new Uint8Array(payload), () => gatewayPublicKey);
      replies.push(decodeCommandResult(result, { gatewayId: pki.gatewayId }));
    });
    await clinic.subscribeAsync(`rpm/v1/${pki.gatewayId}/cmd/res`, { qos: 1 });
  });

  afterAll(async () => {
    clinic.end(true);
    await uplink.stop();
    outbox.close();
  });

  function auditedRefusals(): { code: string; id?: string }[] {
    return readFileSync(join(dir, 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; details: { code: string; id?: string } })
      .filter((entry) => entry.type === 'command.refused')
      .map((entry) => entry.details);
  }

  it('answers a signed ping once; the same envelope again (a replay, or a QoS 1 redelivery) is refused, audited and not answered', async () => {
    const first = ping(signers.clinic);
    await send(first.bytes);
    await vi.waitFor(() => expect(replies.map((r) => r.id)).toContain(first.id), WAIT);
    expect(replies.find((r) => r.id === first.id)).toMatchObject({ ok: true, result: { pong: true } });
    const before = replies.length;
    await send(first.bytes);
    const marker = await answeredMarker();
    // Only the marker's answer came: no second, contradictory answer to `first`.
    expect(replies.slice(before).map((r) => r.id)).toEqual([marker]);
    expect(replies.filter((r) => r.id === first.id)).toHaveLength(1);
    expect(commandEvents).toContainEqual(
      expect.objectContaining({ type: 'command.refused', code: 'WIRE_CMD_REPLAYED', id: first.id }),
    );
    expect(auditedRefusals()).toContainEqual(
      expect.objectContaining({ code: 'WIRE_CMD_REPLAYED', id: first.id }),
    );
  });

  it('refuses an expired command without answering (it may have been answered before a restart)', async () => {
    const stale = ping(signers.clinic, { now: Date.now() - 7 * 60_000 });
    const before = replies.length;
    await send(stale.bytes);
    const marker = await answeredMarker();
    expect(replies.slice(before).map((r) => r.id)).toEqual([marker]);
    expect(auditedRefusals()).toContainEqual(
      expect.objectContaining({ code: 'WIRE_CMD_EXPIRED', id: stale.id }),
    );
  });

  it.each([
    ['a gateway certificate of the same CA', 'gateway', 'WIRE_SIGNER_NOT_CLINIC'],
    ['an expired clinic certificate', 'expired', 'WIRE_SIGNER_EXPIRED'],
    ['a clinic certificate from another CA', 'otherCa', 'WIRE_SIGNER_UNTRUSTED'],
  ] as const)('refuses a command signed by %s (%s): audited, not answered', async (_name, who, code) => {
    const forged = ping(signers[who]);
    const before = replies.length;
    const refusedBefore = commandEvents.length;
    await send(forged.bytes);
    const marker = await answeredMarker();
    expect(replies.slice(before).map((r) => r.id)).toEqual([marker]);
    expect(
      commandEvents.slice(refusedBefore).map((e) => (e.type === 'command.refused' ? e.code : e.type)),
    ).toEqual([code, 'command.accepted']);
    expect(auditedRefusals().map((r) => r.code)).toContain(code);
  });

  it('refuses a command whose kid names no configured certificate', async () => {
    const stranger = signerOf(await issueClinicCertificate(pki.ca, { name: 'clinic-unlisted' }));
    const before = replies.length;
    const refusedBefore = commandEvents.length;
    await send(ping(stranger).bytes);
    const marker = await answeredMarker();
    expect(replies.slice(before).map((r) => r.id)).toEqual([marker]);
    expect(commandEvents[refusedBefore]).toMatchObject({ type: 'command.refused', code: 'WIRE_UNKNOWN_KID' });
  });

  it('accepts a command signed by another valid clinic certificate of the clinic CA (rotation)', async () => {
    const rotated = ping(signers.rotated);
    await send(rotated.bytes);
    await vi.waitFor(() => expect(replies.map((r) => r.id)).toContain(rotated.id), WAIT);
    expect(replies.find((r) => r.id === rotated.id)).toMatchObject({ ok: true, result: { pong: true } });
  });
});
