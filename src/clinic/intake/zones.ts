import type { Assignment, ClinicStore } from '../storage/clinic-store.js';
import { isTimeZone, resolveDateTime } from './local-time.js';

/**
 * Which time zone a gateway's device times are read in: the time zone of the assignment (the patient's home)
 * that covers the reading, or the intake's default zone. Assignments are read from the store at most every
 * `ttlMs` per gateway, so a new assignment's zone applies within that time; they are needed only for times
 * without an offset.
 *
 * Which assignment covers a local time is itself a question of zone: the time is first read in the default
 * zone, the assignment covering that instant is found, and the time is read again in its zone. The two
 * readings are at most a day apart, so only a reading within a day of a reassignment between patients in
 * different zones can be given the other patient's zone.
 */
export class ZoneResolver {
  private readonly cache = new Map<string, { readonly at: number; readonly list: readonly Assignment[] }>();

  constructor(
    private readonly store: ClinicStore,
    private readonly defaultZone: string,
    private readonly ttlMs: number,
    private readonly onBadZone: (gatewayId: string, zone: string) => void,
  ) {}

  /** Loads what `resolve` needs for these gateways (only where a time lacks an offset). */
  async prepare(gatewayIds: Iterable<string>, now: number): Promise<void> {
    for (const gatewayId of gatewayIds) {
      const cached = this.cache.get(gatewayId);
      if (cached && now - cached.at < this.ttlMs) continue;
      this.cache.set(gatewayId, { at: now, list: await this.store.assignments(gatewayId) });
    }
  }

  /** The instant `time` names for this gateway; undefined when it is not a date-time. */
  resolve(gatewayId: string, time: string): number | undefined {
    const first = resolveDateTime(time, this.defaultZone);
    if (first === undefined || hasOffset(time)) return first;
    const list = this.cache.get(gatewayId)?.list ?? [];
    const covering = list.find((a) => a.from <= first && (a.to === undefined || first < a.to));
    const zone = covering?.timeZone;
    if (zone === undefined || zone === this.defaultZone) return first;
    if (!isTimeZone(zone)) {
      this.onBadZone(gatewayId, zone);
      return first;
    }
    return resolveDateTime(time, zone);
  }
}

const OFFSET = /(?:Z|[+-]\d{2}:\d{2})$/;

export function hasOffset(time: string): boolean {
  return OFFSET.test(time);
}
