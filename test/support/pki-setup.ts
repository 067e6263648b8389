import { createPrivateKey, X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import {
  type CertificateAuthority,
  createDevelopmentCa,
  issueClinicCertificate,
  issueGatewayCertificate,
  issueServerCertificate,
  writeCertificateFile,
  writePrivateKeyFile,
} from '../../src/pki/index.js';

/** A full development PKI in `dir`, the way `rpm-gateway certs init` lays it out, plus parsed handles. */
export interface TestPki {
  readonly dir: string;
  readonly ca: CertificateAuthority & { privateKeyPem: string };
  readonly files: Record<
    'ca' | 'broker' | 'brokerKey' | 'clinic' | 'clinicKey' | 'gateway' | 'gatewayKey',
    string
  >;
  readonly pem: Record<
    'ca' | 'broker' | 'brokerKey' | 'clinic' | 'clinicKey' | 'gateway' | 'gatewayKey',
    string
  >;
  readonly gatewayId: string;
}

export async function createTestPki(dir: string, gatewayId = 'gw-test-0001'): Promise<TestPki> {
  const ca = await createDevelopmentCa();
  const broker = await issueServerCertificate(ca);
  const clinic = await issueClinicCertificate(ca, { name: 'clinic-test' });
  const gateway = await issueGatewayCertificate(ca, { gatewayId });
  const files = {
    ca: join(dir, 'ca.crt'),
    broker: join(dir, 'broker.crt'),
    brokerKey: join(dir, 'broker.key'),
    clinic: join(dir, 'clinic.crt'),
    clinicKey: join(dir, 'clinic.key'),
    gateway: join(dir, 'gateway.crt'),
    gatewayKey: join(dir, 'gateway.key'),
  };
  await writeCertificateFile(files.ca, ca.certificatePem);
  await writeCertificateFile(files.broker, broker.certificatePem);
  await writePrivateKeyFile(files.brokerKey, broker.privateKeyPem);
  await writeCertificateFile(files.clinic, clinic.certificatePem);
  await writePrivateKeyFile(files.clinicKey, clinic.privateKeyPem);
  await writeCertificateFile(files.gateway, gateway.certificatePem);
  await writePrivateKeyFile(files.gatewayKey, gateway.privateKeyPem);
  return {
    dir,
    ca,
    files,
    pem: {
      ca: ca.certificatePem,
      broker: broker.certificatePem,
      brokerKey: broker.privateKeyPem,
      clinic: clinic.certificatePem,
      clinicKey: clinic.privateKeyPem,
      gateway: gateway.certificatePem,
      gatewayKey: gateway.privateKeyPem,
    },
    gatewayId,
  };
}

/** The gateway's signing material for the wire format, from PEM. */
export function signingCredentials(certificatePem: string, keyPem: string) {
  const certificate = new X509Certificate(certificatePem);
  return {
    key: createPrivateKey(keyPem),
    certificateDer: new Uint8Array(certificate.raw),
    expiresAt: Date.parse(certificate.validTo),
  };
}
