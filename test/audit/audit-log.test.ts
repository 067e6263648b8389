import { execFile } from 'node:child_process';
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { ManualClock } from '../../src/util/clock.js';

let dir: string;
let path: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-audit-'));
  path = join(dir, 'audit.log');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('AuditLog', () => {
  it('chains entries and verifies them, also across reopen', async () => {
    const log = new AuditLog(path, new ManualClock());
    log.record('store.opened', 'gateway');
    log.record('store.rekeyed', 'cli', { rows: 12 });
    const reopened = new AuditLog(path);
    const third = reopened.record('device.paired', 'cli', { device: 'dev-1' });
    expect(third.seq).toBe(3);
    expect(reopened.verify()).toMatchObject({ entries: 3, torn: 0, head: third.hash });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('detects an edited entry', async () => {
    const log = new AuditLog(path);
    log.record('a', 'gateway', { n: 1 });
    log.record('b', 'gateway', { n: 2 });
    log.record('c', 'gateway', { n: 3 });
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.replace('"n":2', '"n":5'));
    expect(() => new AuditLog(path).verify()).toThrow(
      expect.objectContaining({ code: 'AUDIT_CHAIN_BROKEN', line: 2 }),
    );
  });

  it('detects a removed entry', async () => {
    const log = new AuditLog(path);
    for (const type of ['a', 'b', 'c']) log.record(type, 'gateway');
    const lines = (await readFile(path, 'utf8')).split('\n');
    await writeFile(path, [lines[0], lines[2], ''].join('\n'));
    expect(() => new AuditLog(path).verify()).toThrow(expect.objectContaining({ line: 2 }));
  });

  it('keeps going after a torn write and says so', async () => {
    const log = new AuditLog(path);
    log.record('a', 'gateway');
    await appendFile(path, '{"seq":2,"ti'); // power cut mid-line
    const after = new AuditLog(path);
    after.record('b', 'gateway');
    expect(after.verify()).toMatchObject({ entries: 2, torn: 1 });
  });

  it('chains to what another writer appended since (a CLI command while the service runs)', () => {
    const service = new AuditLog(path);
    service.record('service.started', 'gateway');
    new AuditLog(path).record('user.added', 'cli');
    expect(service.headHash()).toBe(new AuditLog(path).headHash());
    service.record('login.succeeded', 'u1');
    expect(new AuditLog(path).verify()).toMatchObject({ entries: 3, torn: 0 });
  });

  it('keeps one chain while two processes append at the same time', async () => {
    const child = join(import.meta.dirname, '../../dist/test/support/audit-append-child.js');
    const run = promisify(execFile);
    const outputs = await Promise.all(
      ['a', 'b'].map((actor) => run(process.execPath, [child, path, '150', actor])),
    );
    for (const { stdout } of outputs) expect(stdout).toBe('DONE\n');
    expect(new AuditLog(path).verify()).toMatchObject({ entries: 300, torn: 0 });
    await expect(stat(`${path}.lock`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('takes over a lock left by a process that no longer exists', async () => {
    const gone = await promisify(execFile)(process.execPath, ['-p', 'process.pid']);
    await writeFile(`${path}.lock`, gone.stdout.trim());
    new AuditLog(path).record('a', 'gateway');
    expect(new AuditLog(path).verify()).toMatchObject({ entries: 1 });
  });

  it('waits for a lock a live process holds and names it when it does not come free', async () => {
    await writeFile(`${path}.lock`, String(process.ppid));
    expect(() => new AuditLog(path).record('a', 'gateway')).toThrow(
      expect.objectContaining({ code: 'AUDIT_IO', message: expect.stringContaining(String(process.ppid)) }),
    );
  });
});
