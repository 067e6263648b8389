import { BleError, type CentralPort, type Connection, type ServiceInfo } from '../ble/central.js';
import { CharacteristicStream, type StreamStep } from '../drivers/characteristic-stream.js';
import type { Driver, SetupContext } from '../drivers/sdk/define-driver.js';
import { type DecodeError, DriverError } from '../errors.js';
import { encodeCurrentTime } from '../gatt/device-info.js';
import { decodeRacp } from '../gatt/glucose-racp.js';
import { normalizeUuid } from '../gatt/uuid.js';
import { measurementId } from '../model/ids.js';
import type { Reading } from '../model/observation.js';
import { backoffCeiling } from '../util/backoff.js';
import type { Scheduler } from '../util/scheduler.js';
import { type ClockHandling, DeviceClock, deviceTimeToEpoch, type OffsetEstimate } from './clock-sync.js';
import { checkServices, describeVerdict, type ServicesVerdict, samePresence } from './gatt-check.js';
import { GLUCOSE_CONTEXT, GLUCOSE_MEASUREMENT, GlucoseContextPairing } from './glucose-context.js';
import {
  type DeviceState,
  presentCharacteristics,
  readDeviceState,
  subscribeDriverCharacteristics,
} from './link-setup.js';
import type { Presence } from './presence.js';
import { RacpDownload, type RacpResumePoint } from './racp-download.js';
import type { RadioHealth } from './radio-watchdog.js';
import { ReadingThinner } from './reading-thinner.js';
import { RETRY_RULES, retryDelay } from './retry-policy.js';
import type { SessionState } from './session-states.js';
import { SetupSequence } from './setup-sequence.js';
import { RACP_SERVED, StoredPhase } from './stored-phase.js';
import {
  DEFAULT_REPLAY_TIMING,
  type ReplayEnd,
  type ReplayTiming,
  replayCharacteristics,
  StoredRecordClassifier,
} from './stored-replay.js';

export type { SessionState } from './session-states.js';

export interface SessionReading {
  readonly deviceId: string;
  readonly characteristic: string;
  readonly payload: Uint8Array;
  readonly reading: Reading;
  readonly receivedAt: number;
  /** Measurement time (ISO-8601 UTC) and where it came from. */
  readonly time: string;
  readonly timeSource: 'device' | 'device-corrected' | 'gateway';
  /** True for records the device stored earlier (RACP download, or replayed in a burst on connect). */
  readonly stored: boolean;
  /**
   * On the value that completes a glucose record of a RACP download (its context when one follows, else the
   * measurement): where the next download resumes once this value is stored. The runtime commits it in the
   * same transaction as the value's outbox row (Outbox.append's `progress`).
   */
  readonly racpProgress?: RacpResumePoint;
}

export interface SessionOptions {
  readonly device: { readonly id: string; readonly address: string; readonly requiresBonding?: boolean };
  readonly driver: Driver;
  readonly central: CentralPort;
  readonly scheduler: Scheduler;
  readonly random?: () => number;
  /** The gateway's offset from UTC in minutes (east positive), for reading device wall-clock times. */
  readonly utcOffsetMinutes: () => number;
  readonly connectTimeoutMs?: number;
  /** Where the device's RACP download resumes (racp-download.ts), from the store; undefined: from the start. */
  readonly racpResume?: () => RacpResumePoint | undefined;
  /** Timing of the stored-record replay window (stored-replay.ts); defaults suit real cuffs and scales. */
  readonly storedReplay?: Partial<ReplayTiming>;
  /** The radio watchdog (radio-watchdog.ts), told about failures, connections and readings. */
  readonly radio?: RadioHealth;
  /**
   * The shared scan (presence.ts). With it, a session whose device was not there (not found, gone, link lost,
   * connect unanswered) waits for the device's advertisement as well as its backoff timer, and connects on
   * whichever comes first (through 'discovered'). Without it, only the timer.
   */
  readonly presence?: Presence;
  /**
   * With `presence`: an advertisement wakes the session no sooner than this after the failure, doubling with
   * each advertisement-woken attempt in a row (a timer-woken one resets it), so a device that advertises but
   * drops every link is not reconnected in a tight loop. Default 1 s.
   */
  readonly presenceMinGapMs?: number;
  /**
   * Whether the gateway's own clock may be written into the device (Current Time). The hub answers false until
   * the system clock is synchronised (src/runtime/time-sync.ts): a Pi boots with a wrong clock, and writing it
   * would make the device stamp its next readings wrongly, for good. Meanwhile the clock is measured instead
   * ('measured'), and the next connection after synchronisation writes it. Default: always.
   */
  readonly mayWriteClock?: () => boolean;
  readonly onReading: (reading: SessionReading) => void;
  /** Bad bytes from the radio: reported (without the payload) and dropped; the session goes on. */
  readonly onDecodeError?: (characteristic: string, error: DecodeError) => void;
  /** Every state change, with a detail (error class and message, never an address). */
  readonly onState?: (state: SessionState, detail?: string) => void;
  /**
   * What the driver's 'read' characteristics held when the link was set up (Battery Level 0x2A19, Device
   * Information, Current Time), by characteristic UUID: once per connection, before any notification.
   */
  readonly onDeviceState?: (state: DeviceState) => void;
}

const CURRENT_TIME_SERVICE = '1805';
const CURRENT_TIME = '2a2b';
const RACP = '2a52';
const PRESENCE_MIN_GAP_MS = 1_000;

/**
 * One enrolled device's lifecycle, as a state machine (the diagram and every transition: session-states.ts).
 *
 * - Discovery first, then a check that it is not a stale GATT cache (gatt-check.ts). A stale-looking discovery
 *   of an unbonded device is refreshed once: the backend drops its cached attributes (CentralPort.clearCache)
 *   and the session connects again. A bonded device is not refreshed, because on BlueZ that removes the bond
 *   (Adapter1.RemoveDevice): if it lacks a characteristic the driver needs, it goes to needs-pairing with the
 *   reason (pairing again also discovers afresh). A fresh discovery that still lacks one is reported as
 *   BLE_NOT_SUPPORTED and retried slowly, not in a loop.
 * - Bonds when the device needs it and has no bond yet.
 * - Reads the driver's 'read' characteristics first (decoders see them as ctx.deviceState), the device's
 *   Current Time among them; subscribes to every notify/indicate characteristic the driver declares and the
 *   device has; runs the driver's setup writes in order, each waiting for its expected answer when it declares
 *   one, then the repeating ones (keep-alives, polls) on a timer while connected (setup-sequence.ts). The steps
 *   themselves are in link-setup.ts and setup-sequence.ts; this file orders them and owns the states between
 *   them.
 * - Stored records: over RACP (glucose) it asks for the records after the resume point the store holds, so an
 *   interrupted download resumes without duplicates or holes, across the 16-bit wrap of the sequence number and
 *   after a meter reset (racp-download.ts has the requests and the rules); cuffs, scales and thermometers replay theirs as a burst
 *   of indications after subscribing, told apart from live readings by stored-replay.ts. Both are delivered
 *   with `stored: true`, kept out of the clock-offset estimate, and corrected with the device clock as read at
 *   connect. They come before the time write (see session-states.ts for why).
 * - Time: then writes Current Time (2A2B) when the device allows it ('written'), unless a live measurement is
 *   under way; otherwise measures the clock offset and corrects timestamps ('measured'). clock-sync.ts has the
 *   rules.
 * - Failures back off per error class with jitter (retry-policy.ts); with a `radio` watchdog, adapter and
 *   slot errors are reported to it (it decides about power cycles, so sessions never cycle the adapter in a
 *   loop each); without one, a BLE_ADAPTER failure power-cycles before the retry.
 * - With `presence` (presence.ts), a device that was not there (BLE_NOT_FOUND or BLE_TIMEOUT from the connect
 *   itself, BLE_DEVICE_GONE, a lost link) is also waited for by its advertisement: sleeping cuffs and scales
 *   advertise only briefly after a measurement, and a timer at its 5-minute cap would miss that window. The
 *   advertisement wins over the timer only after a short gap that doubles while advertisement-woken attempts
 *   keep failing (`presenceMinGapMs`).
 * - Every timer uses the injected `scheduler`, so tests run in virtual time.
 */
export class DeviceSession {
  private current: SessionState = 'idle';
  private connection: Connection | undefined;
  private retryTimer: unknown;
  /** This connection's driver setup writes: the sequence, its expected answers, then keep-alives and polls. */
  private setupSequence: SetupSequence | undefined;
  private readonly attemptsByClass = new Map<string, number>();
  private readonly clock = new DeviceClock();
  private readonly replay: StoredRecordClassifier;
  private readonly storedPhase: StoredPhase;
  /** The last replay window saw no record (a device may replay only after its clock is set). */
  private replayedNothing = false;
  /** A live measurement began on this connection before the clock could be written. */
  private measuringNow = false;
  private generation = 0;
  /** The driver's characteristics the last accepted discovery listed. */
  private known: ReadonlySet<string> = new Set();
  /** What the last discovery after a cache clear found (authoritative until the device changes). */
  private freshPresent: ReadonlySet<string> | undefined;
  /** The next discovery follows a cache clear. */
  private expectFresh = false;
  /** The RACP download under way on this connection, if any. */
  private download: RacpDownload | undefined;
  /** The last record of a "report all" so far, held back until the next one or the request's end (racp-download.ts). */
  private held: SessionReading[] = [];
  /** Gives a glucose context its measurement's device time (glucose-context.ts); one connection's worth. */
  private readonly contexts = new GlucoseContextPairing();
  /**
   * This connection's decoding per characteristic (characteristic-stream.ts): a framed characteristic's framer
   * holds the start of a frame split across notifications. New for every connection, so a reconnect never glues
   * a stale half frame to fresh bytes; what the old one held is reported when the attempt ends.
   */
  private streams = new Map<string, CharacteristicStream>();
  /**
   * This connection's thinning of the characteristics that declare `thin` (reading-thinner.ts): at most one live
   * reading per period each. New for every connection; what one holds when the attempt ends is passed on then.
   */
  private thinners = new Map<string, ReadingThinner<SessionReading>>();
  /** The device state read at this connection's setup, which decoders see as ctx.deviceState. */
  private deviceState: DeviceState = {};
  /** Ends the current wait for the device's advertisement (presence), if any. */
  private presenceWait: AbortController | undefined;
  /** Advertisement-woken attempts in a row; the gap before the next such wake doubles with each. */
  private earlyWakes = 0;

  constructor(private readonly options: SessionOptions) {
    this.storedPhase = new StoredPhase(options.scheduler);
    this.replay = new StoredRecordClassifier(
      replayCharacteristics(options.driver),
      options.scheduler,
      { ...DEFAULT_REPLAY_TIMING, ...options.storedReplay },
      (reason, records) => this.replayEnded(reason, records),
    );
  }

  get state(): SessionState {
    return this.current;
  }

  /** How the device clock is handled on the current connection: written at connect, or measured. */
  get clockHandling(): ClockHandling {
    return this.clock.handling;
  }

  /** The clock offset measured from live readings (device minus gateway), if any. */
  get clockOffset(): OffsetEstimate | undefined {
    return this.clock.liveEstimate;
  }

  start(): void {
    if (this.current !== 'idle' && this.current !== 'stopped' && this.current !== 'needs-pairing') return;
    this.freshPresent = undefined;
    this.earlyWakes = 0;
    void this.run();
  }

  async stop(): Promise<void> {
    this.generation++;
    this.clearTimers();
    this.endAttempt();
    this.set('stopped');
    const connection = this.connection;
    this.connection = undefined;
    await connection?.disconnect().catch(() => undefined);
  }

  private set(state: SessionState, detail?: string): void {
    this.current = state;
    this.options.onState?.(state, detail);
  }

  private async run(): Promise<void> {
    const generation = ++this.generation;
    const live = () => generation === this.generation;
    const { central, device, driver } = this.options;
    try {
      this.set('connecting');
      const connection = await central.connect(device.address, {
        timeoutMs: this.options.connectTimeoutMs ?? 20_000,
      });
      if (!live()) {
        await connection.disconnect().catch(() => undefined);
        return;
      }
      this.connection = connection;
      connection.onDisconnect((reason) => {
        if (!live() || this.connection !== connection) return;
        this.linkLost(reason);
      });
      const services = await connection.discover();
      if (!live()) return;
      const verdict = checkServices(services, driver, this.known);
      if (this.expectFresh) {
        this.expectFresh = false;
        this.freshPresent = verdict.present;
      } else if (verdict.suspect && !this.confirmedByFreshDiscovery(verdict)) {
        if (await this.staleServices(connection, verdict, live)) return;
      }
      if (verdict.missingRequired.length > 0) {
        const fresh = this.freshPresent !== undefined && samePresence(verdict.present, this.freshPresent);
        throw new BleError(
          'BLE_NOT_SUPPORTED',
          `${describeVerdict(verdict, driver)}${fresh ? ', even after a fresh service discovery' : ''}`,
        );
      }
      this.known = verdict.present;
      if (device.requiresBonding && !connection.bonded) {
        this.set('bonding');
        await connection.bond();
        if (!live()) return;
      }
      await this.setUp(connection, services, live);
      if (!live()) return;
      this.attemptsByClass.clear();
      this.options.radio?.sessionConnected();
      this.set('streaming', `clock ${this.clock.handling}`);
    } catch (error) {
      if (!live()) return;
      await this.failAttempt(error, live);
    }
  }

  /** The discovery lacks what the last fresh one lacked too: that is the device, not a stale cache. */
  private confirmedByFreshDiscovery(verdict: ServicesVerdict): boolean {
    return this.freshPresent !== undefined && samePresence(verdict.present, this.freshPresent);
  }

  /**
   * Handles a discovery that looks stale. Returns true when it took over the attempt (refreshing, or sending a
   * bonded device to needs-pairing), false when the session should go on with what it has.
   */
  private async staleServices(
    connection: Connection,
    verdict: ServicesVerdict,
    live: () => boolean,
  ): Promise<boolean> {
    const { central, device, driver } = this.options;
    const detail = describeVerdict(verdict, driver);
    if (connection.bonded) {
      // Refreshing would remove the bond on BlueZ; not worth it for optional characteristics.
      if (verdict.missingRequired.length === 0) return false;
      this.connection = undefined;
      await connection.disconnect().catch(() => undefined);
      if (!live()) return true;
      this.set(
        'needs-pairing',
        `BLE_NOT_FOUND: ${detail}; the device is bonded and refreshing its cached services would remove the bond: pair it again`,
      );
      return true;
    }
    // Let go of the link before telling anyone: its end is ours, not a loss.
    this.connection = undefined;
    this.set('refreshing-services', detail);
    await connection.disconnect().catch(() => undefined);
    if (!live()) return true;
    await central.clearCache?.(device.address);
    if (!live()) return true;
    this.expectFresh = true;
    void this.run();
    return true;
  }

  private async setUp(
    connection: Connection,
    services: readonly ServiceInfo[],
    live: () => boolean,
  ): Promise<void> {
    const { driver, scheduler } = this.options;
    const present = presentCharacteristics(services);
    this.clock.newConnection();
    this.replay.reset();
    this.contexts.forget();
    this.replayedNothing = false;
    this.measuringNow = false;
    this.streams = new Map();
    this.flushThinners();
    this.deviceState = {};
    // Reads first, so that decoders of notifications see them (ctx.deviceState); the Current Time read here,
    // before any write, says what the clock that stamped the stored records shows.
    const deviceState = await readDeviceState(connection, driver, present, {
      scheduler,
      onDecodeError: (uuid, error) => this.options.onDecodeError?.(uuid, error),
      onDeviceTime: (uuid, time, readAt, fractions256) => {
        if (uuid === CURRENT_TIME)
          this.clock.noteClockRead(time, this.options.utcOffsetMinutes(), readAt, fractions256);
      },
    });
    if (!live()) return;
    this.deviceState = deviceState;
    this.options.onDeviceState?.(deviceState);
    this.set('subscribing');
    await subscribeDriverCharacteristics(
      connection,
      driver,
      present,
      (uuid) => {
        // The device starts replaying stored records as soon as this CCCD is written.
        if (this.replay.replays(uuid) && !this.replay.windowOpen) this.replay.openWindow();
      },
      (uuid, value) => {
        if (live()) this.deliver(uuid, value, deviceState);
      },
    );
    // A repeating write whose answers stop coming fails the attempt like any other link failure.
    const sequence = new SetupSequence(
      scheduler,
      (error) => {
        if (!live() || this.connection !== connection) return;
        // A new generation: whatever of this attempt is still awaiting (a stored-record phase, the time write)
        // stops where it is, and only the failure's own handling goes on.
        const generation = ++this.generation;
        void this.failAttempt(error, () => generation === this.generation);
      },
      () => this.setupContext(),
      driver.id,
    );
    this.setupSequence = sequence;
    await sequence.run(connection, driver, () => live() && this.connection !== undefined);
    if (!live()) return;
    // Stored records before the time write: they were stamped by the clock as it is now, which the Current
    // Time read above measured. Writing first would leave a record cut off by a dropped link to arrive on the
    // next connection stamped by a clock that no longer exists.
    let storedDetail: string | undefined;
    if (present.has(RACP) && driver.characteristics.some((c) => normalizeUuid(c.uuid) === RACP)) {
      this.set('fetching-stored', 'RACP report');
      const download = new RacpDownload(this.options.racpResume?.());
      this.download = download;
      let request: Uint8Array | undefined = download.firstRequest();
      // One request after another (GLS 1.0.1 3.4.1: one procedure at a time), each ended by its response code.
      while (request !== undefined) {
        const done = this.storedPhase.wait();
        this.storedPhase.beginRacpReport();
        await connection.write(present.get(RACP)?.service ?? '1808', RACP, request, { withResponse: true });
        storedDetail = await done;
        if (!live()) {
          // Held back from a "report all" that the link cut: it moved no resume point, the meter sends it again.
          this.held = [];
          return;
        }
        this.releaseHeld(download.settled());
        request = download.next();
      }
      this.download = undefined;
    } else if (this.replay.windowOpen) {
      this.set('fetching-stored', 'stored records replayed after subscribing');
      storedDetail = await this.storedPhase.wait();
    }
    if (!live()) return;
    this.set('syncing-time', storedDetail);
    await this.syncTime(connection, present.get(CURRENT_TIME)?.properties.includes('write') === true);
    if (!live()) return;
    // Some devices replay only once their clock is set: a second window after the write catches them.
    if (this.clock.handling === 'written' && this.replayedNothing) {
      this.replay.openWindow();
    }
  }

  /**
   * Writes Current Time when allowed; a device that refuses the write has its clock measured instead. Not while
   * a measurement is under way (intermediate values came): the device may stamp it with the time it started.
   * Not while the gateway's own clock is not known to be set (`mayWriteClock`).
   */
  private async syncTime(connection: Connection, writable: boolean): Promise<void> {
    if (!writable || this.measuringNow || this.options.mayWriteClock?.() === false) {
      this.clock.handling = 'measured';
      return;
    }
    try {
      await connection.write(CURRENT_TIME_SERVICE, CURRENT_TIME, encodeCurrentTime(this.localFields()), {
        withResponse: true,
      });
      this.clock.handling = 'written';
    } catch (error) {
      // CTS 1.1: a server may reject a time it does not accept ("Data field ignored"); the link is fine.
      if (!(error instanceof BleError) || error.code !== 'BLE_NOT_SUPPORTED') throw error;
      this.clock.handling = 'measured';
    }
  }

  private replayEnded(reason: ReplayEnd, records: number): void {
    this.replayedNothing = records === 0;
    if (reason === 'live-measurement') this.measuringNow = true;
    if (!this.storedPhase.racpReport) this.storedPhase.end(`stored records: ${records} (${reason})`);
  }

  /**
   * One notification, indication or read value. A framed characteristic's bytes go through this connection's
   * framer first: each whole frame is decoded and delivered on its own (its bytes are the reading's payload, so
   * a stored record keeps its id whatever the notification boundaries were), and each frame error (bad
   * checksum, garbage, oversized frame) is reported without the bytes and counted; the frames after it go on.
   */
  private deliver(uuid: string, payload: Uint8Array, deviceState: DeviceState): void {
    const { driver } = this.options;
    let stream = this.streams.get(uuid);
    if (!stream) {
      const spec = driver.characteristics.find((c) => normalizeUuid(c.uuid) === uuid);
      if (!spec) return;
      stream = new CharacteristicStream(driver, spec);
      this.streams.set(uuid, stream);
    }
    this.deliverSteps(uuid, stream.push(payload, { characteristic: uuid, deviceState }));
  }

  private deliverSteps(uuid: string, steps: readonly StreamStep[]): void {
    for (const step of steps) {
      if (step.error) {
        this.options.onDecodeError?.(uuid, step.error);
        // A context after a measurement that could not be decoded must not take an older measurement's time.
        if (uuid === GLUCOSE_MEASUREMENT) this.contexts.forget();
        // A frame the decoder refused may still answer a setup step (an acknowledgement it does not decode).
        if (step.frame) this.setupSequence?.offer(uuid, step.frame);
        continue;
      }
      // The frame answers a waiting setup step (if it matches) and is decoded as usual: a poll's answer is a reading.
      this.setupSequence?.offer(uuid, step.frame);
      this.deliverReadings(uuid, step.frame, step.readings);
    }
  }

  private deliverReadings(uuid: string, payload: Uint8Array, readings: readonly Reading[]): void {
    const { device } = this.options;
    this.options.radio?.activity();
    if (uuid === RACP) {
      // The RACP response ends the request under way (GLS 1.0.1 3.4: "response code" indication).
      try {
        const message = decodeRacp(payload);
        if (message.opCode === 'response-code' && this.storedPhase.racpReport) {
          this.download?.noteControlPoint(message);
          this.storedPhase.end(`stored records: ${message.responseCodeName}`);
        }
      } catch {
        // decoded above already; nothing else to learn
      }
      return;
    }
    const receivedAt = this.options.scheduler.now();
    const utcOffset = this.options.utcOffsetMinutes();
    const fromReport = this.storedPhase.racpReport && RACP_SERVED.has(uuid);
    if (fromReport) this.storedPhase.reportAlive();
    for (const decoded of readings) {
      // A context takes its measurement's device time, so a re-sent one gets the same id (glucose-context.ts).
      if (uuid === GLUCOSE_MEASUREMENT) this.contexts.noteMeasurement(decoded);
      const { reading, paired } =
        uuid === GLUCOSE_CONTEXT ? this.contexts.pair(decoded) : { reading: decoded, paired: false };
      let racpProgress: RacpResumePoint | undefined;
      if (fromReport && this.download) {
        const verdict = this.admitRecord(uuid, reading, payload);
        if (!verdict.deliver) continue;
        racpProgress = verdict.progress;
      }
      const deviceEpoch = reading.time === null ? undefined : deviceTimeToEpoch(reading.time, utcOffset);
      const stored =
        (this.storedPhase.racpReport && RACP_SERVED.has(uuid)) ||
        this.replay.classify(uuid, reading, deviceEpoch, this.clock.handling === 'written');
      let time = new Date(receivedAt).toISOString();
      let timeSource: SessionReading['timeSource'] = 'gateway';
      if (reading.time !== null) {
        const corrected = this.clock.timeOf(
          reading.time,
          utcOffset,
          receivedAt,
          stored,
          // A paired context's time is its measurement's, already counted: not a second clock sample.
          reading.kind !== 'info' && !paired,
        );
        time = corrected.time;
        timeSource = corrected.source;
      }
      const out: SessionReading = {
        deviceId: device.id,
        characteristic: uuid,
        payload,
        reading,
        receivedAt,
        time,
        timeSource,
        stored,
        ...(racpProgress ? { racpProgress } : {}),
      };
      if (fromReport && this.download?.holdsBack) {
        // A new record: the one held before it is not the report's last.
        if (uuid !== GLUCOSE_CONTEXT) this.releaseHeld(undefined);
        this.held.push(out);
        continue;
      }
      // A declared waveform-rate stream: one live reading per period goes on (stored records are all kept).
      const thinner = stored ? undefined : this.thinnerOf(uuid);
      if (thinner) thinner.offer(out);
      else this.options.onReading(out);
    }
  }

  /** The thinning of `uuid` on this connection, when its characteristic declares `thin`. */
  private thinnerOf(uuid: string): ReadingThinner<SessionReading> | undefined {
    const existing = this.thinners.get(uuid);
    if (existing) return existing;
    const spec = this.options.driver.characteristics.find((c) => normalizeUuid(c.uuid) === uuid);
    if (spec?.thin === undefined) return undefined;
    const thinner = new ReadingThinner<SessionReading>(spec.thin.everyMs, this.options.scheduler, (r) =>
      this.options.onReading(r),
    );
    this.thinners.set(uuid, thinner);
    return thinner;
  }

  /** Passes on what the thinners hold (the link ended) and starts the next connection without them. */
  private flushThinners(): void {
    const thinners = this.thinners;
    this.thinners = new Map();
    for (const thinner of thinners.values()) thinner.flush();
  }

  /** Delivers the held-back record of a "report all", its last value carrying `progress` when there is one. */
  private releaseHeld(progress: RacpResumePoint | undefined): void {
    const held = this.held;
    this.held = [];
    for (const [i, reading] of held.entries()) {
      const last = i === held.length - 1;
      this.options.onReading(
        last && progress !== undefined ? { ...reading, racpProgress: progress } : reading,
      );
    }
  }

  /** Asks the RACP download whether a record of the report is delivered (racp-download.ts). */
  private admitRecord(
    uuid: string,
    reading: Reading,
    payload: Uint8Array,
  ): { deliver: boolean; progress?: RacpResumePoint } {
    const download = this.download as RacpDownload;
    const sequence = reading.details?.['sequenceNumber'];
    if (typeof sequence !== 'number') return { deliver: true };
    if (uuid === GLUCOSE_CONTEXT) return download.context(sequence);
    // The id stamp() will give it (src/pipeline/stamp.ts): what the store keeps as the resume point's anchor.
    const id =
      reading.time === null
        ? null
        : measurementId({
            deviceId: this.options.device.id,
            characteristic: uuid,
            deviceTime: reading.time,
            payload,
          });
    return download.measurement(sequence, id, reading.details?.['contextFollows'] === true);
  }

  /** The link ended while the session held it: this attempt is over, in-flight calls are ignored. */
  private linkLost(reason: string): void {
    this.generation++;
    this.connection = undefined;
    this.endAttempt();
    this.set('lost', reason);
    this.retry('BLE_DEVICE_GONE', undefined, true);
  }

  private async failAttempt(error: unknown, live: () => boolean): Promise<void> {
    const during = this.current;
    const connection = this.connection;
    // No link yet while connecting: the connect call itself failed (the device was not found or did not answer).
    const atConnect = during === 'connecting' && connection === undefined;
    this.connection = undefined;
    this.endAttempt();
    await connection?.disconnect().catch(() => undefined);
    if (!live()) return;
    // A driver's setup value that cannot be computed keeps its own code in the detail; it retries as 'unknown'.
    const code = error instanceof BleError || error instanceof DriverError ? error.code : 'unknown';
    if (during === 'bonding' && code === 'BLE_NOT_SUPPORTED') {
      // The backend cannot bond at all (noble has no pairing API): retrying will not change that, and each try
      // wakes the device. Stop for the user, as after a refused passkey; the detail says why.
      this.options.radio?.sessionFailed(code);
      this.set('needs-pairing', `${code}: ${(error as Error).message}`);
      return;
    }
    this.retry(code, error, absent(code, atConnect));
  }

  /** `deviceAbsent`: the device was not there; with `presence`, its advertisement may end the backoff early. */
  private retry(code: string, error?: unknown, deviceAbsent = false): void {
    this.cancelPresenceWait();
    const known = code in RETRY_RULES ? (code as keyof typeof RETRY_RULES) : 'unknown';
    const rule = RETRY_RULES[known];
    this.options.radio?.sessionFailed(known);
    const message = error instanceof Error ? `: ${error.message}` : '';
    if (rule.action === 'wait-for-user') {
      this.set('needs-pairing', `${code}${message}`);
      return;
    }
    const attempt = this.attemptsByClass.get(code) ?? 0;
    this.attemptsByClass.set(code, attempt + 1);
    const delay = retryDelay(rule, attempt, this.options.random ?? Math.random);
    this.set('backoff', `${code}${message}`);
    if (this.retryTimer !== undefined) this.options.scheduler.clearTimeout(this.retryTimer);
    this.retryTimer = this.options.scheduler.setTimeout(() => {
      this.retryTimer = undefined;
      if (this.current !== 'backoff') return;
      this.cancelPresenceWait();
      this.earlyWakes = 0;
      if (rule.action === 'recover-adapter' && !this.options.radio) {
        void this.options.central
          .powerCycle()
          .catch(() => undefined)
          .then(() => {
            if (this.current === 'backoff') void this.run();
          });
      } else {
        void this.run();
      }
    }, delay);
    if (deviceAbsent && rule.action === 'retry') this.awaitPresence(delay);
  }

  /**
   * Waits for the device's advertisement alongside the backoff timer (`timerDelay`). The wait starts after the
   * early-wake gap, so that only an advertisement after it counts; when the gap is not shorter than the timer,
   * the timer decides alone.
   */
  private awaitPresence(timerDelay: number): void {
    const { presence, scheduler, device } = this.options;
    if (!presence) return;
    this.cancelPresenceWait();
    const base = this.options.presenceMinGapMs ?? PRESENCE_MIN_GAP_MS;
    const gap = backoffCeiling(this.earlyWakes, base, Number.POSITIVE_INFINITY);
    if (gap >= timerDelay) return;
    const controller = new AbortController();
    this.presenceWait = controller;
    const generation = this.generation;
    const gapTimer = scheduler.setTimeout(() => {
      if (controller.signal.aborted) return;
      presence.waitFor(device.address, controller.signal).then(
        () => {
          if (controller.signal.aborted || this.generation !== generation || this.current !== 'backoff')
            return;
          this.presenceWait = undefined;
          if (this.retryTimer !== undefined) scheduler.clearTimeout(this.retryTimer);
          this.retryTimer = undefined;
          this.earlyWakes++;
          this.set('discovered', 'advertisement seen');
          // onState may have stopped the session in 'discovered'.
          if (this.state === 'discovered') void this.run();
        },
        // Cancelled (the timer won, stop(), or the monitor closed): the timer, if any, goes on alone.
        () => undefined,
      );
    }, gap);
    controller.signal.addEventListener('abort', () => scheduler.clearTimeout(gapTimer), { once: true });
  }

  private cancelPresenceWait(): void {
    const controller = this.presenceWait;
    this.presenceWait = undefined;
    controller?.abort();
  }

  /** Ends what belongs to one attempt: keep-alive timers, the replay window, a pending stored phase. */
  private endAttempt(): void {
    // The link is gone: a frame a framer still holds the start of can never complete; report it (and deliver any
    // whole frame that sat behind a false sync) before the next connection starts afresh.
    const streams = this.streams;
    this.streams = new Map();
    for (const [uuid, stream] of streams) {
      this.deliverSteps(uuid, stream.end({ characteristic: uuid, deviceState: this.deviceState }));
    }
    // After the framers: a whole frame they still gave up belongs to the period it arrived in.
    this.flushThinners();
    this.download = undefined;
    this.held = []; // a cut "report all" moved no resume point: the meter sends these again
    this.setupSequence?.clear();
    this.setupSequence = undefined;
    this.replay.cancel();
    this.storedPhase.end('the attempt ended');
  }

  private clearTimers(): void {
    this.setupSequence?.clear();
    this.cancelPresenceWait();
    if (this.retryTimer !== undefined) this.options.scheduler.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /**
   * What a computed setup value sees (SetupContext): the session's clock, or null while the hub's own clock is
   * not known to be synchronised, by the same rule as the Current Time write (`mayWriteClock`).
   */
  private setupContext(): SetupContext {
    const synchronised = this.options.mayWriteClock?.() !== false;
    return {
      now: synchronised ? new Date(this.options.scheduler.now()) : null,
      utcOffsetMinutes: this.options.utcOffsetMinutes(),
    };
  }

  private localFields() {
    const local = new Date(this.options.scheduler.now() + this.options.utcOffsetMinutes() * 60_000);
    return {
      year: local.getUTCFullYear(),
      month: local.getUTCMonth() + 1,
      day: local.getUTCDate(),
      hours: local.getUTCHours(),
      minutes: local.getUTCMinutes(),
      seconds: local.getUTCSeconds(),
    };
  }
}

/**
 * Failures that mean the device was not there (asleep, out of range), so its advertisement is news: not found
 * or unanswered at connect (BlueZ answers BLE_NOT_FOUND after a discovery that did not see it; a page that got
 * no answer times out), or gone (link or device). A BLE_NOT_FOUND or BLE_TIMEOUT on a live link is about the
 * GATT database or a busy device, which an advertisement says nothing about.
 */
function absent(code: string, atConnect: boolean): boolean {
  if (code === 'BLE_DEVICE_GONE') return true;
  return atConnect && (code === 'BLE_NOT_FOUND' || code === 'BLE_TIMEOUT');
}
