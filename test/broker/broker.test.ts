import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { auditBrokerRefusals } from '../../src/broker/audit-refusals.js';
import { ClinicalBroker, type Refusal } from '../../src/broker/clinical-broker.js';
import { identifyClient } from '../../src/broker/identify.js';
import {
  CRL_FILE,
  createDevelopmentCa,
  createDevelopmentPki,
  type DevelopmentPki,
  type IssuedCredentials,
  issueGatewayCertificate,
  revokeCertificate,
  writePrivateKeyFile,
} from '../../src/pki/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { brokerClientOptions } from './client-options.js';

/**
 * The embedded broker over real TLS sockets: client ids bound to certificates (no session takeover), the
 * real reason of every TLS refusal in the audit log, AEAD-only TLS 1.2 suites (checked with openssl s_client)
 * and the CA's CRL, reloaded when `certs revoke` rewrites it.
 */
const run = promisify(execFile);
const DAY = 86_400_000;

let dir: string;
let pki: DevelopmentPki;
let broker: ClinicalBroker;
let port: number;
let audit: AuditLog;
const refusals: Refusal[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-broker-'));
  pki = await createDevelopmentPki(dir);
  // the CA folder as `certs init` leaves it, so that revokeCertificate (certs revoke) can sign
  await writePrivateKeyFile(join(dir, 'ca.key'), pki.ca.privateKeyPem);
  audit = new AuditLog(join(dir, 'audit.log'));
  const toAudit = auditBrokerRefusals(audit, Date.now);
  broker = new ClinicalBroker({
    ca: pki.pem.ca,
    cert: pki.pem.broker,
    key: pki.pem.brokerKey,
    port: 0,
    crlFile: join(dir, CRL_FILE), // absent until the first revocation
    identify: identifyClient,
    onRefusal: (refusal) => {
      refusals.push(refusal);
      toAudit(refusal);
    },
  });
  port = (await broker.start()).port;
});

afterAll(async () => {
  await broker.stop();
  expect(audit.verify().torn).toBe(0);
  await rm(dir, { recursive: true, force: true });
});

function mqttOptions(clientId: string, cert: string, key: string): mqtt.IClientOptions {
  return brokerClientOptions(pki.pem.ca, port, clientId, cert, key);
}

async function auditEntries(): Promise<{ type: string; actor: string; details: Record<string, unknown> }[]> {
  return (await readFile(join(dir, 'audit.log'), 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}

describe('client ids are bound to certificates', () => {
  it("refuses a clinic connecting with a gateway's client id, audits it, and the gateway's session survives", async () => {
    const gateway = await mqtt.connectAsync(mqttOptions(pki.gatewayId, pki.pem.gateway, pki.pem.gatewayKey));
    let gatewayConnects = 1;
    let gatewayClosed = false;
    gateway.on('connect', () => gatewayConnects++);
    gateway.on('close', () => {
      gatewayClosed = true;
    });
    const commands: string[] = [];
    gateway.on('message', (_topic, payload) => commands.push(payload.toString()));
    await gateway.subscribeAsync(`rpm/v1/${pki.gatewayId}/cmd`, { qos: 1 });
    let clinic: MqttClient | undefined;
    try {
      const before = refusals.length;
      await expect(
        mqtt.connectAsync(mqttOptions(pki.gatewayId, pki.pem.clinic, pki.pem.clinicKey)),
      ).rejects.toThrow(/Not authorized/i);
      expect(refusals.slice(before)).toEqual([
        {
          stage: 'connect',
          identity: 'clinic:clinic-test',
          reason: `client id "${pki.gatewayId}" is not clinic-test or clinic-test-<suffix>`,
        },
      ]);
      expect((await auditEntries()).at(-1)).toMatchObject({
        type: 'broker.refused.connect',
        actor: 'clinic:clinic-test',
        details: { reason: expect.stringContaining(pki.gatewayId) },
      });
      // the clinic under its own id: its command reaches the gateway on the connection it had all along
      clinic = await mqtt.connectAsync(
        mqttOptions('clinic-test-takeover', pki.pem.clinic, pki.pem.clinicKey),
      );
      await clinic.publishAsync(`rpm/v1/${pki.gatewayId}/cmd`, 'after the attempt', { qos: 1 });
      await vi.waitFor(() => expect(commands).toEqual(['after the attempt']), { timeout: 5_000 });
      expect(gateway.connected).toBe(true);
      expect(gatewayClosed).toBe(false);
      expect(gatewayConnects).toBe(1);
    } finally {
      await clinic?.endAsync();
      await gateway.endAsync();
    }
  });
});

/** Runs one TLS handshake as a client and waits for the broker's refusal that follows, if any. */
async function handshake(options: tls.ConnectionOptions): Promise<Refusal> {
  const before = refusals.length;
  await new Promise<void>((resolve) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: pki.pem.ca,
      ...options,
    });
    socket.on('error', () => undefined); // the refusal is asserted on the broker's side
    socket.on('close', () => resolve());
  });
  await vi.waitFor(() => expect(refusals.length).toBeGreaterThan(before), { timeout: 5_000 });
  return refusals[before] as Refusal;
}

function as(credentials: { certificatePem: string; privateKeyPem: string }): tls.ConnectionOptions {
  return { cert: credentials.certificatePem, key: credentials.privateKeyPem };
}

async function openssl(args: string[], input = ''): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile('openssl', args, { timeout: 10_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, out: `${stdout}\n${stderr}` });
    });
    child.stdin?.end(input);
  });
}

/** A gateway certificate signed by the test CA with openssl, WITHOUT any extendedKeyUsage. */
async function certificateWithoutEku(): Promise<IssuedCredentials> {
  const key = join(dir, 'noeku.key');
  const csr = join(dir, 'noeku.csr');
  const crt = join(dir, 'noeku.crt');
  const ext = join(dir, 'noeku.ext');
  await writeFile(
    ext,
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' +
      `subjectAltName=URI:urn:rpm-gateway:gateway:${pki.gatewayId}\n`,
  );
  await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  await run('openssl', ['req', '-new', '-key', key, '-subj', `/OU=gateway/CN=${pki.gatewayId}`, '-out', csr]);
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    pki.files.ca,
    '-CAkey',
    join(dir, 'ca.key'),
    '-set_serial',
    '0x7e57',
    '-days',
    '2',
    '-extfile',
    ext,
    '-out',
    crt,
  ]);
  return {
    certificatePem: await readFile(crt, 'utf8'),
    privateKeyPem: await readFile(key, 'utf8'),
  } as IssuedCredentials;
}

describe('TLS refusals name the real reason', () => {
  it.each([['TLSv1.2' as const], ['TLSv1.3' as const]])(
    'no client certificate -> no-certificate (%s)',
    async (maxVersion) => {
      expect(await handshake({ maxVersion })).toMatchObject({ stage: 'tls', reason: 'no-certificate' });
    },
  );

  it('a certificate from another CA, and a self-signed one -> unknown-ca', async () => {
    const otherCa = await createDevelopmentCa({ commonName: 'attacker CA' });
    const forged = await issueGatewayCertificate(otherCa, { gatewayId: pki.gatewayId });
    expect(await handshake(as(forged))).toMatchObject({
      reason: 'unknown-ca',
      detail: expect.stringMatching(/^UNABLE_TO_(GET_ISSUER_CERT_LOCALLY|VERIFY_LEAF_SIGNATURE)$/),
    });
    // self-signed the usual way (openssl req -x509), naming our gateway
    const key = join(dir, 'self.key');
    const crt = join(dir, 'self.crt');
    await run(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
        .concat(['-keyout', key, '-out', crt, '-days', '2', '-subj', `/OU=gateway/CN=${pki.gatewayId}`])
        .concat(['-addext', `subjectAltName=URI:urn:rpm-gateway:gateway:${pki.gatewayId}`]),
    );
    expect(
      await handshake({ cert: await readFile(crt, 'utf8'), key: await readFile(key, 'utf8') }),
    ).toMatchObject({ reason: 'unknown-ca', detail: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    // OpenSSL reports the LAST check a certificate failed: another CA's own certificate (keyUsage
    // keyCertSign only) is untrusted and also unfit for a client, and the purpose check comes later
    expect(await handshake({ cert: otherCa.certificatePem, key: otherCa.privateKeyPem })).toMatchObject({
      reason: 'wrong-purpose',
      detail: 'INVALID_PURPOSE',
    });
  });

  it('an expired and a not-yet-valid certificate -> expired, not-yet-valid', async () => {
    const expired = await issueGatewayCertificate(pki.ca, {
      gatewayId: pki.gatewayId,
      validityDays: 1,
      clock: new ManualClock(Date.now() - 10 * DAY),
    });
    const future = await issueGatewayCertificate(pki.ca, {
      gatewayId: pki.gatewayId,
      clock: new ManualClock(Date.now() + 10 * DAY),
    });
    expect(await handshake(as(expired))).toMatchObject({ reason: 'expired', detail: 'CERT_HAS_EXPIRED' });
    expect(await handshake(as(future))).toMatchObject({ reason: 'not-yet-valid' });
  });

  it('the wrong purpose -> wrong-purpose: serverAuth only (OpenSSL), and no EKU at all (our check)', async () => {
    expect(await handshake({ cert: pki.pem.broker, key: pki.pem.brokerKey })).toMatchObject({
      reason: 'wrong-purpose',
      detail: 'INVALID_PURPOSE',
    });
    expect(await handshake(as(await certificateWithoutEku()))).toMatchObject({
      stage: 'tls',
      reason: 'wrong-purpose',
    });
  });

  it('TLS 1.1 -> protocol-version', async () => {
    expect(
      await handshake({
        cert: pki.pem.gateway,
        key: pki.pem.gatewayKey,
        minVersion: 'TLSv1',
        maxVersion: 'TLSv1.1',
      }),
    ).toMatchObject({ reason: 'protocol-version' });
  });

  it('writes the reasons to the audit log, not ECONNRESET', async () => {
    const reasons = (await auditEntries())
      .filter((e) => e.type === 'broker.refused.tls')
      .map((e) => e.details.reason);
    expect(reasons).toEqual(
      expect.arrayContaining(['no-certificate', 'unknown-ca', 'expired', 'not-yet-valid', 'wrong-purpose']),
    );
    expect(reasons).not.toContain('ECONNRESET');
  });
});

describe('TLS 1.2 offers only ECDHE with AEAD ciphers (openssl s_client)', () => {
  const client = () => ['-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', pki.files.ca];
  const withCertificate = () => ['-cert', pki.files.gateway, '-key', pki.files.gatewayKey];

  it.each([
    'ECDHE-ECDSA-AES128-SHA', // CBC, SHA-1 MAC
    'ECDHE-ECDSA-AES128-SHA256', // CBC, SHA-256 MAC
    'ECDHE-ECDSA-AES256-SHA384', // CBC, SHA-384 MAC
    'ECDHE-ECDSA-AES128-CCM8', // 64-bit tag
    'ECDHE-ECDSA-ARIA128-GCM-SHA256',
  ])('refuses %s', async (cipher) => {
    const before = refusals.length;
    const result = await openssl([
      's_client',
      ...client(),
      ...withCertificate(),
      '-tls1_2',
      '-cipher',
      cipher,
    ]);
    expect(result.out).toMatch(/alert handshake failure/);
    expect(result.out).toContain('Cipher is (NONE)');
    await vi.waitFor(() =>
      expect(refusals.slice(before)).toContainEqual(expect.objectContaining({ reason: 'no-shared-cipher' })),
    );
  });

  it.each([
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305',
  ])('accepts %s', async (cipher) => {
    const result = await openssl([
      's_client',
      ...client(),
      ...withCertificate(),
      '-tls1_2',
      '-cipher',
      cipher,
    ]);
    expect(result.out).toContain(`Cipher is ${cipher}`);
  });

  it('still speaks TLS 1.3', async () => {
    const result = await openssl(['s_client', ...client(), ...withCertificate(), '-tls1_3']);
    expect(result.out).toMatch(
      /New, TLSv1.3, Cipher is TLS_(AES_256_GCM_SHA384|AES_128_GCM_SHA256|CHACHA20)/,
    );
  });
});

describe('revocation: the CA CRL, reloaded at the next connection', () => {
  function attempt(credentials: IssuedCredentials, clientId: string): Promise<'connected' | 'refused'> {
    return new Promise((resolve) => {
      const client = mqtt.connect(
        mqttOptions(clientId, credentials.certificatePem, credentials.privateKeyPem),
      );
      const settle = (outcome: 'connected' | 'refused') => {
        client.end(true);
        resolve(outcome);
      };
      client.once('connect', () => settle('connected'));
      client.once('error', () => settle('refused'));
      client.once('close', () => settle('refused'));
    });
  }

  it('refuses a certificate revoked while the broker runs, with reason revoked, in the audit log', async () => {
    const doomed = await issueGatewayCertificate(pki.ca, { gatewayId: 'gw-doomed-0001' });
    expect(await attempt(doomed, 'gw-doomed-0001')).toBe('connected');
    const { entry } = await revokeCertificate(dir, doomed.certificatePem, 'keyCompromise');
    const before = refusals.length;
    expect(await attempt(doomed, 'gw-doomed-0001')).toBe('refused');
    await vi.waitFor(() =>
      expect(refusals.slice(before)).toContainEqual({
        stage: 'tls',
        reason: 'revoked',
        detail: 'CERT_REVOKED',
      }),
    );
    expect(await auditEntries()).toContainEqual(
      expect.objectContaining({
        type: 'broker.refused.tls',
        details: expect.objectContaining({ reason: 'revoked' }),
      }),
    );
    expect(entry?.reason).toBe('keyCompromise');
    // the CRL names that certificate only: the test gateway still connects
    expect(
      await attempt(
        { certificatePem: pki.pem.gateway, privateKeyPem: pki.pem.gatewayKey } as IssuedCredentials,
        pki.gatewayId,
      ),
    ).toBe('connected');
  });

  it('refuses EVERY client once the CRL nextUpdate has passed (OpenSSL CRL_HAS_EXPIRED)', async () => {
    const stale = await mkdtemp(join(dir, 'stale-'));
    await writePrivateKeyFile(join(stale, 'ca.key'), pki.ca.privateKeyPem);
    await writeFile(join(stale, 'ca.crt'), pki.pem.ca);
    const other = await issueGatewayCertificate(pki.ca, { gatewayId: 'gw-other-0001' });
    // a CRL signed 40 days ago, valid for 30: its nextUpdate is 10 days gone
    await revokeCertificate(stale, other.certificatePem, 'superseded', {
      clock: new ManualClock(Date.now() - 40 * DAY),
    });
    const local: Refusal[] = [];
    const strict = new ClinicalBroker({
      ca: pki.pem.ca,
      cert: pki.pem.broker,
      key: pki.pem.brokerKey,
      port: 0,
      crlFile: join(stale, CRL_FILE),
      identify: identifyClient,
      onRefusal: (r) => local.push(r),
    });
    const strictPort = (await strict.start()).port;
    try {
      await new Promise<void>((resolve) => {
        const socket = tls.connect({
          host: '127.0.0.1',
          port: strictPort,
          servername: 'localhost',
          ca: pki.pem.ca,
          cert: pki.pem.gateway,
          key: pki.pem.gatewayKey,
        });
        socket.on('error', () => undefined);
        socket.on('close', () => resolve());
      });
      await vi.waitFor(() =>
        expect(local).toContainEqual({ stage: 'tls', reason: 'crl-expired', detail: 'CRL_HAS_EXPIRED' }),
      );
    } finally {
      await strict.stop();
    }
  });
});

describe('suspend and resume: an outage as the demo makes one', () => {
  it('drops every connection and refuses new ones; after resume, on the same port, a persistent session gets what was published while it was away', async () => {
    const clinicId = 'clinic-test-outage';
    const topic = `rpm/v1/${pki.gatewayId}/obs`;
    const clinic = await mqtt.connectAsync(mqttOptions(clinicId, pki.pem.clinic, pki.pem.clinicKey));
    await clinic.subscribeAsync(topic, { qos: 1 });
    const gateway = await mqtt.connectAsync(mqttOptions(pki.gatewayId, pki.pem.gateway, pki.pem.gatewayKey));
    const closed = Promise.all(
      [clinic, gateway].map((c) => new Promise<void>((done) => c.once('close', () => done()))),
    );
    await broker.suspend();
    await closed;
    await expect(
      mqtt.connectAsync(mqttOptions(pki.gatewayId, pki.pem.gateway, pki.pem.gatewayKey)),
    ).rejects.toThrow(/ECONNREFUSED/);
    clinic.end(true);
    gateway.end(true);

    expect((await broker.resume()).port).toBe(port);
    const again = await mqtt.connectAsync(mqttOptions(pki.gatewayId, pki.pem.gateway, pki.pem.gatewayKey));
    try {
      await again.publishAsync(topic, 'while the clinic was away', { qos: 1 });
    } finally {
      await again.endAsync();
    }
    const back = mqtt.connect(mqttOptions(clinicId, pki.pem.clinic, pki.pem.clinicKey));
    try {
      const message = await new Promise<string>((done) =>
        back.on('message', (_t, payload) => done(payload.toString())),
      );
      expect(message).toBe('while the clinic was away');
    } finally {
      await back.endAsync();
    }
  });
});
