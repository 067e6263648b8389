import { Progress, type ProgressStream } from '../cli/progress.js';
import type { Scheduler, TimerHandle } from '../util/scheduler.js';

/**
 * `--scenario outage`: the clinic's broker goes away for a while (30 s by default) and comes back, so the
 * backlog the hub keeps in its encrypted store, and its drain once the broker is back, are visible.
 *
 * The outage begins once the clinic has had a reading from every device (or after `latestStartMs`), so what
 * follows is only the outage. While the broker is away the count of readings waiting at the hub (from the
 * hub's status) is shown growing; once it is back, the readings that were waiting are followed by id until
 * the clinic has each of them, and the display says how many arrived, that each arrived once (the clinic
 * drops a re-sent reading by its id), and how long the drain took.
 */
export interface OutageBroker {
  /** Takes the broker off the network (ClinicalBroker.suspend). */
  suspend(): Promise<void>;
  /** Back on the same address (ClinicalBroker.resume). */
  resume(): Promise<unknown>;
}

export interface OutageOptions {
  readonly broker: OutageBroker;
  readonly scheduler: Scheduler;
  readonly outageMs: number;
  /** Start the outage by then even if some device has not reported yet. */
  readonly latestStartMs?: number;
  /** Readings waiting at the hub now (every lane), from its status. */
  readonly waiting: () => number;
  /** Whether the clinic has had a reading from every device. */
  readonly everyDeviceSeen: () => boolean;
  /** Ids of the readings the hub has stored so far. */
  readonly stored: () => ReadonlySet<string>;
  /** How many times the clinic has been handed each reading (after its de-duplication). */
  readonly received: () => ReadonlyMap<string, number>;
  /** Duplicates the clinic dropped by id so far. */
  readonly duplicatesDropped: () => number;
  /** Ordinary lines (the clinic view's stream). */
  readonly out: (line: string) => void;
  /** Where the live progress line goes (redrawn on a terminal only). */
  readonly progress: ProgressStream;
}

type Phase = 'before' | 'down' | 'draining' | 'done';

const TICK_MS = 250;
/** Between plain lines about the outage where no progress line can be drawn (a pipe, a file). */
const PLAIN_EVERY_MS = 5_000;

export class OutageScenario {
  private phase: Phase = 'before';
  private timer: TimerHandle | undefined;
  private began = 0;
  private lastPlain = 0;
  private drainStart = 0;
  private drainDuplicatesBefore = 0;
  private pending: string[] = [];
  private readonly progress: Progress;

  constructor(private readonly options: OutageOptions) {
    this.progress = new Progress({ stream: options.progress, now: () => options.scheduler.now() });
  }

  /** Waits for the moment to start the outage. */
  start(): void {
    const startedAt = this.options.scheduler.now();
    const latest = this.options.latestStartMs ?? 10_000;
    this.tick(() => {
      if (this.options.everyDeviceSeen() || this.options.scheduler.now() - startedAt >= latest) {
        void this.goDown();
        return false;
      }
      return true;
    });
  }

  /**
   * Another line is about to be written (the clinic view's): the progress line is cleared first, so the line
   * does not land after it; the next update draws it again below.
   */
  interrupt(): void {
    this.progress.finish();
  }

  /** Whether the broker is off the network now (the outage is on). */
  get brokerDown(): boolean {
    return this.phase === 'down';
  }

  /** Stops following the scenario; says where it stood when it did not finish. */
  stop(): void {
    if (this.timer !== undefined) this.options.scheduler.clearTimeout(this.timer);
    this.timer = undefined;
    const { out } = this.options;
    if (this.phase === 'down') {
      this.progress.finish();
      out(`demo: stopped during the outage; ${this.options.waiting()} reading(s) stay in the hub's store`);
    } else if (this.phase === 'draining') {
      this.progress.finish();
      const left = this.remaining().length;
      out(
        `demo: stopped while draining: ${this.pending.length - left} of ${this.pending.length} reading(s) reached the clinic; the rest stay in the hub's store`,
      );
    }
    this.phase = 'done';
  }

  private async goDown(): Promise<void> {
    const { out, scheduler, outageMs } = this.options;
    this.phase = 'down';
    this.began = scheduler.now();
    this.lastPlain = this.began;
    out(
      `demo: outage: the clinic's broker goes off the network for ${seconds(outageMs)} (every connection drops); the hub keeps readings in its encrypted store`,
    );
    await this.options.broker.suspend();
    this.tick(() => {
      const elapsed = scheduler.now() - this.began;
      if (elapsed >= outageMs) {
        void this.comeBack();
        return false;
      }
      const text = `broker down ${seconds(elapsed)} of ${seconds(outageMs)}: ${this.options.waiting()} reading(s) waiting at the hub`;
      this.progress.update(text);
      if (!this.options.progress.isTTY && scheduler.now() - this.lastPlain >= PLAIN_EVERY_MS) {
        this.lastPlain = scheduler.now();
        out(`demo: ${text}`);
      }
      return true;
    });
  }

  private async comeBack(): Promise<void> {
    const { out, scheduler, broker } = this.options;
    if (this.phase !== 'down') return;
    this.progress.finish();
    await broker.resume();
    if (this.phase !== 'down') return; // stopped meanwhile
    const received = this.options.received();
    this.pending = [...this.options.stored()].filter((id) => !received.has(id));
    this.phase = 'draining';
    this.drainStart = scheduler.now();
    this.drainDuplicatesBefore = this.options.duplicatesDropped();
    out(
      `demo: the broker is back after ${seconds(scheduler.now() - this.began)}; ${this.pending.length} reading(s) kept during the outage now drain to the clinic`,
    );
    this.tick(() => {
      const left = this.remaining();
      const total = this.pending.length;
      this.progress.update('draining the backlog', total - left.length, total);
      if (left.length > 0) return true;
      const counts = this.options.received();
      const once = this.pending.every((id) => counts.get(id) === 1);
      this.progress.finish();
      out(
        `demo: drained: all ${total} reading(s) kept during the outage reached the clinic${once ? ', each exactly once' : ''}, in ${seconds(scheduler.now() - this.drainStart, 1)}; the clinic dropped ${this.options.duplicatesDropped() - this.drainDuplicatesBefore} re-sent duplicate(s) by id`,
      );
      this.phase = 'done';
      return false;
    });
  }

  private remaining(): string[] {
    const received = this.options.received();
    return this.pending.filter((id) => !received.has(id));
  }

  /** Runs `step` every TICK_MS while it answers true. */
  private tick(step: () => boolean): void {
    const run = () => {
      this.timer = undefined;
      if (this.phase === 'done') return;
      if (step()) this.timer = this.options.scheduler.setTimeout(run, TICK_MS);
    };
    this.timer = this.options.scheduler.setTimeout(run, TICK_MS);
  }
}

function seconds(ms: number, digits = 0): string {
  return `${(ms / 1000).toFixed(digits)} s`;
}
