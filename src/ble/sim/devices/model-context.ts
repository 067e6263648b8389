import { DecodeError } from '../../../errors.js';
import { decodeCurrentTime, encodeCurrentTime } from '../../../gatt/device-info.js';
import { realScheduler, type Scheduler, type TimerHandle } from '../../../util/scheduler.js';
import { BleError } from '../../central.js';
import { Subject } from '../physiology.js';
import { Random } from '../random.js';
import {
  type CharacteristicDefinition,
  type ServiceDefinition,
  VirtualPeripheral,
} from '../virtual-peripheral.js';
import type { DeviceModelContext } from './define-model.js';
import { DEFAULT_GLUCOSE_PASSKEY, type SimulatedDeviceOptions } from './types.js';

const DEVICE_INFORMATION = '180a';
const BATTERY = '180f';
export const CURRENT_TIME = '1805';

/** The address and advertised name a device has unless its options give others. */
export interface DeviceIdentity {
  readonly address: string;
  readonly name: string;
}

/**
 * What every model is given (DeviceModelContext): the options resolved, the generators seeded, helpers for the
 * common services.
 */
export class ModelContext implements DeviceModelContext {
  readonly scheduler: Scheduler;
  readonly random: Random;
  readonly subject: Subject;
  readonly bond: boolean;
  readonly passkey: string | undefined;

  constructor(
    readonly driverId: string,
    readonly options: SimulatedDeviceOptions,
    private readonly identity: DeviceIdentity,
  ) {
    this.scheduler = options.scheduler ?? realScheduler;
    this.random = new Random(options.seed ?? 42);
    this.subject = new Subject(this.random.fork(1), options.subject);
    this.bond = options.requireBonding ?? driverId === 'sig/glucose';
    const passkey =
      options.passkey === undefined
        ? driverId === 'sig/glucose' && this.bond
          ? DEFAULT_GLUCOSE_PASSKEY
          : null
        : options.passkey;
    this.passkey = passkey ?? undefined;
  }

  peripheral(advertised: readonly string[], gatt: readonly ServiceDefinition[]): VirtualPeripheral {
    const o = this.options;
    return new VirtualPeripheral({
      address: o.address ?? this.identity.address,
      name: o.name ?? this.identity.name,
      services: advertised,
      gatt,
      scheduler: this.scheduler,
      seed: this.random.int(1, 0x7fffffff),
      ...(o.manufacturerData ? { manufacturerData: o.manufacturerData } : {}),
      ...(o.rssi === undefined ? {} : { rssi: o.rssi }),
      ...(o.inRange === undefined ? {} : { inRange: o.inRange }),
      ...(o.advertiseEveryMs === undefined ? {} : { advertiseEveryMs: o.advertiseEveryMs }),
      ...(o.clockOffsetMs === undefined ? {} : { clockOffsetMs: o.clockOffsetMs }),
      ...(o.hangUpAfterTransferMs === undefined ? {} : { hangUpAfterTransferMs: o.hangUpAfterTransferMs }),
      ...(o.faults ? { faults: o.faults } : {}),
      ...(this.passkey === undefined ? {} : { passkey: this.passkey }),
    });
  }

  /** A measurement characteristic, bonded when the options ask for it. */
  measurementChar(
    uuid: string,
    properties: CharacteristicDefinition['properties'],
    extra: Partial<CharacteristicDefinition> = {},
  ): CharacteristicDefinition {
    return { uuid, properties, ...extra, ...(this.bond ? { requiresBond: true } : {}) };
  }

  /** Device Information, Battery and (for SIG devices with a clock) Current Time, as real devices carry them. */
  commonServices(model: string, clock: () => VirtualPeripheral | undefined): ServiceDefinition[] {
    let battery = 100;
    const services: ServiceDefinition[] = [
      {
        uuid: DEVICE_INFORMATION,
        characteristics: [
          { uuid: '2a29', properties: ['read'], value: utf8('rpm-gateway simulator') },
          { uuid: '2a24', properties: ['read'], value: utf8(model) },
          { uuid: '2a26', properties: ['read'], value: utf8('1.0.0') },
        ],
      },
      {
        uuid: BATTERY,
        characteristics: [
          {
            uuid: '2a19',
            properties: ['read', 'notify'],
            // Drains a little with every read, never below 5 %, so a long run sees a changing value.
            read: () => {
              battery = Math.max(5, battery - 0.01);
              return Uint8Array.of(Math.floor(battery));
            },
          },
        ],
      },
    ];
    const currentTime = this.options.currentTime ?? 'writable';
    if (currentTime === 'none') return services;
    services.push({
      uuid: CURRENT_TIME,
      characteristics: [
        {
          uuid: '2a2b',
          properties: currentTime === 'writable' ? ['read', 'write', 'notify'] : ['read', 'notify'],
          read: () => {
            const p = clock();
            if (!p) return encodeCurrentTime({ year: 0, month: 0, day: 0, hours: 0, minutes: 0, seconds: 0 });
            // Exact Time 256 carries the fraction of the second too (CTS 1.1, 3.1).
            const millis = (((this.scheduler.now() + p.clockOffsetMs) % 1000) + 1000) % 1000;
            return encodeCurrentTime({ ...p.deviceTime(), fractions256: Math.floor((millis * 256) / 1000) });
          },
          onWrite: (value) => {
            const p = clock();
            let fields: ReturnType<typeof decodeCurrentTime>;
            try {
              fields = decodeCurrentTime(value);
            } catch (error) {
              if (error instanceof DecodeError)
                throw new BleError('BLE_NOT_SUPPORTED', 'Current Time value rejected');
              throw error;
            }
            const iso = fields.dateTime.iso;
            if (!p || iso === null) return; // "date unknown" leaves the clock as it is
            p.setDeviceTime({
              year: Number(iso.slice(0, 4)),
              month: Number(iso.slice(5, 7)),
              day: Number(iso.slice(8, 10)),
              hours: Number(iso.slice(11, 13)),
              minutes: Number(iso.slice(14, 16)),
              seconds: Number(iso.slice(17, 19)),
            });
          },
        },
      ],
    });
    return services;
  }

  streamEvery(fallback: number): number {
    return this.options.streamEveryMs ?? fallback;
  }
}

/** A repeating timer on the scheduler, for streaming devices. */
export class Ticker {
  private handle: TimerHandle | undefined;

  constructor(private readonly scheduler: Scheduler) {}

  get running(): boolean {
    return this.handle !== undefined;
  }

  start(everyMs: number, fn: () => void): void {
    if (this.handle !== undefined) return;
    const tick = () => {
      this.handle = this.scheduler.setTimeout(tick, everyMs);
      fn();
    };
    this.handle = this.scheduler.setTimeout(tick, everyMs);
  }

  stop(): void {
    if (this.handle !== undefined) this.scheduler.clearTimeout(this.handle);
    this.handle = undefined;
  }
}

/** Sends `value` to a subscriber, or keeps it for the next connection. */
export function sendOrStore(peripheral: VirtualPeripheral, characteristic: string, value: Uint8Array): void {
  if (!peripheral.emit(characteristic, value)) peripheral.storeRecord(characteristic, value);
}

/** Times of `count` historic measurements `everyMs` apart, the last `everyMs` before now, oldest first. */
export function pastTimes(now: number, count: number, everyMs: number): number[] {
  return Array.from({ length: count }, (_, i) => now - (count - i) * everyMs);
}

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}
