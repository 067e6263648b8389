import type { JsonValue, Observation } from './observation.js';

/** Where a Measurement's `time` comes from. */
export type TimeSource =
  /** The device's own clock, taken as it is (the device was time-synced, or the skew is unknown). */
  | 'device'
  /** The device's clock, shifted by the offset the session measured against the gateway clock. */
  | 'device-corrected'
  /** The gateway's clock at receipt: the payload has no timestamp or the device's clock is not set. */
  | 'gateway';

/**
 * A Reading after the gateway stamped it: the unit that flows through pipeline, outbox and uplink.
 * Every field is PHI except ids and codes; logs redact values and device ids by default.
 */
export interface Measurement {
  /** Stable id (see ids.ts): identical for a stored record that the device sends again. */
  readonly id: string;
  /** The enrolled device's gateway-local id (never its Bluetooth address). */
  readonly deviceId: string;
  /** The driver that decoded it, `id@version`. */
  readonly driver: string;
  /** Characteristic UUID it came from, normalised (see gatt/uuid.ts). */
  readonly characteristic: string;
  /** When it was measured (ISO-8601; UTC with `Z` when the source is the gateway). */
  readonly time: string;
  readonly timeSource: TimeSource;
  /** The device's own timestamp as sent (local time, no offset), or null. */
  readonly deviceTime: string | null;
  /** When the gateway received it (ISO-8601 UTC). */
  readonly receivedAt: string;
  readonly kind: 'measurement' | 'intermediate' | 'info';
  readonly observations: readonly Observation[];
  readonly status: readonly string[];
  readonly details: { readonly [k: string]: JsonValue };
  /**
   * Present (true) when the device had stored the reading before sending it: a glucose meter's RACP download, a
   * cuff's or scale's replay on connect. Absent for live readings. Stored readings travel on the backlog lane
   * unless an alert rule marks them.
   */
  readonly stored?: true;
  /** The hub's alert rule that put this reading on the alert lane (src/pipeline/alert-rules.ts), if any. */
  readonly alert?: MeasurementAlert;
}

/**
 * Why a reading travels on the alert lane: the rule that fired (its stable id), and whether the reading is
 * late (a stored or back-filled one, shown with its own time, never as "now"). The clinic owns alarms; this
 * only says why the hub sent it ahead of the backlog.
 */
export interface MeasurementAlert {
  readonly rule: string;
  readonly late: boolean;
}
