import { isMdcCode } from '../model/codes.js';
import type { Gap } from '../model/gap.js';
import type { Measurement, TimeSource } from '../model/measurement.js';
import type { InvalidReason, JsonValue, Observation } from '../model/observation.js';
import { isUcumUnit } from '../model/units.js';
import { type CborInput, CborRaw, type CborValue, decodeCbor, encodeCbor } from './cbor.js';
import { WireError } from './errors.js';
import {
  checkJson,
  checkText,
  checkUint,
  DATE_TIME,
  decodePayload,
  Fields,
  GATEWAY_ID,
  invalid,
  type TextRule,
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
const GAP_REASONS: readonly Gap['reason'][] = ['evicted-full', 'expired', 'store-damaged'];

/**
 * The rule of every text field, by wire key. The decoder reads with these and the encoder checks with the same
 * ones, so what the gateway sends is exactly what a receiver following the doc accepts.
 */
const RULE = {
  gw: { pattern: GATEWAY_ID, describe: 'a gateway id' },
  id: { pattern: MEASUREMENT_ID, describe: '"m1-" and 32 lowercase hex digits' },
  gapId: { pattern: GAP_ID, describe: '"g1-" and 32 lowercase hex digits' },
  dev: { min: 1, max: 128, describe: 'a device id (1-128 characters)' },
  drv: { pattern: DRIVER, describe: 'a driver "id@version"' },
  chr: { pattern: CHARACTERISTIC, describe: 'a lowercase UUID' },
  time: { pattern: DATE_TIME, describe: 'an ISO-8601 date-time' },
  utc: { pattern: UTC_DATE_TIME, describe: 'an ISO-8601 UTC date-time' },
  tsrc: { oneOf: TIME_SOURCES },
  kind: { oneOf: KINDS },
  status: { min: 1, max: 64 },
  code: { pattern: MDC_SYNTAX, describe: 'an MDC reference id' },
  unit: { pattern: UCUM_SYNTAX, describe: 'a UCUM unit' },
  invalid: { oneOf: INVALID_REASONS },
  qualifier: { min: 1, max: 64, describe: 'a qualifier' },
  why: { oneOf: GAP_REASONS },
  rule: { min: 1, max: 128, pattern: /^[!-~]+$/, describe: 'an alert rule id (1-128 printable ASCII)' },
} satisfies Record<string, TextRule>;

// ---------------------------------------------------------------------------------------------- encode

/**
 * Encodes one batch item (the CBOR map of a measurement or gap record). Every field is checked against the
 * rules the decoder applies, so the gateway never publishes bytes that a receiver following the doc would
 * refuse (a poison batch would be re-sent forever): a field out of contract is WIRE_INVALID_FIELD here, at the
 * source, naming the item and field. The outbox stores readings in this form (src/uplink/record-codec.ts), so a
 * batch is assembled from stored items without encoding them again.
 */
export function encodeBatchItem(item: BatchItem, path = 'item'): Uint8Array {
  return encodeCbor(item.type === 'gap' ? gapItem(item, path) : measurementItem(item, path));
}

/** A batch from items made by encodeBatchItem, spliced in as they are. */
export function encodeBatchOfItems(
  header: Pick<Batch, 'gatewayId' | 'seq' | 'sentAt'>,
  items: readonly Uint8Array[],
): Uint8Array {
  checkText(header.gatewayId, 'batch.gw', RULE.gw);
  checkUint(header.seq, 'batch.seq');
  checkUint(header.sentAt, 'batch.sent', 'epoch milliseconds (uint)');
  return encodeCbor({
    v: WIRE_VERSION,
    gw: header.gatewayId,
    seq: header.seq,
    sent: header.sentAt,
    items: items.map((bytes) => new CborRaw(bytes)),
  });
}

/** Encodes a batch (see encodeBatchItem for the checks). `decodeBatch(encodeBatch(b))` gives `b` back. */
export function encodeBatch(batch: Batch): Uint8Array {
  return encodeBatchOfItems(
    batch,
    batch.items.map((item, i) => encodeBatchItem(item, `batch.items[${i}]`)),
  );
}

function gapItem(gap: Gap, path: string): CborInput {
  checkText(gap.id, `${path}.id`, RULE.gapId);
  checkText(gap.deviceId, `${path}.dev`, RULE.dev);
  if (checkUint(gap.count, `${path}.n`) < 1) invalid(`${path}.n`, 'a count of at least 1');
  checkText(gap.firstTime, `${path}.first`, RULE.time);
  checkText(gap.lastTime, `${path}.last`, RULE.time);
  checkText(gap.reason, `${path}.why`, RULE.why);
  checkText(gap.recordedAt, `${path}.rec`, RULE.utc);
  const item: Record<string, CborInput> = {
    t: 'gap',
    id: gap.id,
    dev: gap.deviceId,
    n: gap.count,
    first: gap.firstTime,
    last: gap.lastTime,
    why: gap.reason,
    rec: gap.recordedAt,
  };
  if (gap.seqs !== undefined) item.seqs = checkSeqs([...gap.seqs], `${path}.seqs`);
  return item;
}

/** `seqs`: the first and last outbox sequence number of the records a store-damaged gap stands for. */
function checkSeqs(value: CborValue, path: string): [number, number] {
  if (!Array.isArray(value) || value.length !== 2) invalid(path, 'two sequence numbers [first, last]');
  const first = checkUint(value[0], `${path}[0]`);
  const last = checkUint(value[1], `${path}[1]`);
  if (first > last) invalid(path, 'first <= last');
  return [first, last];
}

function measurementItem(item: BatchItem, path: string): CborInput {
  if (item.type !== 'measurement') invalid(`${path}.type`, '"measurement" or "gap"');
  const m = item.measurement;
  checkText(m.id, `${path}.id`, RULE.id);
  checkText(m.deviceId, `${path}.dev`, RULE.dev);
  checkText(m.driver, `${path}.drv`, RULE.drv);
  checkText(m.characteristic, `${path}.chr`, RULE.chr);
  checkText(m.time, `${path}.time`, RULE.time);
  checkText(m.timeSource, `${path}.tsrc`, RULE.tsrc);
  if (m.deviceTime !== null) {
    checkText(m.deviceTime, `${path}.dtime`, { ...RULE.time, describe: `${RULE.time.describe} or null` });
  }
  checkText(m.receivedAt, `${path}.rcvd`, RULE.utc);
  checkText(m.kind, `${path}.kind`, RULE.kind);
  if (!Array.isArray(m.observations)) invalid(`${path}.obs`, 'an array');
  if (!Array.isArray(m.status)) invalid(`${path}.st`, 'an array');
  for (const [j, s] of m.status.entries()) checkText(s, `${path}.st[${j}]`, RULE.status);
  checkJson(m.details, `${path}.det`);
  if (m.details === null || typeof m.details !== 'object' || Array.isArray(m.details)) {
    invalid(`${path}.det`, 'a map');
  }
  if (m.stored !== undefined && m.stored !== true) invalid(`${path}.stored`, 'true (or absent)');
  let alert: CborInput | undefined;
  if (m.alert !== undefined) {
    if (m.alert === null || typeof m.alert !== 'object') invalid(`${path}.alert`, 'a map');
    checkText(m.alert.rule, `${path}.alert.rule`, RULE.rule);
    if (typeof m.alert.late !== 'boolean') invalid(`${path}.alert.late`, 'true or false');
    alert = { rule: m.alert.rule, late: m.alert.late };
  }
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
    obs: m.observations.map((o, j) => observationItem(o, `${path}.obs[${j}]`)),
    // Empty status and details are left out: ~8 bytes per reading at 86,400 readings a day per oximeter.
    st: m.status.length > 0 ? [...m.status] : undefined,
    det: Object.keys(m.details).length > 0 ? (m.details as CborInput) : undefined,
    // Added compatibly in a revision of version 1 (docs/wire-format.md, 7.1 and 11): absent when not set.
    stored: m.stored,
    alert,
  };
}

function observationItem(o: Observation, path: string): CborInput {
  // The gateway only sends what its own tables know (drivers are checked against them at load time).
  if (!isMdcCode(o.code)) invalid(`${path}[0]`, 'an MDC reference id from src/model/codes.ts');
  if (!isUcumUnit(o.unit)) invalid(`${path}[2]`, 'a UCUM unit from src/model/units.ts');
  if (o.value !== null && (typeof o.value !== 'number' || !Number.isFinite(o.value))) {
    invalid(`${path}[1]`, 'a finite number or null');
  }
  if (o.invalid !== undefined) checkText(o.invalid, `${path}[3]`, RULE.invalid);
  if ((o.value === null) !== (o.invalid !== undefined)) {
    invalid(`${path}[3]`, 'an invalid reason exactly when the value is null');
  }
  if (o.qualifier !== undefined) checkText(o.qualifier, `${path}[4]`, RULE.qualifier);
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
  const gatewayId = f.text('gw', RULE.gw);
  if (expect.gatewayId !== undefined && gatewayId !== expect.gatewayId) {
    throw new WireError('WIRE_GATEWAY_MISMATCH', 'batch.gw is not the gateway the topic and signer name');
  }
  const seq = f.uint('seq');
  const sentAt = f.uint('sent', 'epoch milliseconds (uint)');
  const items = f.array('items').map((value, i) => decodeItem(value, `batch.items[${i}]`));
  return { gatewayId, seq, sentAt, items };
}

/** Decodes one item made by encodeBatchItem (a stored outbox body; see src/uplink/record-codec.ts). */
export function decodeBatchItem(bytes: Uint8Array, path = 'item'): BatchItem {
  return decodeItem(decodeCbor(bytes), path);
}

function decodeItem(value: CborValue, path: string): BatchItem {
  const f = Fields.of(value, path);
  const type = f.text('t', { oneOf: ['m', 'gap'] });
  return type === 'm' ? { type: 'measurement', measurement: decodeMeasurement(f) } : decodeGap(f);
}

function decodeMeasurement(f: Fields): Measurement {
  const id = f.text('id', RULE.id);
  const deviceId = f.text('dev', RULE.dev);
  const driver = f.text('drv', RULE.drv);
  const characteristic = f.text('chr', RULE.chr);
  const time = f.text('time', RULE.time);
  const timeSource = f.text('tsrc', RULE.tsrc) as TimeSource;
  const deviceTime = f.nullableText('dtime', RULE.time);
  const receivedAt = f.text('rcvd', RULE.utc);
  const kind = f.text('kind', RULE.kind) as Measurement['kind'];
  const observations = f.array('obs').map((o, i) => decodeObservation(o, `${f.at('obs')}[${i}]`));
  const status = f.has('st')
    ? f.array('st').map((s, i) => checkText(s, `${f.at('st')}[${i}]`, RULE.status))
    : [];
  let details: { readonly [k: string]: JsonValue } = {};
  if (f.has('det')) {
    const raw = f.get('det');
    if (!(raw instanceof Map)) invalid(f.at('det'), 'a map');
    details = toJson(raw, f.at('det')) as { readonly [k: string]: JsonValue };
  }
  const measurement: Measurement = {
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
  return withMarks(measurement, f);
}

/** `stored` and `alert` (docs/wire-format.md, 7.1): optional, added in a revision of version 1. */
function withMarks(measurement: Measurement, f: Fields): Measurement {
  let marked = measurement;
  if (f.has('stored')) {
    if (f.get('stored') !== true) invalid(f.at('stored'), 'true (or absent)');
    marked = { ...marked, stored: true };
  }
  if (f.has('alert')) {
    const alert = f.fields('alert');
    marked = { ...marked, alert: { rule: alert.text('rule', RULE.rule), late: alert.bool('late') } };
  }
  return marked;
}

function decodeObservation(value: CborValue, path: string): Observation {
  if (!Array.isArray(value) || value.length < 3 || value.length > 5) {
    invalid(path, 'an array [code, value, unit, ? invalid, ? qualifier]');
  }
  // A code or unit newer than this build's tables is passed on as it is (see the doc's versioning rules).
  const code = checkText(value[0], `${path}[0]`, RULE.code);
  const number = value[1];
  if (number !== null && (typeof number !== 'number' || !Number.isFinite(number))) {
    invalid(`${path}[1]`, 'a finite number or null');
  }
  const unit = checkText(value[2], `${path}[2]`, RULE.unit);
  const reason = value[3];
  let invalidReason: InvalidReason | undefined;
  if (reason !== undefined && reason !== null) {
    invalidReason = checkText(reason, `${path}[3]`, RULE.invalid) as InvalidReason;
  }
  if ((number === null) !== (invalidReason !== undefined)) {
    invalid(`${path}[3]`, 'an invalid reason exactly when the value is null');
  }
  const qualifier = value.length === 5 ? checkText(value[4], `${path}[4]`, RULE.qualifier) : undefined;
  const base = { code: code as Observation['code'], value: number, unit: unit as Observation['unit'] };
  if (invalidReason === undefined) return qualifier === undefined ? base : { ...base, qualifier };
  return qualifier === undefined
    ? { ...base, invalid: invalidReason }
    : { ...base, invalid: invalidReason, qualifier };
}

function decodeGap(f: Fields): Gap {
  const id = f.text('id', RULE.gapId);
  const deviceId = f.text('dev', RULE.dev);
  const count = f.uint('n');
  if (count < 1) invalid(f.at('n'), 'a count of at least 1');
  const firstTime = f.text('first', RULE.time);
  const lastTime = f.text('last', RULE.time);
  const reason = f.text('why', RULE.why) as Gap['reason'];
  const recordedAt = f.text('rec', RULE.utc);
  const gap: Gap = { type: 'gap', id, deviceId, count, firstTime, lastTime, reason, recordedAt };
  return f.has('seqs') ? { ...gap, seqs: checkSeqs(f.get('seqs'), f.at('seqs')) } : gap;
}
