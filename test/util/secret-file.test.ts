import { execFileSync } from 'node:child_process';
import { chown, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, type TestContext } from 'vitest';
import { readPrivateKeyFile, writePrivateKeyFile } from '../../src/pki/files.js';
import { KeyFileProvider } from '../../src/store/keys.js';

const KEY = '5d'.repeat(32);
const PEM = '-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n';
/** The conventional unprivileged uid ("nobody" on Debian). */
const NOBODY = 65534;
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-secret-file-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/** Changing a file's owner needs root; CI runs as root, so there a missing privilege is a failure. */
function requireRoot(context: TestContext): void {
  if (process.getuid?.() !== 0 && !process.env.CI) context.skip();
}

describe('a key file is read only if it is a regular file of its own, owner-only', () => {
  it('refuses a symbolic link, even to a 0600 file (STORE_KEY_UNSAFE, PKI_KEY_UNSAFE)', async () => {
    const target = join(dir, 'elsewhere');
    await writeFile(target, `${KEY}\n`, { mode: 0o600 });
    await symlink(target, join(dir, 'store.key'));
    await expect(new KeyFileProvider(join(dir, 'store.key')).load()).rejects.toMatchObject({
      code: 'STORE_KEY_UNSAFE',
      message: expect.stringContaining('symbolic link'),
    });
    await writeFile(join(dir, 'real.key'), PEM, { mode: 0o600 });
    await symlink(join(dir, 'real.key'), join(dir, 'gateway.key'));
    await expect(readPrivateKeyFile(join(dir, 'gateway.key'))).rejects.toMatchObject({
      code: 'PKI_KEY_UNSAFE',
      message: expect.stringContaining('symbolic link'),
    });
  });

  it('refuses a key owned by another user, although this one (root) could read it', async (context) => {
    requireRoot(context);
    const storeKey = join(dir, 'store.key');
    await writeFile(storeKey, `${KEY}\n`, { mode: 0o600 });
    await chown(storeKey, NOBODY, NOBODY);
    await expect(new KeyFileProvider(storeKey).load()).rejects.toMatchObject({
      code: 'STORE_KEY_UNSAFE',
      message: expect.stringContaining(`uid ${NOBODY}`),
    });
    const tlsKey = join(dir, 'gateway.key');
    await writeFile(tlsKey, PEM, { mode: 0o600 });
    await chown(tlsKey, NOBODY, NOBODY);
    await expect(readPrivateKeyFile(tlsKey)).rejects.toMatchObject({ code: 'PKI_KEY_UNSAFE' });
    // The file is untouched: refusing never "repairs" a key.
    expect((await stat(storeKey)).uid).toBe(NOBODY);
    expect(await readFile(storeKey, 'utf8')).toBe(`${KEY}\n`);
  });

  it('refuses a FIFO planted under the name without blocking on it', async () => {
    const path = join(dir, 'store.key');
    execFileSync('mkfifo', ['-m', '600', path]);
    await expect(new KeyFileProvider(path).load()).rejects.toMatchObject({
      code: 'STORE_KEY_UNSAFE',
      message: expect.stringContaining('not a regular file'),
    });
  });

  it('still reads an owner-only key of its own user (0600 and 0400)', async () => {
    const path = join(dir, 'store.key');
    await writeFile(path, `${KEY}\n`, { mode: 0o400 });
    expect(Buffer.from(await new KeyFileProvider(path).load()).toString('hex')).toBe(KEY);
  });
});

describe('writing a key file', () => {
  it('a private key appears whole under its name, 0600, with no temporary file left', async () => {
    const path = join(dir, 'gateway.key');
    await writePrivateKeyFile(path, PEM);
    expect(await readFile(path, 'utf8')).toBe(PEM);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    await expect(writePrivateKeyFile(path, 'other')).rejects.toMatchObject({ code: 'PKI_EXISTS' });
    expect(await readdir(dir)).toEqual(['gateway.key']);
  });

  it('never writes through a symbolic link planted under the name of a new key', async () => {
    const victim = join(dir, 'victim');
    await writeFile(victim, 'precious');
    await symlink(victim, join(dir, 'gateway.key'));
    await expect(writePrivateKeyFile(join(dir, 'gateway.key'), PEM)).rejects.toMatchObject({
      code: 'PKI_EXISTS',
    });
    expect(await readFile(victim, 'utf8')).toBe('precious');
  });
});
