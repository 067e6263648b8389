import type { DateTimeFields } from '../../gatt/glucose.js';
import { normalizeUuid } from '../../gatt/uuid.js';
import { realScheduler, type Scheduler, type TimerHandle } from '../../util/scheduler.js';
import type { CharacteristicInfo, DisconnectReason, ServiceInfo } from '../central.js';
import { type FaultOptions, type IndicationCut, MALFORM_MODES, type MalformMode, malform } from './faults.js';
import { Random } from './random.js';

export type CharacteristicProperty = CharacteristicInfo['properties'][number];

export interface CharacteristicDefinition {
  readonly uuid: string;
  readonly properties: readonly CharacteristicProperty[];
  /** The value a read returns (when there is no `read` handler). */
  readonly value?: Uint8Array;
  /** Computes the value at read time (a clock, a battery level that drains). */
  readonly read?: () => Uint8Array;
  /**
   * Called after the write is recorded. May throw a BleError, which a write with response reports to the
   * central (a write without response never hears about it, as on the air).
   */
  readonly onWrite?: (value: Uint8Array) => void;
  /** Reads, writes and subscriptions need a bond first (the link is not encrypted otherwise). */
  readonly requiresBond?: boolean;
}

export interface ServiceDefinition {
  readonly uuid: string;
  readonly characteristics: readonly CharacteristicDefinition[];
}

export interface VirtualPeripheralOptions {
  readonly address: string;
  readonly name?: string;
  /** Advertised service UUIDs (any form; stored canonical). */
  readonly services?: readonly string[];
  readonly manufacturerData?: ReadonlyMap<number, Uint8Array>;
  /** Mean RSSI in dBm (default -60); each advertisement varies around it. */
  readonly rssi?: number;
  /** Advertising interval (default 100 ms). */
  readonly advertiseEveryMs?: number;
  readonly gatt: readonly ServiceDefinition[];
  readonly inRange?: boolean;
  /** Pairing: a passkey the user must type (from the device's display); absent = Just Works. */
  readonly passkey?: string;
  readonly faults?: FaultOptions;
  /** Seeds fault injection (and nothing else: device models seed their own physiology). */
  readonly seed?: number;
  /** The device clock runs this far ahead of the scheduler (negative: behind); a wrong clock. */
  readonly clockOffsetMs?: number;
  /** Gap between stored records handed over after a subscription (default 20 ms). */
  readonly storedRecordSpacingMs?: number;
  /**
   * Ends the link itself ('remote') this long after it handed over its last stored record, as many cuffs and
   * scales in a transfer mode do to save battery (derdilla/blood-pressure-monitor-fl: "automatically
   * disconnects after reading"). Default: never.
   */
  readonly hangUpAfterTransferMs?: number;
  readonly scheduler?: Scheduler;
}

/** What the central side of a link offers the peripheral. Implemented by SimCentral's connections. */
export interface PeripheralLink {
  /** The central has notifications or indications enabled on this characteristic. */
  isSubscribed(characteristic: string): boolean;
  /** Hands a value to the subscribers; false when nobody was subscribed. */
  deliver(characteristic: string, value: Uint8Array): boolean;
  /** Ends the link from the peripheral's side. */
  drop(reason: DisconnectReason): void;
}

/** Callbacks a device model uses to react to the central (start streaming on subscribe, stop on disconnect). */
export interface PeripheralHooks {
  onConnect?(): void;
  onDisconnect?(reason: DisconnectReason): void;
  onSubscribe?(characteristic: string): void;
  onUnsubscribe?(characteristic: string): void;
}

interface StoredRecord {
  readonly characteristic: string;
  readonly value: Uint8Array;
}

const EMPTY = new Uint8Array(0);

/**
 * One simulated Bluetooth LE peripheral: what it advertises, its GATT table, and the controls a test needs
 * (emit a value, drop the link, walk out of range, mangle frames, run its clock wrong, keep stored records).
 * It knows nothing about the central beyond the PeripheralLink it is attached to; device models
 * (simulatedDevice) build one per driver.
 */
export class VirtualPeripheral {
  readonly address: string;
  readonly name: string | undefined;
  readonly services: readonly string[];
  readonly manufacturerData: ReadonlyMap<number, Uint8Array>;
  readonly rssi: number;
  readonly advertiseEveryMs: number;
  readonly passkey: string | undefined;
  readonly scheduler: Scheduler;
  /** Milliseconds the device clock is ahead of true time (negative: behind). Set by a Current Time write. */
  clockOffsetMs: number;
  faults: FaultOptions;

  private readonly gatt: readonly ServiceDefinition[];
  private readonly random: Random;
  private readonly storedRecordSpacingMs: number;
  private inRangeNow: boolean;
  private responsiveNow = true;
  private link: PeripheralLink | undefined;
  private readonly hooks = new Set<PeripheralHooks>();
  private readonly rangeListeners = new Set<(inRange: boolean) => void>();
  private readonly writes = new Map<string, Uint8Array[]>();
  private readonly malformQueue: MalformMode[] = [];
  private readonly stored: StoredRecord[] = [];
  private readonly bondedCentrals = new Set<string>();
  private handoverTimer: TimerHandle | undefined;
  private hangUpTimer: TimerHandle | undefined;
  private readonly hangUpAfterTransferMs: number | undefined;
  private transferredThisLink = 0;
  private readonly cuts: { when: IndicationCut; skip: number }[] = [];
  private emittedCount = 0;

  constructor(options: VirtualPeripheralOptions) {
    this.address = options.address;
    this.name = options.name;
    this.services = (options.services ?? []).map(normalizeUuid);
    this.manufacturerData = options.manufacturerData ?? new Map();
    this.rssi = options.rssi ?? -60;
    this.advertiseEveryMs = options.advertiseEveryMs ?? 100;
    this.gatt = options.gatt.map((s) => ({
      uuid: normalizeUuid(s.uuid),
      characteristics: s.characteristics.map((c) => ({ ...c, uuid: normalizeUuid(c.uuid) })),
    }));
    this.inRangeNow = options.inRange ?? true;
    this.passkey = options.passkey;
    this.faults = options.faults ?? {};
    this.random = new Random(options.seed ?? 1);
    this.clockOffsetMs = options.clockOffsetMs ?? 0;
    this.storedRecordSpacingMs = options.storedRecordSpacingMs ?? 20;
    this.hangUpAfterTransferMs = options.hangUpAfterTransferMs;
    this.scheduler = options.scheduler ?? realScheduler;
  }

  // ---- Radio --------------------------------------------------------------------------------------------

  get inRange(): boolean {
    return this.inRangeNow;
  }

  /** Out of range: the device stops being seen in scans and any link is lost. */
  setInRange(inRange: boolean): void {
    if (this.inRangeNow === inRange) return;
    this.inRangeNow = inRange;
    if (!inRange) this.dropLink('link-loss');
    for (const listener of [...this.rangeListeners]) listener(inRange);
  }

  /** For the central: told when the device comes into or leaves range (a pending connect waits for it). */
  onRangeChange(listener: (inRange: boolean) => void): () => void {
    this.rangeListeners.add(listener);
    return () => this.rangeListeners.delete(listener);
  }

  /** A hung GATT server: requests get no answer until it responds again (the central's calls time out). */
  setResponsive(responsive: boolean): void {
    this.responsiveNow = responsive;
  }

  get responsive(): boolean {
    return this.responsiveNow;
  }

  get connected(): boolean {
    return this.link !== undefined;
  }

  /** A central is connected and has notifications or indications enabled on `characteristic`. */
  isSubscribed(characteristic: string): boolean {
    return this.link?.isSubscribed(normalizeUuid(characteristic)) ?? false;
  }

  /** The link ends as if the device walked away ('link-loss') or closed it itself ('remote'). */
  dropLink(reason: 'link-loss' | 'remote' = 'link-loss'): void {
    this.link?.drop(reason);
  }

  // ---- GATT ---------------------------------------------------------------------------------------------

  discover(): ServiceInfo[] {
    return this.gatt.map((s) => ({
      uuid: s.uuid,
      characteristics: s.characteristics.map((c) => ({ uuid: c.uuid, properties: [...c.properties] })),
    }));
  }

  /** The characteristic in `service` (or in any service when `service` is absent). */
  characteristic(characteristic: string, service?: string): CharacteristicDefinition | undefined {
    const uuid = normalizeUuid(characteristic);
    const wanted = service === undefined ? undefined : normalizeUuid(service);
    for (const s of this.gatt) {
      if (wanted !== undefined && s.uuid !== wanted) continue;
      const found = s.characteristics.find((c) => c.uuid === uuid);
      if (found) return found;
    }
    return undefined;
  }

  /** Serves a read (the central has checked the properties). */
  readValue(definition: CharacteristicDefinition): Uint8Array {
    return (definition.read ? definition.read() : (definition.value ?? EMPTY)).slice();
  }

  /** Records a write, then runs the characteristic's handler (which may throw a BleError). */
  acceptWrite(definition: CharacteristicDefinition, value: Uint8Array): void {
    const list = this.writes.get(definition.uuid) ?? [];
    list.push(value.slice());
    this.writes.set(definition.uuid, list);
    definition.onWrite?.(value.slice());
  }

  /** Values the central wrote to `characteristic`, oldest first. */
  written(characteristic: string): Uint8Array[] {
    return (this.writes.get(normalizeUuid(characteristic)) ?? []).map((v) => v.slice());
  }

  /**
   * Sends a notification or indication on `characteristic` to a subscribed central, after fault injection.
   * Returns whether a subscriber received it (false when nobody is connected or subscribed).
   */
  emit(characteristic: string, value: Uint8Array): boolean {
    const uuid = normalizeUuid(characteristic);
    if (!this.characteristic(uuid)) throw new RangeError(`no characteristic ${uuid} on this peripheral`);
    const link = this.link;
    if (!link?.isSubscribed(uuid)) return false;
    const cut = this.takeCut(uuid);
    if (cut === 'before-delivery') {
      this.dropLink('link-loss');
      return false;
    }
    const delivered = link.deliver(uuid, this.mangle(value));
    this.emittedCount++;
    if (cut === 'before-confirmation') {
      // The central has the value; the device never hears the confirmation and counts it as not sent.
      this.dropLink('link-loss');
      return false;
    }
    if (delivered && this.random.chance(this.faults.disconnectProbability ?? 0)) this.dropLink('link-loss');
    return delivered;
  }

  /**
   * Drops the link during an indication: the one after `skip` further indications (0: the next). See
   * IndicationCut for what the central and the device each see. Notifications are not affected (they have no
   * confirmation). Cuts queue up, and survive reconnections until used.
   */
  cutLinkDuringIndication(when: IndicationCut, skip = 0): void {
    this.cuts.push({ when, skip });
  }

  /** The cut planned for this emission, if it is an indication and one is due. */
  private takeCut(uuid: string): IndicationCut | undefined {
    const first = this.cuts[0];
    if (!first || !this.characteristic(uuid)?.properties.includes('indicate')) return undefined;
    if (first.skip > 0) {
      first.skip--;
      return undefined;
    }
    this.cuts.shift();
    return first.when;
  }

  /** Values emitted to a subscriber so far (malformed ones included). */
  get emitted(): number {
    return this.emittedCount;
  }

  /** Malforms the next `count` emitted values with `mode` (on request, independent of the probability). */
  malformNext(mode: MalformMode, count = 1): void {
    for (let i = 0; i < count; i++) this.malformQueue.push(mode);
  }

  private mangle(value: Uint8Array): Uint8Array {
    const requested = this.malformQueue.shift();
    if (requested !== undefined) return malform(value, requested, this.random);
    if (this.random.chance(this.faults.malformedProbability ?? 0)) {
      const modes = this.faults.malformedModes ?? MALFORM_MODES;
      return malform(value, modes[this.random.int(0, modes.length - 1)] as MalformMode, this.random);
    }
    return value.slice();
  }

  // ---- Clock --------------------------------------------------------------------------------------------

  /** The device's wall clock at true time `at` (default now), offset included. */
  deviceTime(at: number = this.scheduler.now()): DateTimeFields {
    return dateTimeFields(at + this.clockOffsetMs);
  }

  /** Sets the device clock (what a Current Time write does): the offset becomes `fields` minus true time. */
  setDeviceTime(fields: DateTimeFields): void {
    const wall = Date.UTC(
      fields.year,
      fields.month - 1,
      fields.day,
      fields.hours,
      fields.minutes,
      fields.seconds,
    );
    this.clockOffsetMs = wall - Math.floor(this.scheduler.now() / 1000) * 1000;
  }

  // ---- Stored records -------------------------------------------------------------------------------------

  /**
   * Keeps a measurement taken while no central listened. Records are handed over as indications once the
   * central subscribes to their characteristic, oldest first, each exactly once (it leaves the queue only when
   * a subscriber received it), as Omron cuffs and most scales do.
   */
  storeRecord(characteristic: string, value: Uint8Array): void {
    this.stored.push({ characteristic: normalizeUuid(characteristic), value: value.slice() });
  }

  /** Records not yet handed over. */
  storedRecords(characteristic?: string): Uint8Array[] {
    const uuid = characteristic === undefined ? undefined : normalizeUuid(characteristic);
    return this.stored
      .filter((r) => uuid === undefined || r.characteristic === uuid)
      .map((r) => r.value.slice());
  }

  private scheduleHandover(): void {
    if (this.handoverTimer !== undefined) return;
    const next = this.stored.find((r) => this.link?.isSubscribed(r.characteristic));
    if (!next) {
      this.scheduleHangUp();
      return;
    }
    this.handoverTimer = this.scheduler.setTimeout(() => {
      this.handoverTimer = undefined;
      const index = this.stored.indexOf(next);
      if (index < 0 || !this.link?.isSubscribed(next.characteristic)) return this.scheduleHandover();
      if (this.emit(next.characteristic, next.value)) {
        this.stored.splice(index, 1);
        this.transferredThisLink++;
      }
      this.scheduleHandover();
    }, this.storedRecordSpacingMs);
  }

  /** Transfer mode: after the last stored record went out on this link, the device ends the link itself. */
  private scheduleHangUp(): void {
    if (this.hangUpAfterTransferMs === undefined || this.transferredThisLink === 0 || !this.link) return;
    if (this.hangUpTimer !== undefined) this.scheduler.clearTimeout(this.hangUpTimer);
    this.hangUpTimer = this.scheduler.setTimeout(() => {
      this.hangUpTimer = undefined;
      if (this.stored.some((r) => this.link?.isSubscribed(r.characteristic))) return;
      this.dropLink('remote');
    }, this.hangUpAfterTransferMs);
  }

  // ---- Bonds --------------------------------------------------------------------------------------------

  hasBond(centralId: string): boolean {
    return this.bondedCentrals.has(centralId);
  }

  addBond(centralId: string): void {
    this.bondedCentrals.add(centralId);
  }

  /** The device forgets its bonds (factory reset, or bonded to another phone): the central must pair again. */
  forgetBonds(): void {
    this.bondedCentrals.clear();
  }

  // ---- For device models and the central ----------------------------------------------------------------

  addHooks(hooks: PeripheralHooks): () => void {
    this.hooks.add(hooks);
    return () => this.hooks.delete(hooks);
  }

  /** Called by the central when a link is established. */
  attach(link: PeripheralLink): void {
    this.link = link;
    this.transferredThisLink = 0;
    for (const h of [...this.hooks]) h.onConnect?.();
  }

  /** Called by the central when the link ended, whichever side ended it. */
  detach(link: PeripheralLink, reason: DisconnectReason): void {
    if (this.link !== link) return;
    this.link = undefined;
    if (this.handoverTimer !== undefined) {
      this.scheduler.clearTimeout(this.handoverTimer);
      this.handoverTimer = undefined;
    }
    if (this.hangUpTimer !== undefined) {
      this.scheduler.clearTimeout(this.hangUpTimer);
      this.hangUpTimer = undefined;
    }
    for (const h of [...this.hooks]) h.onDisconnect?.(reason);
  }

  /** Called by the central when the first listener of a characteristic enabled its CCCD. */
  subscribed(characteristic: string): void {
    for (const h of [...this.hooks]) h.onSubscribe?.(characteristic);
    this.scheduleHandover();
  }

  /** Called by the central when the last listener went away. */
  unsubscribed(characteristic: string): void {
    for (const h of [...this.hooks]) h.onUnsubscribe?.(characteristic);
  }
}

/** The Date Time fields of an epoch time, read as the device's wall clock (no time zone on the air). */
export function dateTimeFields(ms: number): DateTimeFields {
  const d = new Date(ms);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hours: d.getUTCHours(),
    minutes: d.getUTCMinutes(),
    seconds: d.getUTCSeconds(),
  };
}

/** ISO local time as the decoders print it, for tests comparing a decoded `time` with the device clock. */
export function isoOf(fields: DateTimeFields): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${fields.year}-${p(fields.month)}-${p(fields.day)}T${p(fields.hours)}:${p(fields.minutes)}:${p(fields.seconds)}`;
}
