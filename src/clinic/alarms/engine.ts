import type { Gap } from '../../model/gap.js';
import type { Scheduler, TimerHandle } from '../../util/scheduler.js';
import type {
  Assignment,
  ClinicStore,
  CommittedEvent,
  IncomingStatus,
  StoredMeasurement,
} from '../storage/clinic-store.js';
import type { AlarmChangeType, AlarmStore, Contact, Leadership } from './alarm-store.js';
import { advance, type Episode, newEpisode, type Side, sameLimit, sidesOf } from './episodes.js';
import { AlarmError } from './errors.js';
import { DEFAULT_LIMITS } from './limits.js';
import type { Alarm, AlarmLimit, NewAlarm, PatientLimits } from './model.js';
import { type AlarmSettings, type AlarmSettingsInput, alarmSettings } from './settings.js';

/**
 * The clinic's alarm engine: it reads the clinic record's live feed (ClinicStore.subscribe: readings, gaps and
 * hub statuses after their commit), attributes each to a patient by the gateway's assignment at the time it
 * concerns, evaluates the patient's limits and the technical conditions, persists alarms in the AlarmStore and
 * tells its listeners (the dashboard's live feed) about every change.
 *
 * Time-based conditions (a hub or a device gone silent, a certificate about to expire) run on the injected
 * Scheduler, so tests move time by hand (src/util/scheduler.ts, VirtualScheduler).
 *
 * Work is done one step at a time, in arrival order (a promise chain): a live-feed event, a timer and an
 * acknowledgement never interleave, so the engine's view and the store's agree.
 *
 * Restart-safe: on start it rebuilds from the stores: the open alarms (a present physiological condition stays
 * present until a reading ends it), the last contact with each hub and device (the silence timers), and each
 * assigned hub's latest status (offline, certificate end). What is only in memory is the count towards a
 * limit's minimum duration of a condition not yet raised: it starts again after a restart.
 *
 * One engine per clinic: on PostgreSQL several intake processes share the live feed, so each would see every
 * commit; `start` first asks the store to lead (an advisory lock, src/clinic/alarms/postgres/) and a process that
 * does not get it waits as a standby, asking again every `leaderRetryMs`. The unique open-alarm index makes a
 * second engine harmless for the record (no duplicate alarm) but it would still tell every change twice.
 *
 * Nothing here logs a value or an MRN; `onError` gets typed errors whose messages hold neither.
 */
export type AlarmEventType = AlarmChangeType;

export interface AlarmEvent {
  readonly type: AlarmEventType;
  readonly alarm: Alarm;
}

export interface AlarmEngineOptions {
  readonly clinic: ClinicStore;
  readonly alarms: AlarmStore;
  readonly scheduler: Scheduler;
  readonly settings?: AlarmSettingsInput;
  /** Failures nobody awaits (a store write that failed while handling a live event or a timer). */
  readonly onError?: (error: unknown) => void;
}

export type EngineRole = 'leading' | 'standby';

interface DeviceWatch {
  lastAt: number;
  timer?: TimerHandle;
}

interface GatewayWatch {
  readonly gatewayId: string;
  /** The assignment watched: a hub passed on to the next patient starts a new watch. */
  readonly assignmentId: number;
  /** The receipt time of the latest message from the hub during its assignment, if any. */
  lastContactAt?: number;
  /**
   * When the engine began to watch the hub (or its assignment began, if later): silence counts from here for
   * a hub never heard of, so it is not offline the moment an engine starts.
   */
  readonly watchedSince: number;
  /** The receipt time of an offline status not yet followed by any message. */
  offlineSince?: number;
  certExpiresAt?: number;
  timer?: TimerHandle;
  readonly devices: Map<string, DeviceWatch>;
}

/** setTimeout's longest delay (2^31 - 1 ms, about 24.8 days; Node's timers and the HTML spec); longer waits are chained. */
const MAX_DELAY_MS = 2_147_483_647;
const BATTERY_CODE = 'MDC_ATTR_VAL_BATT_CHARGE';

export class AlarmEngine {
  readonly settings: AlarmSettings;
  readonly #clinic: ClinicStore;
  readonly #alarms: AlarmStore;
  readonly #scheduler: Scheduler;
  readonly #onError: (error: unknown) => void;
  readonly #listeners = new Set<(event: AlarmEvent) => void>();
  #queue: Promise<void> = Promise.resolve();
  #state: 'new' | 'standby' | 'leading' | 'stopped' = 'new';
  #leadership?: Leadership;
  #unsubscribe?: () => Promise<void>;
  #retryTimer?: TimerHandle;
  #refreshTimer?: TimerHandle;

  readonly #assignments = new Map<string, Assignment[]>();
  readonly #limits = new Map<string, readonly AlarmLimit[]>();
  readonly #gateways = new Map<string, GatewayWatch>();
  /** Physiological episodes by episode key (see episodeKey). */
  readonly #episodes = new Map<string, Episode>();
  /** Open condition keys the engine believes present (so it ends them once, and raises them once). */
  readonly #present = new Set<string>();
  /** Contact times written to the store, and those waiting to be. */
  readonly #contactWritten = new Map<string, number>();
  readonly #contactPending = new Map<string, Contact>();

  #becameLeader: () => void = () => undefined;
  /** Resolves when this engine leads (at once after start, or later for a standby). */
  readonly leading: Promise<void> = new Promise((resolve) => {
    this.#becameLeader = resolve;
  });

  constructor(options: AlarmEngineOptions) {
    this.settings = alarmSettings(options.settings);
    this.#clinic = options.clinic;
    this.#alarms = options.alarms;
    this.#scheduler = options.scheduler;
    this.#onError = options.onError ?? (() => undefined);
  }

  /** Tells `listener` every change of an alarm, after it was stored. Returns the function that stops it. */
  subscribe(listener: (event: AlarmEvent) => void): () => void {
    const entry = (event: AlarmEvent) => listener(event);
    this.#listeners.add(entry);
    return () => this.#listeners.delete(entry);
  }

  get role(): EngineRole | 'stopped' | 'new' {
    return this.#state;
  }

  /**
   * Leads (or waits as a standby, see the class comment), rebuilds from the stores, and follows the live feed.
   * Resolves with the role this process has now.
   */
  async start(): Promise<EngineRole> {
    if (this.#state !== 'new')
      throw new AlarmError('ALARM_ENGINE_STOPPED', 'the alarm engine was started before');
    this.#state = 'standby';
    await this.#tryLead();
    return this.role === 'leading' ? 'leading' : 'standby';
  }

  /** Stops following the feed and every timer, writes the contacts not yet written, and gives up leading. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    const wasLeading = this.#state === 'leading';
    this.#state = 'stopped';
    this.#cancel(this.#retryTimer);
    this.#cancel(this.#refreshTimer);
    for (const watch of this.#gateways.values()) this.#unwatchTimers(watch);
    await this.#unsubscribe?.();
    await this.#queue;
    if (wasLeading) await this.#flushContacts().catch((error: unknown) => this.#onError(error));
    await this.#leadership?.release();
  }

  /** Resolves once every queued step (live events, timers, acknowledgements) is done. */
  async idle(): Promise<void> {
    for (;;) {
      const queue = this.#queue;
      await queue;
      if (queue === this.#queue) return;
    }
  }

  /**
   * Acknowledges an alarm (idempotent: the first acknowledgement stands). The caller audits who did it. A
   * latched alarm is cleared by it; an active one stays until its condition ends. Works on a standby too: the
   * store holds the state.
   */
  acknowledge(id: number, by: string, at: number = this.#scheduler.now()): Promise<Alarm> {
    return this.#step(async () => {
      const { alarm, change } = await this.#alarms.acknowledge(id, by, at);
      if (change !== 'unchanged') this.#emit({ type: 'acknowledged', alarm });
      if (change === 'cleared') this.#emit({ type: 'cleared', alarm });
      return alarm;
    });
  }

  /**
   * Sets a patient's limits (checked with the hub's rule schema: ALARM_LIMITS_INVALID) and applies them to
   * the readings judged after this. A present condition of a limit that changed or went ends now (a high one
   * latches): the new limits judge the next reading afresh. Audited by the caller; the hub gets them through
   * src/clinic/alarms/hub-limits.ts.
   */
  setLimits(
    mrn: string,
    limits: readonly AlarmLimit[],
    by: string,
    at: number = this.#scheduler.now(),
  ): Promise<PatientLimits> {
    return this.#step(async () => {
      const set: PatientLimits = { mrn, limits: [...limits], setBy: by, setAt: at };
      await this.#alarms.setLimits(set);
      await this.#applyLimits(mrn, set.limits, at);
      return set;
    });
  }

  /** The limits in force for a patient: an admin's, or the defaults. */
  async limitsOf(mrn: string): Promise<readonly AlarmLimit[]> {
    return (await this.#alarms.limitsOf(mrn))?.limits ?? DEFAULT_LIMITS;
  }

  /** Reloads assignments and limits now (an admin changed them in this process); done every `refreshMs` anyway. */
  refresh(): Promise<void> {
    return this.#step(() => this.#reload());
  }

  // ------------------------------------------------------------------------------------------ leading

  async #tryLead(): Promise<void> {
    if (this.#state !== 'standby') return;
    const leadership = await this.#alarms.lead((error) => this.#lost(error));
    if (this.#state !== 'standby') {
      await leadership?.release();
      return;
    }
    if (leadership === undefined) {
      this.#retryTimer = this.#scheduler.setTimeout(() => {
        this.#tryLead().catch((error: unknown) => this.#onError(error));
      }, this.settings.leaderRetryMs);
      return;
    }
    this.#leadership = leadership;
    this.#state = 'leading';
    try {
      await this.#step(() => this.#rebuild());
      this.#becameLeader();
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  #lost(error: Error): void {
    this.#onError(error);
    // Without the lock another process may lead: stop evaluating at once, and stop for good (the caller
    // restarts the process or the engine; a half-known state must not go on raising alarms).
    this.stop().catch((e: unknown) => this.#onError(e));
  }

  async #rebuild(): Promise<void> {
    const now = this.#scheduler.now();
    await this.#reload();
    for (const alarm of await this.#alarms.openAlarms()) {
      if (alarm.state !== 'active') continue;
      this.#present.add(alarm.conditionKey);
      if (alarm.kind === 'physiological') {
        const key = episodeKeyOfAlarm(alarm);
        if (key !== undefined) {
          this.#episodes.set(key, {
            since: alarm.measuredAt,
            lastAt: undefined,
            present: true,
            conditionKey: alarm.conditionKey,
          });
        }
      }
    }
    for (const contact of await this.#alarms.contacts()) {
      const key = contactKey(contact.gatewayId, contact.deviceId);
      this.#contactWritten.set(key, contact.at);
      const watch = this.#gateways.get(contact.gatewayId);
      if (watch === undefined) continue;
      // Only contacts during the current assignment count: an earlier patient's devices are not this one's.
      if (contact.at < (this.#openAssignment(contact.gatewayId, now)?.from ?? Number.POSITIVE_INFINITY))
        continue;
      if (contact.deviceId !== undefined) watch.devices.set(contact.deviceId, { lastAt: contact.at });
      watch.lastContactAt = Math.max(watch.lastContactAt ?? contact.at, contact.at);
    }
    for (const watch of this.#gateways.values()) {
      const status = await this.#clinic.latestStatus(watch.gatewayId);
      if (status !== undefined) this.#noteStatus(watch, status);
    }
    this.#unsubscribe = await this.#clinic.subscribe((event) => {
      this.#step(() => this.#onCommitted(event)).catch((error: unknown) => this.#onError(error));
    });
    for (const watch of this.#gateways.values()) await this.#evaluateGateway(watch);
    this.#scheduleRefresh();
  }

  #scheduleRefresh(): void {
    this.#refreshTimer = this.#scheduler.setTimeout(() => {
      this.#step(() => this.#reload())
        .catch((error: unknown) => this.#onError(error))
        .finally(() => {
          if (this.#state === 'leading') this.#scheduleRefresh();
        });
    }, this.settings.refreshMs);
  }

  /** Assignments and limits from the stores; watches follow the open assignments. */
  async #reload(): Promise<void> {
    const all = await this.#clinic.assignments();
    this.#assignments.clear();
    for (const a of all) {
      const list = this.#assignments.get(a.gatewayId) ?? [];
      list.push(a);
      this.#assignments.set(a.gatewayId, list);
    }
    const sets = await this.#alarms.allLimits();
    const known = new Set(sets.map((s) => s.mrn));
    for (const set of sets) await this.#applyLimits(set.mrn, set.limits, this.#scheduler.now());
    for (const mrn of [...this.#limits.keys()]) {
      if (!known.has(mrn)) await this.#applyLimits(mrn, DEFAULT_LIMITS, this.#scheduler.now());
    }
    if (this.#state === 'leading') await this.#followAssignments();
  }

  async #followAssignments(): Promise<void> {
    const now = this.#scheduler.now();
    for (const gatewayId of this.#assignments.keys()) {
      const open = this.#openAssignment(gatewayId, now);
      const watched = this.#gateways.get(gatewayId);
      if (open !== undefined && watched !== undefined && watched.assignmentId !== open.id) {
        // Passed on to the next patient: the last patient's conditions end, their devices are not this one's.
        await this.#unwatch(watched, now);
      }
      if (open !== undefined && !this.#gateways.has(gatewayId)) {
        const watch: GatewayWatch = {
          gatewayId,
          assignmentId: open.id,
          watchedSince: Math.max(open.from, now),
          devices: new Map(),
        };
        this.#gateways.set(gatewayId, watch);
        this.#scheduleGateway(watch);
      }
    }
    for (const watch of [...this.#gateways.values()]) {
      // No longer anybody's hub: its technical conditions are nobody's to be told.
      if (this.#openAssignment(watch.gatewayId, now) === undefined) await this.#unwatch(watch, now);
    }
  }

  async #unwatch(watch: GatewayWatch, now: number): Promise<void> {
    this.#unwatchTimers(watch);
    this.#gateways.delete(watch.gatewayId);
    for (const key of [...this.#present]) {
      if (technicalGatewayOf(key) === watch.gatewayId) await this.#end(key, now);
    }
  }

  async #applyLimits(mrn: string, limits: readonly AlarmLimit[], at: number): Promise<void> {
    const before = this.#limits.get(mrn) ?? DEFAULT_LIMITS;
    this.#limits.set(mrn, limits);
    const kept = (code: string) => {
      const old = before.find((l) => l.code === code);
      const now = limits.find((l) => l.code === code);
      return old !== undefined && now !== undefined && sameLimit(old, now);
    };
    for (const [key, episode] of [...this.#episodes]) {
      const parsed = parseEpisodeKey(key);
      if (parsed.mrn !== mrn || kept(parsed.code)) continue;
      this.#episodes.delete(key);
      if (episode.present && episode.conditionKey !== undefined) await this.#end(episode.conditionKey, at);
    }
  }

  // ------------------------------------------------------------------------------------------ the live feed

  async #onCommitted(event: CommittedEvent): Promise<void> {
    if (this.#state !== 'leading') return;
    for (const status of event.statuses) await this.#onStatus(status);
    for (const stored of event.measurements) await this.#onMeasurement(stored);
    for (const { gap, receipt } of event.gaps) {
      this.#contact(receipt.gatewayId, undefined, receipt.receivedAt);
      await this.#onGap(gap, receipt.gatewayId);
    }
    await this.#flushContacts(true);
  }

  async #onStatus(incoming: IncomingStatus): Promise<void> {
    const { status } = incoming;
    await this.#knowGateway(status.gatewayId);
    const watch = this.#gateways.get(status.gatewayId);
    if (watch === undefined) return;
    this.#noteStatus(watch, incoming);
    this.#contact(status.gatewayId, undefined, incoming.receivedAt);
    await this.#judgeClock(status.gatewayId, status.sentAt, incoming.receivedAt);
    await this.#evaluateGateway(watch);
  }

  #noteStatus(watch: GatewayWatch, incoming: IncomingStatus): void {
    const { status, receivedAt } = incoming;
    if (status.state === 'offline') {
      if (receivedAt >= (watch.lastContactAt ?? receivedAt)) watch.offlineSince = receivedAt;
    } else if (watch.offlineSince === undefined || receivedAt >= watch.offlineSince) {
      watch.offlineSince = undefined;
    }
    watch.lastContactAt = Math.max(watch.lastContactAt ?? receivedAt, receivedAt);
    if (status.certExpiresAt !== undefined) watch.certExpiresAt = status.certExpiresAt;
  }

  async #onMeasurement(stored: StoredMeasurement): Promise<void> {
    const { measurement, receipt, measuredAt } = stored;
    const gatewayId = receipt.gatewayId;
    await this.#knowGateway(gatewayId);
    const watch = this.#gateways.get(gatewayId);
    if (watch !== undefined) {
      // A reading came through a connection made after any offline status: the hub is back.
      if (watch.offlineSince !== undefined && receipt.receivedAt > watch.offlineSince)
        watch.offlineSince = undefined;
      watch.lastContactAt = Math.max(watch.lastContactAt ?? receipt.receivedAt, receipt.receivedAt);
      const device = watch.devices.get(measurement.deviceId) ?? { lastAt: receipt.receivedAt };
      device.lastAt = Math.max(device.lastAt, receipt.receivedAt);
      watch.devices.set(measurement.deviceId, device);
      this.#contact(gatewayId, measurement.deviceId, receipt.receivedAt);
      this.#contact(gatewayId, undefined, receipt.receivedAt);
      await this.#judgeClock(gatewayId, receipt.sentAt, receipt.receivedAt);
      await this.#evaluateGateway(watch);
    }
    const mrn = this.#mrnAt(gatewayId, measuredAt);
    if (mrn === undefined) return; // unassigned readings are the clinic record's to list, not an alarm
    const late = measurement.stored === true || receipt.receivedAt - measuredAt > this.settings.lateAfterMs;
    for (const observation of measurement.observations) {
      if (observation.value === null) continue;
      if (observation.code === BATTERY_CODE) {
        await this.#judgeBattery(
          mrn,
          gatewayId,
          measurement.deviceId,
          observation.value,
          observation.unit,
          measuredAt,
        );
      }
    }
    const limits = this.#limits.get(mrn) ?? DEFAULT_LIMITS;
    for (const limit of limits) {
      // The first observation of the code in the limit's unit, as the hub's rules take it.
      const observation = measurement.observations.find(
        (o) => o.code === limit.code && o.unit === limit.unit,
      );
      if (observation === undefined || observation.value === null) continue;
      for (const side of sidesOf(limit)) {
        const key = episodeKey(late, mrn, limit.code, side, gatewayId, measurement.deviceId);
        const episode = this.#episodes.get(key) ?? newEpisode();
        this.#episodes.set(key, episode);
        const transition = advance(
          limit,
          side,
          episode,
          observation.value,
          measuredAt,
          this.settings.maxGapMs,
        );
        if (transition === 'started') {
          // A late condition is its own alarm per episode (keyed by its start): each past episode is told.
          const conditionKey = late ? lateConditionKey(key, episode.since ?? measuredAt) : key;
          episode.conditionKey = conditionKey;
          await this.#raise({
            conditionKey,
            mrn,
            gatewayId,
            deviceId: measurement.deviceId,
            kind: 'physiological',
            code: limit.code,
            priority: limit.priority,
            late,
            raisedAt: this.#scheduler.now(),
            measuredAt,
            // A late condition is in the past: told as an event, latched until acknowledged, never as current.
            ...(late ? { endedAt: this.#scheduler.now() } : {}),
            value: observation.value,
            unit: observation.unit,
            details: {
              side,
              limit: (side === 'below' ? limit.below : limit.above) as number,
              forMs: limit.forMs,
              since: episode.since ?? measuredAt,
              measurementId: measurement.id,
            },
          });
        } else if (transition === 'ended' && episode.conditionKey !== undefined) {
          // A late condition ends by its own readings' time; a live one now.
          await this.#end(episode.conditionKey, late ? measuredAt : this.#scheduler.now());
          episode.conditionKey = undefined;
        }
      }
    }
  }

  async #judgeBattery(
    mrn: string,
    gatewayId: string,
    deviceId: string,
    percent: number,
    unit: string,
    measuredAt: number,
  ): Promise<void> {
    const key = conditionKeyOf('battery', gatewayId, deviceId);
    const { lowBatteryPercent, batteryHysteresis } = this.settings;
    if (percent < lowBatteryPercent) {
      await this.#raise({
        conditionKey: key,
        mrn,
        gatewayId,
        deviceId,
        kind: 'battery-low',
        code: BATTERY_CODE,
        priority: this.settings.priorities.batteryLow,
        late: false,
        raisedAt: this.#scheduler.now(),
        measuredAt,
        value: percent,
        unit,
        details: { limit: lowBatteryPercent },
      });
    } else if (percent >= lowBatteryPercent + batteryHysteresis) {
      await this.#end(key, this.#scheduler.now());
    }
  }

  async #onGap(gap: Gap, gatewayId: string): Promise<void> {
    const first = Date.parse(gap.firstTime);
    const now = this.#scheduler.now();
    const mrn =
      (Number.isNaN(first) ? undefined : this.#mrnAt(gatewayId, first)) ??
      this.#openAssignment(gatewayId, now)?.mrn;
    if (mrn === undefined) return;
    // An event, not a state: raised with its condition already over, so it latches until acknowledged.
    await this.#raise({
      conditionKey: conditionKeyOf('gap', gatewayId, gap.id),
      mrn,
      gatewayId,
      ...(gap.deviceId === '*' ? {} : { deviceId: gap.deviceId }),
      kind: 'gap',
      priority: this.settings.priorities.gap,
      late: false,
      raisedAt: now,
      endedAt: now,
      details: {
        reason: gap.reason,
        count: gap.count,
        firstTime: gap.firstTime,
        lastTime: gap.lastTime,
        recordedAt: gap.recordedAt,
      },
    });
  }

  /**
   * The hub's clock against the intake's: a message signed (`sent`) more than the wire format's tolerance after
   * it was received can only come from a clock that runs ahead. A clock that runs behind looks the same as a
   * message that was delayed (a backlog, a retained status), so it cannot be told from here: docs/alarms.md.
   */
  async #judgeClock(gatewayId: string, sentAt: number, receivedAt: number): Promise<void> {
    const key = conditionKeyOf('clock', gatewayId);
    const mrn = this.#openAssignment(gatewayId, this.#scheduler.now())?.mrn;
    if (mrn === undefined) return;
    const ahead = sentAt - receivedAt;
    if (ahead > this.settings.clockSkewMs) {
      await this.#raise({
        conditionKey: key,
        mrn,
        gatewayId,
        kind: 'clock-skew',
        priority: this.settings.priorities.clockSkew,
        late: false,
        raisedAt: this.#scheduler.now(),
        details: { aheadMs: ahead, toleranceMs: this.settings.clockSkewMs },
      });
    } else if (ahead >= -this.settings.clockSkewMs) {
      await this.#end(key, this.#scheduler.now());
    }
  }

  // ------------------------------------------------------------------------------------------ timers

  /** Raises or ends the time-based conditions of one hub that are due now, and sets its timers for later. */
  async #evaluateGateway(watch: GatewayWatch): Promise<void> {
    const now = this.#scheduler.now();
    const mrn = this.#openAssignment(watch.gatewayId, now)?.mrn;
    if (mrn === undefined) return;
    const offlineKey = conditionKeyOf('hub-offline', watch.gatewayId);
    const offlineDue = this.#offlineDue(watch);
    if (offlineDue <= now) {
      await this.#raise({
        conditionKey: offlineKey,
        mrn,
        gatewayId: watch.gatewayId,
        kind: 'hub-offline',
        priority: this.settings.priorities.hubOffline,
        late: false,
        raisedAt: now,
        details: {
          reason: watch.offlineSince !== undefined ? 'offline-status' : 'silent',
          ...(watch.lastContactAt === undefined ? {} : { lastContactAt: watch.lastContactAt }),
        },
      });
    } else {
      await this.#end(offlineKey, now);
    }
    const hubOffline = this.#present.has(offlineKey);
    for (const [deviceId, device] of watch.devices) {
      const key = conditionKeyOf('device-silent', watch.gatewayId, deviceId);
      if (device.lastAt + this.settings.deviceSilenceMs > now) await this.#end(key, now);
      // While the hub is offline its devices cannot be heard: the hub's alarm says it, once.
      else if (!hubOffline) {
        await this.#raise({
          conditionKey: key,
          mrn,
          gatewayId: watch.gatewayId,
          deviceId,
          kind: 'device-silent',
          priority: this.settings.priorities.deviceSilent,
          late: false,
          raisedAt: now,
          details: { lastReadingAt: device.lastAt, silenceMs: this.settings.deviceSilenceMs },
        });
      }
    }
    const certKey = conditionKeyOf('cert', watch.gatewayId);
    if (watch.certExpiresAt !== undefined) {
      if (watch.certExpiresAt - this.settings.certWarningMs <= now) {
        await this.#raise({
          conditionKey: certKey,
          mrn,
          gatewayId: watch.gatewayId,
          kind: 'cert-expiry',
          priority: this.settings.priorities.certExpiry,
          late: false,
          raisedAt: now,
          details: { certExpiresAt: watch.certExpiresAt },
        });
      } else {
        await this.#end(certKey, now);
      }
    }
    this.#scheduleGateway(watch);
  }

  #offlineDue(watch: GatewayWatch): number {
    return watch.offlineSince !== undefined
      ? watch.offlineSince + this.settings.offlineGraceMs
      : (watch.lastContactAt ?? watch.watchedSince) + this.settings.hubSilenceMs;
  }

  /** One timer per hub: at the earliest future deadline among its conditions. */
  #scheduleGateway(watch: GatewayWatch): void {
    this.#unwatchTimers(watch);
    if (this.#state !== 'leading') return;
    const now = this.#scheduler.now();
    const deadlines = [this.#offlineDue(watch)];
    for (const device of watch.devices.values())
      deadlines.push(device.lastAt + this.settings.deviceSilenceMs);
    if (watch.certExpiresAt !== undefined) deadlines.push(watch.certExpiresAt - this.settings.certWarningMs);
    const next = Math.min(...deadlines.filter((d) => d > now));
    if (!Number.isFinite(next)) return;
    watch.timer = this.#scheduler.setTimeout(
      () => {
        watch.timer = undefined;
        this.#step(() => this.#evaluateGateway(watch)).catch((error: unknown) => this.#onError(error));
      },
      Math.min(next - now, MAX_DELAY_MS),
    );
  }

  #unwatchTimers(watch: GatewayWatch): void {
    this.#cancel(watch.timer);
    watch.timer = undefined;
  }

  #cancel(handle: TimerHandle | undefined): void {
    if (handle !== undefined) this.#scheduler.clearTimeout(handle);
  }

  // ------------------------------------------------------------------------------------------ helpers

  async #raise(alarm: NewAlarm): Promise<void> {
    const { alarm: stored, change } = await this.#alarms.raise(alarm);
    if (alarm.endedAt === undefined) this.#present.add(alarm.conditionKey);
    if (change !== 'unchanged') this.#emit({ type: change, alarm: stored });
  }

  async #end(conditionKey: string, at: number): Promise<void> {
    if (!this.#present.delete(conditionKey)) return;
    const ended = await this.#alarms.endCondition(conditionKey, at);
    if (ended !== undefined) this.#emit({ type: ended.change, alarm: ended.alarm });
  }

  #emit(event: AlarmEvent): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch (error) {
        this.#onError(error);
      }
    }
  }

  /** Runs `work` after every step queued before it; the queue goes on whether it succeeds or fails. */
  #step<T>(work: () => Promise<T>): Promise<T> {
    if (this.#state === 'stopped') {
      return Promise.reject(new AlarmError('ALARM_ENGINE_STOPPED', 'the alarm engine is stopped'));
    }
    const result = this.#queue.then(work);
    this.#queue = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /** Loads a gateway's assignments the first time it is heard of (a hub assigned since the last refresh). */
  async #knowGateway(gatewayId: string): Promise<void> {
    if (this.#assignments.has(gatewayId)) return;
    this.#assignments.set(gatewayId, await this.#clinic.assignments(gatewayId));
    await this.#followAssignments();
  }

  #mrnAt(gatewayId: string, at: number): string | undefined {
    return this.#assignments.get(gatewayId)?.find((a) => a.from <= at && (a.to === undefined || at < a.to))
      ?.mrn;
  }

  #openAssignment(gatewayId: string, now: number): Assignment | undefined {
    return this.#assignments.get(gatewayId)?.find((a) => a.from <= now && (a.to === undefined || now < a.to));
  }

  #contact(gatewayId: string, deviceId: string | undefined, at: number): void {
    const key = contactKey(gatewayId, deviceId);
    const pending = this.#contactPending.get(key);
    if (pending === undefined || pending.at < at) {
      this.#contactPending.set(key, { gatewayId, ...(deviceId === undefined ? {} : { deviceId }), at });
    }
  }

  /** Writes the contacts due (`throttled`: only those last written `contactWriteMs` ago or more), or all. */
  async #flushContacts(throttled = false): Promise<void> {
    const due: Contact[] = [];
    for (const [key, contact] of this.#contactPending) {
      const written = this.#contactWritten.get(key);
      if (throttled && written !== undefined && contact.at - written < this.settings.contactWriteMs) continue;
      due.push(contact);
    }
    if (due.length === 0) return;
    await this.#alarms.noteContacts(due);
    for (const contact of due) {
      const key = contactKey(contact.gatewayId, contact.deviceId);
      this.#contactWritten.set(key, contact.at);
      this.#contactPending.delete(key);
    }
  }
}

function contactKey(gatewayId: string, deviceId: string | undefined): string {
  return `${gatewayId}|${deviceId ?? ''}`;
}

/**
 * Condition keys are JSON arrays of their parts (kind first), so no MRN or device id can make two conditions
 * share a key. A physiological episode's key: stream (live or late), code, side, hub, patient, device. A live
 * condition's key is its episode key; a late one adds the episode's start, so each past episode is its own alarm.
 */
function conditionKeyOf(...parts: (string | number)[]): string {
  return JSON.stringify(parts);
}

function episodeKey(
  late: boolean,
  mrn: string,
  code: string,
  side: Side,
  gatewayId: string,
  deviceId: string,
): string {
  return conditionKeyOf(late ? 'late' : 'live', code, side, gatewayId, mrn, deviceId);
}

function lateConditionKey(episode: string, since: number): string {
  return JSON.stringify([...(JSON.parse(episode) as string[]), since]);
}

function parseEpisodeKey(key: string): { mrn: string; code: string } {
  const parts = JSON.parse(key) as string[];
  return { code: parts[1] as string, mrn: parts[4] as string };
}

function episodeKeyOfAlarm(alarm: Alarm): string | undefined {
  const side = alarm.details.side;
  if ((side !== 'below' && side !== 'above') || alarm.code === undefined || alarm.deviceId === undefined) {
    return undefined;
  }
  return episodeKey(alarm.late, alarm.mrn, alarm.code, side, alarm.gatewayId, alarm.deviceId);
}

const TECHNICAL_KEYS: ReadonlySet<string> = new Set([
  'hub-offline',
  'device-silent',
  'cert',
  'clock',
  'battery',
]);

/** The hub a technical condition key names, if it is one (gaps are events: they stay until acknowledged). */
function technicalGatewayOf(key: string): string | undefined {
  const parts = JSON.parse(key) as unknown[];
  return TECHNICAL_KEYS.has(parts[0] as string) ? (parts[1] as string) : undefined;
}
