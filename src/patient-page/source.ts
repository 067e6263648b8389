import type { Observation } from '../model/observation.js';
import type { SessionState } from '../session/session-states.js';
import type { Lane } from '../store/outbox.js';

/**
 * What the patient page shows, as the hub hands it over. This is the hub's own patient's data (PHI): it is
 * served to the patient on this machine only (docs/patient-page.md), never logged.
 */
export interface PatientPageSnapshot {
  /** The hub's name for the patient: `gateway.label`, else `gateway.id`. */
  readonly hubName: string;
  /** Every enrolled device, in the order to show them. */
  readonly devices: readonly PageDevice[];
  readonly backlog: {
    /** Rows stored and not yet acknowledged by the clinic, per lane (Outbox.stats().pending). */
    readonly pending: Readonly<Record<Lane, number>>;
    readonly oldestPendingAgeMs: number | null;
  };
  /** The latest batches the clinic acknowledged, newest first (the hub keeps a few; the page shows 10). */
  readonly sent: readonly SentBatch[];
  readonly connection: PageConnection;
  /** The hub certificate's notAfter (epoch ms); null when it could not be read. */
  readonly certificateNotAfterMs: number | null;
  readonly clockSynchronised: boolean;
}

export interface PageDevice {
  /** The opaque device id (`d1-...`); never the Bluetooth address. */
  readonly id: string;
  /** The label given at enrolment (`pair --label`), or null. Free text: always escaped. */
  readonly label: string | null;
  /** The driver's profile (DeviceCategory: 'pulse-oximeter', 'blood-pressure', ...). */
  readonly profile: string;
  /** Manufacturer and model from the device, or null. Free text from the device: always escaped. */
  readonly model: string | null;
  /** Its session's state; null when no session runs for it. */
  readonly state: SessionState | null;
  /** When the hub last heard from it, epoch ms. */
  readonly lastSeenMs: number | null;
  /** The last battery level it reported, percent. */
  readonly batteryPercent: number | null;
  readonly lastReading: PageReading | null;
}

export interface PageReading {
  /** Measurement.time: ISO-8601; UTC with an offset or `Z` when the hub stamped it, else the device's own. */
  readonly time: string;
  readonly observations: readonly Observation[];
}

export interface SentBatch {
  /** When the clinic acknowledged it, epoch ms. */
  readonly atMs: number;
  readonly readings: number;
  /** The clinic's broker, as `uplink.brokers` names it (its host). */
  readonly clinic: string;
}

export interface PageConnection {
  readonly state: 'connected' | 'connecting' | 'offline';
  /** The broker's host when connected or connecting. */
  readonly clinic: string | null;
  /** Since when in this state, epoch ms; null when unknown. */
  readonly sinceMs: number | null;
}

/** The hub-facing interface: called once per page or /status.json request. May throw: the page says so. */
export interface PatientPageSource {
  snapshot(): PatientPageSnapshot | Promise<PatientPageSnapshot>;
}
