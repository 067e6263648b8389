import type { DisconnectReason } from './central.js';

type DisconnectListener = (reason: DisconnectReason) => void;

/**
 * The listeners of one link's end, as every backend's Connection.onDisconnect promises them: each is told once,
 * when the link ends, for whatever reason. A listener registered after the end is still told, once, but in a
 * microtask, never synchronously inside the call that registers it: a caller that registers just after connect
 * must learn of a drop that came in between, and must not have its handler run before it finished registering.
 */
export class DisconnectListeners {
  private readonly listeners = new Set<DisconnectListener>();
  private reason: DisconnectReason | undefined;

  /** Why the link ended, or undefined while it is up. */
  get endedWith(): DisconnectReason | undefined {
    return this.reason;
  }

  /** Registers `listener`; returns the function that unregisters it. */
  add(listener: DisconnectListener): () => void {
    const reason = this.reason;
    if (reason !== undefined) {
      let cancelled = false;
      queueMicrotask(() => {
        if (!cancelled) listener(reason);
      });
      return () => {
        cancelled = true;
      };
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Ends the link with `reason` and tells every listener, once. `cleanup` runs in between: after the end is
   * recorded (so a re-entrant end from inside it does nothing) and before any listener can react. Returns false,
   * doing nothing, when the link had ended already.
   */
  fire(reason: DisconnectReason, cleanup?: () => void): boolean {
    if (this.reason !== undefined) return false;
    this.reason = reason;
    cleanup?.();
    const listeners = [...this.listeners];
    this.listeners.clear();
    for (const listener of listeners) listener(reason);
    return true;
  }

  /**
   * Records the end without telling anyone, for a link whose connect failed: no caller ever held it, so there is
   * no one to tell (a backend's own bookkeeping listener cleans up on the failed connect instead). Returns false
   * when the link had ended already.
   */
  endSilently(reason: DisconnectReason): boolean {
    if (this.reason !== undefined) return false;
    this.reason = reason;
    this.listeners.clear();
    return true;
  }
}
