import { EMPTY, Observable, Subject } from 'rxjs';
import { catchError, filter, map, mergeAll, takeUntil } from 'rxjs/operators';
import { normalizeAddress } from '../ble/address.js';
import type { BackendName } from '../ble/backends.js';
import type { CentralPort } from '../ble/central.js';
import type { DriverRegistry } from '../drivers/registry.js';
import type { Driver } from '../drivers/sdk/define-driver.js';
import type { PairingHooks } from '../enrolment/pairing-agent.js';
import { DecodeError, FrameError } from '../errors.js';
import { EnrolmentGate } from '../pipeline/enrolment-gate.js';
import { DeviceSession, type SessionReading, type SessionState } from '../session/device-session.js';
import { PresenceMonitor } from '../session/presence.js';
import { RadioWatchdog } from '../session/radio-watchdog.js';
import type { EnrolledDevice } from '../store/device-registry.js';
import type { Store } from '../store/store.js';
import type { Scheduler } from '../util/scheduler.js';
import { codeOf, messageOf } from './error-fields.js';
import { batteryPercentOf, type DeviceView } from './hub-view.js';
import type { RuntimeLog } from './log.js';

/**
 * The hub's radio and its sessions: the Central backend, the radio watchdog and the shared presence scan, and
 * one DeviceSession per enrolled device, started, restarted and stopped as devices are enrolled and forgotten.
 * It exists apart from the hub because supervising sessions is a job of its own: each session's readings are
 * one stream (a failure ends that stream only), the enrolment gate keeps a forgotten device's readings out of
 * the pipeline, and what each session last said (state, last seen, battery, newest reading) is kept for the
 * hub's snapshot (src/runtime/hub-view.ts).
 *
 * The hub's parts it needs exist only once the hub has started (the store, the drivers) and are read when used.
 */
export interface SessionSupervisorOptions {
  readonly backend: BackendName;
  /** Builds the radio backend with the pairing agent's hooks (see HubOptions.createCentral). */
  readonly createCentral: (backend: BackendName, hooks: PairingHooks) => Promise<CentralPort>;
  readonly pairingHooks: PairingHooks;
  readonly scheduler: Scheduler;
  readonly log: RuntimeLog;
  readonly random: (() => number) | undefined;
  readonly utcOffsetMinutes: (() => number) | undefined;
  /** The hub's store: undefined before start; closed once it stops. */
  readonly store: () => Store | undefined;
  readonly drivers: () => DriverRegistry | undefined;
  /** May a session write Current Time into its device (only once the system clock is known to be set)? */
  readonly mayWriteClock: () => boolean;
  /** What else forgets a forgotten device (its pending alert episodes), before the forget is logged. */
  readonly onForgotten: (deviceId: string) => void;
}

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

export class SessionSupervisor {
  private readonly entries = new Map<string, SessionEntry>();
  /** The driver of every device that had a session in this run: readings still in the pipeline need it. */
  private readonly driverOf = new Map<string, string>();
  private readonly intake = new Subject<Observable<SessionReading>>();
  private readonly stopSession = new Subject<string>();
  private readonly gate = new EnrolmentGate();
  private centralPort: CentralPort | undefined;
  private presence: PresenceMonitor | undefined;
  private radio: RadioWatchdog | undefined;

  constructor(private readonly options: SessionSupervisorOptions) {}

  /** The radio backend, once started (the control socket's enrolments pair on it). */
  get central(): CentralPort | undefined {
    return this.centralPort;
  }

  /**
   * Every session's readings, merged (one stream per session, each failure kept to its own), of enrolled
   * devices only: a reading of a device forgotten meanwhile is dropped. Completes once the sessions stop.
   */
  readings(): Observable<SessionReading> {
    return this.intake.pipe(
      mergeAll(),
      filter((reading) => this.gate.admit(reading)),
    );
  }

  /** The driver a device's readings are stamped with: the one its session ran with in this run. */
  driverFor(deviceId: string): Driver | undefined {
    const driverId = this.driverOf.get(deviceId);
    return driverId === undefined ? undefined : this.options.drivers()?.get(driverId);
  }

  async startRadio(): Promise<void> {
    const { backend, scheduler, log } = this.options;
    const central = await this.options.createCentral(backend, this.options.pairingHooks);
    this.centralPort = central;
    try {
      await central.start();
    } catch (error) {
      // Sessions retry (and the watchdog power-cycles) on their own: a radio that is not there yet must not stop
      // the hub from sending what the store holds.
      log.error('radio.start-failed', { code: codeOf(error), error: messageOf(error) });
    }
    const enrolledAddresses = () =>
      new Set(
        this.options
          .store()
          ?.devices.list()
          .map((d) => normalizeAddress(d.address)),
      );
    this.radio = new RadioWatchdog({
      central,
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

  /** A session for each of these devices (the registry at start), and only their readings admitted. */
  startAll(devices: readonly EnrolledDevice[]): void {
    this.gate.replace(devices);
    for (const device of devices) this.startDevice(device);
  }

  /** A device was enrolled or re-enrolled: its session (re)starts with what the registry says now. */
  async enrolled(store: Store, deviceId: string): Promise<void> {
    const device = store.devices.get(deviceId);
    this.gate.replace(store.devices.list());
    if (!device) return;
    await this.stopDevice(deviceId);
    this.startDevice(device);
    this.options.log.info('device.session-started', { deviceId, driver: device.driverId });
  }

  /** A device was forgotten: its session stops; readings of it still in flight are dropped by the gate. */
  async forgotten(store: Store, deviceId: string): Promise<void> {
    const entry = this.entries.get(deviceId);
    this.gate.replace(store.devices.list());
    await this.stopDevice(deviceId);
    if (entry) this.presence?.forget(entry.device.address);
    // Its next enrolment (a new id) starts afresh: no resume point, no pending alert episode.
    this.options.onForgotten(deviceId);
    try {
      if (store.isOpen) store.outbox.forgetRacpResumePoint(deviceId);
    } catch (error) {
      this.options.log.warn('device.forget-resume-failed', { deviceId, code: codeOf(error) });
    }
    this.options.log.info('device.session-stopped', { deviceId, reason: 'forgotten' });
  }

  /** Every session stops; no session delivers after this resolves, and readings() completes. */
  async stopSessions(): Promise<void> {
    await Promise.all([...this.entries.keys()].map((id) => this.stopDevice(id)));
    this.intake.complete();
  }

  /** The presence scan, the watchdog and the radio backend, after the sessions. */
  async stopRadio(): Promise<void> {
    this.presence?.close();
    this.radio?.stop();
    await this.centralPort
      ?.stop()
      .catch((error: unknown) => this.options.log.warn('radio.stop-failed', { error: messageOf(error) }));
  }

  /** The devices with a session now (started and not stopped), by id. */
  supervised(): ReadonlyMap<string, EnrolledDevice> {
    return new Map([...this.entries].map(([id, entry]) => [id, entry.device]));
  }

  /** A device as the snapshot shows it: what its session last said, and when it was last heard from. */
  view(device: EnrolledDevice): DeviceView {
    const entry = this.entries.get(device.id);
    const state = entry && entry.state !== 'not-started' && entry.state !== 'no-driver' ? entry.state : null;
    const seen = Math.max(entry?.lastSeenAt ?? -1, entry?.lastReadingAt ?? -1, device.lastSeenAt ?? -1);
    return {
      device,
      state,
      lastSeenMs: seen < 0 ? null : seen,
      batteryPercent: entry?.batteryPercent ?? null,
      lastReading: entry?.lastReading ?? null,
    };
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
    const driver = this.options.drivers()?.get(device.driverId);
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
      central: this.centralPort as CentralPort,
      scheduler,
      ...(this.options.random ? { random: this.options.random } : {}),
      utcOffsetMinutes:
        this.options.utcOffsetMinutes ?? (() => -new Date(scheduler.now()).getTimezoneOffset()),
      ...(this.radio ? { radio: this.radio } : {}),
      ...(this.presence ? { presence: this.presence } : {}),
      mayWriteClock: this.options.mayWriteClock,
      // Where its RACP download resumes: the point committed with the last record the store holds.
      racpResume: () => {
        const store = this.options.store();
        return store?.isOpen ? store.outbox.racpResumePoint(device.id) : undefined;
      },
      onReading: (reading) => readings.next(reading),
      // Counted per code in rpm_gateway_errors_total (the hub's log counts every warn with a code). A framed
      // stream's error also says how many bytes it dropped: never which bytes (they may be values).
      onDecodeError: (characteristic, error) =>
        log.warn('device.decode-error', {
          deviceId: device.id,
          characteristic,
          code: error.code,
          ...(error instanceof FrameError ? { bytes: error.bytes } : {}),
        }),
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
      const store = this.options.store();
      if (store?.isOpen) store.devices.markSeen(deviceId, this.options.scheduler.now());
    } catch (error) {
      this.options.log.warn('device.mark-seen-failed', { deviceId, code: codeOf(error) });
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
