import { BleError, type CentralPort, type Connection, type ServiceInfo } from '../ble/central.js';
import type { Driver } from '../drivers/sdk/define-driver.js';
import { DecodeError } from '../errors.js';
import { encodeCurrentTime } from '../gatt/device-info.js';
import { decodeRacp, encodeRacpReportAll, encodeRacpReportFrom } from '../gatt/glucose-racp.js';
import { normalizeUuid } from '../gatt/uuid.js';
import type { Reading } from '../model/observation.js';
import { ClockOffsetEstimator, correctDeviceTime } from './clock-sync.js';
import { RETRY_RULES, retryDelay } from './retry-policy.js';

/**
 * One enrolled device's lifecycle, as a state machine:
 *
 *   idle -> connecting -> [bonding] -> subscribing -> syncing-time -> [fetching-stored] -> streaming
 *                 ^                                                                          |
 *                 +------------------- backoff <------------- lost <-------------------------+
 *   any failure -> backoff (per error class) | needs-pairing (authentication) | stopped
 *
 * - Subscribes to every notify/indicate characteristic the driver declares and the device has; reads the
 *   driver's 'read' characteristics first, so decoders see them as ctx.deviceState (e.g. features).
 * - Time: writes Current Time (2A2B) when the device allows it ('written'); otherwise measures the clock offset
 *   from live readings and corrects timestamps ('measured'). Stored records (replayed on connect, or fetched
 *   over RACP) are not used to measure the offset: they are old by nature.
 * - Stored records over RACP (glucose): asks for records after the last sequence number delivered, so an
 *   interrupted download resumes without duplicates (the outbox also drops re-sent ids).
 * - Driver setup writes run after subscribing; repeating ones (keep-alives) run on a timer while connected.
 * - Every timer uses the injected `timers`, so tests run in virtual time.
 */
export type SessionState =
  | 'idle'
  | 'connecting'
  | 'bonding'
  | 'subscribing'
  | 'syncing-time'
  | 'fetching-stored'
  | 'streaming'
  | 'lost'
  | 'backoff'
  | 'needs-pairing'
  | 'stopped';

export interface Timers {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface SessionReading {
  readonly deviceId: string;
  readonly characteristic: string;
  readonly payload: Uint8Array;
  readonly reading: Reading;
  readonly receivedAt: number;
  /** Measurement time (ISO-8601 UTC) and where it came from. */
  readonly time: string;
  readonly timeSource: 'device' | 'device-corrected' | 'gateway';
  /** True for records the device stored earlier (RACP download, or replayed on connect before the first live). */
  readonly stored: boolean;
}

export interface SessionOptions {
  readonly device: { readonly id: string; readonly address: string; readonly requiresBonding?: boolean };
  readonly driver: Driver;
  readonly central: CentralPort;
  readonly timers: Timers;
  readonly random?: () => number;
  /** The gateway's offset from UTC in minutes (east positive), for reading device wall-clock times. */
  readonly utcOffsetMinutes: () => number;
  readonly connectTimeoutMs?: number;
  /** The last glucose sequence number already delivered (RACP resume), from the store. */
  readonly lastSequence?: () => number | undefined;
  readonly onReading: (reading: SessionReading) => void;
  /** Bad bytes from the radio: reported (without the payload) and dropped; the session goes on. */
  readonly onDecodeError?: (characteristic: string, error: DecodeError) => void;
  readonly onState?: (state: SessionState, detail?: string) => void;
}

const CURRENT_TIME_SERVICE = '1805';
const CURRENT_TIME = '2a2b';
const RACP = '2a52';
const GLUCOSE_MEASUREMENT = '2a18';

export class DeviceSession {
  private current: SessionState = 'idle';
  private connection: Connection | undefined;
  private retryTimer: unknown;
  private readonly repeatTimers = new Set<unknown>();
  private attemptsByClass = new Map<string, number>();
  private readonly offset = new ClockOffsetEstimator();
  private timeSync: 'written' | 'measured' | 'none' = 'none';
  private storedPhase = false;
  private generation = 0;

  constructor(private readonly options: SessionOptions) {}

  get state(): SessionState {
    return this.current;
  }

  /** How the device clock is handled: written at connect, or measured from live readings. */
  get clockHandling(): 'written' | 'measured' | 'none' {
    return this.timeSync;
  }

  start(): void {
    if (this.current !== 'idle' && this.current !== 'stopped' && this.current !== 'needs-pairing') return;
    void this.run();
  }

  async stop(): Promise<void> {
    this.generation++;
    this.clearTimers();
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
    const { central, device } = this.options;
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
        this.connection = undefined;
        this.clearRepeats();
        this.set('lost', reason);
        this.retry('BLE_DEVICE_GONE');
      });
      if (device.requiresBonding && !connection.bonded) {
        this.set('bonding');
        await connection.bond();
      }
      const services = await connection.discover();
      this.storedPhase = false;
      await this.setUp(connection, services, live);
      if (!live()) return;
      this.attemptsByClass.clear();
      // With a RACP download under way the state stays 'fetching-stored' until the meter's response code.
      if (!this.storedPhase) this.set('streaming');
    } catch (error) {
      if (!live()) return;
      const connection = this.connection;
      this.connection = undefined;
      this.clearRepeats();
      await connection?.disconnect().catch(() => undefined);
      const code = error instanceof BleError ? error.code : 'unknown';
      this.retry(code, error);
    }
  }

  private async setUp(
    connection: Connection,
    services: readonly ServiceInfo[],
    live: () => boolean,
  ): Promise<void> {
    const { driver } = this.options;
    const present = new Map<string, { service: string; properties: readonly string[] }>();
    for (const service of services) {
      for (const c of service.characteristics)
        present.set(normalizeUuid(c.uuid), { service: service.uuid, properties: c.properties });
    }
    // Reads first, so that decoders of notifications see them (ctx.deviceState).
    const deviceState: Record<string, Reading | undefined> = {};
    for (const spec of driver.characteristics) {
      const uuid = normalizeUuid(spec.uuid);
      if (spec.access !== 'read' || !present.has(uuid)) continue;
      try {
        const value = await connection.read(normalizeUuid(spec.service), uuid);
        deviceState[uuid] = spec.decode(value, { characteristic: uuid })[0];
      } catch (error) {
        if (error instanceof DecodeError) this.options.onDecodeError?.(uuid, error);
        else if (!spec.optional) throw error;
      }
    }
    this.set('subscribing');
    const hasLiveTime = present.has(CURRENT_TIME) && present.get(CURRENT_TIME)?.properties.includes('write');
    for (const spec of driver.characteristics) {
      const uuid = normalizeUuid(spec.uuid);
      if (spec.access === 'read') continue;
      if (!present.has(uuid)) {
        if (spec.optional) continue;
        throw new BleError('BLE_NOT_FOUND', `the device lacks ${spec.name}, which ${driver.id} needs`);
      }
      await connection.subscribe(normalizeUuid(spec.service), uuid, (value) => {
        if (live()) this.deliver(uuid, value, deviceState);
      });
    }
    for (const write of driver.setup ?? []) {
      const send = () =>
        connection.write(normalizeUuid(write.service), normalizeUuid(write.characteristic), write.value, {
          withResponse: write.withResponse ?? true,
        });
      await send();
      if (write.repeatEveryMs !== undefined) this.repeat(send, write.repeatEveryMs, live);
    }
    this.set('syncing-time');
    if (hasLiveTime) {
      await connection.write(CURRENT_TIME_SERVICE, CURRENT_TIME, encodeCurrentTime(this.localFields()), {
        withResponse: true,
      });
      this.timeSync = 'written';
    } else {
      this.timeSync = 'measured';
    }
    if (present.has(RACP) && driver.characteristics.some((c) => normalizeUuid(c.uuid) === RACP)) {
      this.set('fetching-stored');
      this.storedPhase = true;
      const last = this.options.lastSequence?.();
      const request = last === undefined ? encodeRacpReportAll() : encodeRacpReportFrom((last + 1) & 0xffff);
      await connection.write(present.get(RACP)?.service ?? '1808', RACP, request, { withResponse: true });
    }
  }

  private deliver(uuid: string, payload: Uint8Array, deviceState: Record<string, Reading | undefined>): void {
    const { driver, device } = this.options;
    const spec = driver.characteristics.find((c) => normalizeUuid(c.uuid) === uuid);
    if (!spec) return;
    let readings: Reading[];
    try {
      readings = spec.decode(payload, { characteristic: uuid, deviceState });
    } catch (error) {
      if (error instanceof DecodeError) this.options.onDecodeError?.(uuid, error);
      return;
    }
    if (uuid === RACP) {
      // The RACP response ends the stored-record download (GLS 1.0.1 3.4: "response code" indication).
      try {
        const message = decodeRacp(payload);
        if (message.opCode === 'response-code' && this.storedPhase) {
          this.storedPhase = false;
          this.set('streaming', `stored records: ${message.responseCodeName}`);
        }
      } catch {
        // decoded above already; nothing else to learn
      }
      return;
    }
    const receivedAt = this.options.timers.now();
    const stored = this.storedPhase && uuid === GLUCOSE_MEASUREMENT;
    for (const reading of readings) {
      let time = new Date(receivedAt).toISOString();
      let timeSource: SessionReading['timeSource'] = 'gateway';
      if (reading.time !== null) {
        const utcOffset = this.options.utcOffsetMinutes();
        if (!stored && this.timeSync === 'measured' && reading.kind !== 'info') {
          this.offset.add(Date.parse(`${reading.time}Z`) - utcOffset * 60_000, receivedAt);
        }
        const corrected = correctDeviceTime(
          reading.time,
          utcOffset,
          this.timeSync === 'measured' ? this.offset.estimate() : undefined,
        );
        time = corrected.time;
        timeSource = corrected.source;
      }
      this.options.onReading({
        deviceId: device.id,
        characteristic: uuid,
        payload,
        reading,
        receivedAt,
        time,
        timeSource,
        stored,
      });
    }
  }

  private retry(code: string, error?: unknown): void {
    const rule = RETRY_RULES[code as keyof typeof RETRY_RULES] ?? RETRY_RULES.unknown;
    if (rule.action === 'wait-for-user') {
      this.set('needs-pairing', code);
      return;
    }
    const attempt = this.attemptsByClass.get(code) ?? 0;
    this.attemptsByClass.set(code, attempt + 1);
    const delay = retryDelay(rule, attempt, this.options.random ?? Math.random);
    this.set('backoff', `${code}${error instanceof Error ? `: ${error.message}` : ''}`);
    this.retryTimer = this.options.timers.setTimeout(() => {
      this.retryTimer = undefined;
      if (this.current !== 'backoff') return;
      if (rule.action === 'recover-adapter') {
        void this.options.central
          .powerCycle()
          .catch(() => undefined)
          .then(() => this.run());
      } else {
        void this.run();
      }
    }, delay);
  }

  private repeat(send: () => Promise<void>, everyMs: number, live: () => boolean): void {
    const tick = () => {
      this.repeatTimers.delete(handle);
      if (!live() || !this.connection) return;
      void send().catch(() => undefined);
      handle = this.options.timers.setTimeout(tick, everyMs);
      this.repeatTimers.add(handle);
    };
    let handle = this.options.timers.setTimeout(tick, everyMs);
    this.repeatTimers.add(handle);
  }

  private clearRepeats(): void {
    for (const handle of this.repeatTimers) this.options.timers.clearTimeout(handle);
    this.repeatTimers.clear();
  }

  private clearTimers(): void {
    this.clearRepeats();
    if (this.retryTimer !== undefined) this.options.timers.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private localFields() {
    const local = new Date(this.options.timers.now() + this.options.utcOffsetMinutes() * 60_000);
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
