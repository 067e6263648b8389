import { open, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CREDSTORE_ROOTS, CredstoreKeyProvider } from './credstore-key.js';
import { EnvKeyProvider, KeyFileProvider, type KeyProvider, SystemdCredentialProvider } from './keys.js';

export { CREDSTORE_ROOTS };

/**
 * What the store's key provider protects against, said plainly by `start` and `store status`.
 *
 * The store's encryption only helps against someone holding the SD card if the key is not on that card.
 * A key file beside the store does not achieve that, and neither does a systemd credential sealed with the
 * host key alone: that key is /var/lib/systemd/credential.secret, on the same card (systemd-creds(1),
 * "--with-key="). A credential sealed to a TPM2 does: the TPM does not leave the machine. A Raspberry Pi has no
 * TPM2, so there no configuration keeps the key apart from the data.
 */
export interface KeyProtection {
  /** 'key-file', 'systemd-credential' or 'environment'. */
  readonly provider: 'key-file' | 'systemd-credential' | 'environment';
  /** Where the key's secrecy comes from. */
  readonly storage:
    | 'same-file-system'
    | 'other-file-system'
    | 'plain-credential'
    | 'host-key'
    | 'tpm2'
    | 'host-key-and-tpm2'
    | 'null-key'
    | 'environment'
    | 'unknown';
  /** Whether a thief with the SD card (and a copy of it) cannot read the readings: null when it cannot be told. */
  readonly stopsCardThief: boolean | null;
  /** One line for people. */
  readonly summary: string;
}

/**
 * The first 16 bytes of a `systemd-creds encrypt` output name the key it was sealed with (an sd_id128 of
 * systemd's src/shared/creds-util.h, CRED_AES256_GCM_BY_*). Stable: systemd must decrypt old credentials.
 */
const SEALS: Readonly<Record<string, KeyProtection['storage']>> = {
  '5a1c6a86df9d4096b1d5a65e0862f19a': 'host-key',
  '55b9ed1d38594d43a8319d2ebb332ac6': 'host-key', // scoped to a user
  '0c7cc07b117645919c4b0bea08bc20fe': 'tpm2',
  faf7eb9341e3412ca1a436f95a29362f: 'tpm2', // TPM2 with a signed PCR policy
  '93a894094874449090caf2fc93cab553': 'host-key-and-tpm2',
  ef4ac13679a9480ea7db68897f9f165d: 'host-key-and-tpm2',
  af4950a849134eb1a73846304ff30c05: 'host-key-and-tpm2',
  adbc4ca3efb64201ba881b6f2e4095ea: 'host-key-and-tpm2',
  '058469daf6f54324800549da0f8ea2fb': 'null-key',
};

export interface ProtectionOptions {
  /** The store's path, to compare file systems with the key file. */
  readonly storePath: string;
  /** Folders holding credstore.encrypted/ and credstore/ (tests point this at a temporary folder). */
  readonly credstoreRoots?: readonly string[];
}

export async function keyProtection(
  provider: KeyProvider,
  options: ProtectionOptions,
): Promise<KeyProtection> {
  if (provider instanceof KeyFileProvider) return keyFileProtection(provider, options.storePath);
  if (provider instanceof SystemdCredentialProvider || provider instanceof CredstoreKeyProvider) {
    return credentialProtection(provider.name, options.credstoreRoots ?? CREDSTORE_ROOTS);
  }
  if (provider instanceof EnvKeyProvider) {
    return {
      provider: 'environment',
      storage: 'environment',
      stopsCardThief: null,
      summary:
        'key from an environment variable: for tests only; whoever set it may have written it down anywhere',
    };
  }
  return { provider: 'key-file', storage: 'unknown', stopsCardThief: null, summary: provider.description };
}

async function keyFileProtection(provider: KeyFileProvider, storePath: string): Promise<KeyProtection> {
  // st_dev of the folders (the key file may not exist yet). Another file system may still be on the same card.
  const [keyDevice, storeDevice] = await Promise.all([
    deviceOf(dirname(provider.path)),
    deviceOf(dirname(storePath)),
  ]);
  if (keyDevice !== undefined && keyDevice === storeDevice) {
    return {
      provider: 'key-file',
      storage: 'same-file-system',
      stopsCardThief: false,
      summary:
        'key file on the same file system as the store: protects only against copying the database file alone, ' +
        'NOT against a stolen or copied SD card (the key is on it)',
    };
  }
  return {
    provider: 'key-file',
    storage: 'other-file-system',
    stopsCardThief: null,
    summary:
      'key file on another file system than the store: protects against a stolen SD card only if that file ' +
      'system is not on the card',
  };
}

/** st_dev of `path`, or of its nearest existing ancestor (where it would be created); undefined if unreadable. */
async function deviceOf(path: string): Promise<number | undefined> {
  for (let at = path; ; at = dirname(at)) {
    try {
      return (await stat(at)).dev;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(at) === at) return undefined;
    }
  }
}

/** Whether `path` exists (a plain credential file). */
async function present(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function credentialProtection(name: string, roots: readonly string[]): Promise<KeyProtection> {
  const names = [`rpm-gateway-${name}`, name];
  for (const root of roots) {
    for (const file of names) {
      const sealed = await sealOf(join(root, 'credstore.encrypted', file));
      if (sealed === 'absent') continue;
      if (sealed === 'unreadable' || sealed === 'unrecognised') {
        return unknownCredential(
          name,
          `${join(root, 'credstore.encrypted', file)} is ${sealed === 'unreadable' ? 'not readable by this user' : 'not a systemd-creds file this gateway knows'}`,
        );
      }
      return sealedCredential(name, sealed, join(root, 'credstore.encrypted', file));
    }
    for (const file of names) {
      const plain = join(root, 'credstore', file);
      if (await present(plain)) {
        return {
          provider: 'systemd-credential',
          storage: 'plain-credential',
          stopsCardThief: false,
          summary: `systemd credential ${name} from ${plain}, unencrypted on disk: NOT against a stolen SD card`,
        };
      }
    }
  }
  return unknownCredential(name, 'no sealed credential found in the credstore folders');
}

function sealedCredential(name: string, storage: KeyProtection['storage'], path: string): KeyProtection {
  const thief = storage === 'tpm2' || storage === 'host-key-and-tpm2';
  const how: Partial<Record<KeyProtection['storage'], string>> = {
    tpm2: "sealed to this machine's TPM2: a copied SD card cannot decrypt it elsewhere",
    'host-key-and-tpm2':
      "sealed to the host key and this machine's TPM2: a copied SD card cannot decrypt it elsewhere",
    'host-key':
      'sealed with the host key only (/var/lib/systemd/credential.secret, on the same card): NOT against a stolen SD card',
    'null-key': 'sealed with the empty key (no secrecy at all): NOT against a stolen SD card',
  };
  return {
    provider: 'systemd-credential',
    storage,
    stopsCardThief: thief,
    summary: `systemd credential ${name} (${path}) ${how[storage] ?? ''}`.trimEnd(),
  };
}

function unknownCredential(name: string, why: string): KeyProtection {
  return {
    provider: 'systemd-credential',
    storage: 'unknown',
    stopsCardThief: null,
    summary:
      `systemd credential ${name}: cannot tell whether it is sealed to a TPM2 (${why}); ` +
      'only a TPM2-sealed credential stops a card thief, the host key alone does not',
  };
}

/**
 * Reads the seal of an encrypted credential: `systemd-creds encrypt` writes Base64 by default, or binary
 * (LoadCredentialEncrypted= takes both). 24 Base64 characters carry the first 18 bytes.
 */
async function sealOf(
  path: string,
): Promise<KeyProtection['storage'] | 'absent' | 'unreadable' | 'unrecognised'> {
  let head: Buffer;
  try {
    const handle = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(64);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      head = buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'absent' : 'unreadable';
  }
  const text = head.toString('latin1').replace(/\s/g, '');
  const id = /^[A-Za-z0-9+/]{24}/.test(text)
    ? Buffer.from(text.slice(0, 24), 'base64').subarray(0, 16).toString('hex')
    : head.subarray(0, 16).toString('hex');
  return SEALS[id] ?? 'unrecognised';
}
