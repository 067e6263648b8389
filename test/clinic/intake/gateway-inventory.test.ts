import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayInventory, type InventoryEvent } from '../../../src/clinic/intake/gateway-inventory.js';
import {
  createDevelopmentCa,
  createDevelopmentPki,
  type DevelopmentPki,
  issueGatewayCertificate,
  writePrivateKeyFile,
} from '../../../src/pki/index.js';
import { ManualClock } from '../../../src/util/clock.js';

/** The folder of issued gateway certificates, read again when it changes. */
let dir: string;
let pki: DevelopmentPki;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-inventory-'));
  pki = await createDevelopmentPki(dir);
  await writePrivateKeyFile(join(dir, 'ca.key'), pki.ca.privateKeyPem);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const kidOf = (pem: string) => createHash('sha256').update(new X509Certificate(pem).raw).digest();

describe('GatewayInventory', () => {
  it('loads the folder, leaves out what the CA did not issue, and sees files added, rewritten and removed', async () => {
    const folder = join(dir, 'gateways-1');
    mkdirSync(folder);
    const events: InventoryEvent[] = [];
    const clock = new ManualClock(Date.now());
    const inventory = new GatewayInventory({
      caPem: pki.pem.ca,
      folder,
      clock,
      checkIntervalMs: 1_000,
      onEvent: (e) => events.push(e),
    });
    const a = await issueGatewayCertificate(pki.ca, { gatewayId: 'gw-inv-0001' });
    const b = await issueGatewayCertificate(pki.ca, { gatewayId: 'gw-inv-0002' });
    const foreign = await issueGatewayCertificate(await createDevelopmentCa(), { gatewayId: 'gw-inv-0003' });
    writeFileSync(join(folder, 'a.crt'), a.certificatePem);
    writeFileSync(join(folder, 'foreign.pem'), foreign.certificatePem);
    writeFileSync(join(folder, 'notes.txt'), 'not a certificate file name: ignored');

    expect(inventory.lookup(kidOf(a.certificatePem))).toMatchObject({
      status: 'known',
      entry: { gatewayId: 'gw-inv-0001' },
    });
    expect(inventory.lookup(kidOf(foreign.certificatePem))).toEqual({ status: 'unknown' });
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'refused',
        reason: expect.stringContaining('not issued by the clinic CA'),
      }),
    );

    // rewritten in place with another certificate: seen at the next check, not before
    writeFileSync(join(folder, 'a.crt'), `${a.certificatePem}\n${b.certificatePem}`);
    expect(inventory.lookup(kidOf(b.certificatePem))).toEqual({ status: 'unknown' });
    clock.advance(1_000);
    expect(inventory.lookup(kidOf(b.certificatePem)).status).toBe('known');
    const version = inventory.version;

    rmSync(join(folder, 'a.crt'));
    expect(inventory.refresh()).toBe(true);
    expect(inventory.version).toBeGreaterThan(version);
    expect(inventory.lookup(kidOf(a.certificatePem))).toEqual({ status: 'unknown' });

    // a folder that cannot be read keeps what was loaded
    writeFileSync(join(folder, 'b.crt'), b.certificatePem);
    inventory.refresh();
    rmSync(folder, { recursive: true });
    expect(inventory.refresh()).toBe(false);
    expect(inventory.lookup(kidOf(b.certificatePem)).status).toBe('known');
    expect(events.at(-1)).toMatchObject({ type: 'folder-unreadable' });
  });
});
