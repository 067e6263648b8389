import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { readSecretFile, SecretFileError, writeFileAtomically } from '../util/secret-file.js';
import { PkiError } from './errors.js';

/**
 * Writing and reading certificate material, through src/util/secret-file.ts. Private keys are PEM PKCS#8,
 * mode 0600 (ETSI EN 303 645 provision 5.4: store secrets securely), written to a fsync'd temporary file and
 * linked into place, so a power cut never leaves an empty or partial key under the real name; an existing key
 * is never replaced unless `force` is given, and then atomically by rename (a reader sees the old or the new
 * key, never half). Certificates are public: mode 0644, written the same way, so that the uplink reloading at
 * reconnect never reads a torn certificate.
 */
export const KEY_MODE = 0o600;
export const CERT_MODE = 0o644;

export async function writePrivateKeyFile(path: string, pem: string, options: { force?: boolean } = {}) {
  await ensureDirectory(path);
  try {
    await writeFileAtomically(path, pem, {
      mode: KEY_MODE,
      existing: options.force ? 'replace' : 'exclusive',
    });
  } catch (error) {
    if (error instanceof SecretFileError && error.problem === 'exists') {
      throw new PkiError(
        'PKI_EXISTS',
        `${path} already exists; refusing to overwrite a private key (use --force)`,
        {
          cause: error,
        },
      );
    }
    throw ioError(`cannot write ${path}`, error);
  }
}

export async function writeCertificateFile(path: string, pem: string): Promise<void> {
  await ensureDirectory(path);
  try {
    // The mode is set exactly: certificates must stay readable by the broker's user whatever the umask.
    await writeFileAtomically(path, pem, { mode: CERT_MODE, existing: 'replace' });
  } catch (error) {
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

/**
 * Reads a private key file with the rule of src/store/keys.ts: opened once without following a symbolic link,
 * refused when group or others have any access (mode & 0o077: a key that leaked to other users is not silently
 * used) or when another user owns it, and read through the same open file that was checked.
 */
export async function readPrivateKeyFile(path: string): Promise<string> {
  try {
    return (await readSecretFile(path)).toString('utf8');
  } catch (error) {
    if (error instanceof SecretFileError) {
      switch (error.problem) {
        case 'permissions':
          throw new PkiError('PKI_KEY_PERMISSIONS', `private key ${error.message}`, { cause: error });
        case 'symlink':
        case 'not-regular':
        case 'owner':
          throw new PkiError('PKI_KEY_UNSAFE', `private key ${error.message}`, { cause: error });
        default:
          break;
      }
    }
    throw ioError(`cannot read the private key ${path}`, error);
  }
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
  // A SecretFileError's message repeats the path; its cause holds the file system's code.
  const code = ((error instanceof SecretFileError ? error.cause : error) as NodeJS.ErrnoException | undefined)
    ?.code;
  return new PkiError('PKI_IO', code ? `${message} (${code})` : `${message}: ${(error as Error).message}`, {
    cause: error,
  });
}
