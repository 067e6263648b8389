import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-cli-store-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const cli = (args: string[]) => runCli(args, { env: { RPM_GATEWAY_DATA_DIR: dir } });

describe('rpm-gateway store', () => {
  it('creates an encrypted store with a 0600 key on first status, rotates the key, and audits it', async () => {
    const status = await cli(['store', 'status', '--json']);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ rows: 0, pending: { alert: 0, live: 0, backlog: 0 } });
    for (const file of ['store.key', 'outbox.db', 'outbox.db.keycheck']) {
      expect((await stat(join(dir, file))).mode & 0o777).toBe(0o600);
    }
    expect((await cli(['store', 'rekey'])).code).toBe(0);
    const verify = await cli(['store', 'verify-audit', '--json']);
    expect(JSON.parse(verify.stdout)).toMatchObject({ entries: 1, torn: 0 });
  });

  it('explains a bad key file instead of failing obscurely', async () => {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'store.key'), 'f'.repeat(64), { mode: 0o644 });
    const result = await cli(['store', 'status']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/mode 0644.*chmod 600.*\[STORE_KEY_PERMISSIONS\]/);
  });

  it('a store whose key file is gone says STORE_KEY_MISSING and makes no new key', async () => {
    expect((await cli(['store', 'status'])).code).toBe(0);
    await rm(join(dir, 'store.key'));
    const result = await cli(['store', 'status']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/store\.key does not exist.*\[STORE_KEY_MISSING\]/s);
    await expect(stat(join(dir, 'store.key'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('needs an action', async () => {
    expect((await cli(['store'])).code).toBe(2);
    expect((await cli(['store', 'status', 'extra'])).code).toBe(2);
  });
});
