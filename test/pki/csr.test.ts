import { beforeAll, describe, expect, it } from 'vitest';
import {
  type CertificateAuthority,
  createCsr,
  createDevelopmentCa,
  createGatewayCsr,
  identityOf,
  signCsr,
} from '../../src/pki/index.js';
import { generateKeyPair } from '../../src/pki/keys.js';
import { ECDSA_P256, subtle, x509 } from '../../src/pki/x509.js';
import { OID, openssl } from './pki-fixtures.js';

let ca: CertificateAuthority;
beforeAll(async () => {
  ca = await createDevelopmentCa();
});

/** A CSR as a hostile or careless requester might make it: any subject, any requested extensions. */
async function customCsr(options: {
  name: x509.JsonName;
  extensions?: x509.Extension[];
  algorithm?: { name: string; namedCurve: string; hash: string };
}): Promise<string> {
  const algorithm = options.algorithm ?? ECDSA_P256;
  const keys = await subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: options.name,
    keys,
    signingAlgorithm: algorithm,
    extensions: options.extensions ?? [],
  });
  return csr.toString('pem');
}

function derOf(pem: string): Uint8Array {
  return new Uint8Array(x509.PemConverter.decodeFirst(pem));
}

function pemOf(der: Uint8Array): string {
  return x509.PemConverter.encode(der, 'CERTIFICATE REQUEST');
}

describe('enrolment: createGatewayCsr on the hub, signCsr at the clinic', () => {
  it('the CSR names the gateway (CN + SAN URI), carries the public key only, and verifies', async () => {
    const { csrPem, privateKeyPem } = await createGatewayCsr('gw-0042');
    expect(csrPem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----/);
    expect(privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(csrPem).not.toContain(privateKeyPem.split('\n')[1]);
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    expect(await csr.verify()).toBe(true);
    expect(csr.subject).toBe('OU=gateway, CN=gw-0042');
    expect(csr.getExtension(OID.subjectAltName)).toBeInstanceOf(x509.SubjectAlternativeNameExtension);
    expect(
      (csr.getExtension(OID.subjectAltName) as x509.SubjectAlternativeNameExtension).names.toJSON(),
    ).toEqual([{ type: 'url', value: 'urn:rpm-gateway:gateway:gw-0042' }]);
  });

  it('the issued certificate certifies the hub key, chains to the CA and has the gateway profile', async () => {
    const { csrPem, privateKeyPem } = await createGatewayCsr('gw-0042');
    const issued = await signCsr(ca, csrPem, { role: 'gateway', validityDays: 90 });
    const cert = openssl(issued.certificatePem);
    expect(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(privateKeyPem))).toBe(true);
    expect(cert.verify(openssl(ca.certificatePem).publicKey)).toBe(true);
    expect(cert.keyUsage).toEqual([OID.clientAuth]);
    expect(cert.subjectAltName).toBe('URI:urn:rpm-gateway:gateway:gw-0042');
    expect(identityOf(issued.certificate)).toMatchObject({ role: 'gateway', id: 'gw-0042' });
    expect(issued.certificate.notAfter.getTime() - issued.certificate.notBefore.getTime()).toBe(
      90 * 86_400_000 + 5 * 60_000,
    );
  });

  it('ignores requested extensions: CA:true, keyCertSign, serverAuth and extra SANs are not copied', async () => {
    const csrPem = await customCsr({
      name: [{ O: ['Evil Corp'] }, { OU: ['admin'] }, { CN: ['gw-0042'] }],
      extensions: [
        new x509.BasicConstraintsExtension(true, 5, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        new x509.ExtendedKeyUsageExtension([OID.serverAuth, OID.clientAuth]),
        new x509.SubjectAlternativeNameExtension([
          { type: 'url', value: 'urn:rpm-gateway:gateway:gw-0042' },
          { type: 'dns', value: 'broker.clinic.example' },
          { type: 'ip', value: '127.0.0.1' },
        ]),
      ],
    });
    const issued = await signCsr(ca, csrPem, { role: 'gateway' });
    const cert = issued.certificate;
    const bc = cert.getExtension(x509.BasicConstraintsExtension);
    expect(bc?.ca).toBe(false);
    expect(cert.getExtension(x509.KeyUsagesExtension)?.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([OID.clientAuth]);
    expect(cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON()).toEqual([
      { type: 'url', value: 'urn:rpm-gateway:gateway:gw-0042' },
    ]);
    expect(cert.subject).toBe('OU=gateway, CN=gw-0042');
    expect(openssl(issued.certificatePem).ca).toBe(false);
  });

  it('takes the id from the CN when the CSR has no SAN URI (e.g. one made with openssl req)', async () => {
    const csrPem = await customCsr({ name: [{ CN: ['gw-from-openssl'] }] });
    const issued = await signCsr(ca, csrPem, { role: 'gateway' });
    expect(identityOf(issued.certificate)).toMatchObject({ role: 'gateway', id: 'gw-from-openssl' });
  });

  it('issues clinic certificates from a clinic CSR, with the CA or the given organization', async () => {
    const { csrPem } = await createCsr('clinic', 'clinic-north');
    const issued = await signCsr(ca, csrPem, { role: 'clinic', organization: 'North Clinic' });
    expect(issued.certificate.subject).toBe('O=North Clinic, OU=clinic, CN=clinic-north');
    expect(identityOf(issued.certificate)).toMatchObject({ role: 'clinic', id: 'clinic-north' });
  });
});

describe('signCsr refuses', () => {
  it('a tampered CSR (subject changed after signing)', async () => {
    const { csrPem } = await createGatewayCsr('gw-0042');
    const der = derOf(csrPem);
    // Rewrite the id in the subject's CN (and the SAN, so they still agree): the signature no longer matches.
    const text = Buffer.from(der).toString('latin1').replaceAll('gw-0042', 'gw-0666');
    const tampered = pemOf(Uint8Array.from(Buffer.from(text, 'latin1')));
    expect(new x509.Pkcs10CertificateRequest(tampered).subject).toBe('OU=gateway, CN=gw-0666');
    await expect(signCsr(ca, tampered, { role: 'gateway' })).rejects.toMatchObject({ code: 'PKI_BAD_CSR' });
  });

  it('a CSR whose signature bytes were altered', async () => {
    const { csrPem } = await createGatewayCsr('gw-0042');
    const der = derOf(csrPem);
    der[der.length - 3] = (der[der.length - 3] ?? 0) ^ 0x01;
    await expect(signCsr(ca, pemOf(der), { role: 'gateway' })).rejects.toMatchObject({ code: 'PKI_BAD_CSR' });
  });

  it('garbage, a certificate instead of a CSR, and truncated input', async () => {
    const { csrPem } = await createGatewayCsr('gw-0042');
    for (const input of ['hello', ca.certificatePem, csrPem.slice(0, 200), `${'A'.repeat(20_000)}`]) {
      await expect(signCsr(ca, input, { role: 'gateway' })).rejects.toMatchObject({ code: 'PKI_BAD_CSR' });
    }
  });

  it('another key algorithm (P-384)', async () => {
    const csrPem = await customCsr({
      name: [{ CN: ['gw-0042'] }],
      algorithm: { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' },
    });
    await expect(signCsr(ca, csrPem, { role: 'gateway' })).rejects.toMatchObject({ code: 'PKI_BAD_CSR' });
  });

  it('a CSR for the other role, CN and URI that disagree, two identities, or none', async () => {
    const { csrPem: clinicCsr } = await createCsr('clinic', 'clinic-north');
    await expect(signCsr(ca, clinicCsr, { role: 'gateway' })).rejects.toMatchObject({ code: 'PKI_BAD_CSR' });
    const disagree = await customCsr({
      name: [{ CN: ['gw-0001'] }],
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'urn:rpm-gateway:gateway:gw-0002' }]),
      ],
    });
    await expect(signCsr(ca, disagree, { role: 'gateway' })).rejects.toMatchObject({ code: 'PKI_BAD_CSR' });
    const two = await customCsr({
      name: [{ CN: ['gw-0001'] }],
      extensions: [
        new x509.SubjectAlternativeNameExtension([
          { type: 'url', value: 'urn:rpm-gateway:gateway:gw-0001' },
          { type: 'url', value: 'urn:rpm-gateway:gateway:gw-0002' },
        ]),
      ],
    });
    await expect(signCsr(ca, two, { role: 'gateway' })).rejects.toMatchObject({ code: 'PKI_BAD_CSR' });
    const none = await customCsr({ name: [{ O: ['nobody'] }] });
    await expect(signCsr(ca, none, { role: 'gateway' })).rejects.toMatchObject({ code: 'PKI_BAD_CSR' });
  });

  it('an id that is not a valid gateway id, in the CN or the URI', async () => {
    for (const name of ['GW/0001', 'gw+#', 'a']) {
      const csrPem = await customCsr({ name: [{ CN: [name] }] });
      await expect(signCsr(ca, csrPem, { role: 'gateway' })).rejects.toMatchObject({
        code: 'PKI_INVALID_ID',
      });
    }
    const uri = await customCsr({
      name: [],
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'urn:rpm-gateway:gateway:a/b' }]),
      ],
    });
    await expect(signCsr(ca, uri, { role: 'gateway' })).rejects.toMatchObject({ code: 'PKI_INVALID_ID' });
    await expect(createGatewayCsr('Not Valid')).rejects.toMatchObject({ code: 'PKI_INVALID_ID' });
  });

  it('does not need the hub key: only the CSR crosses', async () => {
    // A CSR signed by a key the CA never sees is enough; the CA's own key pair is unrelated.
    const keys = await generateKeyPair();
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: [{ CN: ['gw-0042'] }],
      keys,
      signingAlgorithm: ECDSA_P256,
    });
    const issued = await signCsr(ca, csr.toString('pem'), { role: 'gateway' });
    expect(Buffer.from(issued.certificate.publicKey.rawData)).toEqual(
      Buffer.from(await subtle.exportKey('spki', keys.publicKey)),
    );
  });
});
