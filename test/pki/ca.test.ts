import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { gatewayProfile, issueLeaf } from '../../src/pki/ca.js';
import {
  type CertificateAuthority,
  createDevelopmentCa,
  type IssuedCredentials,
  issueClinicCertificate,
  issueGatewayCertificate,
  issueServerCertificate,
  loadCertificateAuthority,
  MAX_CA_DAYS,
  MAX_LEAF_DAYS,
  PkiError,
  randomSerial,
} from '../../src/pki/index.js';
import { generateKeyPair } from '../../src/pki/keys.js';
import { x509 } from '../../src/pki/x509.js';
import { DAY, MINUTE, OID, openssl, testClock } from './pki-fixtures.js';

const clock = testClock();
const NOW = clock.now();
let ca: CertificateAuthority & { privateKeyPem: string };
let server: IssuedCredentials;
let clinic: IssuedCredentials;
let gateway: IssuedCredentials;

beforeAll(async () => {
  ca = await createDevelopmentCa({ clock });
  server = await issueServerCertificate(ca, {
    clock,
    dnsNames: ['broker.clinic.example'],
    ipAddresses: ['10.0.0.5', '::1'],
  });
  clinic = await issueClinicCertificate(ca, { clock, name: 'clinic-north', organization: 'North Clinic' });
  gateway = await issueGatewayCertificate(ca, { clock, gatewayId: 'gw-demo-0001' });
});

function extension<T extends x509.Extension>(pem: string, type: new (raw: ArrayBuffer) => T): T {
  const found = new x509.X509Certificate(pem).getExtension(type);
  if (!found) throw new Error(`no ${type.name}`);
  return found;
}

describe('the development CA', () => {
  it('is self-signed with ECDSA P-256 / SHA-256, and OpenSSL agrees', async () => {
    const cert = openssl(ca.certificatePem);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.checkIssued(cert)).toBe(true);
    expect(cert.ca).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const parsed = new x509.X509Certificate(ca.certificatePem);
    expect(parsed.signatureAlgorithm).toMatchObject({ name: 'ECDSA', hash: { name: 'SHA-256' } });
    expect(await parsed.isSelfSigned()).toBe(true);
  });

  it('has basicConstraints CA:true pathLen 0 and keyUsage keyCertSign+cRLSign, both critical, and an SKI', () => {
    const bc = extension(ca.certificatePem, x509.BasicConstraintsExtension);
    expect([bc.ca, bc.pathLength, bc.critical]).toEqual([true, 0, true]);
    const ku = extension(ca.certificatePem, x509.KeyUsagesExtension);
    expect(ku.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(ku.critical).toBe(true);
    expect(extension(ca.certificatePem, x509.SubjectKeyIdentifierExtension).keyId).toMatch(/^[0-9a-f]{40}$/);
    expect(new x509.X509Certificate(ca.certificatePem).getExtension(OID.extKeyUsage)).toBeNull();
  });

  it('is valid for 10 years from 5 minutes ago', () => {
    const cert = new x509.X509Certificate(ca.certificatePem);
    expect(cert.notBefore.getTime()).toBe(NOW - 5 * MINUTE);
    expect(cert.notAfter.getTime()).toBe(NOW + 3650 * DAY);
  });

  it('loads back from PEM, and refuses a key that is not its own or a leaf posing as a CA', async () => {
    const loaded = await loadCertificateAuthority(ca.certificatePem, ca.privateKeyPem);
    expect(loaded.certificate.subject).toBe(ca.certificate.subject);
    const other = await createDevelopmentCa();
    await expect(loadCertificateAuthority(ca.certificatePem, other.privateKeyPem)).rejects.toMatchObject({
      code: 'PKI_MISMATCH',
    });
    await expect(
      loadCertificateAuthority(gateway.certificatePem, gateway.privateKeyPem),
    ).rejects.toMatchObject({
      code: 'PKI_BAD_CERTIFICATE',
    });
  });
});

describe('leaf certificates', () => {
  const leaves = () => ({ server, clinic, gateway });

  it.each(['server', 'clinic', 'gateway'] as const)(
    '%s: chains to the CA (OpenSSL verify + checkIssued)',
    (name) => {
      const leaf = openssl(leaves()[name].certificatePem);
      const root = openssl(ca.certificatePem);
      expect(leaf.verify(root.publicKey)).toBe(true);
      expect(leaf.checkIssued(root)).toBe(true);
      expect(leaf.issuer).toBe(root.subject);
      expect(leaf.ca).toBe(false);
      // Signed by another CA's key, the signature does not verify.
      expect(leaf.verify(openssl(gateway.certificatePem).publicKey)).toBe(false);
    },
  );

  it.each(['server', 'clinic', 'gateway'] as const)(
    '%s: CA:false and keyUsage digitalSignature (critical), AKI = CA SKI, 397 days from now - 5 min',
    (name) => {
      const pem = leaves()[name].certificatePem;
      const bc = extension(pem, x509.BasicConstraintsExtension);
      expect([bc.ca, bc.critical]).toEqual([false, true]);
      const ku = extension(pem, x509.KeyUsagesExtension);
      expect([ku.usages, ku.critical]).toEqual([x509.KeyUsageFlags.digitalSignature, true]);
      const aki = extension(pem, x509.AuthorityKeyIdentifierExtension);
      expect(aki.keyId).toBe(extension(ca.certificatePem, x509.SubjectKeyIdentifierExtension).keyId);
      expect(extension(pem, x509.SubjectKeyIdentifierExtension).keyId).toMatch(/^[0-9a-f]{40}$/);
      const cert = new x509.X509Certificate(pem);
      expect(cert.notBefore.getTime()).toBe(NOW - 5 * MINUTE);
      expect(cert.notAfter.getTime()).toBe(NOW + 397 * DAY);
    },
  );

  it('server: EKU serverAuth only; SAN localhost, 127.0.0.1 and the extras', () => {
    const pem = server.certificatePem;
    expect(extension(pem, x509.ExtendedKeyUsageExtension).usages).toEqual([OID.serverAuth]);
    expect(extension(pem, x509.SubjectAlternativeNameExtension).names.toJSON()).toEqual([
      { type: 'dns', value: 'localhost' },
      { type: 'dns', value: 'broker.clinic.example' },
      { type: 'ip', value: '127.0.0.1' },
      { type: 'ip', value: '10.0.0.5' },
      { type: 'ip', value: '::1' },
    ]);
    const cert = openssl(pem);
    expect(cert.keyUsage).toEqual([OID.serverAuth]);
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkHost('broker.clinic.example')).toBe('broker.clinic.example');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkHost('evil.example')).toBeUndefined();
    expect(new x509.X509Certificate(pem).subject).toBe('OU=broker, CN=broker.clinic.example');
  });

  it('clinic: EKU clientAuth; O=<org>, OU=clinic, CN=<name>; SAN URI urn:rpm-gateway:clinic:<name>', () => {
    const pem = clinic.certificatePem;
    expect(extension(pem, x509.ExtendedKeyUsageExtension).usages).toEqual([OID.clientAuth]);
    expect(extension(pem, x509.SubjectAlternativeNameExtension).names.toJSON()).toEqual([
      { type: 'url', value: 'urn:rpm-gateway:clinic:clinic-north' },
    ]);
    expect(new x509.X509Certificate(pem).subject).toBe('O=North Clinic, OU=clinic, CN=clinic-north');
    expect(openssl(pem).subjectAltName).toBe('URI:urn:rpm-gateway:clinic:clinic-north');
  });

  it('gateway: EKU clientAuth only; OU=gateway, CN=<id>; SAN URI urn:rpm-gateway:gateway:<id>', () => {
    const pem = gateway.certificatePem;
    expect(extension(pem, x509.ExtendedKeyUsageExtension).usages).toEqual([OID.clientAuth]);
    expect(extension(pem, x509.SubjectAlternativeNameExtension).names.toJSON()).toEqual([
      { type: 'url', value: 'urn:rpm-gateway:gateway:gw-demo-0001' },
    ]);
    expect(new x509.X509Certificate(pem).subject).toBe('OU=gateway, CN=gw-demo-0001');
  });

  it('a clinic certificate defaults its O= to the CA organization', async () => {
    const issued = await issueClinicCertificate(ca, { name: 'clinic-south' });
    expect(issued.certificate.subjectName.getField('O')).toEqual(['rpm-gateway development']);
  });

  it('serials are random, positive and 128-bit', async () => {
    const serials = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const issued = await issueGatewayCertificate(ca, { gatewayId: 'gw-demo-0001' });
      serials.add(issued.certificate.serialNumber);
      // DER INTEGER: 16 octets, or 17 with a leading 0x00 keeping it positive (RFC 5280 4.1.2.2: <= 20).
      const node = openssl(issued.certificatePem).serialNumber;
      expect(node.replace(/^00/, '').length).toBeLessThanOrEqual(32);
      expect(BigInt(`0x${node}`) > 0n).toBe(true);
    }
    expect(serials.size).toBe(8);
    expect(randomSerial()).toMatch(/^[0-9a-f]{32}$/);
  });

  it('validity is configurable and never outlives the CA', async () => {
    const short = await issueGatewayCertificate(ca, { clock, gatewayId: 'gw-demo-0001', validityDays: 30 });
    expect(short.certificate.notAfter.getTime()).toBe(NOW + 30 * DAY);
    const shortCa = await createDevelopmentCa({ clock, validityDays: 100 });
    const long = await issueGatewayCertificate(shortCa, {
      clock,
      gatewayId: 'gw-demo-0001',
      validityDays: 397,
    });
    expect(long.certificate.notAfter.getTime()).toBe(shortCa.certificate.notAfter.getTime());
    await expect(issueGatewayCertificate(ca, { gatewayId: 'gw-demo-0001', validityDays: 0 })).rejects.toThrow(
      PkiError,
    );
  });

  it('refuses a validity beyond its maximum, and what it issues at the maximum OpenSSL reads', async () => {
    for (const validityDays of [MAX_LEAF_DAYS + 1, 99_999_999, 1.5, -5]) {
      await expect(
        issueGatewayCertificate(ca, { clock, gatewayId: 'gw-demo-0001', validityDays }),
      ).rejects.toThrow(expect.objectContaining({ code: 'PKI_INVALID_ID' }));
    }
    await expect(createDevelopmentCa({ clock, validityDays: MAX_CA_DAYS + 1 })).rejects.toThrow(
      expect.objectContaining({ code: 'PKI_INVALID_ID' }),
    );
    // The longest CA ends in 2051: past 2049, so its notAfter is a GeneralizedTime (RFC 5280 4.1.2.5).
    const longestCa = await createDevelopmentCa({ clock, validityDays: MAX_CA_DAYS });
    const leaf = await issueGatewayCertificate(longestCa, {
      clock,
      gatewayId: 'gw-demo-0001',
      validityDays: MAX_LEAF_DAYS,
    });
    expect(leaf.certificate.notAfter.getTime()).toBe(NOW + MAX_LEAF_DAYS * DAY);
    for (const [pem, days] of [
      [longestCa.certificatePem, MAX_CA_DAYS],
      [leaf.certificatePem, MAX_LEAF_DAYS],
    ] as const) {
      const text = execFileSync('openssl', ['x509', '-noout', '-text'], { input: pem, encoding: 'utf8' });
      expect(text).not.toMatch(/Bad time value/);
      const notAfter = /Not After : (.+)/.exec(text)?.[1] as string;
      expect(Date.parse(notAfter)).toBe(NOW + days * DAY);
    }
  });

  it('the profile decides the extensions: issueLeaf writes nothing else', async () => {
    const keys = await generateKeyPair();
    const issued = await issueLeaf(ca, keys.publicKey, gatewayProfile('gw-xyz'));
    expect(issued.certificate.extensions.map((e) => e.type).sort()).toEqual(
      [
        OID.authorityKeyIdentifier,
        OID.basicConstraints,
        OID.extKeyUsage,
        OID.keyUsage,
        OID.subjectAltName,
        OID.subjectKeyIdentifier,
      ].sort(),
    );
  });
});

describe('ids and names', () => {
  it.each(['gw', 'GW-0001', '-gw-1', 'gw_0001', 'gw/0001', 'gw+1', 'gw#1', 'a'.repeat(64), 'gw 1', ''])(
    'refuses gateway id %j with PKI_INVALID_ID',
    async (gatewayId) => {
      await expect(issueGatewayCertificate(ca, { gatewayId })).rejects.toMatchObject({
        code: 'PKI_INVALID_ID',
      });
    },
  );

  it.each(['gw1', 'gw-demo-0001', '0000', `a${'b'.repeat(62)}`])(
    'accepts gateway id %j',
    async (gatewayId) => {
      const issued = await issueGatewayCertificate(ca, { gatewayId });
      expect(issued.certificate.subjectName.getField('CN')).toEqual([gatewayId]);
    },
  );

  it('refuses a bad clinic name, DNS name or IP address', async () => {
    await expect(issueClinicCertificate(ca, { name: 'Clinic North' })).rejects.toMatchObject({
      code: 'PKI_INVALID_ID',
    });
    await expect(issueServerCertificate(ca, { dnsNames: ['*.example.org'] })).rejects.toMatchObject({
      code: 'PKI_INVALID_ID',
    });
    await expect(issueServerCertificate(ca, { dnsNames: ['-bad.example'] })).rejects.toMatchObject({
      code: 'PKI_INVALID_ID',
    });
    await expect(issueServerCertificate(ca, { ipAddresses: ['300.1.1.1'] })).rejects.toMatchObject({
      code: 'PKI_INVALID_ID',
    });
  });
});
