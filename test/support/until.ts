/**
 * Waits, in real time, until `condition` holds: for something that must happen (a message arrives, a
 * connection comes up), where the test has no event to await. It checks every `intervalMs` and, after
 * `timeoutMs`, fails naming `what` it waited for.
 *
 * It proves presence only. A condition still false after a while proves nothing, so never use a wait to show
 * that something did not happen: wait instead for a later event that must come after it (then check it did not
 * come), or run the code in virtual time (src/util/scheduler.ts).
 *
 * Real timers only: under vi.useFakeTimers() the checks would never run.
 */
export async function until(
  what: string,
  condition: () => boolean | Promise<boolean>,
  { timeoutMs = 10_000, intervalMs = 10 }: { readonly timeoutMs?: number; readonly intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
