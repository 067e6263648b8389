import { normalizeAddress } from '../ble/address.js';

/**
 * The enrolment gate: only enrolled devices are read; a neighbour's sensor is ignored (docs/enrolment.md). The runtime asks it twice:
 *
 * - on the radio side, `deviceIdFor(address)`: which enrolled device an advertisement or a connection belongs
 *   to. An address that is not enrolled gets no id, so nothing is connected, decoded or stored for it;
 * - on the pipeline side, `admit(item)`: a reading (or anything else carrying a `deviceId`) passes only while
 *   its device is enrolled, so the readings a session delivers after its device was forgotten are dropped.
 *
 * Drops are counted by reason, never with the address: there is no list of neighbours to leak. Pure logic,
 * no I/O and no clock; the runtime calls `replace` after `pair` or `forget` changed the registry.
 */
export interface EnrolledIdentity {
  readonly id: string;
  readonly address: string;
}

export type DropReason =
  /** An advertisement or connection from an address that is not enrolled (a neighbour's device). */
  | 'unknown-address'
  /** A reading whose device id is not (or no longer) enrolled. */
  | 'not-enrolled';

export interface GateCounts {
  readonly admitted: number;
  readonly dropped: Readonly<Record<DropReason, number>>;
}

export class EnrolmentGate {
  private byAddress = new Map<string, string>();
  private ids = new Set<string>();
  private admitted = 0;
  private readonly dropped: Record<DropReason, number> = { 'unknown-address': 0, 'not-enrolled': 0 };

  constructor(devices: Iterable<EnrolledIdentity> = []) {
    this.replace(devices);
  }

  /** Takes the enrolled set as it is now (after a pair or a forget); counters carry on. */
  replace(devices: Iterable<EnrolledIdentity>): void {
    const byAddress = new Map<string, string>();
    const ids = new Set<string>();
    for (const device of devices) {
      byAddress.set(normalizeAddress(device.address), device.id);
      ids.add(device.id);
    }
    this.byAddress = byAddress;
    this.ids = ids;
  }

  isEnrolled(deviceId: string): boolean {
    return this.ids.has(deviceId);
  }

  /** The enrolled device at this address, or undefined (counted as an 'unknown-address' drop). */
  deviceIdFor(address: string): string | undefined {
    const id = this.byAddress.get(normalizeAddress(address));
    if (id === undefined) this.dropped['unknown-address']++;
    return id;
  }

  /** True when the item's device is enrolled; otherwise false, counted as a 'not-enrolled' drop. */
  admit(item: { readonly deviceId: string }): boolean {
    if (this.ids.has(item.deviceId)) {
      this.admitted++;
      return true;
    }
    this.dropped['not-enrolled']++;
    return false;
  }

  /** Keeps the items whose device is enrolled, in order; counts the rest. */
  filter<T extends { readonly deviceId: string }>(items: Iterable<T>): T[] {
    const kept: T[] = [];
    for (const item of items) if (this.admit(item)) kept.push(item);
    return kept;
  }

  counts(): GateCounts {
    return { admitted: this.admitted, dropped: { ...this.dropped } };
  }
}
