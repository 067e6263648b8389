/**
 * The two fields of a caught error the runtime's log lines carry: its message (for errors of the hub's own
 * making) and its stable code (src/errors.ts and the modules' own error classes; docs/errors.md). A catch clause
 * gets `unknown` (a library may throw anything), so both read it defensively.
 */

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' ? code : undefined;
}
