import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../scripts/support/measurements.js';
import { KeyFileProvider } from '../../src/store/keys.js';
import { Outbox } from '../../src/store/outbox.js';
import { type RekeyProgress, type RekeyStep, rekeyStore, SimulatedCrash } from '../../src/store/rekey.js';

/** The built command line (npm test builds first), for a genuinely separate process. */
const bin = join(import.meta.dirname, '../../dist/src/cli/bin.js');
let dir: string;
let path: string;
let keys: KeyFileProvider;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-rekey-'));
  path = join(dir, 'outbox.db');
  keys = new KeyFileProvider(join(dir, 'store.key'));
  const box = new Outbox({ path, keys });
  await box.open();
  await Promise.all(Array.from({ length: 300 }, (_, i) => box.append(spo2Measurement(i))));
  box.close();
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function rowsWith(provider: KeyFileProvider): Promise<number> {
  const box = new Outbox({ path, keys: provider });
  await box.open();
  try {
    expect(box.database.pragma('integrity_check', { simple: true })).toBe('ok');
    return box.stats().rows;
  } finally {
    box.close();
  }
}

describe('store rekey', () => {
  it('rotates the key in place: same rows, new key file (0600), the old key no longer opens it', async () => {
    const oldKey = await readFile(keys.path, 'utf8');
    const result = await rekeyStore({ path, keys, now: Date.now });
    expect(result.rows).toBe(300);
    const newKey = await readFile(keys.path, 'utf8');
    expect(newKey).not.toBe(oldKey);
    expect((await stat(keys.path)).mode & 0o777).toBe(0o600);
    expect(await rowsWith(keys)).toBe(300);
    const stale = join(dir, 'old.key');
    await writeFile(stale, oldKey, { mode: 0o600 });
    await expect(rowsWith(new KeyFileProvider(stale))).rejects.toMatchObject({ code: 'STORE_KEY_WRONG' });
  });

  it('tells its progress: the copy in bytes, the re-encryption, then every row read back; the store stays 0600', async () => {
    const events: RekeyProgress[] = [];
    const size = (await stat(path)).size;
    await rekeyStore({ path, keys, now: Date.now, onProgress: (p) => events.push(p) });
    const steps = events.map((e) => e.step).filter((step, i, all) => step !== all[i - 1]);
    expect(steps).toEqual(['copying', 're-encrypting', 'checking']);
    const copying = events.filter((e) => e.step === 'copying');
    expect(copying[0]).toEqual({ step: 'copying', done: 0, total: size });
    expect(copying.at(-1)).toEqual({ step: 'copying', done: size, total: size });
    expect(events.at(-1)).toEqual({ step: 'checking', done: 300, total: 300 });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await rowsWith(keys)).toBe(300);
  });

  it('refuses while a gateway has the store open (STORE_LOCKED), changing nothing', async () => {
    const box = new Outbox({ path, keys });
    await box.open();
    const before = await readFile(keys.path, 'utf8');
    try {
      await expect(rekeyStore({ path, keys, now: Date.now })).rejects.toMatchObject({ code: 'STORE_LOCKED' });
    } finally {
      box.close();
    }
    expect(await readFile(keys.path, 'utf8')).toBe(before);
    expect(await rowsWith(keys)).toBe(300);
  });

  it("leaves a rotation's files alone while another process owns the store", async () => {
    // What a rotation has made by its step 3: the re-encrypted copy and the new key. A second command opening
    // the store meanwhile must not take them for a crash's leftovers and delete them.
    const gateway = new Outbox({ path, keys });
    await gateway.open();
    const leftovers = [join(dir, 'outbox.db.rekey'), join(dir, 'store.key.new')];
    try {
      for (const file of leftovers) await writeFile(file, 'in progress', { mode: 0o600 });
      await expect(new Outbox({ path, keys }).open()).rejects.toMatchObject({ code: 'STORE_LOCKED' });
      await expect(rekeyStore({ path, keys, now: Date.now })).rejects.toMatchObject({ code: 'STORE_LOCKED' });
      // and another process (the kernel's locks are per process): `store status` from the command line
      const status = spawnSync(process.execPath, [bin, 'store', 'status', '--data-dir', dir], {
        encoding: 'utf8',
      });
      expect(status.stderr).toContain('[STORE_LOCKED]');
      expect(status.status).toBe(1);
      for (const file of leftovers) expect(await readFile(file, 'utf8')).toBe('in progress');
    } finally {
      gateway.close();
    }
    // Once the owner is gone, the next opener (holding the lock) clears them: no marker, so not committed.
    expect(await rowsWith(keys)).toBe(300);
    for (const file of leftovers) await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses to rotate a store whose key file is missing, and makes no key', async () => {
    await rm(keys.path);
    await expect(rekeyStore({ path, keys, now: Date.now })).rejects.toMatchObject({
      code: 'STORE_KEY_MISSING',
    });
    await expect(stat(keys.path)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  const steps: [RekeyStep, 'old' | 'new'][] = [
    ['copied', 'old'],
    ['reencrypted', 'old'],
    ['key-written', 'old'],
    ['committed', 'new'],
    ['store-swapped', 'new'],
    ['keycheck-written', 'new'],
  ];
  it.each(steps)(
    'survives a crash after "%s": the next open finds every row under the %s key',
    async (step, which) => {
      const oldKey = await readFile(keys.path, 'utf8');
      await expect(rekeyStore({ path, keys, now: Date.now, crashAt: step })).rejects.toBeInstanceOf(
        SimulatedCrash,
      );
      expect(await rowsWith(keys)).toBe(300); // open recovers: rolls forward or discards
      const key = await readFile(keys.path, 'utf8');
      if (which === 'old') expect(key).toBe(oldKey);
      else expect(key).not.toBe(oldKey);
      const leftovers = ['outbox.db.rekey', 'outbox.db.rekey.json', 'store.key.new'];
      for (const file of leftovers)
        await expect(stat(join(dir, file))).rejects.toMatchObject({ code: 'ENOENT' });
      // and a later rotation still works
      await rekeyStore({ path, keys, now: Date.now });
      expect(await rowsWith(keys)).toBe(300);
    },
  );
});
