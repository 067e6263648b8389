import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClinicStore } from '../../../src/clinic/storage/clinic-store.js';
import { SqliteClinicStore } from '../../../src/clinic/storage/sqlite/sqlite-clinic-store.js';
import { clinicStoreContract } from './contract.js';

const KEY = Uint8Array.from(Buffer.from('4c'.repeat(32), 'hex'));

clinicStoreContract('SQLite (encrypted file)', async (options) => {
  const dir = await mkdtemp(join(tmpdir(), 'rpm-clinic-sqlite-'));
  const opened: ClinicStore[] = [];
  const openStore = async () => {
    const store = await SqliteClinicStore.open({ path: join(dir, 'clinic.db'), key: KEY, ...options });
    opened.push(store);
    return store;
  };
  return {
    store: await openStore(),
    reopen: openStore,
    cleanup: async () => {
      for (const store of opened) await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
