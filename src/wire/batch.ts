import { isMdcCode } from '../model/codes.js';
import type { Measurement, TimeSource } from '../model/measurement.js';
import type { InvalidReason, JsonValue, Observation } from '../model/observation.js';
import { isUcumUnit } from '../model/units.js';
import type { Gap } from '../store/retention.js';
import { type CborInput, type CborValue, encodeCbor } from './cbor.js';
import { WireError } from './errors.js';
import {
  checkJson,
  checkText,
  DATE_TIME,
  decodePayload,
  Fields,
  GATEWAY_ID,
  invalid,
  toJson,
  UTC_DATE_TIME,
  WIRE_VERSION,
} from './fields.js';

/**
 * The batch payload published on `rpm/v1/<gw>/obs` and `.../alert` (docs/wire-format.md, "Batch"): a CBOR map
 * with short text keys, one item per outbox record. The CDDL in the doc is the normative description; this
 * file is its implementation, and `decodeBatch(encodeBatch(b))` gives `b` back for every valid batch.
 */

/** One batch item: exactly the outbox's payload type, so the uplink encodes leased records as they are. */
export type BatchItem = { readonly type: 'measurement'; readonly measurement: Measurement } | Gap;

export interface Batch {
  readonly gatewayId: string;
  /** Batch sequence number: increases with every batch a gateway builds (durable across restarts). */
  readonly seq: number;
  /** When the batch was built (epoch ms, gateway clock). */
  readonly sentAt: number;
  readonly items: readonly BatchItem[];
}

export const MEASUREMENT_ID = /^m1-[0-9a-f]{32}$/;
export const GAP_ID = /^g1-[0-9a-f]{32}$/;
const DRIVER = /^[^@\s]{1,128}@[^@\s]{1,64}$/;
const CHARACTERISTIC = /^(?:[0-9a-f]{4}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
/** Syntax only: a receiver must accept codes and units newer than its own tables (see the doc's versioning). */
const MDC_SYNTAX = /^MDC_[A-Z0-9_]{1,80}$/;
const UCUM_SYNTAX = /^[!-~]{1,32}$/;
const TIME_SOURCES: readonly TimeSource[] = ['device', 'device-corrected', 'gateway'];
const KINDS: readonly Measurement['kind'][] = ['measurement', 'intermediate', 'info'];
const INVALID_REASONS: readonly InvalidReason[] = ['nan', 'nres', '+inf', '-inf', 'reserved'];
const GAP_REASONS: readonly Gap['reason'][] = ['evicted-full', 'expired'];

// ---------------------------------------------------------------------------------------------- encode

/**
 * Encodes a batch. The result is decoded again before it is returned, so the gateway never publishes bytes
 * that a receiver following the doc would refuse (a poison batch would be re-sent forever): any field out of
 * contract is WIRE_INVALID_FIELD here, at the source, naming the item and field.
 */
export function encodeBatch(batch: Batch): Uint8Array {
  const items: CborInput[] = batch.items.map((item, i) => encodeItem(item, `batch.items[${i}]`));
  const bytes = encodeCbor({
    v: WIRE_VERSION,
    gw: batch.gatewayId,
    seq: batch.seq,
    sent: batch.sentAt,
    items,
  });
  decodeBatch(bytes);
  return bytes;
}

function encodeItem(item: BatchItem, path: string): CborInput {
  if (item.type === 'gap') {
    return {
      t: 'gap',
      id: item.id,
      dev: item.deviceId,
      n: item.count,
      first: item.firstTime,
      last: item.lastTime,
      why: item.reason,
      rec: item.recordedAt,
    };
  }
  if (item.type !== 'measurement') invalid(`${path}.type`, '"measurement" or "gap"');
  const m = item.measurement;
  checkJson(m.details, `${path}.det`);
  return {
    t: 'm',
    id: m.id,
    dev: m.deviceId,
    drv: m.driver,
    chr: m.characteristic,
    time: m.time,
    tsrc: m.timeSource,
    dtime: m.deviceTime,
    rcvd: m.receivedAt,
    kind: m.kind,
    obs: m.observations.map((o, j) => encodeObservation(o, `${path}.obs[${j}]`)),
    // Empty status and details are left out: ~8 bytes per reading at 86,400 readings a day per oximeter.
    st: m.status.length > 0 ? [...m.status] : undefined,
    det: Object.keys(m.details).length > 0 ? (m.details as CborInput) : undefined,
  };
}

function encodeObservation(o: Observation, path: string): CborInput {
  // The gateway only sends what its own tables know (drivers are checked against them at load time).
  if (!isMdcCode(o.code)) invalid(`${path}[0]`, 'an MDC reference id from src/model/codes.ts');
  if (!isUcumUnit(o.unit)) invalid(`${path}[2]`, 'a UCUM unit from src/model/units.ts');
  // Shortest form: [code, value, unit], then the invalid reason (null when only a qualifier follows).
  if (o.qualifier !== undefined) return [o.code, o.value, o.unit, o.invalid ?? null, o.qualifier];
  if (o.invalid !== undefined) return [o.code, o.value, o.unit, o.invalid];
  return [o.code, o.value, o.unit];
}

// ---------------------------------------------------------------------------------------------- decode

/**
 * Decodes and validates a batch payload (the COSE_Sign1 payload, after verifyEnvelope). With `gatewayId`,
 * the payload's `gw` must be that id (the topic's, and the signer certificate's): WIRE_GATEWAY_MISMATCH.
 */
export function decodeBatch(payload: Uint8Array, expect: { readonly gatewayId?: string } = {}): Batch {
  const f = decodePayload(payload, 'batch');
  const gatewayId = f.text('gw', { pattern: GATEWAY_ID, describe: 'a gateway id' });
  if (expect.gatewayId !== undefined && gatewayId !== expect.gatewayId) {
    throw new WireError('WIRE_GATEWAY_MISMATCH', 'batch.gw is not the gateway the topic and signer name');
  }
  const seq = f.uint('seq');
  const sentAt = f.uint('sent', 'epoch milliseconds (uint)');
  const items = f.array('items').map((value, i) => decodeItem(value, `batch.items[${i}]`));
  return { gatewayId, seq, sentAt, items };
}

function decodeItem(value: CborValue, path: string): BatchItem {
  const f = Fields.of(value, path);
  const type = f.text('t', { oneOf: ['m', 'gap'] });
  return type === 'm' ? { type: 'measurement', measurement: decodeMeasurement(f) } : decodeGap(f);
}

function decodeMeasurement(f: Fields): Measurement {
  const id = f.text('id', { pattern: MEASUREMENT_ID, describe: '"m1-" and 32 lowercase hex digits' });
  const deviceId = f.text('dev', { min: 1, max: 128, describe: 'a device id (1-128 characters)' });
  const driver = f.text('drv', { pattern: DRIVER, describe: 'a driver "id@version"' });
  const characteristic = f.text('chr', { pattern: CHARACTERISTIC, describe: 'a lowercase UUID' });
  const time = f.text('time', { pattern: DATE_TIME, describe: 'an ISO-8601 date-time' });
  const timeSource = f.text('tsrc', { oneOf: TIME_SOURCES }) as TimeSource;
  const deviceTime = f.nullableText('dtime', { pattern: DATE_TIME, describe: 'an ISO-8601 date-time' });
  const receivedAt = f.text('rcvd', { pattern: UTC_DATE_TIME, describe: 'an ISO-8601 UTC date-time' });
  const kind = f.text('kind', { oneOf: KINDS }) as Measurement['kind'];
  const observations = f.array('obs').map((o, i) => decodeObservation(o, `${f.at('obs')}[${i}]`));
  const status = f.has('st')
    ? f.array('st').map((s, i) => checkText(s, `${f.at('st')}[${i}]`, { min: 1, max: 64 }))
    : [];
  let details: { readonly [k: string]: JsonValue } = {};
  if (f.has('det')) {
    const raw = f.get('det');
    if (!(raw instanceof Map)) invalid(f.at('det'), 'a map');
    details = toJson(raw, f.at('det')) as { readonly [k: string]: JsonValue };
  }
  return {
    id,
    deviceId,
    driver,
    characteristic,
    time,
    timeSource,
    deviceTime,
    receivedAt,
    kind,
    observations,
    status,
    details,
  };
}

function decodeObservation(value: CborValue, path: string): Observation {
  if (!Array.isArray(value) || value.length < 3 || value.length > 5) {
    invalid(path, 'an array [code, value, unit, ? invalid, ? qualifier]');
  }
  // A code or unit newer than this build's tables is passed on as it is (see the doc's versioning rules).
  const code = checkText(value[0], `${path}[0]`, { pattern: MDC_SYNTAX, describe: 'an MDC reference id' });
  const number = value[1];
  if (number !== null && (typeof number !== 'number' || !Number.isFinite(number))) {
    invalid(`${path}[1]`, 'a finite number or null');
  }
  const unit = checkText(value[2], `${path}[2]`, { pattern: UCUM_SYNTAX, describe: 'a UCUM unit' });
  const reason = value[3];
  let invalidReason: InvalidReason | undefined;
  if (reason !== undefined && reason !== null) {
    invalidReason = checkText(reason, `${path}[3]`, { oneOf: INVALID_REASONS }) as InvalidReason;
  }
  if ((number === null) !== (invalidReason !== undefined)) {
    invalid(`${path}[3]`, 'an invalid reason exactly when the value is null');
  }
  const qualifier =
    value.length === 5
      ? checkText(value[4], `${path}[4]`, { min: 1, max: 64, describe: 'a qualifier' })
      : undefined;
  const base = { code: code as Observation['code'], value: number, unit: unit as Observation['unit'] };
  if (invalidReason === undefined) return qualifier === undefined ? base : { ...base, qualifier };
  return qualifier === undefined
    ? { ...base, invalid: invalidReason }
    : { ...base, invalid: invalidReason, qualifier };
}

function decodeGap(f: Fields): Gap {
  const id = f.text('id', { pattern: GAP_ID, describe: '"g1-" and 32 lowercase hex digits' });
  const deviceId = f.text('dev', { min: 1, max: 128, describe: 'a device id (1-128 characters)' });
  const count = f.uint('n');
  if (count < 1) invalid(f.at('n'), 'a count of at least 1');
  const firstTime = f.text('first', { pattern: DATE_TIME, describe: 'an ISO-8601 date-time' });
  const lastTime = f.text('last', { pattern: DATE_TIME, describe: 'an ISO-8601 date-time' });
  const reason = f.text('why', { oneOf: GAP_REASONS }) as Gap['reason'];
  const recordedAt = f.text('rec', { pattern: UTC_DATE_TIME, describe: 'an ISO-8601 UTC date-time' });
  return { type: 'gap', id, deviceId, count, firstTime, lastTime, reason, recordedAt };
}
