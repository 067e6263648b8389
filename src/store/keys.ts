import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readSecretFile, SecretFileError, writeFileAtomically } from '../util/secret-file.js';
import { StoreError } from './errors.js';

/**
 * Where the store's 256-bit key comes from. The key is random (no passphrase), so no KDF is needed and the
 * store opens in milliseconds (measured: raw key ~1.5 ms vs PBKDF2 ~50 ms). Every error names the
 * provider, so "which key?" is never a question.
 */
export interface KeyProvider {
  /** Names the provider and its location, never the key: "key file /var/lib/rpm-gateway/store.key". */
  readonly description: string;
  load(options?: KeyLoadOptions): Promise<Uint8Array>;
}

export interface KeyLoadOptions {
  /**
   * Whether a missing key may be made now. The store passes false once a store exists: a new key could never
   * read it, so a missing key there is STORE_KEY_MISSING, not a fresh key and then a misleading STORE_KEY_WRONG.
   */
  readonly create?: boolean;
}

const KEY_TEXT = /^[0-9a-fA-F]{64}$/;

/** 64 hex digits (surrounding white space allowed) as the 32-byte key; STORE_KEY_MALFORMED otherwise. */
export function parseKey(text: string, description: string): Uint8Array {
  const trimmed = text.trim();
  if (!KEY_TEXT.test(trimmed)) {
    throw new StoreError('STORE_KEY_MALFORMED', `${description}: expected 64 hex digits (a 256-bit key)`);
  }
  return Uint8Array.from(Buffer.from(trimmed, 'hex'));
}

/**
 * A key file of mode 0600 (ETSI EN 303 645 provision 5.4: store secrets securely), read and written by
 * src/util/secret-file.ts: opened once without following a symbolic link, checked (regular file, owner-only
 * mode, owned by the gateway's user or root) and read through that one open file. Created with 256 random
 * bits when missing, if both the constructor's and the caller's `create` allow it; the new key appears whole
 * or not at all (temporary file, fsync, link).
 */
export class KeyFileProvider implements KeyProvider {
  readonly description: string;

  constructor(
    readonly path: string,
    private readonly options: { create?: boolean } = {},
  ) {
    this.description = `key file ${path}`;
  }

  async load(options: KeyLoadOptions = {}): Promise<Uint8Array> {
    let text: string;
    try {
      text = (await readSecretFile(this.path)).toString('utf8');
    } catch (error) {
      if (!(error instanceof SecretFileError) || error.problem !== 'missing') throw this.fileError(error);
      if (this.options.create === false || options.create === false) {
        throw new StoreError('STORE_KEY_MISSING', `${this.description} does not exist`, { cause: error });
      }
      return this.create();
    }
    return parseKey(text, this.description);
  }

  private async create(): Promise<Uint8Array> {
    const key = randomBytes(32);
    try {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      // link() into place: two processes starting at once cannot both create (and one lose) a key.
      await writeFileAtomically(this.path, `${key.toString('hex')}\n`, {
        mode: 0o600,
        existing: 'exclusive',
      });
    } catch (error) {
      key.fill(0);
      if (error instanceof SecretFileError && error.problem === 'exists') return this.load({ create: false });
      throw this.fileError(error);
    }
    const copy = Uint8Array.from(key);
    key.fill(0);
    return copy;
  }

  private fileError(error: unknown): StoreError {
    if (error instanceof StoreError) return error;
    const cause = error instanceof SecretFileError ? error.cause : error;
    const message = `${this.description}: ${(error as Error).message}`;
    if (error instanceof SecretFileError) {
      switch (error.problem) {
        case 'permissions':
          return new StoreError('STORE_KEY_PERMISSIONS', message, { cause: error });
        case 'symlink':
        case 'not-regular':
        case 'owner':
          return new StoreError('STORE_KEY_UNSAFE', message, { cause: error });
        case 'missing':
          return new StoreError('STORE_KEY_MISSING', message, { cause: error });
        default:
          break;
      }
    }
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') {
      return new StoreError('STORE_READ_ONLY', `${this.description}: permission denied (${code})`, {
        cause: error,
      });
    }
    return new StoreError('STORE_IO', message, { cause: error });
  }
}

/**
 * A systemd credential (LoadCredential= / LoadCredentialEncrypted=): systemd places it, readable by the service
 * only, under $CREDENTIALS_DIRECTORY. The preferred provider on a Pi: the key can be sealed to the TPM or the
 * host key and never sits in plain form on the SD card.
 */
export class SystemdCredentialProvider implements KeyProvider {
  readonly description: string;

  constructor(
    readonly name: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.description = `systemd credential ${name}`;
  }

  async load(): Promise<Uint8Array> {
    const directory = this.env.CREDENTIALS_DIRECTORY;
    if (!directory) {
      throw new StoreError(
        'STORE_KEY_MISSING',
        `${this.description}: $CREDENTIALS_DIRECTORY is not set (is the service started with LoadCredential=?)`,
      );
    }
    try {
      return parseKey(await readFile(join(directory, this.name), 'utf8'), this.description);
    } catch (error) {
      if (error instanceof StoreError) throw error;
      throw new StoreError('STORE_KEY_MISSING', `${this.description}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
}

/** A key in an environment variable: for tests and throw-away demos only (the environment leaks easily). */
export class EnvKeyProvider implements KeyProvider {
  readonly description: string;

  constructor(
    private readonly variable: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.description = `environment variable ${variable}`;
  }

  async load(): Promise<Uint8Array> {
    const value = this.env[this.variable];
    if (value === undefined || value === '')
      throw new StoreError('STORE_KEY_MISSING', `${this.description} is not set`);
    return parseKey(value, this.description);
  }
}
