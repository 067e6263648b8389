import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { concatMap, EMPTY, from, merge, mergeAll, Observable, Subject, type Subscription } from 'rxjs';
import { catchError, filter, map, takeUntil } from 'rxjs/operators';
import { AuditLog } from '../audit/audit-log.js';
import { normalizeAddress } from '../ble/address.js';
import type { BackendName } from '../ble/backends.js';
import type { CentralPort } from '../ble/central.js';
import { statePaths } from '../config/paths.js';
import type { GatewayConfig, SecretRef } from '../config/schema.js';
import type { HubStatus } from '../control/status.js';
import { loadBundledRegistry } from '../drivers/default-registry.js';
import type { DriverRegistry } from '../drivers/registry.js';
import type { Driver } from '../drivers/sdk/define-driver.js';
import { PairingAgent, type PairingHooks } from '../enrolment/pairing-agent.js';
import { DecodeError } from '../errors.js';
import type { Measurement } from '../model/measurement.js';
import {
  type ClinicLimits,
  clinicLimitKeys,
  type RuleInForce,
  rulesInForce,
} from '../pipeline/alert-config.js';
import { AlertRules } from '../pipeline/alert-rules.js';
import { EnrolmentGate } from '../pipeline/enrolment-gate.js';
import { HeldStamps, type MonotonicClock, performanceClock } from '../pipeline/held-stamps.js';
import { stamp } from '../pipeline/stamp.js';
import { type CertificateEvent, GatewayCredentials } from '../pki/credentials.js';
import { DeviceSession, type SessionReading, type SessionState } from '../session/device-session.js';
import { PresenceMonitor } from '../session/presence.js';
import { RadioWatchdog } from '../session/radio-watchdog.js';
import { auditStoreEvents } from '../store/audit-events.js';
import type { EnrolledDevice } from '../store/device-registry.js';
import { keyProtection } from '../store/key-protection.js';
import {
  EnvKeyProvider,
  KeyFileProvider,
  type KeyProvider,
  SystemdCredentialProvider,
} from '../store/keys.js';
import type { Lane, StoreEvent } from '../store/outbox.js';
import { Store } from '../store/store.js';
import { auditCommandEvents } from '../uplink/command-audit.js';
import { CommandSigners } from '../uplink/command-signers.js';
import { commandHandler } from '../uplink/commands.js';
import { wireItemRecords } from '../uplink/record-codec.js';
import { signedCodec } from '../uplink/signed-codec.js';
import { Uplink, type UplinkEvent } from '../uplink/uplink.js';
import type { Scheduler, TimerHandle } from '../util/scheduler.js';
import {
  CLOCK_SKEW_MS,
  gatewayTopics,
  kidForCertificate,
  MemoryReplayCache,
  signCommandResult,
} from '../wire/index.js';
import type { ControlledHub, ControlledParts } from './hub-control-adapter.js';
import { HubControlAdapter } from './hub-control-adapter.js';
import { countingErrors, HubSurfaces } from './hub-surfaces.js';
import {
  batteryPercentOf,
  controlStatus,
  type DeviceView,
  type HubView,
  metricsSnapshot,
  pageSnapshot,
} from './hub-view.js';
import type { RuntimeLog } from './log.js';
import { laneStage, type Routed } from './reading-lanes.js';
import { type ServiceNotifier, serviceNotifier } from './systemd-notify.js';
import { NOT_REQUIRED, type TimeSyncProbe, type TimeSyncReading, TimeSyncWatch } from './time-sync.js';
import { UplinkWatch } from './uplink-watch.js';

/**
 * The composition root: one running hub. It owns, and starts and stops in order, the store (outbox and device
 * registry), the radio (a Central backend, the shared presence scan, the radio watchdog), one DeviceSession per
 * enrolled device, the reading pipeline, the uplink to the clinic broker, and the service manager protocol.
 *
 * The reading path, as rxjs streams (the honest model for readings that arrive on their own, from several
 * devices, forever):
 *
 *     sessions' readings (merged; one per enrolled device, each failure kept to its own stream)
 *       -> enrolment gate (a reading of a device forgotten meanwhile is dropped)
 *       -> held stamps (until the system clock is known to be set; then re-stamped by monotonic time)
 *       -> stamp (a Measurement with its stable id)
 *       -> alert and lane stage (src/runtime/reading-lanes.ts: the alert-lane rules judge and mark it; alert,
 *          live or backlog lane; a RACP record's resume point rides along)
 *       -> outbox.append (the sink: committed with the resume point, then the uplink's own pump sends it)
 *
 * The alert rules in force are the configuration's `alerts.rules` with the clinic's per-patient limits laid
 * over them (src/pipeline/alert-config.ts: clinic > file > defaults); the clinic sets them with the signed
 * `config` command and the store keeps them across restarts. The outbox and the uplink keep their own hot
 * paths; the streams end at the append.
 *
 * What waits for the clock (src/runtime/time-sync.ts; `clock.requireSync: false` skips the wait): stamping with
 * wall time (readings are held, not lost), writing Current Time into devices (DeviceSession.mayWriteClock),
 * the uplink (TLS judges certificate validity by this clock, and so do the certificate checks before each
 * connection and the command signers' validity and command freshness), and the outbox's housekeeping (its age
 * limit). Readings are still received, decoded and held meanwhile.
 *
 * Its windows (src/runtime/hub-surfaces.ts) open once it runs and close first when it stops: the control socket
 * (src/runtime/hub-control-adapter.ts: `rpm-gateway status`, `pair`, `devices`, `forget`, `store status`), the
 * Prometheus endpoint and the patient page, all three fed by one snapshot (src/runtime/hub-view.ts).
 * - `status()`: that snapshot as `rpm-gateway status` shows it (src/control/status.ts; no I/O beyond the
 *   store's counters): each enrolled device (session state, last seen, battery), the backlog per lane, the
 *   broker connection, the clock sync state, the certificate expiry, the store's size, gaps, alert readings.
 * - `deviceEnrolled(id)`: a device was enrolled (or re-enrolled) in the registry: its session starts, or
 *   restarts with what the registry now says.
 * - `deviceForgotten(id)`: its session stops and the gate drops its readings still in flight.
 * Both are safe to call at any time while the hub runs, in any order, and are idempotent.
 *
 * The constructor does nothing; start() and stop() do all I/O. Time, timers, the radio, the clock probe, the
 * service manager and the log are injected, so tests run it in virtual time against the simulator.
 */
export interface HubOptions {
  readonly config: GatewayConfig;
  /** The gateway software version (status payloads, the audit log). */
  readonly version: string;
  readonly scheduler: Scheduler;
  readonly log: RuntimeLog;
  /** For $CREDENTIALS_DIRECTORY, $NOTIFY_SOCKET, $WATCHDOG_USEC. */
  readonly env: NodeJS.ProcessEnv;
  readonly pid: number;
  /**
   * Builds the radio backend named by ble.backend, with the hub's pairing agent's hooks (enrolment through the
   * control socket pairs on this same radio; the agent refuses every pairing request outside an enrolment).
   */
  readonly createCentral: (backend: BackendName, hooks: PairingHooks) => Promise<CentralPort>;
  /** Is the system clock set? Ignored (never waited for) when clock.requireSync is false. */
  readonly timeProbe: TimeSyncProbe;
  readonly timeSyncPollMs?: number;
  readonly monotonic?: MonotonicClock;
  /** The service manager; default: sd_notify from the environment (nothing outside systemd). */
  readonly notifier?: ServiceNotifier;
  /** The drivers; default: the bundled ones. */
  readonly drivers?: DriverRegistry;
  /** The store key; default: as store.key says. */
  readonly keys?: KeyProvider;
  readonly utcOffsetMinutes?: () => number;
  readonly random?: () => number;
  /** How often the outbox's housekeeping runs (retention by age, gap records); default 10 min. */
  readonly maintainEveryMs?: number;
  /** Told of every reading appended (tests, metrics). */
  readonly onAppended?: (measurement: Measurement, result: 'stored' | 'duplicate', lane: Lane) => void;
}

export type HubState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

interface SessionEntry {
  readonly device: EnrolledDevice;
  readonly driverId: string;
  state: SessionState | 'not-started' | 'no-driver';
  detail: string | undefined;
  lastReadingAt: number | undefined;
  /** Connected (streaming) or a reading, epoch ms. */
  lastSeenAt: number | undefined;
  batteryPercent: number | null;
  lastReading: DeviceView['lastReading'];
  readings: number;
  session: DeviceSession | undefined;
  stopped: Promise<void> | undefined;
}

const MAINTAIN_EVERY_MS = 10 * 60_000;

/** The settings row (src/store/settings.ts) that keeps the clinic's alert limits across restarts. */
const CLINIC_LIMITS_SETTING = 'alerts.clinicLimits';

export class Hub implements ControlledHub {
  private state: HubState = 'new';
  private readonly options: HubOptions;
  private startedAt: number | undefined;
  private keys: KeyProvider | undefined;
  private readonly agent = new PairingAgent();
  private readonly uplinkWatch: UplinkWatch;
  private readonly surfaces: HubSurfaces;
  private alertReadings = 0;
  private store: Store | undefined;
  private audit: AuditLog | undefined;
  private drivers: DriverRegistry | undefined;
  private central: CentralPort | undefined;
  private presence: PresenceMonitor | undefined;
  private radio: RadioWatchdog | undefined;
  private uplink: Uplink | undefined;
  private credentials: GatewayCredentials | undefined;
  private timeSync: TimeSyncWatch | undefined;
  private held: HeldStamps | undefined;
  private notifier: ServiceNotifier | undefined;
  private maintainTimer: TimerHandle | undefined;
  private readonly gate = new EnrolmentGate();
  private readonly alertRules = new AlertRules([]);
  private rulesInForce: readonly RuleInForce[] = [];
  private clinicLimits: ClinicLimits = {};
  private readonly entries = new Map<string, SessionEntry>();
  /** The driver of every device that had a session in this run: readings still in the pipeline need it. */
  private readonly driverOf = new Map<string, string>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly intake = new Subject<Observable<SessionReading>>();
  private readonly released = new Subject<SessionReading>();
  private readonly stopSession = new Subject<string>();
  private pipeline: Subscription | undefined;
  private lastAppendFailed = false;

  constructor(options: HubOptions) {
    const { config, scheduler } = options;
    const now = () => scheduler.now();
    this.uplinkWatch = new UplinkWatch(config.uplink.brokers, now);
    this.surfaces = new HubSurfaces({
      config,
      now,
      log: options.log,
      control: new HubControlAdapter(this),
      metricsSource: () => metricsSnapshot(this.view()),
      pageSource: () => pageSnapshot(this.view()),
    });
    // Every logged failure with a stable code is counted in the metrics too.
    const metrics = this.surfaces.metrics;
    this.options = metrics
      ? { ...options, log: countingErrors(options.log, (code) => metrics.error(code)) }
      : options;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('a hub starts once');
    this.state = 'starting';
    const { config, log, scheduler } = this.options;
    const paths = statePaths(config.paths.dataDir);
    log.info('hub.starting', { version: this.options.version, backend: config.ble.backend });

    const audit = new AuditLog(paths.auditLog, scheduler);
    this.audit = audit;
    const toAudit = auditStoreEvents(audit, 'gateway');
    const keys = this.options.keys ?? keyProvider(config.store.key, this.options.env);
    this.keys = keys;
    this.store = await Store.open({
      path: paths.store,
      keys,
      clock: scheduler,
      retention: config.store.retention,
      recordCodec: wireItemRecords,
      existing: 'must-exist',
      onEvent: (event) => this.storeEvent(event, toAudit),
    });
    // What the store key protects against (docs/store.md): said once, for whoever reads the journal.
    const protection = await keyProtection(keys, { storePath: paths.store });
    log.info('store.key', { detail: protection.summary });
    this.loadAlertRules();
    this.drivers = this.options.drivers ?? (await loadBundledRegistry());
    this.credentials = new GatewayCredentials(
      {
        caFile: config.tls.ca,
        certFile: config.tls.cert,
        keyFile: secretPath(config.tls.key, this.options.env),
      },
      { clock: scheduler, onEvent: (event) => this.certificateEvent(event) },
    );

    // The clock first: sessions ask it before writing Current Time, the pipeline holds readings on it.
    const probe = config.clock.requireSync ? this.options.timeProbe : NOT_REQUIRED;
    this.timeSync = new TimeSyncWatch({
      probe,
      scheduler,
      ...(this.options.timeSyncPollMs === undefined ? {} : { pollMs: this.options.timeSyncPollMs }),
    });
    this.held = new HeldStamps({
      monotonic: this.options.monotonic ?? performanceClock,
      wallNow: () => scheduler.now(),
    });
    this.pipeline = this.buildPipeline().subscribe((item) => this.append(item));
    const first = await this.timeSync.start();
    log.info('clock.checked', {
      synchronised: first.synchronised,
      source: first.source,
      detail: first.detail,
    });

    await this.startRadio();
    const devices = this.store.devices.list();
    this.gate.replace(devices);
    for (const device of devices) this.startDevice(device);

    this.uplink = this.buildUplink();

    this.state = 'running';
    this.startedAt = scheduler.now();
    // Before READY=1: once systemd says the hub runs, `rpm-gateway status` and `pair` reach it.
    await this.surfaces.start();
    // At once when the clock is already known to be set; else when the watch finds it is.
    this.timeSync.onSynchronised((reading) => this.clockSynchronised(reading));
    audit.record('gateway.started', 'gateway', {
      version: this.options.version,
      devices: devices.length,
      backend: config.ble.backend,
    });
    this.notifier =
      this.options.notifier ??
      serviceNotifier({
        env: this.options.env,
        pid: this.options.pid,
        scheduler,
        onProblem: (problem) => log.warn('systemd.notify-problem', { problem: problem.kind }),
      });
    // Ready once the store is open and the sessions started (sd_notify(3): READY=1 after start-up).
    this.notifier.ready(`running: ${devices.length} device(s)`);
    this.notifier.startWatchdog(() => this.healthy());
    log.info('hub.started', { devices: devices.length, gatewayId: config.gateway.id });
  }

  /**
   * The ordered stop: intake first (sessions), then the readings already taken in are committed (held ones
   * included, flagged when the clock never got set), the offline status is published as the uplink stops, and
   * the store is closed last. Idempotent.
   */
  async stop(reason: string): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    const wasRunning = this.state === 'running';
    this.state = 'stopping';
    const { log, scheduler } = this.options;
    this.notifier?.stopping(`stopping: ${reason}`);

    // 0. The windows: no request (an enrolment, a forget) reaches the hub while it closes.
    await this.surfaces.stop();
    // 1. Intake: no session delivers after this.
    await Promise.all([...this.entries.keys()].map((id) => this.stopDevice(id)));
    this.intake.complete();
    // 2. Readings held for the clock: stored, flagged, rather than lost with the process.
    if (this.held && !this.held.isSynchronised && this.held.holding > 0) {
      const count = this.held.holding;
      for (const reading of this.held.releaseUnsynchronised()) this.released.next(reading);
      log.warn('clock.stopped-unsynchronised', { count });
    }
    this.released.complete();
    // 3. In-flight appends commit (the outbox commits queued appends in one transaction).
    await Promise.allSettled([...this.inFlight]);
    this.pipeline?.unsubscribe();
    // 4. The uplink publishes the offline status (retained) and disconnects; leases go back to the store.
    if (this.maintainTimer !== undefined) scheduler.clearTimeout(this.maintainTimer);
    this.timeSync?.stop();
    await this.uplink?.stop();
    this.uplinkWatch.stopped();
    // 5. The radio.
    this.presence?.close();
    this.radio?.stop();
    await this.central
      ?.stop()
      .catch((error: unknown) => log.warn('radio.stop-failed', { error: messageOf(error) }));
    // 6. The store, last.
    this.store?.close();
    if (wasRunning) {
      try {
        this.audit?.record('gateway.stopped', 'gateway', { reason });
      } catch (error) {
        log.error('audit.failed', { error: messageOf(error) });
      }
    }
    this.notifier?.close();
    this.state = 'stopped';
  }

  /** What `rpm-gateway status` shows (see the class comment). */
  status(): HubStatus {
    return controlStatus(this.view());
  }

  /** The open store, audit log and radio, for the control socket; undefined unless running. */
  parts(): ControlledParts | undefined {
    const { store, audit, central, drivers, keys } = this;
    if (this.state !== 'running' || !store?.isOpen || !audit || !central || !drivers || !keys)
      return undefined;
    return {
      registry: store.devices,
      outbox: store.outbox,
      storePath: statePaths(this.options.config.paths.dataDir).store,
      keys,
      audit,
      central,
      agent: this.agent,
      drivers,
    };
  }

  /** The hub's own snapshot, from which status, metrics and the patient page are made (hub-view.ts). */
  private view(): HubView {
    const { config, scheduler } = this.options;
    const open = this.store?.isOpen === true ? this.store : undefined;
    const enrolled = open ? open.devices.list() : [...this.entries.values()].map((e) => e.device);
    return {
      running: this.state === 'running',
      gatewayId: config.gateway.id,
      hubName: config.gateway.label ?? config.gateway.id,
      startedAtMs: this.startedAt ?? null,
      nowMs: scheduler.now(),
      devices: enrolled.map((device) => {
        const entry = this.entries.get(device.id);
        const state =
          entry && entry.state !== 'not-started' && entry.state !== 'no-driver' ? entry.state : null;
        const seen = Math.max(entry?.lastSeenAt ?? -1, entry?.lastReadingAt ?? -1, device.lastSeenAt ?? -1);
        return {
          device,
          state,
          lastSeenMs: seen < 0 ? null : seen,
          batteryPercent: entry?.batteryPercent ?? null,
          lastReading: entry?.lastReading ?? null,
        };
      }),
      stats: open?.outbox.stats(),
      storePath: statePaths(config.paths.dataDir).store,
      broker: this.uplinkWatch.view,
      sent: this.uplinkWatch.sent,
      clock: {
        ...(this.timeSync?.state ?? { synchronised: false, source: 'unknown', detail: 'not started' }),
        held: this.held?.holding ?? 0,
      },
      certificatePem: this.credentials?.current?.cert,
      alertReadings: this.alertReadings,
      alertRules: this.rulesInForce.map(({ rule, source }) => ({ id: rule.id, source })),
    };
  }

  /** A device was enrolled or re-enrolled: its session (re)starts with what the registry says now. */
  async deviceEnrolled(deviceId: string): Promise<void> {
    if (this.state !== 'running' || !this.store) return;
    const device = this.store.devices.get(deviceId);
    this.gate.replace(this.store.devices.list());
    if (!device) return;
    await this.stopDevice(deviceId);
    this.startDevice(device);
    this.options.log.info('device.session-started', { deviceId, driver: device.driverId });
  }

  /** A device was forgotten: its session stops; readings of it still in flight are dropped by the gate. */
  async deviceForgotten(deviceId: string): Promise<void> {
    if (this.state !== 'running' || !this.store) return;
    const entry = this.entries.get(deviceId);
    this.gate.replace(this.store.devices.list());
    await this.stopDevice(deviceId);
    if (entry) this.presence?.forget(entry.device.address);
    // Its next enrolment (a new id) starts afresh: no resume point, no pending alert episode.
    this.alertRules.forgetDevice(deviceId);
    try {
      if (this.store.isOpen) this.store.outbox.forgetRacpResumePoint(deviceId);
    } catch (error) {
      this.options.log.warn('device.forget-resume-failed', { deviceId, code: codeOf(error) });
    }
    this.options.log.info('device.session-stopped', { deviceId, reason: 'forgotten' });
  }

  // ---- the reading path ------------------------------------------------------------------------------------

  private buildPipeline(): Observable<Routed> {
    const held = this.held as HeldStamps;
    const admitted = this.intake.pipe(
      mergeAll(),
      filter((reading) => this.gate.admit(reading)),
    );
    const timed = merge(admitted.pipe(concatMap((reading) => from(held.accept(reading)))), this.released);
    return timed.pipe(
      concatMap((reading) => {
        const driverId = this.driverOf.get(reading.deviceId);
        const driver = driverId === undefined ? undefined : this.drivers?.get(driverId);
        if (!driver) return EMPTY;
        try {
          return [{ reading, measurement: stamp(reading, driver) }];
        } catch (error) {
          this.options.log.error('pipeline.stamp-failed', {
            deviceId: reading.deviceId,
            error: messageOf(error),
          });
          return EMPTY;
        }
      }),
      laneStage({
        rules: this.alertRules,
        now: () => this.options.scheduler.now(),
        backlogAfterMs: this.options.config.lanes.backlogAfterMs,
      }),
    );
  }

  /** The sink: the append resolves once committed; failures are counted and logged, never thrown. */
  private append({ measurement, lane, progress }: Routed): void {
    const store = this.store;
    if (!store?.isOpen) return;
    const pending = store.outbox.append(measurement, lane, progress).then(
      (result) => {
        this.lastAppendFailed = false;
        this.options.log.debug('reading.appended', {
          deviceId: measurement.deviceId,
          measurementId: measurement.id,
          lane,
          status: result,
        });
        this.appendObserved(lane, result);
        this.options.onAppended?.(measurement, result, lane);
      },
      (error: unknown) => {
        this.lastAppendFailed = true;
        this.options.log.error('store.append-failed', {
          deviceId: measurement.deviceId,
          code: codeOf(error),
        });
      },
    );
    this.inFlight.add(pending);
    void pending.finally(() => this.inFlight.delete(pending));
  }

  /**
   * The rules in force at start: the configuration's, with the clinic's limits the store kept laid over them.
   * Limits the configuration no longer accepts (the file changed under them) are set aside with a warning
   * rather than stopping the hub; they stay stored until the clinic sends new ones.
   */
  private loadAlertRules(): void {
    const { config, log } = this.options;
    const stored = (this.store as Store).settings.get(CLINIC_LIMITS_SETTING);
    const limits = clinicLimitsOf(stored);
    if (stored !== undefined && limits === undefined) {
      log.warn('alerts.clinic-limits-unreadable', { detail: 'not a map of limit keys to values' });
    }
    try {
      this.rulesInForce = rulesInForce(config.alerts.rules, limits ?? {});
      this.clinicLimits = limits ?? {};
    } catch (error) {
      log.warn('alerts.clinic-limits-set-aside', { code: codeOf(error), error: messageOf(error) });
      this.rulesInForce = rulesInForce(config.alerts.rules, {});
    }
    this.alertRules.replaceRules(this.rulesInForce.map((r) => r.rule));
    const fromClinic = this.rulesInForce.filter((r) => r.source === 'clinic').length;
    log.info('alerts.rules', { count: this.rulesInForce.length, detail: `${fromClinic} from the clinic` });
  }

  /**
   * The clinic's signed `config` command: new per-patient limits (docs/wire-format.md 9.3). Checked as a whole
   * (AlertLimitsError, ALERT_LIMITS_INVALID, answered as the command's error), stored so they survive a
   * restart, then in force for the readings judged after this, and audited with the keys that changed.
   */
  private setClinicLimits(set: ClinicLimits): void {
    const store = this.store;
    if (!store?.isOpen) throw new Error('the hub is stopping');
    const merged: ClinicLimits = { ...this.clinicLimits, ...set };
    const inForce = rulesInForce(this.options.config.alerts.rules, merged);
    store.settings.set(CLINIC_LIMITS_SETTING, { ...merged });
    const changed = Object.keys(set)
      .filter((key) => this.clinicLimits[key] !== set[key])
      .sort();
    this.clinicLimits = merged;
    this.rulesInForce = inForce;
    this.alertRules.replaceRules(inForce.map((r) => r.rule));
    this.audit?.record('alerts.limits-changed', 'clinic', { changed, rules: inForce.length });
    this.options.log.info('alerts.limits-changed', { count: changed.length, source: 'clinic' });
  }

  /** A reading's append resolved: counted for the metrics and `status`. */
  private appendObserved(lane: Lane, result: 'stored' | 'duplicate'): void {
    this.surfaces.appended(lane, result);
    if (lane === 'alert' && result === 'stored') this.alertReadings++;
  }

  private clockSynchronised(reading: TimeSyncReading): void {
    if (this.state !== 'running') return;
    const { log } = this.options;
    const held = this.held as HeldStamps;
    const count = held.holding;
    for (const r of held.synchronise()) this.released.next(r);
    log.info('clock.synchronised', { source: reading.source, count });
    this.audit?.record('clock.synchronised', 'gateway', { source: reading.source, held: count });
    this.uplinkWatch.started();
    this.uplink?.start();
    this.scheduleMaintenance();
  }

  private scheduleMaintenance(): void {
    const every = this.options.maintainEveryMs ?? MAINTAIN_EVERY_MS;
    const run = () => {
      this.maintainTimer = undefined;
      if (this.state !== 'running' || !this.store) return;
      try {
        this.store.outbox.maintain();
      } catch (error) {
        this.options.log.error('store.maintain-failed', { code: codeOf(error), error: messageOf(error) });
      }
      this.maintainTimer = this.options.scheduler.setTimeout(run, every);
    };
    this.maintainTimer = this.options.scheduler.setTimeout(run, every);
  }

  // ---- sessions ---------------------------------------------------------------------------------------------

  private async startRadio(): Promise<void> {
    const { config, scheduler, log } = this.options;
    this.central = await this.options.createCentral(config.ble.backend, this.agent.hooks);
    try {
      await this.central.start();
    } catch (error) {
      // Sessions retry (and the watchdog power-cycles) on their own: a radio that is not there yet must not stop
      // the hub from sending what the store holds.
      log.error('radio.start-failed', { code: codeOf(error), error: messageOf(error) });
    }
    const enrolledAddresses = () =>
      new Set(this.store?.devices.list().map((d) => normalizeAddress(d.address)));
    this.radio = new RadioWatchdog({
      central: this.central,
      scheduler,
      isEnrolled: (address) => enrolledAddresses().has(normalizeAddress(address)),
      onEvent: (event) =>
        log.warn(`radio.${event.type}`, {
          problem: event.problem,
          ...('detail' in event ? { detail: event.detail } : {}),
          ...('inMs' in event ? { inMs: event.inMs } : {}),
          ...('attempt' in event ? { attempt: event.attempt } : {}),
        }),
    });
    this.presence = new PresenceMonitor({
      scanner: this.radio,
      scheduler,
      ...(this.options.random ? { random: this.options.random } : {}),
      onEvent: (event) => log.debug(`presence.${event.type}`),
    });
  }

  private startDevice(device: EnrolledDevice): void {
    const entry: SessionEntry = {
      device,
      driverId: device.driverId,
      state: 'not-started',
      detail: undefined,
      lastReadingAt: undefined,
      lastSeenAt: undefined,
      batteryPercent: null,
      lastReading: null,
      readings: 0,
      session: undefined,
      stopped: undefined,
    };
    this.entries.set(device.id, entry);
    this.driverOf.set(device.id, device.driverId);
    const driver = this.drivers?.get(device.driverId);
    if (!driver) {
      entry.state = 'no-driver';
      this.options.log.error('device.no-driver', { deviceId: device.id, driver: device.driverId });
      return;
    }
    this.intake.next(
      this.sessionReadings(entry, guardDriver(driver)).pipe(
        takeUntil(this.stopSession.pipe(filter((id) => id === device.id))),
        map((reading) => {
          entry.readings++;
          entry.lastReadingAt = reading.receivedAt;
          noteReading(entry, reading);
          return reading;
        }),
      ),
    );
  }

  /**
   * One device's readings as a stream: subscribing starts its session, unsubscribing stops it. A failure in it
   * ends this stream only (logged); the merge goes on with the others.
   */
  private sessionReadings(entry: SessionEntry, driver: Driver): Observable<SessionReading> {
    const { scheduler, log } = this.options;
    const { device } = entry;
    const readings = new Subject<SessionReading>();
    const session = new DeviceSession({
      device: { id: device.id, address: device.address, requiresBonding: device.bonded },
      driver,
      central: this.central as CentralPort,
      scheduler,
      ...(this.options.random ? { random: this.options.random } : {}),
      utcOffsetMinutes:
        this.options.utcOffsetMinutes ?? (() => -new Date(scheduler.now()).getTimezoneOffset()),
      ...(this.radio ? { radio: this.radio } : {}),
      ...(this.presence ? { presence: this.presence } : {}),
      mayWriteClock: () => this.timeSync?.synchronised === true,
      // Where its RACP download resumes: the point committed with the last record the store holds.
      racpResume: () => (this.store?.isOpen ? this.store.outbox.racpResumePoint(device.id) : undefined),
      onReading: (reading) => readings.next(reading),
      onDecodeError: (characteristic, error) =>
        log.warn('device.decode-error', { deviceId: device.id, characteristic, code: error.code }),
      onState: (state, detail) => {
        entry.state = state;
        entry.detail = detail;
        log.info('device.state', { deviceId: device.id, state, ...(detail ? { detail } : {}) });
        if (state === 'streaming') {
          entry.lastSeenAt = scheduler.now();
          this.markSeen(device.id);
        }
      },
      onDeviceState: (state) => {
        const battery = batteryPercentOf(state);
        if (battery !== undefined) entry.batteryPercent = battery;
      },
    });
    entry.session = session;
    return new Observable<SessionReading>((subscriber) => {
      const inner = readings.subscribe(subscriber);
      try {
        session.start();
      } catch (error) {
        subscriber.error(error);
      }
      return () => {
        inner.unsubscribe();
        entry.stopped = session.stop().catch(() => undefined);
      };
    }).pipe(
      catchError((error: unknown) => {
        log.error('device.session-failed', { deviceId: device.id, error: messageOf(error) });
        return EMPTY;
      }),
    );
  }

  private async stopDevice(deviceId: string): Promise<void> {
    const entry = this.entries.get(deviceId);
    if (!entry) return;
    this.stopSession.next(deviceId);
    this.entries.delete(deviceId);
    await entry.stopped;
  }

  private markSeen(deviceId: string): void {
    try {
      if (this.store?.isOpen) this.store.devices.markSeen(deviceId, this.options.scheduler.now());
    } catch (error) {
      this.options.log.warn('device.mark-seen-failed', { deviceId, code: codeOf(error) });
    }
  }

  // ---- uplink -----------------------------------------------------------------------------------------------

  private buildUplink(): Uplink {
    const { config, scheduler, log } = this.options;
    const store = this.store as Store;
    const credentials = this.credentials as GatewayCredentials;
    const audit = this.audit as AuditLog;
    const topics = gatewayTopics(config.gateway.id);
    const onCommand = this.commandHandler(credentials, audit);
    if (!onCommand)
      log.warn('commands.disabled', { reason: 'no tls.commandSigners configured: commands are refused' });
    return new Uplink({
      gatewayId: config.gateway.id,
      brokers: config.uplink.brokers,
      protocolVersion: config.uplink.protocolVersion,
      tls: () => credentials.load(),
      outbox: store.outbox,
      codec: signedCodec({
        gatewayId: config.gateway.id,
        version: this.options.version,
        outbox: store.outbox,
        credentials: () => credentials.signing(),
        auditHead: () => {
          try {
            return audit.headHash();
          } catch {
            return undefined;
          }
        },
      }),
      topics,
      scheduler,
      ...(this.options.random ? { random: this.options.random } : {}),
      backoff: config.uplink.backoff,
      window: config.uplink.window,
      maxBatchRows: config.uplink.maxBatchRows,
      liveBatchBytes: config.uplink.liveBatchBytes,
      backlogBatchBytes: config.uplink.backlogBatchBytes,
      connectTimeoutMs: config.uplink.connectTimeoutMs,
      keepaliveSeconds: config.uplink.keepaliveSeconds,
      onEvent: (event) => this.uplinkEvent(event),
      ...(onCommand ? { onCommand } : {}),
    });
  }

  /**
   * Verified downlink commands (src/uplink/commands.ts): only with a clinic CA and command signers configured.
   * Without them the hub does not subscribe to its command topic at all, so every command is refused unread.
   */
  private commandHandler(credentials: GatewayCredentials, audit: AuditLog) {
    const { config, scheduler, log } = this.options;
    const { clinicCa, commandSigners } = config.tls;
    if (clinicCa === undefined || commandSigners.length === 0) return undefined;
    const signers = new CommandSigners({
      clinicCa: readFileSync(clinicCa, 'utf8'),
      certificates: commandSigners.map((file) => readFileSync(file, 'utf8')),
    });
    const toAudit = auditCommandEvents(audit, 'clinic');
    return commandHandler({
      gatewayId: config.gateway.id,
      clock: scheduler,
      signers,
      replayCache: new MemoryReplayCache(scheduler),
      // The remote-configuration whitelist: the alert limits (docs/wire-format.md 9.3), nothing else.
      allowedConfigKeys: clinicLimitKeys(),
      // A command accepted before a restart is never accepted again after it (see VerifyCommandOptions).
      notBefore: scheduler.now() + CLOCK_SKEW_MS,
      actions: { config: async (set) => this.setClinicLimits(set) },
      sign: (result) => {
        const signing = credentials.signing();
        return signCommandResult(result, signing.key, kidForCertificate(signing.certificateDer));
      },
      onEvent: (event) => {
        toAudit(event);
        if (event.type === 'command.accepted') log.info('command.accepted', { status: event.cmd });
        else log.warn('command.refused', { code: event.code, reason: event.reason });
      },
    });
  }

  private uplinkEvent(event: UplinkEvent): void {
    const { log } = this.options;
    this.uplinkWatch.event(event);
    switch (event.type) {
      case 'connected':
        log.info('uplink.connected', { broker: event.broker, attempt: event.attempt });
        return;
      case 'connect-failed':
        log.warn('uplink.connect-failed', {
          broker: event.broker,
          error: event.error,
          retryInMs: event.retryInMs,
          next: event.next,
        });
        if (/^PKI_/.test(event.error)) {
          this.audit?.record('cert.problem', 'gateway', { error: event.error.split(':')[0] ?? 'PKI' });
        }
        return;
      case 'disconnected':
        log.warn('uplink.disconnected', {
          broker: event.broker,
          reason: event.reason,
          released: event.released,
          retryInMs: event.retryInMs,
          next: event.next,
        });
        return;
      case 'batch-acked':
        this.surfaces.metrics?.readingsAcknowledged(event.lane, event.records);
        log.debug('uplink.batch-acked', { lane: event.lane, records: event.records, bytes: event.bytes });
        return;
      case 'command':
        log.debug('uplink.command', { bytes: event.bytes });
        return;
      case 'quarantined':
        log.error('uplink.quarantined', { records: event.records, error: event.error });
        return;
      case 'batch-failed':
        log.error('uplink.batch-failed', { error: event.error });
        return;
    }
  }

  private certificateEvent(event: CertificateEvent): void {
    const { log } = this.options;
    const expiresAt = event.expiry.notAfter.toISOString();
    if (event.type === 'loaded') {
      log.info('cert.loaded', { expiresAt, status: event.expiry.status });
      return;
    }
    if (event.type === 'changed') {
      log.info('cert.changed', { expiresAt });
      this.audit?.record('cert.changed', 'gateway', {
        sha256: event.identity.sha256,
        previous: event.previous.sha256,
      });
      return;
    }
    log.warn('cert.expiring', { expiresAt });
    this.audit?.record('cert.expiring', 'gateway', { sha256: event.identity.sha256, notAfter: expiresAt });
  }

  private storeEvent(event: StoreEvent, toAudit: (event: StoreEvent) => void): void {
    const { log } = this.options;
    try {
      toAudit(event);
    } catch (error) {
      log.error('audit.failed', { error: messageOf(error) });
    }
    switch (event.type) {
      case 'store.opened':
        log.info('store.opened', { path: event.path });
        return;
      case 'store.damaged':
        log.error('store.damaged', { code: event.code, detail: event.message });
        return;
      case 'store.moved-aside':
        log.error('store.moved-aside', { path: event.to, reason: event.reason });
        return;
      case 'store.evicted':
        log.warn('store.evicted', { count: event.count, reason: event.reason });
        return;
    }
  }

  /** The watchdog's question: is the hub doing its job? Running, and the store's commit path working. */
  private healthy(): boolean {
    if (this.state !== 'running' || !this.store?.isOpen) return false;
    if (this.lastAppendFailed) return false;
    try {
      this.store.outbox.stats();
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * The newest measurement of a device (by its time: a stored record downloaded later is older), for the patient
 * page. Info readings (features, device information) are not measurements.
 */
function noteReading(entry: SessionEntry, reading: SessionReading): void {
  if (reading.reading.kind === 'info' || reading.reading.observations.length === 0) return;
  const last = entry.lastReading;
  if (last && Date.parse(last.time) > Date.parse(reading.time)) return;
  entry.lastReading = { time: reading.time, observations: reading.reading.observations };
}

/**
 * A driver whose decoder throws anything but a DecodeError (a bug) would throw out of the radio backend's
 * notification callback. Its failure becomes a DecodeError of that reading, reported and dropped like bad
 * bytes, so the session (and every other) goes on. The driver's own message is not kept: it may quote values.
 */
function guardDriver(driver: Driver): Driver {
  return {
    ...driver,
    characteristics: driver.characteristics.map((spec) => ({
      ...spec,
      decode: (payload, context) => {
        try {
          return spec.decode(payload, context);
        } catch (error) {
          if (error instanceof DecodeError) throw error;
          throw new DecodeError('DECODE_INVALID_FIELD', `the driver ${driver.id} failed on this payload`);
        }
      },
    })),
  };
}

/** The store key as the configuration names it (a file, a systemd credential, or a variable). */
export function keyProvider(ref: SecretRef, env: NodeJS.ProcessEnv): KeyProvider {
  switch (ref.source) {
    case 'file':
      // Never created here: `rpm-gateway init` makes the key with the store.
      return new KeyFileProvider(ref.path, { create: false });
    case 'credential':
      return new SystemdCredentialProvider(ref.name, env);
    case 'env':
      return new EnvKeyProvider(ref.variable, env);
  }
}

/** The path of a secret given as a file or a systemd credential (a file under $CREDENTIALS_DIRECTORY). */
function secretPath(ref: SecretRef, env: NodeJS.ProcessEnv): string {
  switch (ref.source) {
    case 'file':
      return ref.path;
    case 'credential':
      return join(env.CREDENTIALS_DIRECTORY ?? '/run/credentials/rpm-gateway.service', ref.name);
    case 'env':
      throw new Error('a TLS key cannot come from an environment variable');
  }
}

/** The stored clinic limits, when they are what setClinicLimits wrote: a map of keys to scalars. */
function clinicLimitsOf(value: unknown): ClinicLimits | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const entries = Object.entries(value);
  const scalar = (v: unknown) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
  return entries.every(([, v]) => scalar(v)) ? (Object.fromEntries(entries) as ClinicLimits) : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' ? code : undefined;
}
