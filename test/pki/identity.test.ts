import { X509Certificate as NodeX509 } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { issueLeaf } from '../../src/pki/ca.js';
import {
  assertValidId,
  type CertificateAuthority,
  createDevelopmentCa,
  type IssuedCredentials,
  identityOf,
  issueClinicCertificate,
  issueGatewayCertificate,
  issueServerCertificate,
} from '../../src/pki/index.js';
import { generateKeyPair } from '../../src/pki/keys.js';
import { x509 } from '../../src/pki/x509.js';
import { OID } from './pki-fixtures.js';

let ca: CertificateAuthority;
let gateway: IssuedCredentials;
let clinic: IssuedCredentials;
let server: IssuedCredentials;

beforeAll(async () => {
  ca = await createDevelopmentCa();
  gateway = await issueGatewayCertificate(ca, { gatewayId: 'gw-demo-0001' });
  clinic = await issueClinicCertificate(ca, { name: 'clinic-demo' });
  server = await issueServerCertificate(ca, { dnsNames: ['broker.example'] });
});

describe('identityOf', () => {
  it('maps a gateway certificate to role gateway and its id, with serial, dates and SHA-256 fingerprint', () => {
    const identity = identityOf(gateway.certificatePem);
    const node = new NodeX509(gateway.certificatePem);
    expect(identity).toEqual({
      role: 'gateway',
      id: 'gw-demo-0001',
      subject: 'OU=gateway, CN=gw-demo-0001',
      serialNumber: node.serialNumber.toLowerCase().replace(/^00/, ''),
      notBefore: gateway.certificate.notBefore,
      notAfter: gateway.certificate.notAfter,
      sha256: node.fingerprint256.replaceAll(':', '').toLowerCase(),
    });
  });

  it('maps a clinic certificate to role clinic and its name', () => {
    expect(identityOf(clinic.certificatePem)).toMatchObject({ role: 'clinic', id: 'clinic-demo' });
  });

  it('maps a broker certificate to role server, id its CN', () => {
    expect(identityOf(server.certificatePem)).toMatchObject({ role: 'server', id: 'broker.example' });
  });

  it('the CA itself is unknown', () => {
    expect(identityOf(ca.certificatePem)).toMatchObject({ role: 'unknown', id: null });
  });

  it('accepts DER bytes, a parsed certificate, Node X509Certificate and a tls peer certificate (raw)', () => {
    const node = new NodeX509(gateway.certificatePem);
    const peer = { raw: node.raw, subject: { CN: 'gw-demo-0001' } };
    for (const input of [node.raw, new Uint8Array(node.raw), gateway.certificate, node, peer]) {
      expect(identityOf(input)).toMatchObject({ role: 'gateway', id: 'gw-demo-0001' });
    }
  });

  it('refuses non-certificates with PKI_BAD_CERTIFICATE', () => {
    for (const input of ['nope', gateway.privateKeyPem, new Uint8Array([0x30, 0x03, 1, 2, 3])]) {
      expect(() => identityOf(input)).toThrow(expect.objectContaining({ code: 'PKI_BAD_CERTIFICATE' }));
    }
  });

  it('the SAN URI decides, not the CN; two identity URIs or a URI without clientAuth are unknown', async () => {
    const { publicKey } = await generateKeyPair();
    const leaf = async (cn: string, uris: string[], eku: string[]) =>
      (
        await issueLeaf(ca, publicKey, {
          subject: [{ CN: [cn] }],
          extendedKeyUsages: eku,
          subjectAltNames: uris.map((value) => ({ type: 'url' as const, value })),
        })
      ).certificate;
    // A CN that claims a gateway but a URI that says clinic: the URI wins.
    expect(
      identityOf(await leaf('gw-0001', ['urn:rpm-gateway:clinic:clinic-a'], [OID.clientAuth])),
    ).toMatchObject({
      role: 'clinic',
      id: 'clinic-a',
    });
    const two = ['urn:rpm-gateway:gateway:gw-0001', 'urn:rpm-gateway:gateway:gw-0002'];
    expect(identityOf(await leaf('gw-0001', two, [OID.clientAuth])).role).toBe('unknown');
    expect(
      identityOf(await leaf('gw-0001', ['urn:rpm-gateway:gateway:gw-0001'], [OID.serverAuth])).role,
    ).toBe('unknown');
    expect(identityOf(await leaf('gw-0001', ['urn:rpm-gateway:gateway:GW/1'], [OID.clientAuth])).role).toBe(
      'unknown',
    );
    // No URI and no serverAuth: a CN alone is never an identity.
    expect(identityOf(await leaf('gw-0001', [], [OID.clientAuth])).role).toBe('unknown');
    expect(identityOf(await leaf('x', ['https://example.org/gw-0001'], [OID.clientAuth])).role).toBe(
      'unknown',
    );
  });

  it('serial numbers are hex without a sign byte', () => {
    expect(identityOf(gateway.certificatePem).serialNumber).toMatch(/^[0-9a-f]{1,32}$/);
    expect(identityOf(gateway.certificatePem).serialNumber).toBe(
      gateway.certificate.serialNumber.toLowerCase(),
    );
    expect(new x509.X509Certificate(gateway.certificatePem).serialNumber.length).toBeLessThanOrEqual(32);
  });
});

describe('assertValidId', () => {
  it('accepts MQTT-topic-safe ids and refuses the rest', () => {
    expect(assertValidId('gw-demo-0001')).toBe('gw-demo-0001');
    for (const bad of ['ab', 'Gw1', 'gw/1', 'gw+1', 'gw#1', '-gw1', 'gw.1', 'ġw1']) {
      expect(() => assertValidId(bad)).toThrow(expect.objectContaining({ code: 'PKI_INVALID_ID' }));
    }
  });
});
