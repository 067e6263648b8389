import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type CertificateAuthority,
  createDevelopmentCa,
  issueClinicCertificate,
  issueGatewayCertificate,
  issueServerCertificate,
} from '../../src/pki/index.js';
import { CommandSigners } from '../../src/uplink/command-signers.js';
import { ManualClock } from '../../src/util/clock.js';
import { CLOCK_SKEW_MS, kidForCertificate } from '../../src/wire/index.js';
import { expectWireError } from '../wire/support.js';

/** Who may sign commands (docs/wire-format.md sections 4 and 9.2), with real certificates from a real CA. */
const ISSUED_AT = Date.UTC(2026, 10, 28, 12, 0, 0);
let ca: CertificateAuthority;
let clinic: { pem: string; kid: Uint8Array; notBefore: number; notAfter: number };

function kidOf(pem: string): Uint8Array {
  return kidForCertificate(new Uint8Array(new X509Certificate(pem).raw));
}

beforeAll(async () => {
  ca = await createDevelopmentCa({ clock: new ManualClock(ISSUED_AT - 86_400_000) });
  const issued = await issueClinicCertificate(ca, {
    name: 'clinic-test',
    validityDays: 30,
    clock: new ManualClock(ISSUED_AT),
  });
  const parsed = new X509Certificate(issued.certificatePem);
  clinic = {
    pem: issued.certificatePem,
    kid: kidOf(issued.certificatePem),
    notBefore: Date.parse(parsed.validFrom),
    notAfter: Date.parse(parsed.validTo),
  };
});

describe('CommandSigners', () => {
  it('gives the key of a valid clinic certificate of the clinic CA', () => {
    const signers = new CommandSigners({ clinicCa: ca.certificatePem, certificates: [clinic.pem] });
    const key = signers.keyFor(clinic.kid, ISSUED_AT + 86_400_000);
    expect(key?.equals(new X509Certificate(clinic.pem).publicKey)).toBe(true);
    expect(signers.resolverAt(ISSUED_AT)(clinic.kid)).toBeDefined();
  });

  it('knows no other kid', () => {
    const signers = new CommandSigners({ clinicCa: ca.certificatePem, certificates: [clinic.pem] });
    expect(signers.keyFor(new Uint8Array(32), ISSUED_AT)).toBeUndefined();
  });

  it('allows 60 s of clock difference at both ends of the validity, and not a millisecond more', () => {
    const signers = new CommandSigners({ clinicCa: ca.certificatePem, certificates: [clinic.pem] });
    expect(signers.keyFor(clinic.kid, clinic.notAfter + CLOCK_SKEW_MS)).toBeDefined();
    const late = expectWireError(
      () => signers.keyFor(clinic.kid, clinic.notAfter + CLOCK_SKEW_MS + 1),
      'WIRE_SIGNER_EXPIRED',
    );
    expect(late.message).toMatch(/expired/);
    expect(signers.keyFor(clinic.kid, clinic.notBefore - CLOCK_SKEW_MS)).toBeDefined();
    const early = expectWireError(
      () => signers.keyFor(clinic.kid, clinic.notBefore - CLOCK_SKEW_MS - 1),
      'WIRE_SIGNER_EXPIRED',
    );
    expect(early.message).toMatch(/not valid yet/);
  });

  it('refuses a gateway or server certificate of the clinic CA, even when configured', async () => {
    const gateway = await issueGatewayCertificate(ca, { gatewayId: 'gw-test-0001' });
    const server = await issueServerCertificate(ca);
    const signers = new CommandSigners({
      clinicCa: ca.certificatePem,
      certificates: [gateway.certificatePem, server.certificatePem],
    });
    expectWireError(
      () => signers.keyFor(kidOf(gateway.certificatePem), Date.now()),
      'WIRE_SIGNER_NOT_CLINIC',
    );
    expectWireError(() => signers.keyFor(kidOf(server.certificatePem), Date.now()), 'WIRE_SIGNER_NOT_CLINIC');
  });

  it('refuses a clinic certificate of another CA, also one whose CA has the same name', async () => {
    const namesake = await createDevelopmentCa(); // same subject as `ca`, another key
    const foreign = await issueClinicCertificate(namesake, { name: 'clinic-test' });
    const signers = new CommandSigners({
      clinicCa: ca.certificatePem,
      certificates: [foreign.certificatePem],
    });
    const error = expectWireError(
      () => signers.keyFor(kidOf(foreign.certificatePem), Date.now()),
      'WIRE_SIGNER_UNTRUSTED',
    );
    expect(error.message).toMatch(/not issued by the clinic CA/);
  });

  it('the anchor is the clinic CA it is given: the same certificate is untrusted under another CA', async () => {
    const other = await createDevelopmentCa({ commonName: 'broker CA' });
    const signers = new CommandSigners({ clinicCa: other.certificatePem, certificates: [clinic.pem] });
    expectWireError(() => signers.keyFor(clinic.kid, ISSUED_AT), 'WIRE_SIGNER_UNTRUSTED');
  });

  it('refuses unreadable certificates when configured', () => {
    expect(() => new CommandSigners({ clinicCa: 'not a certificate', certificates: [] })).toThrow(
      expect.objectContaining({ code: 'PKI_BAD_CERTIFICATE' }),
    );
    expect(
      () => new CommandSigners({ clinicCa: ca.certificatePem, certificates: [new Uint8Array([0x30, 0x03])] }),
    ).toThrow(expect.objectContaining({ code: 'PKI_BAD_CERTIFICATE' }));
  });
});
