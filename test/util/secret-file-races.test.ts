import type { FileHandle } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/**
 * The two races of a key file, made deterministic by interposing on node:fs/promises (the only way to stop a
 * real process exactly between two system calls):
 *   - the path is swapped right after the first look at it (stat or open): what is read must be what was checked;
 *   - the process stops (power cut) right when the key's bytes are about to be written: the key's real name must
 *     not exist yet, and the next start must work.
 */
const hooks = vi.hoisted(() => ({
  /** Runs once, after the first open() or stat() of `path` returned. */
  afterFirstLook: undefined as { path: string; run: () => Promise<void> } | undefined,
  /** When set, the next FileHandle.writeFile never settles (the process "lost power" there). */
  freezeWrite: undefined as { reached: () => void; handles: FileHandle[] } | undefined,
}));

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  const afterLook = async (path: unknown) => {
    const hook = hooks.afterFirstLook;
    if (hook && path === hook.path) {
      hooks.afterFirstLook = undefined;
      await hook.run();
    }
  };
  const stat = (async (path: string, ...rest: unknown[]) => {
    const result = await (actual.stat as (...a: unknown[]) => Promise<unknown>)(path, ...rest);
    await afterLook(path);
    return result;
  }) as typeof actual.stat;
  const open = (async (path: string, ...rest: unknown[]) => {
    const handle = await (actual.open as (...a: unknown[]) => Promise<FileHandle>)(path, ...rest);
    await afterLook(path);
    const freeze = hooks.freezeWrite;
    if (!freeze) return handle;
    return new Proxy(handle, {
      get(target, property) {
        if (property === 'writeFile' && hooks.freezeWrite === freeze) {
          return () => {
            hooks.freezeWrite = undefined;
            freeze.handles.push(target);
            freeze.reached();
            return new Promise(() => undefined);
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }) as typeof actual.open;
  return { ...actual, default: { ...actual, stat, open }, stat, open };
});

const { chmod, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } = await import('node:fs/promises');
const { tmpdir } = await import('node:os');
const { join } = await import('node:path');
const { KeyFileProvider } = await import('../../src/store/keys.js');
const { readPrivateKeyFile } = await import('../../src/pki/files.js');

const KEY = '3c'.repeat(32);
const ATTACKER_KEY = 'aa'.repeat(32);
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-secret-race-'));
});
afterEach(async () => {
  hooks.afterFirstLook = undefined;
  hooks.freezeWrite = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** A key of mode 0600, and an attacker's world-writable file ready to be renamed over it. */
async function keyAndSwap(name: string, content: string, attackerContent: string) {
  const path = join(dir, name);
  await writeFile(path, content, { mode: 0o600 });
  const attacker = join(dir, 'planted');
  await writeFile(attacker, attackerContent);
  await chmod(attacker, 0o666);
  hooks.afterFirstLook = { path, run: () => rename(attacker, path) };
  return path;
}

describe('reading a key file: what is checked is what is read', () => {
  it('the store key: a path swapped after the check still yields the checked file (or nothing)', async () => {
    const path = await keyAndSwap('store.key', `${KEY}\n`, `${ATTACKER_KEY}\n`);
    const key = await new KeyFileProvider(path, { create: false }).load();
    expect(hooks.afterFirstLook).toBeUndefined(); // the swap did happen, after the first look
    expect((await stat(path)).mode & 0o777).toBe(0o666);
    expect(Buffer.from(key).toString('hex')).toBe(KEY);
  });

  it('a TLS private key: the same', async () => {
    const pem = '-----BEGIN PRIVATE KEY-----\nreal\n-----END PRIVATE KEY-----\n';
    const path = await keyAndSwap('gateway.key', pem, 'attacker');
    const text = await readPrivateKeyFile(path);
    expect(hooks.afterFirstLook).toBeUndefined();
    expect(text).toBe(pem);
  });
});

describe('creating a key file: a power cut never leaves an empty key under its name', () => {
  it('stopped just before the bytes are written: no store.key yet, and the next start makes a good one', async () => {
    const path = join(dir, 'store.key');
    const handles: FileHandle[] = [];
    const reached = new Promise<void>((resolve) => {
      hooks.freezeWrite = { reached: resolve, handles };
    });
    void new KeyFileProvider(path).load(); // never settles: this "process" lost power inside the write
    await reached;
    try {
      await expect(stat(path)).rejects.toMatchObject({ code: 'ENOENT' });
      // The next start (a new process: nothing frozen any more) creates and reuses a whole key.
      const key = await new KeyFileProvider(path).load();
      expect(key).toHaveLength(32);
      expect((await readFile(path, 'utf8')).trim()).toBe(Buffer.from(key).toString('hex'));
      const again = await new KeyFileProvider(path).load();
      expect(Buffer.from(again).equals(Buffer.from(key))).toBe(true);
      // What the power cut left is a temporary file under another name, never mistaken for the key.
      expect((await readdir(dir)).filter((f) => f !== 'store.key')).toEqual([
        expect.stringMatching(/^\.store\.key\.[0-9a-f]+\.tmp$/),
      ]);
    } finally {
      for (const handle of handles) await handle.close();
    }
  });
});
