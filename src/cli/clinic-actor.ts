import { userInfo } from 'node:os';
import { UsageError } from '../errors.js';

/** `--by <name>`: who makes an administrative change, for the audit log; default the OS user running it. */
export const BY_OPTION = { by: { type: 'string' } } as const;
export const BY_OPTION_HELP =
  '  --by <name>            who makes the change, for the audit log (default: the OS user running it)';

/** A name for the audit log: printable, one line, bounded; the OS user when none is given. */
export function actorOf(by: string | undefined): string {
  if (by === undefined) return safeUser() ?? `uid ${process.getuid?.() ?? 'unknown'}`;
  if (!/^[\p{L}\p{N}._@+-][\p{L}\p{N} ._@+-]{0,127}$/u.test(by)) {
    throw new UsageError('--by: expected a name of 1 to 128 letters, digits, spaces or . _ @ + -');
  }
  return by;
}

function safeUser(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    // A uid without a passwd entry (a container): userInfo throws (Node documentation, os.userInfo).
    return undefined;
  }
}
