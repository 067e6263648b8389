import { X509Certificate as NodeX509 } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueLeaf } from '../../src/pki/ca.js';
import {
  type CertificateAuthority,
  type CertificateIdentity,
  checkClientCertificate,
  checkServerCertificate,
  createDevelopmentCa,
  type IssuedCredentials,
  identityOf,
  issueClinicCertificate,
  issueGatewayCertificate,
  issueServerCertificate,
} from '../../src/pki/index.js';
import { generateKeyPair, privateKeyToPem } from '../../src/pki/keys.js';
import { OID } from './pki-fixtures.js';

/**
 * Real TLS handshakes over loopback with the certificates this PKI issues: the broker's mutual-TLS policy
 * (requestCert + rejectUnauthorized, TLS 1.2+) and the client's checks of the broker. Servers listen on
 * 127.0.0.1 only and are closed in afterAll.
 */
let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let broker: IssuedCredentials;
let gateway: IssuedCredentials;
let clinic: IssuedCredentials;
let foreignGateway: IssuedCredentials;
/** clientAuth only, but with SAN DNS localhost: isolates the EKU check from the host name check. */
let clientAuthWithLocalhost: IssuedCredentials;

interface TestServer {
  server: tls.Server;
  port: number;
  accepted: CertificateIdentity[];
  /** Why the server refused each client it refused (tlsClientError), oldest first. */
  refused: NodeJS.ErrnoException[];
}
const servers: TestServer[] = [];

async function startServer(credentials: IssuedCredentials, trust: string): Promise<TestServer> {
  const server = tls.createServer({
    key: credentials.privateKeyPem,
    cert: credentials.certificatePem,
    ca: trust,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  });
  const entry: TestServer = { server, port: 0, accepted: [], refused: [] };
  server.on('secureConnection', (socket) => {
    // What the broker will do: map the verified client certificate to an identity.
    const identity = identityOf(socket.getPeerCertificate());
    entry.accepted.push(identity);
    socket.end(`hello ${identity.role}:${identity.id}\n`);
  });
  server.on('tlsClientError', (error: NodeJS.ErrnoException) => {
    entry.refused.push(error);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  entry.port = (server.address() as AddressInfo).port;
  servers.push(entry);
  return entry;
}

interface Attempt {
  data: string;
  error: NodeJS.ErrnoException | undefined;
  authorized: boolean;
  peer: tls.PeerCertificate | undefined;
}

function connect(port: number, options: tls.ConnectionOptions): Promise<Attempt> {
  return new Promise((resolve) => {
    let data = '';
    let error: NodeJS.ErrnoException | undefined;
    let peer: tls.PeerCertificate | undefined;
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: ca.certificatePem,
      ...options,
    });
    socket.setEncoding('utf8');
    socket.setTimeout(5000, () => socket.destroy(new Error('timeout')));
    socket.on('secureConnect', () => {
      peer = socket.getPeerCertificate();
    });
    socket.on('data', (chunk: string) => {
      data += chunk;
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      error ??= e;
    });
    socket.on('close', () => resolve({ data, error, authorized: socket.authorized, peer }));
  });
}

function as(credentials: IssuedCredentials): tls.ConnectionOptions {
  return { key: credentials.privateKeyPem, cert: credentials.certificatePem };
}

let brokerServer: TestServer;
let gatewayAsServer: TestServer;
let clientAuthAsServer: TestServer;

beforeAll(async () => {
  ca = await createDevelopmentCa();
  otherCa = await createDevelopmentCa({ commonName: 'someone else' });
  broker = await issueServerCertificate(ca);
  gateway = await issueGatewayCertificate(ca, { gatewayId: 'gw-demo-0001' });
  clinic = await issueClinicCertificate(ca, { name: 'clinic-demo' });
  foreignGateway = await issueGatewayCertificate(otherCa, { gatewayId: 'gw-demo-0001' });
  const keys = await generateKeyPair();
  const leaf = await issueLeaf(ca, keys.publicKey, {
    subject: [{ CN: ['localhost'] }],
    extendedKeyUsages: [OID.clientAuth],
    subjectAltNames: [{ type: 'dns', value: 'localhost' }],
  });
  clientAuthWithLocalhost = { ...leaf, privateKeyPem: await privateKeyToPem(keys.privateKey) };

  brokerServer = await startServer(broker, ca.certificatePem);
  gatewayAsServer = await startServer(gateway, ca.certificatePem);
  clientAuthAsServer = await startServer(clientAuthWithLocalhost, ca.certificatePem);
});

afterAll(async () => {
  await Promise.all(
    servers.map(({ server }) => new Promise<void>((resolve) => server.close(() => resolve()))),
  );
});

describe('the broker side: mutual TLS with requestCert + rejectUnauthorized', () => {
  it('accepts a gateway certificate and maps it to the gateway identity', async () => {
    const before = brokerServer.accepted.length;
    const result = await connect(brokerServer.port, as(gateway));
    expect(result.error).toBeUndefined();
    expect(result.authorized).toBe(true);
    expect(result.data).toBe('hello gateway:gw-demo-0001\n');
    expect(brokerServer.accepted.slice(before)).toMatchObject([{ role: 'gateway', id: 'gw-demo-0001' }]);
  });

  it('accepts a clinic receiver certificate, over TLS 1.2 too', async () => {
    const result = await connect(brokerServer.port, { ...as(clinic), maxVersion: 'TLSv1.2' });
    expect(result.data).toBe('hello clinic:clinic-demo\n');
  });

  it.each([
    ['no client certificate', () => ({})],
    ['a certificate from another CA', () => as(foreignGateway)],
    ['the broker certificate as a client certificate (EKU serverAuth only)', () => as(broker)],
  ])('refuses %s', async (_label, options) => {
    const before = brokerServer.accepted.length;
    const result = await connect(brokerServer.port, options());
    expect(result.data).toBe('');
    expect(brokerServer.accepted.length).toBe(before);
  });

  it('refuses TLS below 1.2: the server answers a TLS 1.1 hello with a protocol_version alert', async () => {
    const before = brokerServer.refused.length;
    const result = await connect(brokerServer.port, {
      ...as(gateway),
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
    });
    expect(result.data).toBe('');
    // The client did offer TLS 1.1 and the server refused that version: alert 70, protocol_version (RFC 5246
    // 7.2.2). Any other failure (the client unable to offer TLS 1.1 at all, a cipher mismatch, a certificate
    // refusal; a server allowing TLS 1.0 fails later with internal_error) shows a different code.
    expect(result.error?.code).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
    expect(brokerServer.refused.slice(before).map((e) => e.code)).toEqual(['ERR_SSL_UNSUPPORTED_PROTOCOL']);
  });
});

describe('the client side: verifying the broker', () => {
  it('accepts the broker certificate for servername localhost, with our explicit EKU check too', async () => {
    const result = await connect(brokerServer.port, {
      ...as(gateway),
      checkServerIdentity: checkServerCertificate,
    });
    expect(result.error).toBeUndefined();
    expect(result.data).toBe('hello gateway:gw-demo-0001\n');
    expect(result.peer && identityOf(result.peer)).toMatchObject({ role: 'server', id: 'localhost' });
  });

  it('refuses the broker under a name its certificate does not carry', async () => {
    const result = await connect(brokerServer.port, { ...as(gateway), servername: 'broker.evil.example' });
    expect(result.error?.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(result.data).toBe('');
  });

  it('refuses a broker whose certificate another CA issued', async () => {
    const result = await connect(brokerServer.port, { ...as(gateway), ca: otherCa.certificatePem });
    // The server sends its CA along (OpenSSL completes the chain from `ca`), hence "self-signed in chain".
    expect(result.error?.code).toMatch(/^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/);
    expect(result.data).toBe('');
  });

  it('refuses a gateway certificate used as the server certificate (no serverAuth): Node checks the EKU', async () => {
    const result = await connect(gatewayAsServer.port, as(gateway));
    expect(result.error?.code).toBe('INVALID_PURPOSE');
    expect(result.data).toBe('');
  });

  it('refuses a clientAuth-only certificate even when its DNS name matches: the EKU alone decides', async () => {
    const result = await connect(clientAuthAsServer.port, {
      ...as(gateway),
      checkServerIdentity: () => undefined,
    });
    expect(result.error?.code).toBe('INVALID_PURPOSE');
  });
});

describe('checkServerCertificate / checkClientCertificate (our own EKU checks)', () => {
  function peerOf(pem: string): tls.PeerCertificate {
    const node = new NodeX509(pem);
    // The fields tls.checkServerIdentity reads, as getPeerCertificate() gives them.
    return {
      raw: node.raw,
      subject: { CN: 'localhost' },
      subjectaltname: node.subjectAltName,
    } as tls.PeerCertificate;
  }

  it('passes the broker certificate for localhost and refuses a clientAuth-only one that matches the name', () => {
    expect(checkServerCertificate('localhost', peerOf(broker.certificatePem))).toBeUndefined();
    expect(checkServerCertificate('localhost', peerOf(clientAuthWithLocalhost.certificatePem))).toMatchObject(
      {
        code: 'PKI_MISMATCH',
      },
    );
    expect(checkServerCertificate('other.example', peerOf(broker.certificatePem))).toMatchObject({
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
  });

  it('passes gateway and clinic certificates as clients, refuses the broker certificate', () => {
    expect(checkClientCertificate(peerOf(gateway.certificatePem))).toBeUndefined();
    expect(checkClientCertificate(peerOf(clinic.certificatePem))).toBeUndefined();
    expect(checkClientCertificate(peerOf(broker.certificatePem))).toMatchObject({ code: 'PKI_MISMATCH' });
  });
});
