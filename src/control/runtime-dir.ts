import { chmod, lstat, mkdir } from 'node:fs/promises';
import { ControlError } from './errors.js';

/**
 * The runtime directory is what protects the control socket. Node cannot read a unix-socket peer's
 * credentials (no SO_PEERCRED, unix(7), in its net module), so the hub cannot ask who connected; instead only
 * the service user (the directory's owner) and root can reach the socket at all: connect(2) needs search
 * permission on every directory of the path (path_resolution(7)), which a 0700 directory gives its owner only,
 * and root's CAP_DAC_OVERRIDE (capabilities(7)) passes it, as `sudo rpm-gateway pair` relies on.
 *
 * So the hub uses a directory only when it is one (not a symbolic link), owned by the hub's own user, with no
 * permission for group or others; it makes one (0700) when there is none, and refuses anything else rather
 * than loosen or take over a folder someone else made (CONTROL_DIR_UNSAFE). systemd's RuntimeDirectory= with
 * RuntimeDirectoryMode=0700 makes exactly such a directory for the service.
 */
export async function prepareRuntimeDir(dir: string): Promise<void> {
  let created = false;
  try {
    await lstat(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(dir, error);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      created = true;
    } catch (error) {
      throw ioError(dir, error);
    }
  }
  // The mode given to mkdir(2) is masked by the umask; 0700 is set outright on a directory made here.
  if (created) await chmod(dir, 0o700).catch((error: unknown) => Promise.reject(ioError(dir, error)));
  const stats = await lstat(dir).catch((error: unknown) => Promise.reject(ioError(dir, error)));
  const uid = process.getuid?.();
  if (stats.isSymbolicLink()) throw unsafe(dir, 'it is a symbolic link');
  if (!stats.isDirectory()) throw unsafe(dir, 'it is not a directory');
  if (uid !== undefined && stats.uid !== uid) {
    throw unsafe(dir, `it is owned by uid ${stats.uid}, not by this hub's user (uid ${uid})`);
  }
  if ((stats.mode & 0o077) !== 0) {
    throw unsafe(
      dir,
      `its mode is ${(stats.mode & 0o777).toString(8).padStart(4, '0')}; it must be 0700 (chmod 0700 ${dir})`,
    );
  }
}

function unsafe(dir: string, why: string): ControlError {
  return new ControlError(
    'CONTROL_DIR_UNSAFE',
    `the runtime directory ${dir} cannot hold the control socket: ${why}; only a directory of mode 0700 owned by the service user keeps other users out (docs/control-socket.md)`,
  );
}

function ioError(dir: string, error: unknown): ControlError {
  const code = (error as NodeJS.ErrnoException).code ?? 'error';
  return new ControlError('CONTROL_IO', `the runtime directory ${dir} cannot be made or read (${code})`, {
    cause: error,
  });
}
