import { join } from 'node:path';
import {
  type CertificateAuthority,
  createDevelopmentCa,
  issueClinicCertificate,
  issueGatewayCertificate,
  issueServerCertificate,
} from './ca.js';
import { writeCertificateFile, writePrivateKeyFile } from './files.js';

/**
 * A complete development PKI in one folder, laid out as `rpm-gateway certs init` lays it out: a CA and the
 * broker ("localhost"), clinic and gateway certificates it issued, keys mode 0600. For tests, benchmarks and the
 * demo; never for patients (the CA key sits next to everything it signed).
 */
export type DevelopmentPkiFile =
  | 'ca'
  | 'broker'
  | 'brokerKey'
  | 'clinic'
  | 'clinicKey'
  | 'gateway'
  | 'gatewayKey';

export interface DevelopmentPki {
  readonly dir: string;
  readonly ca: CertificateAuthority & { readonly privateKeyPem: string };
  /** Where each certificate and key was written. */
  readonly files: Readonly<Record<DevelopmentPkiFile, string>>;
  /** The same, as PEM text. */
  readonly pem: Readonly<Record<DevelopmentPkiFile, string>>;
  readonly gatewayId: string;
}

export async function createDevelopmentPki(
  dir: string,
  options: { readonly gatewayId?: string; readonly clinicName?: string } = {},
): Promise<DevelopmentPki> {
  const gatewayId = options.gatewayId ?? 'gw-test-0001';
  const ca = await createDevelopmentCa();
  const broker = await issueServerCertificate(ca);
  const clinic = await issueClinicCertificate(ca, { name: options.clinicName ?? 'clinic-test' });
  const gateway = await issueGatewayCertificate(ca, { gatewayId });
  const pem: Record<DevelopmentPkiFile, string> = {
    ca: ca.certificatePem,
    broker: broker.certificatePem,
    brokerKey: broker.privateKeyPem,
    clinic: clinic.certificatePem,
    clinicKey: clinic.privateKeyPem,
    gateway: gateway.certificatePem,
    gatewayKey: gateway.privateKeyPem,
  };
  const files: Record<DevelopmentPkiFile, string> = {
    ca: join(dir, 'ca.crt'),
    broker: join(dir, 'broker.crt'),
    brokerKey: join(dir, 'broker.key'),
    clinic: join(dir, 'clinic.crt'),
    clinicKey: join(dir, 'clinic.key'),
    gateway: join(dir, 'gateway.crt'),
    gatewayKey: join(dir, 'gateway.key'),
  };
  for (const name of Object.keys(files) as DevelopmentPkiFile[]) {
    if (name.endsWith('Key')) await writePrivateKeyFile(files[name], pem[name]);
    else await writeCertificateFile(files[name], pem[name]);
  }
  return { dir, ca, files, pem, gatewayId };
}
