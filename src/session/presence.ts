import { normalizeAddress } from '../ble/address.js';
import { type Advertisement, BleError, type CentralPort } from '../ble/central.js';
import { backoffCeiling, equalJitter } from '../util/backoff.js';
import type { Scheduler } from '../util/scheduler.js';

/**
 * Tells device sessions when their device advertises, from ONE scan shared by all of them.
 *
 * Why: cuffs, scales and thermometers sleep and advertise only for some 30-60 s after a measurement. A session
 * that retries on a timer alone (5 s .. 5 min with full jitter) can sleep through the whole window; a session
 * that waits for the advertisement connects within one advertising interval of the device waking. One scan
 * for all sessions, because a controller runs one discovery at a time (BlueZ merges every client's discovery
 * into one, Adapter1.StartDiscovery, doc/org.bluez.Adapter.rst) and parallel scans would only fight over it.
 *
 * - The scan runs in windows of `scanWindowMs`, back to back, for as long as some session waits, and stops
 *   when none does. Windows (rather than one endless scan) let the radio watchdog judge each one: pass the
 *   RadioWatchdog as `scanner` and every scan goes through RadioWatchdog.scan, so a stuck scan is noticed and
 *   an enrolled device's advertisement counts as the "signs of life" its silence detection needs.
 * - A scan that fails, or ends well before its window (a power cycle ends every scan), is restarted after a
 *   backoff of its own (`restartBaseMs` doubling to `restartCapMs`, half of it jittered), so a broken adapter
 *   is not asked to scan in a tight loop. A window that runs its course resets that backoff.
 * - Privacy (DESIGN.md: a neighbour's sensor is ignored; addresses are PHI): the only addresses the monitor
 *   holds are those sessions wait for, i.e. enrolled devices. Any other advertisement is dropped on the spot,
 *   neither stored nor counted nor logged; events carry no address.
 * - Waiting is for the NEXT advertisement after the call: a stale sighting does not wake a session.
 *
 * The Central port has no passive-scan flag, so the scan is whatever the backend's discovery is (BlueZ scans
 * actively during discovery). All timers go through the injected `scheduler`.
 */
export type PresenceEvent =
  | { readonly type: 'scan-started'; readonly windowMs: number; readonly waiting: number }
  | { readonly type: 'scan-ended'; readonly early: boolean }
  | { readonly type: 'scan-failed'; readonly code: string }
  | { readonly type: 'scan-restart-deferred'; readonly inMs: number }
  | { readonly type: 'scan-stopped'; readonly reason: 'no-waiters' | 'closed' }
  /** An enrolled device that a session waited for advertised; `waiters` sessions were woken. */
  | { readonly type: 'device-heard'; readonly waiters: number };

export interface PresenceMonitorOptions {
  /** Where scans run: the central itself, or the RadioWatchdog (which watches each scan; see above). */
  readonly scanner: Pick<CentralPort, 'scan'>;
  readonly scheduler: Scheduler;
  /** Length of one scan window (default 60 s). */
  readonly scanWindowMs?: number;
  /** Restart backoff after a failed or cut-short scan (defaults 1 s doubling to 30 s). */
  readonly restartBaseMs?: number;
  readonly restartCapMs?: number;
  readonly random?: () => number;
  readonly onEvent?: (event: PresenceEvent) => void;
}

/** What DeviceSession needs of a PresenceMonitor (its `presence` option). */
export interface Presence {
  /**
   * Resolves at the next advertisement of `address`; rejects with BLE_ABORTED when `signal` aborts or the
   * monitor closes.
   */
  waitFor(address: string, signal?: AbortSignal): Promise<void>;
}

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (error: BleError) => void;
}

const DEFAULTS = { scanWindowMs: 60_000, restartBaseMs: 1_000, restartCapMs: 30_000 } as const;

export class PresenceMonitor implements Presence {
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly seen = new Map<string, number>();
  private readonly windowMs: number;
  private readonly restartBaseMs: number;
  private readonly restartCapMs: number;
  private running = false;
  private closed = false;
  private scan: AbortController | undefined;
  private restartTimer: { handle: unknown; wake: () => void } | undefined;
  private failuresInRow = 0;
  private started = 0;

  constructor(private readonly options: PresenceMonitorOptions) {
    this.windowMs = options.scanWindowMs ?? DEFAULTS.scanWindowMs;
    this.restartBaseMs = options.restartBaseMs ?? DEFAULTS.restartBaseMs;
    this.restartCapMs = options.restartCapMs ?? DEFAULTS.restartCapMs;
  }

  waitFor(address: string, signal?: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(cancelled('the presence monitor is closed'));
    if (signal?.aborted) return Promise.reject(cancelled('the wait was cancelled'));
    const key = normalizeAddress(address);
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.remove(key, waiter);
        reject(cancelled('the wait was cancelled'));
      };
      const waiter: Waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const set = this.waiters.get(key) ?? new Set<Waiter>();
      this.waiters.set(key, set);
      set.add(waiter);
      this.ensureScanning();
    });
  }

  /** When `address` last advertised while a session waited for it (virtual or wall-clock ms), if ever. */
  lastSeen(address: string): number | undefined {
    return this.seen.get(normalizeAddress(address));
  }

  /** Drops what the monitor remembers of a device (call when it is unenrolled). */
  forget(address: string): void {
    this.seen.delete(normalizeAddress(address));
  }

  /**
   * Every address the monitor holds (waited for, or last seen): enrolled devices only. For tests and audits
   * of the privacy rule; never log it.
   */
  heldAddresses(): string[] {
    return [...new Set([...this.waiters.keys(), ...this.seen.keys()])];
  }

  /** Sessions waiting now. */
  get waiting(): number {
    let count = 0;
    for (const set of this.waiters.values()) count += set.size;
    return count;
  }

  /** Whether a scan window is running (or about to be restarted). */
  get scanning(): boolean {
    return this.running;
  }

  /** Scan windows started so far. */
  get scansStarted(): number {
    return this.started;
  }

  /** Stops the scan and rejects every wait; later waits are refused. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const waiters = [...this.waiters.values()].flatMap((set) => [...set]);
    this.waiters.clear();
    this.seen.clear();
    for (const waiter of waiters) waiter.reject(cancelled('the presence monitor is closed'));
    this.halt();
    if (this.running) this.emit({ type: 'scan-stopped', reason: 'closed' });
  }

  private remove(key: string, waiter: Waiter): void {
    const set = this.waiters.get(key);
    if (!set?.delete(waiter)) return;
    if (set.size === 0) this.waiters.delete(key);
    if (this.waiters.size === 0 && this.running) {
      this.halt();
      this.emit({ type: 'scan-stopped', reason: 'no-waiters' });
    }
  }

  /** Ends the current window or restart wait; the loop then sees whether anyone still waits. */
  private halt(): void {
    this.scan?.abort();
    const restart = this.restartTimer;
    if (restart) {
      this.options.scheduler.clearTimeout(restart.handle);
      restart.wake();
    }
  }

  private ensureScanning(): void {
    if (this.running || this.closed || this.waiters.size === 0) return;
    this.running = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      while (!this.closed && this.waiters.size > 0) {
        const ok = await this.window();
        if (ok) {
          this.failuresInRow = 0;
        } else if (!this.closed && this.waiters.size > 0) {
          await this.restartDelay();
        }
      }
    } finally {
      this.running = false;
    }
    // A wait that came after the loop's last check but before `running` went false.
    this.ensureScanning();
  }

  /** One scan window. True when it ran its course (or we ended it), false when it failed or ended early. */
  private async window(): Promise<boolean> {
    const { scheduler } = this.options;
    const controller = new AbortController();
    this.scan = controller;
    this.started++;
    this.emit({ type: 'scan-started', windowMs: this.windowMs, waiting: this.waiting });
    const began = scheduler.now();
    try {
      // A backend may refuse synchronously (adapter off): the same as a scan that failed to start.
      await Promise.resolve().then(() =>
        this.options.scanner.scan({ durationMs: this.windowMs, signal: controller.signal }, (ad) =>
          this.heard(ad),
        ),
      );
      if (controller.signal.aborted) return true;
      // Half a window is generous: a backend ends a healthy scan at its duration, give or take a timer tick.
      const early = scheduler.now() - began < this.windowMs / 2;
      this.emit({ type: 'scan-ended', early });
      return !early;
    } catch (error) {
      if (controller.signal.aborted) return true;
      this.emit({ type: 'scan-failed', code: error instanceof BleError ? error.code : 'unknown' });
      return false;
    } finally {
      if (this.scan === controller) this.scan = undefined;
    }
  }

  private restartDelay(): Promise<void> {
    const { scheduler } = this.options;
    const ceiling = backoffCeiling(this.failuresInRow, this.restartBaseMs, this.restartCapMs);
    this.failuresInRow++;
    // Half fixed, half jittered: never zero, so a scan that fails at once cannot loop.
    const wait = equalJitter(ceiling, this.options.random ?? Math.random);
    this.emit({ type: 'scan-restart-deferred', inMs: wait });
    return new Promise((resolve) => {
      const wake = () => {
        this.restartTimer = undefined;
        resolve();
      };
      this.restartTimer = { handle: scheduler.setTimeout(wake, wait), wake };
    });
  }

  /** Every advertisement passes here; only an address a session waits for is looked at any further. */
  private heard(advertisement: Advertisement): void {
    const key = normalizeAddress(advertisement.address);
    const set = this.waiters.get(key);
    if (!set) return;
    this.waiters.delete(key);
    this.seen.set(key, this.options.scheduler.now());
    this.emit({ type: 'device-heard', waiters: set.size });
    for (const waiter of set) waiter.resolve();
    if (this.waiters.size === 0) {
      this.halt();
      this.emit({ type: 'scan-stopped', reason: 'no-waiters' });
    }
  }

  private emit(event: PresenceEvent): void {
    this.options.onEvent?.(event);
  }
}

function cancelled(message: string): BleError {
  return new BleError('BLE_ABORTED', message);
}

/** Bluetooth addresses compare case-insensitively (BlueZ prints them upper case, others lower). */
