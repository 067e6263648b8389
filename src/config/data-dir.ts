import { mkdirSync, statSync } from 'node:fs';
import { ConfigError } from './errors.js';

const HOW_TO_CHOOSE = 'choose another with --data-dir or $RPM_GATEWAY_DATA_DIR';

/**
 * Checks that the data directory is usable as one: a directory, or not there yet. A file in its place (or in
 * the path to it) is CONFIG_NOT_A_DIRECTORY naming the path, rather than whatever error the first file
 * opened inside it happens to raise (EEXIST from mkdir, ENOTDIR from open), or, worse, an empty listing
 * from a command that only looks for a store in it.
 */
export function checkDataDir(dir: string): void {
  try {
    if (!statSync(dir).isDirectory()) throw notADirectory(dir, 'it is a file');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return; // made on first use
    throw translate(dir, error);
  }
}

/** Makes the data directory (owner only, 0700) if it is not there yet; typed errors as checkDataDir. */
export function ensureDataDir(dir: string): void {
  checkDataDir(dir);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw translate(dir, error);
  }
}

function translate(dir: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  // ENOTDIR (POSIX open(2), stat(2), mkdir(2)): a component of the path is not a directory. EEXIST from a
  // recursive mkdir: something that is not a directory sits where one is needed.
  if (code === 'ENOTDIR' || code === 'EEXIST') return notADirectory(dir, 'a part of its path is a file');
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new ConfigError(
      'CONFIG_NO_ACCESS',
      `the data directory ${dir} cannot be created or entered (${code}); fix its ownership or ${HOW_TO_CHOOSE}`,
      { cause: error },
    );
  }
  return error;
}

function notADirectory(dir: string, why: string): ConfigError {
  return new ConfigError(
    'CONFIG_NOT_A_DIRECTORY',
    `the data directory ${dir} is not a directory (${why}); ${HOW_TO_CHOOSE}`,
  );
}
