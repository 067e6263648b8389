import {
  type Advertisement,
  BleError,
  type BleErrorCode,
  type CentralPort,
  type ScanOptions,
} from '../ble/central.js';
import { backoffCeiling } from '../util/backoff.js';
import type { Scheduler } from '../util/scheduler.js';

/**
 * Notices a wedged radio and recovers it by power-cycling the adapter (CentralPort.powerCycle), never in a
 * tight loop.
 *
 * BlueZ and the controllers under it wedge in a few known ways (Home Assistant ships bluetooth-auto-recovery and
 * bleak-retry-connector because its users' hubs meet them): a discovery that never ends or that bluetoothd
 * still thinks is running (StartDiscovery answers org.bluez.Error.InProgress for ever), a controller that
 * stops reporting advertisements, and connection slots that the kernel believes in use after links died
 * (every connect fails "out of slots"). Powering the adapter off and on (Adapter1.Powered, Adapter.rst) clears
 * each of these; restarting bluetoothd is the next step and is left to systemd.
 *
 * What it watches, and what counts as a problem:
 *   (a) scans run through `scan()`: one that has not ended `scanGraceMs` after its duration is stuck (it is
 *       aborted and no longer waited for); `scanFailureLimit` scans in a row that fail to start (BLE_ABORTED
 *       for InProgress, BLE_ADAPTER) mean discovery is wedged;
 *   (b) silence: no advertisement from any enrolled device, no session connecting and no reading for
 *       `silenceMs`, judged when a watched scan ends (so only while scanning was expected to see them). Set it
 *       above the longest normal quiet spell of the enrolled devices (a cuff used once a day advertises only
 *       around its measurement);
 *   (c) sessions: `errorLimit` BLE_ADAPTER or BLE_NO_SLOTS failures across all sessions within
 *       `errorWindowMs` with no successful connection in between.
 *
 * Recovery backoff: a power cycle is never started within `minGapMs * 2^(n-1)` (at least `minGapMs`, at most
 * `maxGapMs`) of the end of the previous one, where n counts the power cycles that have not cured the problem
 * they were for. A problem found inside that gap is deferred to its end (one timer), so a dead controller is
 * cycled at growing intervals rather than continuously. Only evidence about that problem cures it: a scan that
 * ends normally for a scan problem, an enrolled advertisement, a connection or a reading for silence, a
 * connection for adapter errors. (Readings from devices already connected say nothing about discovery: a stuck
 * scan with a strap streaming must not reset the backoff, or the strap's link would be cut every minute.) Cured
 * before its deferred cycle, a problem's cycle is cancelled.
 *
 * Events go to `onEvent` for the log; they carry no address or device identity, only what happened and
 * counts.
 */
export type RadioProblem = 'scan-stuck' | 'scan-failing' | 'radio-silent' | 'adapter-errors';

export type RadioWatchdogEvent =
  | { readonly type: 'problem'; readonly problem: RadioProblem; readonly detail: string }
  | { readonly type: 'power-cycle-deferred'; readonly problem: RadioProblem; readonly inMs: number }
  | { readonly type: 'power-cycle-started'; readonly problem: RadioProblem; readonly attempt: number }
  | { readonly type: 'power-cycle-done'; readonly problem: RadioProblem; readonly attempt: number }
  | {
      readonly type: 'power-cycle-failed';
      readonly problem: RadioProblem;
      readonly attempt: number;
      readonly code: string;
    }
  | { readonly type: 'power-cycle-cancelled'; readonly problem: RadioProblem }
  | { readonly type: 'radio-healthy'; readonly problem: RadioProblem; readonly afterPowerCycles: number };

/** What shows the radio works, and which problems each kind of evidence cures. */
type Evidence = 'scan-ended' | 'advertisement' | 'connected' | 'reading';

const CURED_BY: Readonly<Record<RadioProblem, readonly Evidence[]>> = {
  'scan-stuck': ['scan-ended'],
  'scan-failing': ['scan-ended'],
  'radio-silent': ['advertisement', 'connected', 'reading'],
  'adapter-errors': ['connected'],
};

/** What sessions tell the watchdog (DeviceSession's `radio` option). */
export interface RadioHealth {
  /** A session attempt failed with this error class. */
  sessionFailed(code: BleErrorCode | 'unknown'): void;
  /** A session connected and set up its device. */
  sessionConnected(): void;
  /** A reading arrived: the radio works. */
  activity(): void;
}

export interface RadioWatchdogOptions {
  readonly central: Pick<CentralPort, 'powerCycle' | 'scan'>;
  readonly scheduler: Scheduler;
  /** Whether an advertisement comes from an enrolled device (the caller keeps the addresses; we never log them). */
  readonly isEnrolled: (address: string) => boolean;
  readonly scanGraceMs?: number;
  readonly scanFailureLimit?: number;
  readonly silenceMs?: number;
  readonly errorLimit?: number;
  readonly errorWindowMs?: number;
  readonly minGapMs?: number;
  readonly maxGapMs?: number;
  /** A power cycle that has not finished after this long counts as failed. */
  readonly powerCycleTimeoutMs?: number;
  readonly onEvent?: (event: RadioWatchdogEvent) => void;
}

const DEFAULTS = {
  scanGraceMs: 15_000,
  scanFailureLimit: 3,
  silenceMs: 6 * 3_600_000,
  errorLimit: 3,
  errorWindowMs: 5 * 60_000,
  minGapMs: 60_000,
  maxGapMs: 30 * 60_000,
  powerCycleTimeoutMs: 30_000,
} as const;

export class RadioWatchdog implements RadioHealth {
  private readonly settings: Required<Omit<RadioWatchdogOptions, 'onEvent'>>;
  private lastHeard: number;
  private scanFailures = 0;
  private errorTimes: number[] = [];
  private cyclesSinceHealthy = 0;
  /** The problem the last power cycle (or the deferred one) is for, until evidence cures it. */
  private openProblem: RadioProblem | undefined;
  private cycling = false;
  private lastCycleEnd: number | undefined;
  private deferred: { timer: unknown; problem: RadioProblem } | undefined;
  private totalCycles = 0;
  private stopped = false;

  constructor(private readonly options: RadioWatchdogOptions) {
    this.settings = { ...DEFAULTS, ...withoutUndefined(options) } as Required<
      Omit<RadioWatchdogOptions, 'onEvent'>
    >;
    this.lastHeard = options.scheduler.now();
  }

  /** Power cycles started so far. */
  get powerCycles(): number {
    return this.totalCycles;
  }

  /** Cancels a deferred recovery; later reports are ignored. */
  stop(): void {
    this.stopped = true;
    if (this.deferred) this.options.scheduler.clearTimeout(this.deferred.timer);
    this.deferred = undefined;
  }

  /**
   * Scans through the central under watch. Resolves when the scan ends, or `scanGraceMs` after its duration
   * if it has not (then it is aborted, left behind, and the adapter is recovered); rejects as the scan does.
   */
  async scan(options: ScanOptions, onAdvertisement: (advertisement: Advertisement) => void): Promise<void> {
    const { scheduler } = this.options;
    const controller = new AbortController();
    const forward = () => controller.abort();
    options.signal?.addEventListener('abort', forward, { once: true });
    if (options.signal?.aborted) controller.abort();
    // A scan that a power cycle ended (powering off ends every scan) proves nothing about discovery.
    const cyclesAtStart = this.totalCycles;
    let deadline: unknown;
    const stuck = new Promise<'stuck'>((resolve) => {
      deadline = scheduler.setTimeout(() => resolve('stuck'), options.durationMs + this.settings.scanGraceMs);
    });
    const start = () => {
      try {
        return this.options.central.scan({ ...options, signal: controller.signal }, (advertisement) => {
          if (this.options.isEnrolled(advertisement.address)) this.evidence('advertisement');
          onAdvertisement(advertisement);
        });
      } catch (error) {
        // A backend may refuse synchronously (adapter off): the same as a scan that failed to start.
        return Promise.reject(error);
      }
    };
    const scanning = start().then(() => 'ended' as const);
    // A stuck scan may settle after the power cycle, or never: it must not become an unhandled rejection.
    scanning.catch(() => undefined);
    try {
      const outcome = await Promise.race([scanning, stuck]);
      if (outcome === 'stuck') {
        controller.abort();
        this.problem(
          'scan-stuck',
          `a scan of ${options.durationMs} ms had not ended ${this.settings.scanGraceMs} ms after its end`,
        );
        return;
      }
      this.scanFailures = 0;
      if (this.totalCycles !== cyclesAtStart || this.cycling) return;
      this.evidence('scan-ended');
      this.checkSilence();
    } catch (error) {
      // A scan refused while the adapter is being cycled is the cycle's doing.
      if (this.cycling || this.totalCycles !== cyclesAtStart) throw error;
      this.scanFailures++;
      if (this.scanFailures >= this.settings.scanFailureLimit) {
        const code = error instanceof BleError ? error.code : 'unknown';
        this.problem('scan-failing', `${this.scanFailures} scans in a row failed to start (${code})`);
        this.scanFailures = 0;
      }
      throw error;
    } finally {
      scheduler.clearTimeout(deadline);
      options.signal?.removeEventListener('abort', forward);
    }
  }

  sessionFailed(code: BleErrorCode | 'unknown'): void {
    if (code !== 'BLE_ADAPTER' && code !== 'BLE_NO_SLOTS') return;
    // Failures while the adapter is being cycled are caused by the cycle itself.
    if (this.cycling) return;
    const now = this.options.scheduler.now();
    this.errorTimes = this.errorTimes.filter((t) => now - t < this.settings.errorWindowMs);
    this.errorTimes.push(now);
    if (this.errorTimes.length >= this.settings.errorLimit) {
      const count = this.errorTimes.length;
      this.errorTimes = [];
      this.problem('adapter-errors', `${count} adapter or connection-slot failures within the error window`);
    }
  }

  sessionConnected(): void {
    this.errorTimes = [];
    this.evidence('connected');
  }

  activity(): void {
    this.evidence('reading');
  }

  /**
   * The radio showed it works in one way: resets the silence clock (unless it was only a scan ending), and
   * cures the open problem if this is evidence about it.
   */
  private evidence(kind: Evidence): void {
    if (kind !== 'scan-ended') this.lastHeard = this.options.scheduler.now();
    const problem = this.openProblem;
    if (problem === undefined || this.cycling || !CURED_BY[problem].includes(kind)) return;
    if (this.deferred) {
      this.options.scheduler.clearTimeout(this.deferred.timer);
      this.deferred = undefined;
      this.emit({ type: 'power-cycle-cancelled', problem });
    }
    if (this.cyclesSinceHealthy > 0) {
      this.emit({ type: 'radio-healthy', problem, afterPowerCycles: this.cyclesSinceHealthy });
    }
    this.cyclesSinceHealthy = 0;
    this.openProblem = undefined;
  }

  private checkSilence(): void {
    const silentFor = this.options.scheduler.now() - this.lastHeard;
    if (silentFor >= this.settings.silenceMs) {
      this.problem('radio-silent', `no enrolled device heard for ${Math.round(silentFor / 60_000)} min`);
    }
  }

  private problem(problem: RadioProblem, detail: string): void {
    if (this.stopped) return;
    this.emit({ type: 'problem', problem, detail });
    this.recover(problem);
  }

  /** Power-cycles now, or at the end of the current backoff gap (one deferred recovery at a time). */
  private recover(problem: RadioProblem): void {
    if (this.cycling || this.deferred) return;
    this.openProblem = problem;
    const { scheduler } = this.options;
    // At least minGapMs after any cycle, doubling with each cycle that did not bring the radio back.
    const exponent = Math.max(1, this.cyclesSinceHealthy) - 1;
    const gap = backoffCeiling(exponent, this.settings.minGapMs, this.settings.maxGapMs);
    const earliest = this.lastCycleEnd === undefined ? 0 : this.lastCycleEnd + gap;
    const wait = earliest - scheduler.now();
    if (wait > 0) {
      this.emit({ type: 'power-cycle-deferred', problem, inMs: wait });
      this.deferred = {
        problem,
        timer: scheduler.setTimeout(() => {
          this.deferred = undefined;
          if (!this.stopped) void this.powerCycle(problem);
        }, wait),
      };
      return;
    }
    void this.powerCycle(problem);
  }

  private async powerCycle(problem: RadioProblem): Promise<void> {
    const { scheduler } = this.options;
    this.cycling = true;
    this.cyclesSinceHealthy++;
    this.totalCycles++;
    const attempt = this.cyclesSinceHealthy;
    this.emit({ type: 'power-cycle-started', problem, attempt });
    let timer: unknown;
    try {
      await Promise.race([
        this.options.central.powerCycle(),
        new Promise<never>((_, reject) => {
          timer = scheduler.setTimeout(
            () =>
              reject(
                new BleError(
                  'BLE_TIMEOUT',
                  `the power cycle did not finish within ${this.settings.powerCycleTimeoutMs} ms`,
                ),
              ),
            this.settings.powerCycleTimeoutMs,
          );
        }),
      ]);
      this.emit({ type: 'power-cycle-done', problem, attempt });
    } catch (error) {
      const code = error instanceof BleError ? error.code : 'unknown';
      this.emit({ type: 'power-cycle-failed', problem, attempt, code });
    } finally {
      scheduler.clearTimeout(timer);
      this.cycling = false;
      this.lastCycleEnd = scheduler.now();
      // Silence is judged afresh after a cycle: the radio gets a full silence period to show it works.
      this.lastHeard = scheduler.now();
      this.scanFailures = 0;
      this.errorTimes = [];
    }
  }

  private emit(event: RadioWatchdogEvent): void {
    this.options.onEvent?.(event);
  }
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
