import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../scripts/support/measurements.js';
import { StoreError } from '../../src/store/errors.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { Store } from '../../src/store/store.js';

const keys = new EnvKeyProvider('K', { K: '5a'.repeat(32) });
const CUFF = {
  address: 'C0:FF:EE:12:34:56',
  driverId: 'sig/blood-pressure',
  category: 'blood-pressure',
  bonded: false,
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-store-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('Store.open', () => {
  it('refuses a store that does not exist when it must, and creates nothing', async () => {
    const path = join(dir, 'outbox.db');
    const error = await Store.open({ path, keys, existing: 'must-exist' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe('STORE_MISSING');
    expect((error as StoreError).message).toMatch(/rpm-gateway init/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('gives the outbox and the device registry on one store, and closing it closes both', async () => {
    const path = join(dir, 'outbox.db');
    const store = await Store.open({ path, keys, existing: 'create' });
    const { device } = store.devices.enrol(CUFF);
    await store.outbox.append(spo2Measurement(1, { deviceId: device.id }));
    store.close();
    expect(store.isOpen).toBe(false);
    expect(() => store.devices.list()).toThrow(expect.objectContaining({ code: 'STORE_CLOSED' }));
    expect(() => store.outbox.stats()).toThrow(expect.objectContaining({ code: 'STORE_CLOSED' }));
    store.close(); // idempotent

    const again = await Store.open({ path, keys, existing: 'must-exist' });
    try {
      expect(again.devices.list().map((d) => d.id)).toEqual([device.id]);
      expect(again.outbox.stats().rows).toBe(1);
    } finally {
      again.close();
    }
  });
});
