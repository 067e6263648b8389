import type { Gap } from '../../../model/gap.js';
import type { Measurement } from '../../../model/measurement.js';
import type { GatewayStatus } from '../../../wire/status.js';
import type {
  Assignment,
  IncomingRejection,
  IncomingStatus,
  Receipt,
  StoredMeasurement,
} from '../clinic-store.js';

/** Rows as SQLite returns them, and their conversion to the ClinicStore types (NULL columns become absent fields). */
export interface ReceiptRow {
  readonly gateway_id: string;
  readonly topic: string;
  readonly batch_seq: number;
  readonly sent_at: number;
  readonly signer_serial: string;
  readonly received_at: number;
}

export interface MeasurementRow extends ReceiptRow {
  readonly seq: number;
  readonly id: string;
  readonly device_id: string;
  readonly driver: string;
  readonly characteristic: string;
  readonly time_text: string;
  readonly time_source: string;
  readonly stored: number;
  readonly measured_at: number;
  readonly committed_at: number;
  readonly rest: string;
}

export interface GapRow extends ReceiptRow {
  readonly body: string;
}

export interface StatusRow {
  readonly body: string;
  readonly signer_serial: string;
  readonly received_at: number;
}

export interface AssignmentRow {
  readonly id: number;
  readonly gateway_id: string;
  readonly mrn: string;
  readonly from_ms: number;
  readonly to_ms: number | null;
  readonly time_zone: string | null;
  readonly created_by: string;
  readonly created_at: number;
}

export interface RejectionRow {
  readonly id: number;
  readonly topic: string;
  readonly code: string;
  readonly message: string;
  readonly received_at: number;
  readonly gateway_id: string | null;
  readonly payload: Buffer | null;
}

/** The columns a MeasurementRow is read from, for SELECTs on `measurements m`. */
export const MEASUREMENT_COLUMNS = `m.seq, m.id, m.device_id, m.driver, m.characteristic, m.time_text, m.time_source,
  m.stored, m.gateway_id, m.topic, m.batch_seq, m.sent_at, m.signer_serial, m.received_at, m.measured_at,
  m.committed_at, m.rest`;

/**
 * The `rest` column of a measurement: the fields that have no column of their own, JSON. `stored: true` is
 * the `stored` column; any other value of it (the type allows none, but the row must give back what came)
 * stays here.
 */
export function measurementRest(m: Measurement): string {
  const { id, deviceId, driver, characteristic, time, timeSource, ...rest } = m;
  if (rest.stored === true) delete (rest as { stored?: true }).stored;
  return JSON.stringify(rest);
}

export function receiptOf(row: ReceiptRow): Receipt {
  return {
    gatewayId: row.gateway_id,
    topic: row.topic as Receipt['topic'],
    batchSeq: row.batch_seq,
    sentAt: row.sent_at,
    signerSerial: row.signer_serial,
    receivedAt: row.received_at,
  };
}

export function storedMeasurementOf(row: MeasurementRow): StoredMeasurement {
  return {
    measurement: {
      id: row.id,
      deviceId: row.device_id,
      driver: row.driver,
      characteristic: row.characteristic,
      time: row.time_text,
      timeSource: row.time_source as Measurement['timeSource'],
      ...(JSON.parse(row.rest) as Omit<
        Measurement,
        'id' | 'deviceId' | 'driver' | 'characteristic' | 'time' | 'timeSource'
      >),
      ...(row.stored === 1 ? { stored: true } : {}),
    },
    measuredAt: row.measured_at,
    receipt: receiptOf(row),
    committedAt: row.committed_at,
  };
}

export function gapOf(row: GapRow): { readonly gap: Gap; readonly receipt: Receipt } {
  return { gap: JSON.parse(row.body) as Gap, receipt: receiptOf(row) };
}

export function statusOf(row: StatusRow): IncomingStatus {
  return {
    status: JSON.parse(row.body) as GatewayStatus,
    signerSerial: row.signer_serial,
    receivedAt: row.received_at,
  };
}

export function assignmentOf(row: AssignmentRow): Assignment {
  return {
    id: row.id,
    gatewayId: row.gateway_id,
    mrn: row.mrn,
    from: row.from_ms,
    ...(row.to_ms === null ? {} : { to: row.to_ms }),
    ...(row.time_zone === null ? {} : { timeZone: row.time_zone }),
    createdBy: row.created_by,
    createdAt: row.created_at,
  };
}

export function rejectionOf(row: RejectionRow): IncomingRejection & { readonly id: number } {
  return {
    id: row.id,
    topic: row.topic,
    code: row.code,
    message: row.message,
    receivedAt: row.received_at,
    ...(row.gateway_id === null ? {} : { gatewayId: row.gateway_id }),
    // A copy as a plain Uint8Array, as the interface says (a Buffer is a subclass with another prototype).
    ...(row.payload === null ? {} : { payload: new Uint8Array(row.payload) }),
  };
}
