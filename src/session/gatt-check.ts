import type { ServiceInfo } from '../ble/central.js';
import type { Driver } from '../drivers/sdk/define-driver.js';
import { normalizeUuid } from '../gatt/uuid.js';

/**
 * Does a service discovery look like a stale or partial GATT cache?
 *
 * Stacks cache a device's attributes across connections (BlueZ: main.conf [GATT] Cache=always, the default).
 * The copy goes stale when the device's database changes without the stack hearing of it: after a firmware
 * update of a device that is not bonded (Core 5.x Vol 3 Part G 2.5.2: Service Changed indications reach
 * bonded clients only), or when a discovery was cut short by a dropped link and BlueZ kept what it had (an
 * empty or partial list). Home Assistant's bleak-retry-connector answers a missing characteristic the same
 * way: clear the cache (BlueZ RemoveDevice) and connect again.
 *
 * The verdict says which of the driver's characteristics are missing and whether one fresh discovery is worth
 * it. It never decides alone that a device is unsupported: only a fresh discovery that still lacks a required
 * characteristic does (the session's job, which also remembers what the last fresh discovery found, so that a
 * device that really lacks an expected characteristic is not sent through a refresh on every connection).
 */
export interface ServicesVerdict {
  /** Characteristics the driver cannot work without (non-optional notify/indicate), absent: uuids. */
  readonly missingRequired: readonly string[];
  /**
   * Absent characteristics the device should have: non-optional reads the driver declares, and any the driver
   * uses that an earlier discovery of this device listed.
   */
  readonly missingExpected: readonly string[];
  /** The discovery listed no service at all. */
  readonly empty: boolean;
  /** One fresh discovery is worth it. */
  readonly suspect: boolean;
  /** The driver's characteristics this discovery lists (to remember as "known" once accepted). */
  readonly present: ReadonlySet<string>;
}

export function checkServices(
  services: readonly ServiceInfo[],
  driver: Driver,
  known: ReadonlySet<string>,
): ServicesVerdict {
  const listed = new Set<string>();
  for (const service of services) for (const c of service.characteristics) listed.add(normalizeUuid(c.uuid));
  const missingRequired: string[] = [];
  const missingExpected: string[] = [];
  const present = new Set<string>();
  for (const spec of driver.characteristics) {
    const uuid = normalizeUuid(spec.uuid);
    if (listed.has(uuid)) {
      present.add(uuid);
      continue;
    }
    if (!spec.optional && spec.access !== 'read') missingRequired.push(uuid);
    else if (!spec.optional || known.has(uuid)) missingExpected.push(uuid);
  }
  const empty = services.length === 0;
  return {
    missingRequired,
    missingExpected,
    empty,
    suspect: empty || missingRequired.length > 0 || missingExpected.length > 0,
    present,
  };
}

/** Whether two discoveries found the same characteristics of the driver. */
export function samePresence(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((uuid) => b.has(uuid));
}

/** A one-line description without addresses, for state details and errors. */
export function describeVerdict(verdict: ServicesVerdict, driver: Driver): string {
  if (verdict.empty) return 'service discovery listed no services';
  const name = (uuid: string) => {
    const spec = driver.characteristics.find((c) => normalizeUuid(c.uuid) === uuid);
    return spec ? `${spec.name} (${uuid})` : uuid;
  };
  const parts: string[] = [];
  if (verdict.missingRequired.length > 0) {
    parts.push(`lacks ${verdict.missingRequired.map(name).join(', ')}, which ${driver.id} needs`);
  }
  if (verdict.missingExpected.length > 0) {
    parts.push(`lacks ${verdict.missingExpected.map(name).join(', ')}, which it should have`);
  }
  return `service discovery ${parts.join('; ')}`;
}
