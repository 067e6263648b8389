import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../scripts/support/measurements.js';
import { AuditLog } from '../../src/audit/audit-log.js';
import { auditStoreEvents } from '../../src/store/audit-events.js';
import { EnvKeyProvider, KeyFileProvider, SystemdCredentialProvider } from '../../src/store/keys.js';
import { Outbox, type StoreEvent } from '../../src/store/outbox.js';
import { ManualClock } from '../../src/util/clock.js';

const KEY = '1f'.repeat(32);
const OTHER_KEY = '2e'.repeat(32);
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-at-rest-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function outboxAt(path: string, key = KEY, events: StoreEvent[] = []): Outbox {
  return new Outbox({
    path,
    keys: new EnvKeyProvider('K', { K: key }),
    clock: new ManualClock(),
    onEvent: (e) => events.push(e),
  });
}

describe('encryption at rest', () => {
  it('leaves no plaintext in the main file, the WAL or the shared-memory file', async () => {
    const path = join(dir, 'outbox.db');
    const box = outboxAt(path);
    await box.open();
    const marker = 'PATIENT-MARKER-7f3a';
    for (let i = 0; i < 200; i++) {
      await box.append(
        spo2Measurement(i, { deviceId: `${marker}-device`, details: { note: `${marker}-${i}` } }),
      );
    }
    // Scan while the WAL still holds the pages (before close checkpoints it), then after close.
    for (const suffix of ['', '-wal', '-shm']) {
      const bytes = await readFile(`${path}${suffix}`).catch(() => Buffer.alloc(0));
      expect(bytes.includes(marker), `plaintext in ${suffix || 'main file'}`).toBe(false);
      expect(bytes.includes('MDC_PULS_OXIM'), `plaintext codes in ${suffix || 'main file'}`).toBe(false);
    }
    expect((await readFile(`${path}-wal`)).length).toBeGreaterThan(0);
    box.close();
    const main = await readFile(path);
    expect(main.includes(marker)).toBe(false);
    expect(main.subarray(0, 16).toString('latin1')).not.toBe('SQLite format 3\0');
  });

  it('cannot be opened by the plain sqlite3 command-line shell', async (context) => {
    const probe = spawnSync('sqlite3', ['-version']);
    // .ci/run installs sqlite3, so in CI its absence is a failure; a developer machine may lack it
    if (probe.error && !process.env.CI) context.skip();
    const path = join(dir, 'outbox.db');
    const box = outboxAt(path);
    await box.open();
    await box.append(spo2Measurement(1));
    box.close();
    const result = spawnSync('sqlite3', [path, 'SELECT count(*) FROM outbox;'], { encoding: 'utf8' });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/not a database|encrypted/);
  });
});

describe('key errors', () => {
  it('a wrong key is STORE_KEY_WRONG naming the provider, and the store is untouched', async () => {
    const path = join(dir, 'outbox.db');
    const box = outboxAt(path);
    await box.open();
    await box.append(spo2Measurement(1));
    box.close();
    const before = await readFile(path);
    await expect(outboxAt(path, OTHER_KEY).open()).rejects.toMatchObject({
      code: 'STORE_KEY_WRONG',
      message: expect.stringContaining('environment variable K'),
    });
    expect((await readFile(path)).equals(before)).toBe(true);
    const again = outboxAt(path);
    await again.open();
    expect(again.stats().rows).toBe(1);
    again.close();
  });

  it('a wrong key with the key check file gone is still a key error, never "corrupt"', async () => {
    const path = join(dir, 'outbox.db');
    const box = outboxAt(path);
    await box.open();
    await box.append(spo2Measurement(1));
    box.close();
    await rm(`${path}.keycheck`);
    await expect(outboxAt(path, OTHER_KEY).open()).rejects.toMatchObject({ code: 'STORE_KEY_WRONG' });
    const again = outboxAt(path);
    await again.open(); // the right key re-creates the key check
    expect(again.stats().rows).toBe(1);
    again.close();
  });

  it('a missing key file beside an existing store is STORE_KEY_MISSING: no new key, store untouched', async () => {
    const path = join(dir, 'outbox.db');
    const keyFile = join(dir, 'store.key');
    const first = new Outbox({ path, keys: new KeyFileProvider(keyFile), clock: new ManualClock() });
    await first.open(); // a genuinely empty folder: the key is made here
    await first.append(spo2Measurement(1));
    first.close();
    const key = await readFile(keyFile, 'utf8');
    const keyCheck = await readFile(`${path}.keycheck`, 'utf8');
    await rm(keyFile); // e.g. a restore that forgot the key, or a card copied without it
    const again = new Outbox({ path, keys: new KeyFileProvider(keyFile), clock: new ManualClock() });
    await expect(again.open()).rejects.toMatchObject({
      code: 'STORE_KEY_MISSING',
      message: expect.stringContaining(keyFile),
    });
    await expect(stat(keyFile)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readFile(`${path}.keycheck`, 'utf8')).toBe(keyCheck);
    // The same with only the key commitment left (the store file itself gone): never a fresh key either.
    await rm(path);
    await expect(again.open()).rejects.toMatchObject({ code: 'STORE_KEY_MISSING' });
    await expect(stat(keyFile)).rejects.toMatchObject({ code: 'ENOENT' });
    await writeFile(keyFile, key, { mode: 0o600 });
  });

  it('creates a 0600 key file on first start and reuses it', async () => {
    const provider = new KeyFileProvider(join(dir, 'keys', 'store.key'));
    const first = await provider.load();
    const second = await provider.load();
    expect(Buffer.from(first).equals(Buffer.from(second))).toBe(true);
    expect(first.length).toBe(32);
    const mode = execFileSync('stat', ['-c', '%a', join(dir, 'keys', 'store.key')], {
      encoding: 'utf8',
    }).trim();
    expect(mode).toBe('600');
  });

  it('refuses a key file readable by others (mode 0644)', async () => {
    const path = join(dir, 'store.key');
    await writeFile(path, `${KEY}\n`, { mode: 0o644 });
    await chmod(path, 0o644);
    await expect(new KeyFileProvider(path).load()).rejects.toMatchObject({
      code: 'STORE_KEY_PERMISSIONS',
      message: expect.stringContaining('chmod 600'),
    });
  });

  it('reports a missing key file when creation is off, and a malformed one', async () => {
    await expect(
      new KeyFileProvider(join(dir, 'absent.key'), { create: false }).load(),
    ).rejects.toMatchObject({
      code: 'STORE_KEY_MISSING',
    });
    const path = join(dir, 'short.key');
    await writeFile(path, 'abcd\n', { mode: 0o600 });
    await expect(new KeyFileProvider(path).load()).rejects.toMatchObject({ code: 'STORE_KEY_MALFORMED' });
  });

  it('reads a systemd credential and names it when absent', async () => {
    await writeFile(join(dir, 'store-key'), KEY, { mode: 0o600 });
    const key = await new SystemdCredentialProvider('store-key', { CREDENTIALS_DIRECTORY: dir }).load();
    expect(Buffer.from(key).toString('hex')).toBe(KEY);
    await expect(new SystemdCredentialProvider('store-key', {}).load()).rejects.toMatchObject({
      code: 'STORE_KEY_MISSING',
      message: expect.stringContaining('CREDENTIALS_DIRECTORY'),
    });
    await expect(new EnvKeyProvider('NOPE', {}).load()).rejects.toMatchObject({ code: 'STORE_KEY_MISSING' });
  });
});

describe('damage and full disks', () => {
  it('moves a damaged store aside (kept, not deleted), opens a new one, and reports it', async () => {
    const path = join(dir, 'outbox.db');
    const box = outboxAt(path);
    await box.open();
    for (let i = 0; i < 50; i++) await box.append(spo2Measurement(i));
    box.close();
    const bytes = await readFile(path);
    for (let at = 4096; at < bytes.length; at += 97) bytes[at] = (bytes[at] as number) ^ 0xff; // SD card rot
    await writeFile(path, bytes);
    const events: StoreEvent[] = [];
    const reopened = outboxAt(path, KEY, events);
    await reopened.open();
    const moved = events.find((e) => e.type === 'store.moved-aside');
    expect(moved).toBeDefined();
    const to = (moved as Extract<StoreEvent, { type: 'store.moved-aside' }>).to;
    expect((await readFile(to)).equals(bytes)).toBe(true);
    // the 50 readings are gone, and the high-water mark says so: one gap record for the clinic
    expect(events.find((e) => e.type === 'store.damaged')).toMatchObject({
      kind: 'store-corrupt',
      lost: 50,
      firstSeq: 1,
      lastSeq: 50,
      keptAt: to,
    });
    expect(reopened.stats().rows).toBe(1);
    await reopened.append(spo2Measurement(99));
    reopened.close();
    // the runtime's wiring sends the event to the audit log
    const audit = new AuditLog(join(dir, 'audit.log'));
    auditStoreEvents(audit)(moved as StoreEvent);
    expect(audit.verify().entries).toBe(1);
    expect(JSON.parse(await readFile(join(dir, 'audit.log'), 'utf8'))).toMatchObject({
      type: 'store.moved-aside',
      details: { to },
    });
  });

  it('a full disk is STORE_DISK_FULL and loses nothing already stored', async () => {
    const path = join(dir, 'outbox.db');
    const box = outboxAt(path);
    await box.open();
    for (let i = 0; i < 20; i++) await box.append(spo2Measurement(i));
    // A size-limited file: SQLite cannot grow the database past max_page_count and reports SQLITE_FULL,
    // exactly what a full SD card gives.
    const pages = box.database.pragma('page_count', { simple: true }) as number;
    box.database.pragma(`max_page_count = ${pages}`);
    const big = (i: number) => spo2Measurement(1000 + i, { details: { blob: 'x'.repeat(3000) } });
    const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => box.append(big(i))));
    expect(
      results.some(
        (r) => r.status === 'rejected' && (r.reason as { code: string }).code === 'STORE_DISK_FULL',
      ),
    ).toBe(true);
    expect(box.stats().rows).toBe(20);
    box.close();
    const again = outboxAt(path);
    await again.open();
    expect(again.stats().rows).toBe(20);
    expect(again.database.pragma('integrity_check', { simple: true })).toBe('ok');
    again.close();
  });

  it('a read-only file system is STORE_READ_ONLY and loses nothing', async () => {
    // A real read-only mount (root, as in CI) or, for a normal user, a folder without write permission
    // (root ignores permission bits, so that variant only works unprivileged).
    const mountPoint = join(dir, 'mnt');
    await mkdir(mountPoint);
    const root = process.getuid?.() === 0;
    if (root) execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mountPoint]);
    try {
      const path = join(mountPoint, 'outbox.db');
      const box = outboxAt(path);
      await box.open();
      for (let i = 0; i < 5; i++) await box.append(spo2Measurement(i));
      box.close();
      if (root) execFileSync('mount', ['-o', 'remount,ro', mountPoint]);
      else await chmod(mountPoint, 0o500);
      await expect(outboxAt(path).open()).rejects.toMatchObject({ code: 'STORE_READ_ONLY' });
      if (root) execFileSync('mount', ['-o', 'remount,rw', mountPoint]);
      else await chmod(mountPoint, 0o700);
      const again = outboxAt(path);
      await again.open();
      expect(again.stats().rows).toBe(5);
      again.close();
    } finally {
      if (root) execFileSync('umount', ['-l', mountPoint]);
    }
  });
});
