import { DecodeError, DriverError } from '../errors.js';
import { normalizeUuid } from '../gatt/uuid.js';
import { isMdcCode } from '../model/codes.js';
import { isUcumUnit } from '../model/units.js';
import type { CharacteristicSpec, Driver, MatchRule } from './sdk/define-driver.js';

/** What a scan sees of a device: enough to pick a driver, nothing that identifies the patient. */
export interface Advertisement {
  readonly services: readonly string[];
  readonly name?: string;
  readonly manufacturerIds?: readonly number[];
}

export interface DecoderChoice {
  readonly driver: Driver;
  readonly spec: CharacteristicSpec;
}

/**
 * Every loaded driver, checked together: unique ids, declared codes and units from the tables, one decoder per
 * declared characteristic, and no two match rules that can claim the same device unless one explicitly
 * supersedes the other.
 */
export class DriverRegistry {
  readonly drivers: readonly Driver[];
  private readonly byId: ReadonlyMap<string, Driver>;
  private readonly byCharacteristic: ReadonlyMap<string, readonly DecoderChoice[]>;

  constructor(drivers: readonly Driver[]) {
    const byId = new Map<string, Driver>();
    for (const driver of drivers) {
      if (byId.has(driver.id)) {
        throw new DriverError('DRIVER_DUPLICATE_ID', `two drivers have the id ${driver.id}`, driver.id);
      }
      checkCharacteristics(driver);
      byId.set(driver.id, driver);
    }
    for (const driver of drivers) {
      for (const superseded of driver.match.supersedes ?? []) {
        if (!byId.has(superseded)) {
          throw new DriverError(
            'DRIVER_INVALID',
            `${driver.id} supersedes unknown driver ${superseded}`,
            driver.id,
          );
        }
      }
    }
    checkOverlaps(drivers);
    // SIG drivers first, so `decode 2a35` means the standard decoder unless a driver is named.
    const ordered = [...drivers].sort(
      (a, b) => Number(b.id.startsWith('sig/')) - Number(a.id.startsWith('sig/')) || a.id.localeCompare(b.id),
    );
    const byCharacteristic = new Map<string, DecoderChoice[]>();
    for (const driver of ordered) {
      for (const spec of driver.characteristics) {
        const uuid = normalizeUuid(spec.uuid);
        const list = byCharacteristic.get(uuid) ?? [];
        list.push({ driver, spec });
        byCharacteristic.set(uuid, list);
      }
    }
    this.drivers = ordered;
    this.byId = byId;
    this.byCharacteristic = byCharacteristic;
  }

  get(id: string): Driver | undefined {
    return this.byId.get(id);
  }

  /** The driver for an advertisement: the most specific match (one that supersedes the others), if any. */
  match(advertisement: Advertisement): Driver | undefined {
    const candidates = this.drivers.filter((d) => matches(d.match, advertisement));
    return candidates.find((d) => candidates.every((o) => o === d || d.match.supersedes?.includes(o.id)));
  }

  /**
   * The decoder for a characteristic: the named driver's, or else the first SIG driver declaring it.
   * Throws DECODE_UNKNOWN_CHARACTERISTIC (or DECODE_BAD_UUID) for anything else.
   */
  decoderFor(characteristic: string, driverId?: string): DecoderChoice {
    const uuid = normalizeUuid(characteristic);
    const choices = this.byCharacteristic.get(uuid) ?? [];
    const choice = driverId === undefined ? choices[0] : choices.find((c) => c.driver.id === driverId);
    if (!choice) {
      const who = driverId === undefined ? 'any driver' : `driver ${driverId}`;
      throw new DecodeError(
        'DECODE_UNKNOWN_CHARACTERISTIC',
        `no decoder for characteristic ${uuid} in ${who}`,
      );
    }
    return choice;
  }

  characteristics(): string[] {
    return [...this.byCharacteristic.keys()].sort();
  }
}

function checkCharacteristics(driver: Driver): void {
  const seen = new Set<string>();
  for (const spec of driver.characteristics) {
    let uuid: string;
    try {
      uuid = normalizeUuid(spec.uuid);
      normalizeUuid(spec.service);
    } catch (cause) {
      throw new DriverError('DRIVER_INVALID', `${driver.id}: bad UUID in ${spec.name}`, driver.id, { cause });
    }
    if (seen.has(uuid))
      throw new DriverError('DRIVER_INVALID', `${driver.id} declares ${uuid} twice`, driver.id);
    seen.add(uuid);
    for (const emit of spec.emits) {
      if (!isMdcCode(emit.code)) {
        throw new DriverError(
          'DRIVER_UNKNOWN_CODE',
          `${driver.id} ${uuid}: ${emit.code} is not in the MDC table`,
          driver.id,
        );
      }
      for (const unit of emit.units) {
        if (!isUcumUnit(unit)) {
          throw new DriverError(
            'DRIVER_UNKNOWN_UNIT',
            `${driver.id} ${uuid}: ${unit} is not in the UCUM table`,
            driver.id,
          );
        }
      }
    }
  }
}

function matches(rule: MatchRule, ad: Advertisement): boolean {
  if (rule.services?.length) {
    const advertised = new Set(ad.services.map((s) => safeUuid(s)));
    if (!rule.services.some((s) => advertised.has(normalizeUuid(s)))) return false;
  }
  if (rule.name && (ad.name === undefined || !rule.name.test(ad.name))) return false;
  if (rule.manufacturerId !== undefined && !ad.manufacturerIds?.includes(rule.manufacturerId)) return false;
  return true;
}

function safeUuid(text: string): string | undefined {
  try {
    return normalizeUuid(text);
  } catch {
    return undefined;
  }
}

/**
 * Two rules can claim the same device unless something sets them apart for certain: disjoint service lists
 * (when both list services) or different manufacturer ids. Name patterns cannot be proven disjoint, so they
 * never count as apart: a vendor driver that narrows a SIG profile by name must say it supersedes it.
 */
function checkOverlaps(drivers: readonly Driver[]): void {
  for (let i = 0; i < drivers.length; i++) {
    for (let j = i + 1; j < drivers.length; j++) {
      const a = drivers[i] as Driver;
      const b = drivers[j] as Driver;
      if (apart(a.match, b.match)) continue;
      if (a.match.supersedes?.includes(b.id) || b.match.supersedes?.includes(a.id)) continue;
      throw new DriverError(
        'DRIVER_MATCH_OVERLAP',
        `match rules of ${a.id} and ${b.id} can claim the same device; one must list the other in match.supersedes`,
        a.id,
      );
    }
  }
}

function apart(a: MatchRule, b: MatchRule): boolean {
  if (a.services?.length && b.services?.length) {
    const set = new Set(a.services.map(normalizeUuid));
    if (!b.services.some((s) => set.has(normalizeUuid(s)))) return true;
  }
  return (
    a.manufacturerId !== undefined && b.manufacturerId !== undefined && a.manufacturerId !== b.manufacturerId
  );
}
