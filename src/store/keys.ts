import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { StoreError } from './errors.js';

/**
 * Where the store's 256-bit key comes from. The key is random (no passphrase), so no KDF is needed and the
 * store opens in milliseconds (measured: raw key ~1.5 ms vs PBKDF2 ~50 ms). Every error names the
 * provider, so "which key?" is never a question.
 */
export interface KeyProvider {
  /** Names the provider and its location, never the key: "key file /var/lib/rpm-gateway/store.key". */
  readonly description: string;
  load(): Promise<Uint8Array>;
}

const KEY_TEXT = /^[0-9a-fA-F]{64}$/;

function parseKey(text: string, description: string): Uint8Array {
  const trimmed = text.trim();
  if (!KEY_TEXT.test(trimmed)) {
    throw new StoreError('STORE_KEY_MALFORMED', `${description}: expected 64 hex digits (a 256-bit key)`);
  }
  return Uint8Array.from(Buffer.from(trimmed, 'hex'));
}

/**
 * A key file of mode 0600 (ETSI EN 303 645 provision 5.4: store secrets securely). Created on first start with
 * 256 random bits when `create` is on; refused when group or others can read or write it.
 */
export class KeyFileProvider implements KeyProvider {
  readonly description: string;

  constructor(
    readonly path: string,
    private readonly options: { create?: boolean } = {},
  ) {
    this.description = `key file ${path}`;
  }

  async load(): Promise<Uint8Array> {
    let mode: number;
    try {
      mode = (await stat(this.path)).mode;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw this.ioError(error);
      if (this.options.create === false) {
        throw new StoreError('STORE_KEY_MISSING', `${this.description} does not exist`, { cause: error });
      }
      return this.create();
    }
    if ((mode & 0o077) !== 0) {
      const octal = (mode & 0o777).toString(8).padStart(4, '0');
      throw new StoreError(
        'STORE_KEY_PERMISSIONS',
        `${this.description} has mode ${octal}; it must be readable by its owner only (chmod 600 ${this.path})`,
      );
    }
    try {
      return parseKey(await readFile(this.path, 'utf8'), this.description);
    } catch (error) {
      throw error instanceof StoreError ? error : this.ioError(error);
    }
  }

  private async create(): Promise<Uint8Array> {
    const key = randomBytes(32);
    try {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      // O_EXCL: two processes starting at once cannot both create (and one lose) a key.
      const handle = await open(this.path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        await handle.writeFile(`${key.toString('hex')}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await syncDirectory(dirname(this.path));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return this.load();
      throw this.ioError(error);
    }
    return Uint8Array.from(key);
  }

  private ioError(error: unknown): StoreError {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') {
      return new StoreError('STORE_READ_ONLY', `${this.description}: permission denied (${code})`, {
        cause: error,
      });
    }
    return new StoreError('STORE_KEY_MISSING', `${this.description}: ${(error as Error).message}`, {
      cause: error,
    });
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
    private readonly name: string,
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

/** fsync a directory so that a file just created in it survives a power cut. */
export async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
