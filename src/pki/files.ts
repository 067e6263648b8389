import { constants } from 'node:fs';
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PkiError } from './errors.js';

/**
 * Writing and reading certificate material. Private keys are PEM PKCS#8, mode 0600, created with O_EXCL and
 * fsync'd (ETSI EN 303 645 provision 5.4; DESIGN.md "keys in files of mode 0600"); an existing key is never
 * replaced unless `force` is given, and then atomically (a reader sees the old or the new key, never half).
 * Certificates are public: mode 0644, always written to a temporary file and renamed into place so that the
 * uplink reloading at reconnect never reads a torn certificate.
 */
export const KEY_MODE = 0o600;
export const CERT_MODE = 0o644;

export async function writePrivateKeyFile(path: string, pem: string, options: { force?: boolean } = {}) {
  if (options.force) {
    await writeReplacing(path, pem, KEY_MODE);
    return;
  }
  await ensureDirectory(path);
  let created = false;
  try {
    // O_EXCL: never clobber a key, and two enrolments racing cannot both think they made it.
    const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, KEY_MODE);
    created = true;
    try {
      await handle.chmod(KEY_MODE);
      await handle.writeFile(pem);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await syncDirectory(dirname(path));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new PkiError(
        'PKI_EXISTS',
        `${path} already exists; refusing to overwrite a private key (use --force)`,
        {
          cause: error,
        },
      );
    }
    // A half-written key is worse than none: it would block the next attempt and fail obscurely later.
    if (created) await unlink(path).catch(() => undefined);
    throw ioError(`cannot write ${path}`, error);
  }
}

export async function writeCertificateFile(path: string, pem: string): Promise<void> {
  await writeReplacing(path, pem, CERT_MODE);
}

/** Write to `<path>.<random>.tmp` (O_EXCL, exact mode, fsync) and rename over `path`, then fsync the folder. */
async function writeReplacing(path: string, text: string, mode: number): Promise<void> {
  await ensureDirectory(path);
  const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    const handle = await open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
    try {
      // The umask may have narrowed `mode`; certificates must stay readable by the broker's user.
      await handle.chmod(mode);
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
    await syncDirectory(dirname(path));
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw ioError(`cannot write ${path}`, error);
  }
}

async function ensureDirectory(path: string): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  } catch (error) {
    throw ioError(`cannot create the folder of ${path}`, error);
  }
}

/** fsync a folder so that a file just created or renamed in it survives a power cut. */
async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Reads a private key file after checking its mode, with the rule of src/store/keys.ts: refused when group or
 * others have any access (mode & 0o077), so a key that leaked to other users is not silently used.
 */
export async function readPrivateKeyFile(path: string): Promise<string> {
  let mode: number;
  try {
    mode = (await stat(path)).mode;
  } catch (error) {
    throw ioError(`cannot read the private key ${path}`, error);
  }
  if ((mode & 0o077) !== 0) {
    const octal = (mode & 0o777).toString(8).padStart(4, '0');
    throw new PkiError(
      'PKI_KEY_PERMISSIONS',
      `private key ${path} has mode ${octal}; it must be readable by its owner only (chmod 600 ${path})`,
    );
  }
  return readTextFile(path, 'private key');
}

export async function readTextFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw ioError(`cannot read the ${what} ${path}`, error);
  }
}

/** True when `path` exists (any type); false only for ENOENT. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw ioError(`cannot inspect ${path}`, error);
  }
}

function ioError(message: string, error: unknown): PkiError {
  if (error instanceof PkiError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  return new PkiError('PKI_IO', code ? `${message} (${code})` : `${message}: ${(error as Error).message}`, {
    cause: error,
  });
}
