import type { Gap } from '../../../model/gap.js';
import type { Measurement } from '../../../model/measurement.js';
import type { InvalidReason } from '../../../model/observation.js';
import type { GatewayStatus } from '../../../wire/status.js';
import type {
  Assignment,
  IncomingRejection,
  IncomingStatus,
  Receipt,
  SeriesPoint,
  StoredMeasurement,
} from '../clinic-store.js';

/**
 * Rows as node-postgres returns them, and their conversion to the interface's types. `bigint` columns arrive
 * as strings (node-postgres does not guess that an int8 fits a JavaScript number); epoch milliseconds do, so
 * they are converted with Number. jsonb arrives parsed.
 */
export type Int8 = string | number;

export const MEASUREMENT_COLUMNS =
  'm.gateway_id, m.topic, m.batch_seq, m.sent_at, m.signer_serial, m.received_at, m.measured_at, m.committed_at, m.body';

export interface MeasurementRow {
  readonly gateway_id: string;
  readonly topic: 'obs' | 'alert';
  readonly batch_seq: Int8;
  readonly sent_at: Int8;
  readonly signer_serial: string;
  readonly received_at: Int8;
  readonly measured_at: Int8;
  readonly committed_at: Int8;
  readonly body: Measurement;
}

export function receiptOf(row: {
  readonly gateway_id: string;
  readonly topic: string;
  readonly batch_seq: Int8;
  readonly sent_at: Int8;
  readonly signer_serial: string;
  readonly received_at: Int8;
}): Receipt {
  return {
    gatewayId: row.gateway_id,
    topic: row.topic === 'alert' ? 'alert' : 'obs',
    batchSeq: Number(row.batch_seq),
    sentAt: Number(row.sent_at),
    signerSerial: row.signer_serial,
    receivedAt: Number(row.received_at),
  };
}

export function storedMeasurementOf(row: MeasurementRow): StoredMeasurement {
  return {
    measurement: row.body,
    measuredAt: Number(row.measured_at),
    receipt: receiptOf(row),
    committedAt: Number(row.committed_at),
  };
}

export const GAP_COLUMNS =
  'g.gateway_id, g.topic, g.batch_seq, g.sent_at, g.signer_serial, g.received_at, g.body';

export interface GapRow {
  readonly gateway_id: string;
  readonly topic: string;
  readonly batch_seq: Int8;
  readonly sent_at: Int8;
  readonly signer_serial: string;
  readonly received_at: Int8;
  readonly body: Gap;
}

export const gapOf = (row: GapRow): { gap: Gap; receipt: Receipt } => ({
  gap: row.body,
  receipt: receiptOf(row),
});

export const STATUS_COLUMNS = 's.signer_serial, s.received_at, s.body';

export interface StatusRow {
  readonly signer_serial: string;
  readonly received_at: Int8;
  readonly body: GatewayStatus;
}

export const statusOf = (row: StatusRow): IncomingStatus => ({
  status: row.body,
  signerSerial: row.signer_serial,
  receivedAt: Number(row.received_at),
});

export interface AssignmentRow {
  readonly id: Int8;
  readonly gateway_id: string;
  readonly mrn: string;
  readonly from_at: Int8;
  readonly to_at: Int8 | null;
  readonly time_zone: string | null;
  readonly created_by: string;
  readonly created_at: Int8;
}

export function assignmentOf(row: AssignmentRow): Assignment {
  return {
    id: Number(row.id),
    gatewayId: row.gateway_id,
    mrn: row.mrn,
    from: Number(row.from_at),
    ...(row.to_at === null ? {} : { to: Number(row.to_at) }),
    ...(row.time_zone === null ? {} : { timeZone: row.time_zone }),
    createdBy: row.created_by,
    createdAt: Number(row.created_at),
  };
}

export interface SeriesRow {
  readonly measurement_id: string;
  readonly measured_at: Int8;
  readonly code: string;
  readonly value: number | null;
  readonly unit: string;
  readonly invalid: string | null;
  readonly qualifier: string | null;
  readonly stored: boolean;
  readonly gateway_id: string;
  readonly device_id: string;
  readonly driver: string;
}

export function seriesPointOf(row: SeriesRow): SeriesPoint {
  return {
    measurementId: row.measurement_id,
    measuredAt: Number(row.measured_at),
    code: row.code,
    value: row.value,
    unit: row.unit,
    ...(row.invalid === null ? {} : { invalid: row.invalid as InvalidReason }),
    ...(row.qualifier === null ? {} : { qualifier: row.qualifier }),
    stored: row.stored,
    gatewayId: row.gateway_id,
    deviceId: row.device_id,
    driver: row.driver,
  };
}

export interface RejectionRow {
  readonly id: Int8;
  readonly topic: string;
  readonly code: string;
  readonly message: string;
  readonly received_at: Int8;
  readonly gateway_id: string | null;
  readonly payload: Buffer | null;
}

export function rejectionOf(row: RejectionRow): IncomingRejection & { readonly id: number } {
  return {
    id: Number(row.id),
    topic: row.topic,
    code: row.code,
    message: row.message,
    receivedAt: Number(row.received_at),
    ...(row.gateway_id === null ? {} : { gatewayId: row.gateway_id }),
    ...(row.payload === null ? {} : { payload: new Uint8Array(row.payload) }),
  };
}
