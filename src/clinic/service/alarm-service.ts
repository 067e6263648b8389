import type { Service } from '../../runtime/lifecycle.js';
import type { RuntimeLog } from '../../runtime/log.js';
import type { Scheduler, TimerHandle } from '../../util/scheduler.js';
import type { AlarmStore } from '../alarms/alarm-store.js';
import { AlarmEngine, type AlarmEvent } from '../alarms/engine.js';
import type { Alarm, AlarmLimit, PatientLimits } from '../alarms/model.js';
import type { AlarmSettingsInput } from '../alarms/settings.js';
import type { ClinicStore } from '../storage/clinic-store.js';

/**
 * What the dashboard asks of the alarm engine, whichever engine runs now (see AlarmService).
 */
export interface AlarmControl {
  acknowledge(id: number, by: string): Promise<Alarm>;
  setLimits(mrn: string, limits: readonly AlarmLimit[], by: string): Promise<PatientLimits>;
  limitsOf(mrn: string): Promise<readonly AlarmLimit[]>;
  /** Every alarm change stored by this process's engine; returns the function that stops it. */
  subscribe(listener: (event: AlarmEvent) => void): () => void;
}

/**
 * The AlarmEngine (src/clinic/alarms/engine.ts) as a Service of a clinic process: it follows the ClinicStore's
 * live feed, so it runs in whichever process has that feed (docs/dashboard.md, "Processes"): on SQLite the
 * feed is in-process only, so the process that runs the intake; on PostgreSQL every `clinic serve` (LISTEN/
 * NOTIFY), one of them leading (PgAlarmStore.lead: an advisory lock) and the others standing by.
 *
 * An engine that lost its leader connection stops for good (its in-memory view may be stale). This service
 * then starts a new engine after the engine's leaderRetryMs, which leads again, or stands by while another
 * process leads: several `clinic serve` processes are safe, and one that loses its database for a while comes
 * back without a restart. Listeners stay subscribed across that (they are this service's, not the engine's).
 *
 * Logs carry codes and roles only: an engine's errors hold neither values nor MRNs (src/clinic/alarms/errors.ts).
 */
export class AlarmService implements Service, AlarmControl {
  readonly #listeners = new Set<(event: AlarmEvent) => void>();
  #engine: AlarmEngine | undefined;
  #restartTimer: TimerHandle | undefined;
  #stopped = false;

  constructor(
    private readonly options: {
      readonly clinic: ClinicStore;
      readonly alarms: AlarmStore;
      readonly scheduler: Scheduler;
      readonly log: RuntimeLog;
      readonly settings?: AlarmSettingsInput;
    },
  ) {}

  /** This process's engine role now. */
  get role(): string {
    return this.#engine?.role ?? 'stopped';
  }

  async start(): Promise<void> {
    await this.#startEngine();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#restartTimer !== undefined) this.options.scheduler.clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    const engine = this.#engine;
    this.#engine = undefined;
    await engine?.stop();
  }

  statusText(): string {
    return `alarm engine ${this.role}`;
  }

  acknowledge(id: number, by: string): Promise<Alarm> {
    return this.#current().acknowledge(id, by);
  }

  setLimits(mrn: string, limits: readonly AlarmLimit[], by: string): Promise<PatientLimits> {
    return this.#current().setLimits(mrn, limits, by);
  }

  limitsOf(mrn: string): Promise<readonly AlarmLimit[]> {
    return this.#current().limitsOf(mrn);
  }

  subscribe(listener: (event: AlarmEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  #current(): AlarmEngine {
    const engine = this.#engine;
    if (engine === undefined) throw new Error('the alarm engine is not running');
    return engine;
  }

  async #startEngine(): Promise<void> {
    const { log, scheduler } = this.options;
    let engine: AlarmEngine;
    // The store as the engine sees it, except that losing the leader connection is also told here, so a
    // new engine can take over (the engine itself stops for good then).
    const store = leaderWatched(this.options.alarms, (error) => this.#leaderLost(engine, error));
    engine = new AlarmEngine({
      clinic: this.options.clinic,
      alarms: store,
      scheduler,
      ...(this.options.settings ? { settings: this.options.settings } : {}),
      onError: (error) => log.error('alarms.error', errorFields(error)),
    });
    engine.subscribe((event) => {
      for (const listener of this.#listeners) listener(event);
    });
    this.#engine = engine;
    const role = await engine.start();
    log.info('alarms.started', { state: role });
    if (role === 'standby') {
      void engine.leading.then(() => {
        if (this.#engine === engine) log.info('alarms.leading', { state: 'leading' });
      });
    }
  }

  #leaderLost(engine: AlarmEngine, error: Error): void {
    if (this.#stopped || this.#engine !== engine) return;
    this.options.log.error('alarms.leader-lost', errorFields(error));
    this.#scheduleRestart(engine.settings.leaderRetryMs);
  }

  #scheduleRestart(waitMs: number): void {
    this.#restartTimer = this.options.scheduler.setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#stopped) return;
      this.#startEngine().catch((error: unknown) => {
        this.options.log.error('alarms.restart-failed', errorFields(error));
        // The same wait again: the database may still be away.
        this.#scheduleRestart(waitMs);
      });
    }, waitMs);
  }
}

/** `store` with `lead`'s loss also told to `onLost` (a Proxy: the stores keep state in private fields). */
function leaderWatched(store: AlarmStore, onLost: (error: Error) => void): AlarmStore {
  return new Proxy(store, {
    get(target, property) {
      if (property === 'lead') {
        return (engineLost: (error: Error) => void) =>
          target.lead((error) => {
            engineLost(error);
            onLost(error);
          });
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function errorFields(error: unknown): { code?: string; error: string } {
  const code = (error as { code?: unknown } | null)?.code;
  return {
    ...(typeof code === 'string' ? { code } : {}),
    error: error instanceof Error ? error.message : String(error),
  };
}
