import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, link, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Reading and writing key files safely, for the store key (src/store/keys.ts) and the TLS private keys
 * (src/pki/files.ts). Callers map a `SecretFileError` to their own error codes.
 *
 * Reading opens the path once and checks and reads that one open file, so what was checked is what is read:
 * checking with stat(path) and then reading the path again lets the path change in between (CWE-367,
 * time-of-check to time-of-use). The open refuses a symbolic link as the last component (O_NOFOLLOW, open(2)),
 * so a link planted in the data folder cannot point the gateway at another file. fstat(2) on the open file then
 * checks that it is a regular file, that group and others have no access, and that the owner is the user the
 * gateway runs as (or root): a key owned by someone else can be replaced by them at any time.
 *
 * Writing never leaves a half-written key under the final name: the bytes go to a temporary file created with
 * O_EXCL and the final mode, are fsync'd, and only then get the final name, by link(2) (which fails if the name
 * exists, so an existing key is never replaced) or rename(2) (which replaces it atomically); then the folder is
 * fsync'd so that the name itself survives a power cut (fsync(2): "Calling fsync() does not necessarily ensure
 * that the entry in the directory containing the file has also reached disk").
 */

export type SecretFileProblem =
  /** The path does not exist. */
  | 'missing'
  /** The path is a symbolic link. */
  | 'symlink'
  /** The path is a folder, a device, a FIFO or a socket. */
  | 'not-regular'
  /** Group or others have some access (the mode is looser than 0600). */
  | 'permissions'
  /** The file belongs to another user than the one the gateway runs as (and not to root). */
  | 'owner'
  /** `exclusive` was asked and the path exists. */
  | 'exists'
  /** Any other file-system failure (see the cause). */
  | 'io';

export class SecretFileError extends Error {
  constructor(
    readonly problem: SecretFileProblem,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SecretFileError';
  }
}

/** Mode bits for group and others: any of them set means someone else may read or change the key. */
const GROUP_OTHER = 0o077;

export const octalMode = (mode: number): string => (mode & 0o777).toString(8).padStart(4, '0');

/**
 * Reads a secret file with the checks above. O_NONBLOCK so that a FIFO planted under the name cannot block the
 * open (it is then refused as not a regular file); it changes nothing for regular files. Node opens every file
 * with O_CLOEXEC (libuv's uv_fs_open), so the descriptor never leaks into a child process.
 */
export async function readSecretFile(path: string): Promise<Buffer> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SecretFileError('missing', `${path} does not exist`, { cause: error });
    // ELOOP is what open(2) with O_NOFOLLOW returns for a symbolic link as the last component.
    if (code === 'ELOOP') {
      throw new SecretFileError(
        'symlink',
        `${path} is a symbolic link; a key must be a regular file, not a link`,
        {
          cause: error,
        },
      );
    }
    throw new SecretFileError('io', `cannot open ${path} (${code ?? (error as Error).message})`, {
      cause: error,
    });
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) {
      throw new SecretFileError('not-regular', `${path} is not a regular file`);
    }
    if ((info.mode & GROUP_OTHER) !== 0) {
      throw new SecretFileError(
        'permissions',
        `${path} has mode ${octalMode(info.mode)}; it must be readable by its owner only (chmod 600 ${path})`,
      );
    }
    const euid = process.geteuid?.();
    if (euid !== undefined && info.uid !== euid && info.uid !== 0) {
      throw new SecretFileError(
        'owner',
        `${path} belongs to uid ${info.uid}, not to the user the gateway runs as (uid ${euid}) or root ` +
          `(chown ${euid} ${path}, after checking who put it there)`,
      );
    }
    return await handle.readFile();
  } catch (error) {
    if (error instanceof SecretFileError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new SecretFileError('io', `cannot read ${path} (${code ?? (error as Error).message})`, {
      cause: error,
    });
  } finally {
    await handle.close();
  }
}

export interface WriteOptions {
  /** The file's mode, set exactly whatever the umask: 0o600 for keys. */
  readonly mode: number;
  /**
   * 'exclusive': fail with problem 'exists' when the path exists (link(2) refuses an existing name);
   * 'replace': replace it atomically (rename(2)): a reader sees the old or the new content, never a mix.
   */
  readonly existing: 'exclusive' | 'replace';
}

/**
 * Writes `data` to `path` through a fsync'd temporary file in the same folder (link and rename work only
 * within one file system). The temporary name is random and created with O_EXCL, so two writers never share
 * one; a power cut can leave such a `.<name>.<random>.tmp` file behind, never an empty or partial `path`.
 */
export async function writeFileAtomically(
  path: string,
  data: string | Uint8Array,
  options: WriteOptions,
): Promise<void> {
  const folder = dirname(path);
  const temporary = join(folder, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let created = false;
  let linking = false;
  try {
    const handle = await open(
      temporary,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      options.mode,
    );
    created = true;
    try {
      await handle.chmod(options.mode); // the umask may have narrowed (or a caller widened) the mode
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    linking = true;
    if (options.existing === 'exclusive') await link(temporary, path);
    else await rename(temporary, path);
    linking = false;
    if (options.existing === 'exclusive') await unlink(temporary);
    created = false;
    await syncDirectory(folder);
  } catch (error) {
    if (created) await unlink(temporary).catch(() => undefined);
    const code = (error as NodeJS.ErrnoException).code;
    // Only link() means "the key exists"; EEXIST on the temporary name itself is an I/O oddity.
    if (linking && code === 'EEXIST') {
      throw new SecretFileError('exists', `${path} already exists`, { cause: error });
    }
    throw new SecretFileError('io', `cannot write ${path} (${code ?? (error as Error).message})`, {
      cause: error,
    });
  }
}

/** fsync a folder so that a name just created or renamed in it survives a power cut. */
export async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
