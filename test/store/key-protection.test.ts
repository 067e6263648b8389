import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { keyProtection } from '../../src/store/key-protection.js';
import { EnvKeyProvider, KeyFileProvider, SystemdCredentialProvider } from '../../src/store/keys.js';
import { runCli } from '../support/cli.js';

/**
 * `host-key.cred` is real `systemd-creds encrypt --with-key=host --name=store-key` output (systemd 252, a
 * throw-away host secret, a dummy key). A TPM2-sealed one needs a TPM, so that case is built from the header
 * systemd writes: its first 16 bytes are CRED_AES256_GCM_BY_TPM2_HMAC (systemd src/shared/creds-util.h).
 */
const HOST_KEY_CRED = join(import.meta.dirname, '../fixtures/systemd-creds/host-key.cred');
const TPM2_ID = '0c7cc07b117645919c4b0bea08bc20fe';
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-key-protection-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function sealed(name: string, content: Buffer | string): Promise<void> {
  await mkdir(join(dir, 'etc', 'credstore.encrypted'), { recursive: true });
  await writeFile(join(dir, 'etc', 'credstore.encrypted', name), content);
}

const credential = (roots = [join(dir, 'etc')]) =>
  keyProtection(new SystemdCredentialProvider('store-key', {}), {
    storePath: join(dir, 'outbox.db'),
    credstoreRoots: roots,
  });

describe('what the key provider protects against', () => {
  it('a key file beside the store does not stop a card thief', async () => {
    const protection = await keyProtection(new KeyFileProvider(join(dir, 'store.key')), {
      storePath: join(dir, 'outbox.db'),
    });
    expect(protection).toMatchObject({
      provider: 'key-file',
      storage: 'same-file-system',
      stopsCardThief: false,
    });
    expect(protection.summary).toContain('NOT against a stolen or copied SD card');
    // also before the first start, when neither the folder nor the key exists yet
    const fresh = join(dir, 'not-yet', 'state');
    expect(
      await keyProtection(new KeyFileProvider(join(fresh, 'store.key')), {
        storePath: join(fresh, 'outbox.db'),
      }),
    ).toMatchObject({ storage: 'same-file-system', stopsCardThief: false });
  });

  it('a credential sealed with the host key only does not either (real systemd-creds output)', async () => {
    await sealed('rpm-gateway-store-key', await readFile(HOST_KEY_CRED));
    expect(await credential()).toMatchObject({
      provider: 'systemd-credential',
      storage: 'host-key',
      stopsCardThief: false,
      summary: expect.stringContaining('NOT against a stolen SD card'),
    });
  });

  it('a TPM2-sealed credential does, in Base64 or binary form', async () => {
    const header = Buffer.concat([Buffer.from(TPM2_ID, 'hex'), Buffer.alloc(48, 7)]);
    await sealed('store-key', `${header.toString('base64')}\n`);
    expect(await credential()).toMatchObject({ storage: 'tpm2', stopsCardThief: true });
    await sealed('store-key', header);
    expect(await credential()).toMatchObject({ storage: 'tpm2', stopsCardThief: true });
  });

  it('says so when it cannot tell, and never claims protection it cannot see', async () => {
    expect(await credential()).toMatchObject({ storage: 'unknown', stopsCardThief: null });
    await sealed('store-key', 'not a credential at all, just text that is long enough');
    expect(await credential()).toMatchObject({ storage: 'unknown', stopsCardThief: null });
    await mkdir(join(dir, 'etc', 'credstore'), { recursive: true });
    await rm(join(dir, 'etc', 'credstore.encrypted'), { recursive: true });
    await writeFile(join(dir, 'etc', 'credstore', 'store-key'), 'ab'.repeat(32));
    expect(await credential()).toMatchObject({ storage: 'plain-credential', stopsCardThief: false });
    expect(
      await keyProtection(new EnvKeyProvider('K', {}), { storePath: join(dir, 'outbox.db') }),
    ).toMatchObject({ provider: 'environment', stopsCardThief: null });
  });
});

describe('start and store status say which case the hub is in', () => {
  const env = () => ({ RPM_GATEWAY_DATA_DIR: dir });

  it('store status, as text and as JSON', async () => {
    const text = await runCli(['store', 'status'], { env: env() });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      /^key {10}key file on the same file system as the store: .*NOT against a stolen/m,
    );
    const json = await runCli(['store', 'status', '--json'], { env: env() });
    expect(JSON.parse(json.stdout).keyProtection).toMatchObject({
      provider: 'key-file',
      storage: 'same-file-system',
      stopsCardThief: false,
    });
  });
});
