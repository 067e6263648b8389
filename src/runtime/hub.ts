import { concatMap, EMPTY, from, merge, type Observable, Subject, type Subscription } from 'rxjs';
import { AuditLog } from '../audit/audit-log.js';
import type { BackendName } from '../ble/backends.js';
import type { CentralPort } from '../ble/central.js';
import { statePaths } from '../config/paths.js';
import type { GatewayConfig } from '../config/schema.js';
import { keyProvider, secretPath } from '../config/secrets.js';
import type { HubStatus } from '../control/status.js';
import { loadBundledRegistry } from '../drivers/default-registry.js';
import type { DriverRegistry } from '../drivers/registry.js';
import { PairingAgent, type PairingHooks } from '../enrolment/pairing-agent.js';
import type { Measurement } from '../model/measurement.js';
import { HeldStamps, type MonotonicClock, performanceClock } from '../pipeline/held-stamps.js';
import { stamp } from '../pipeline/stamp.js';
import { GatewayCredentials } from '../pki/credentials.js';
import type { SessionReading } from '../session/device-session.js';
import { auditStoreEvents } from '../store/audit-events.js';
import { keyProtection } from '../store/key-protection.js';
import type { KeyProvider } from '../store/keys.js';
import type { Lane, StoreEvent } from '../store/outbox.js';
import { Store } from '../store/store.js';
import { wireItemRecords } from '../uplink/record-codec.js';
import type { Uplink } from '../uplink/uplink.js';
import type { Scheduler, TimerHandle } from '../util/scheduler.js';
import { AlertLimits } from './alert-limits.js';
import { clinicCommands } from './clinic-commands.js';
import { codeOf, messageOf } from './error-fields.js';
import type { ControlledHub, ControlledParts } from './hub-control-adapter.js';
import { HubControlAdapter } from './hub-control-adapter.js';
import { countingErrors, HubSurfaces } from './hub-surfaces.js';
import { controlStatus, type HubView, metricsSnapshot, pageSnapshot } from './hub-view.js';
import type { RuntimeLog } from './log.js';
import { laneStage, type Routed } from './reading-lanes.js';
import { SessionSupervisor } from './session-supervisor.js';
import { type ServiceNotifier, serviceNotifier } from './systemd-notify.js';
import { NOT_REQUIRED, type TimeSyncProbe, type TimeSyncReading, TimeSyncWatch } from './time-sync.js';
import { UplinkWatch } from './uplink-watch.js';
import { buildUplink, certificateEvents } from './uplink-wiring.js';

// The store key provider moved to src/config/secrets.ts with the configuration's other secret references;
// re-exported here so that code importing it from the hub keeps working.
export { keyProvider } from '../config/secrets.js';

/**
 * The composition root: one running hub. It owns, and starts and stops in order, the store (outbox and device
 * registry), the radio (a Central backend, the shared presence scan, the radio watchdog) and one DeviceSession
 * per enrolled device (both supervised by src/runtime/session-supervisor.ts), the reading pipeline, the uplink to
 * the clinic broker (src/runtime/uplink-wiring.ts; its commands: src/runtime/clinic-commands.ts), and the
 * service manager protocol. This file is the wiring and the order; each part's own work is in its module.
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
 * The alert rules in force (src/runtime/alert-limits.ts) are the configuration's `alerts.rules` with the
 * clinic's per-patient limits laid over them (src/pipeline/alert-config.ts: clinic > file > defaults); the
 * clinic sets them with the signed `config` command and the store keeps them across restarts. The outbox and the uplink keep their own hot
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

const MAINTAIN_EVERY_MS = 10 * 60_000;

export class Hub implements ControlledHub {
  private state: HubState = 'new';
  private readonly options: HubOptions;
  private startedAt: number | undefined;
  private keys: KeyProvider | undefined;
  private readonly agent = new PairingAgent();
  private readonly uplinkWatch: UplinkWatch;
  private readonly surfaces: HubSurfaces;
  private readonly sessions: SessionSupervisor;
  private readonly alerts: AlertLimits;
  private alertReadings = 0;
  private store: Store | undefined;
  private audit: AuditLog | undefined;
  private drivers: DriverRegistry | undefined;
  private uplink: Uplink | undefined;
  private credentials: GatewayCredentials | undefined;
  private timeSync: TimeSyncWatch | undefined;
  private held: HeldStamps | undefined;
  private notifier: ServiceNotifier | undefined;
  private maintainTimer: TimerHandle | undefined;
  /**
   * Appends not yet settled, and who waits for the last of them (stop). A count, not a Set of the promises:
   * only the count matters, and a long-lived Set that every reading adds to and deletes from makes garbage in
   * V8's old generation (src/util/ordered-ring.ts).
   */
  private appendsInFlight = 0;
  private appendsSettled: (() => void) | undefined;
  private readonly released = new Subject<SessionReading>();
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
    const { log } = this.options;
    this.alerts = new AlertLimits({
      configured: config.alerts.rules,
      log,
      store: () => this.store,
      audit: () => this.audit,
    });
    this.sessions = new SessionSupervisor({
      backend: config.ble.backend,
      createCentral: options.createCentral,
      pairingHooks: this.agent.hooks,
      scheduler,
      log,
      random: options.random,
      utcOffsetMinutes: options.utcOffsetMinutes,
      store: () => this.store,
      drivers: () => this.drivers,
      mayWriteClock: () => this.timeSync?.synchronised === true,
      onForgotten: (deviceId) => this.alerts.rules.forgetDevice(deviceId),
    });
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
    this.alerts.load();
    this.drivers = this.options.drivers ?? (await loadBundledRegistry());
    this.credentials = new GatewayCredentials(
      {
        caFile: config.tls.ca,
        certFile: config.tls.cert,
        keyFile: secretPath(config.tls.key, this.options.env),
      },
      { clock: scheduler, onEvent: certificateEvents(log, audit) },
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

    await this.sessions.startRadio();
    const devices = this.store.devices.list();
    this.sessions.startAll(devices);

    const credentials = this.credentials;
    this.uplink = buildUplink({
      config,
      version: this.options.version,
      scheduler,
      log,
      random: this.options.random,
      store: this.store,
      credentials,
      audit,
      onCommand: clinicCommands({
        config,
        scheduler,
        log,
        credentials,
        audit,
        setAlertLimits: (set) => this.alerts.set(set),
      }),
      watch: this.uplinkWatch,
      metrics: this.surfaces.metrics,
    });

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
    await this.sessions.stopSessions();
    // 2. Readings held for the clock: stored, flagged, rather than lost with the process.
    if (this.held && !this.held.isSynchronised && this.held.holding > 0) {
      const count = this.held.holding;
      for (const reading of this.held.releaseUnsynchronised()) this.released.next(reading);
      log.warn('clock.stopped-unsynchronised', { count });
    }
    this.released.complete();
    // 3. In-flight appends commit (the outbox commits queued appends in one transaction).
    await new Promise<void>((resolve) => {
      if (this.appendsInFlight === 0) resolve();
      else this.appendsSettled = resolve;
    });
    this.pipeline?.unsubscribe();
    // 4. The uplink publishes the offline status (retained) and disconnects; leases go back to the store.
    if (this.maintainTimer !== undefined) scheduler.clearTimeout(this.maintainTimer);
    this.timeSync?.stop();
    await this.uplink?.stop();
    this.uplinkWatch.stopped();
    // 5. The radio.
    await this.sessions.stopRadio();
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
    const { store, audit, drivers, keys } = this;
    const central = this.sessions.central;
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
    const enrolled = open ? open.devices.list() : [...this.sessions.supervised().values()];
    return {
      running: this.state === 'running',
      gatewayId: config.gateway.id,
      hubName: config.gateway.label ?? config.gateway.id,
      startedAtMs: this.startedAt ?? null,
      nowMs: scheduler.now(),
      devices: enrolled.map((device) => this.sessions.view(device)),
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
      alertRules: this.alerts.rulesInForce.map(({ rule, source }) => ({ id: rule.id, source })),
    };
  }

  /** A device was enrolled or re-enrolled: its session (re)starts with what the registry says now. */
  async deviceEnrolled(deviceId: string): Promise<void> {
    if (this.state !== 'running' || !this.store) return;
    await this.sessions.enrolled(this.store, deviceId);
  }

  /** A device was forgotten: its session stops; readings of it still in flight are dropped by the gate. */
  async deviceForgotten(deviceId: string): Promise<void> {
    if (this.state !== 'running' || !this.store) return;
    await this.sessions.forgotten(this.store, deviceId);
  }

  // ---- the reading path ------------------------------------------------------------------------------------

  private buildPipeline(): Observable<Routed> {
    const held = this.held as HeldStamps;
    const timed = merge(
      this.sessions.readings().pipe(concatMap((reading) => from(held.accept(reading)))),
      this.released,
    );
    return timed.pipe(
      concatMap((reading) => {
        const driver = this.sessions.driverFor(reading.deviceId);
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
        rules: this.alerts.rules,
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
    this.appendsInFlight++;
    void pending.finally(() => {
      if (--this.appendsInFlight > 0) return;
      const settled = this.appendsSettled;
      this.appendsSettled = undefined;
      settled?.();
    });
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
