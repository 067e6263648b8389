import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayDirectory } from '../../src/clinic/gateway-directory.js';
import {
  CRL_FILE,
  type CrlState,
  createDevelopmentPki,
  type DevelopmentPki,
  issueGatewayCertificate,
  revokeCertificate,
  writePrivateKeyFile,
} from '../../src/pki/index.js';

/** The clinic's gateway directory and the CA's CRL: a revoked signer's certificate is refused, live. */
let dir: string;
let pki: DevelopmentPki;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-directory-'));
  pki = await createDevelopmentPki(dir);
  await writePrivateKeyFile(join(dir, 'ca.key'), pki.ca.privateKeyPem);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const kidOf = (pem: string) => createHash('sha256').update(new X509Certificate(pem).raw).digest();

describe('GatewayDirectory with the CA CRL', () => {
  it('stops finding a signer once its certificate is revoked, and refuses to add it again', async () => {
    const states: CrlState['status'][] = [];
    const directory = new GatewayDirectory(pki.pem.ca, {
      crlFile: join(dir, CRL_FILE),
      onCrl: (state) => states.push(state.status),
    });
    const doomed = await issueGatewayCertificate(pki.ca, { gatewayId: 'gw-doomed-0002' });
    expect(directory.add(doomed.certificatePem)).toMatchObject({ gatewayId: 'gw-doomed-0002' });
    directory.add(pki.pem.gateway);
    expect(directory.lookup(kidOf(doomed.certificatePem))?.gatewayId).toBe('gw-doomed-0002');

    await revokeCertificate(dir, doomed.certificatePem, 'keyCompromise');

    expect(directory.lookup(kidOf(doomed.certificatePem))).toBeUndefined();
    expect(() => directory.add(doomed.certificatePem)).toThrow(
      expect.objectContaining({ code: 'CLINIC_REVOKED_CERT' }),
    );
    // the serial is what is revoked: the other gateway still verifies
    expect(directory.lookup(kidOf(pki.pem.gateway))?.gatewayId).toBe(pki.gatewayId);
    expect(states).toEqual(['absent', 'loaded']);
  });

  it('a directory without a CRL file keeps working as before', () => {
    const directory = new GatewayDirectory(pki.pem.ca);
    directory.add(pki.pem.gateway);
    expect(directory.lookup(kidOf(pki.pem.gateway))?.gatewayId).toBe(pki.gatewayId);
  });
});
