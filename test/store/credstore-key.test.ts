import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { StoreControl } from '../../src/control/store-control.js';
import { CredstoreKeyProvider, credentialKeyProvider } from '../../src/store/credstore-key.js';
import { keyProtection } from '../../src/store/key-protection.js';
import { EnvKeyProvider, SystemdCredentialProvider } from '../../src/store/keys.js';
import { Outbox } from '../../src/store/outbox.js';

/**
 * The store key as a systemd encrypted credential, read by a command outside the service through
 * `systemd-creds decrypt`. A real systemd-creds needs systemd's host key or a TPM and runs as root against the
 * machine's own credstore; here a stand-in `systemd-creds` on $PATH does what the real one does with its
 * arguments (checks the verb, the --name and the "-" for standard output, writes the plaintext there), over
 * a file "sealed" as base64, so what is tested is the provider's side: which file, which arguments, what it
 * makes of the output and of a failure.
 */
const KEY = 'a5'.repeat(32);

let dir: string;
let bin: string;
let env: NodeJS.ProcessEnv;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-credstore-'));
  bin = join(dir, 'bin');
  await mkdir(bin);
  await mkdir(join(dir, 'etc', 'credstore.encrypted'), { recursive: true });
  await writeFile(
    join(bin, 'systemd-creds'),
    [
      '#!/bin/sh',
      '# decrypt --name=<name> <file> -',
      '[ "$1" = decrypt ] || { echo "unknown verb $1" >&2; exit 2; }',
      '[ "$2" = "--name=store-key" ] || { echo "Embedded credential name does not match: $2" >&2; exit 1; }',
      '[ "$4" = - ] || { echo "expected - for stdout" >&2; exit 2; }',
      '[ -n "$FAIL" ] && { echo "Failed to decrypt: Permission denied" >&2; exit 1; }',
      'base64 -d "$3"',
    ].join('\n'),
  );
  await chmod(join(bin, 'systemd-creds'), 0o755);
  env = { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` };
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const seal = (name: string, text: string) =>
  writeFile(join(dir, 'etc', 'credstore.encrypted', name), Buffer.from(text).toString('base64'));

describe('CredstoreKeyProvider', () => {
  it('unseals /etc/credstore.encrypted/rpm-gateway-<name> with systemd-creds and opens the store with it', async () => {
    await seal('rpm-gateway-store-key', `${KEY}\n`);
    const provider = new CredstoreKeyProvider('store-key', { roots: [join(dir, 'etc')], env });
    expect(Buffer.from(await provider.load()).toString('hex')).toBe(KEY);

    // A store made by the service with that key opens for the operator's command with the unsealed key.
    const path = join(dir, 'outbox.db');
    const service = new Outbox({ path, keys: new EnvKeyProvider('K', { K: KEY }) });
    await service.open();
    service.close();
    const control = await StoreControl.open({
      store: path,
      keys: provider,
      audit: new AuditLog(join(dir, 'audit.log')),
      backend: 'sim',
    });
    try {
      expect((await control.storeStatus()).key).toBe('systemd encrypted credential store-key');
      expect(await control.devices({ addresses: false, actor: 'cli' })).toEqual([]);
    } finally {
      control.close();
    }
  });

  it('also finds the credential under its own name, and says where it looked when there is none', async () => {
    const roots = [join(dir, 'etc'), join(dir, 'run')];
    await expect(new CredstoreKeyProvider('store-key', { roots, env }).load()).rejects.toMatchObject({
      code: 'STORE_KEY_MISSING',
      message: expect.stringContaining(
        `${join(dir, 'etc', 'credstore.encrypted')}/, ${join(dir, 'run', 'credstore.encrypted')}/`,
      ),
    });
    await seal('store-key', KEY);
    expect(
      Buffer.from(await new CredstoreKeyProvider('store-key', { roots, env }).load()).toString('hex'),
    ).toBe(KEY);
  });

  it("reports systemd-creds' own refusal, a missing systemd-creds, and output that is not a key", async () => {
    await seal('rpm-gateway-store-key', KEY);
    const roots = [join(dir, 'etc')];
    await expect(
      new CredstoreKeyProvider('store-key', { roots, env: { ...env, FAIL: '1' } }).load(),
    ).rejects.toMatchObject({
      code: 'STORE_KEY_MISSING',
      message: expect.stringMatching(
        /decrypt .* failed: Failed to decrypt: Permission denied \(it needs root: sudo\)/,
      ),
    });
    await expect(
      new CredstoreKeyProvider('store-key', {
        roots,
        env,
        command: join(dir, 'no-such-systemd-creds'),
      }).load(),
    ).rejects.toMatchObject({
      code: 'STORE_KEY_MISSING',
      message: expect.stringMatching(/is not installed/),
    });
    await seal('rpm-gateway-store-key', 'not a key');
    await expect(new CredstoreKeyProvider('store-key', { roots, env }).load()).rejects.toMatchObject({
      code: 'STORE_KEY_MALFORMED',
    });
  });

  it('is what --credential means outside the service; inside, systemd has decrypted it already', async () => {
    expect(credentialKeyProvider('store-key', {})).toBeInstanceOf(CredstoreKeyProvider);
    expect(credentialKeyProvider('store-key', { CREDENTIALS_DIRECTORY: dir })).toBeInstanceOf(
      SystemdCredentialProvider,
    );
    // store status says how the key is kept, as it does for the service's provider.
    await seal('rpm-gateway-store-key', KEY);
    const protection = await keyProtection(new CredstoreKeyProvider('store-key', { env }), {
      storePath: join(dir, 'outbox.db'),
      credstoreRoots: [join(dir, 'etc')],
    });
    expect(protection.provider).toBe('systemd-credential');
  });
});
