import { ByteReader } from './byte-reader.js';
import { type DeviceDateTime, encodeDateTime } from './date-time.js';

/**
 * Record Access Control Point (0x2A52) as the Glucose Service uses it (GLS 1.0.1 3.4; layout in the GATT
 * Specification Supplement entry "Record Access Control Point"): op code, operator, operand. GLS fixes the op
 * codes (1-6), the operators (0-6), the filter types (1 = sequence number, uint16; 2 = user facing time, Date
 * Time) and the response code values (1-9). Decodes both directions: the Client's requests and the Server's
 * indications. An op code, operator or filter type outside those lists is DECODE_INVALID_FIELD, because the
 * operand layout depends on it; a reserved response code value is kept and named 'reserved'.
 */

/** RACP Op Codes used by GLS 1.0.1 (GLS 1.0.1 3.4; GSS Record Access Control Point); indexed by value. */
export const RACP_OP_CODES = [
  undefined,
  'report-stored-records',
  'delete-stored-records',
  'abort-operation',
  'report-number-of-stored-records',
  'number-of-stored-records-response',
  'response-code',
] as const;

export type RacpOpCode = Exclude<(typeof RACP_OP_CODES)[number], undefined>;

/** RACP Operators (GLS 1.0.1 3.4); indexed by value. */
export const RACP_OPERATORS = [
  'null',
  'all',
  'less-or-equal',
  'greater-or-equal',
  'within-range',
  'first',
  'last',
] as const;

export type RacpOperator = (typeof RACP_OPERATORS)[number];

/** Filter Types (GLS 1.0.1 3.4); indexed by value. */
export const RACP_FILTER_TYPES = [undefined, 'sequence-number', 'user-facing-time'] as const;

/** Response Code Values (GLS 1.0.1 3.4); indexed by value. 0 and 10-255 are reserved. */
export const RACP_RESPONSE_CODES = [
  undefined,
  'success',
  'op-code-not-supported',
  'invalid-operator',
  'operator-not-supported',
  'invalid-operand',
  'no-records-found',
  'abort-unsuccessful',
  'procedure-not-completed',
  'operand-not-supported',
] as const;

export type RacpResponseCode = Exclude<(typeof RACP_RESPONSE_CODES)[number], undefined> | 'reserved';

/** A record filter: `min` for >=, `max` for <=, both for "within range" (inclusive). */
export type RacpFilter =
  | { readonly type: 'sequence-number'; readonly min?: number; readonly max?: number }
  | { readonly type: 'user-facing-time'; readonly min?: DeviceDateTime; readonly max?: DeviceDateTime };

/** A request the Client writes: report, delete, report number (with an operator) or abort (operator null). */
export interface RacpRequest {
  readonly opCode:
    | 'report-stored-records'
    | 'delete-stored-records'
    | 'report-number-of-stored-records'
    | 'abort-operation';
  readonly operator: RacpOperator;
  /** Only for the operators less-or-equal, greater-or-equal and within-range. */
  readonly filter?: RacpFilter;
}

export interface RacpNumberOfRecords {
  readonly opCode: 'number-of-stored-records-response';
  readonly operator: 'null';
  readonly numberOfRecords: number;
}

export interface RacpResponse {
  readonly opCode: 'response-code';
  readonly operator: 'null';
  /** The op code the Server answers (kept raw: it may answer a request op code it does not know). */
  readonly requestOpCode: number;
  readonly requestOpCodeName: RacpOpCode | undefined;
  readonly responseCode: number;
  readonly responseCodeName: RacpResponseCode;
}

export type RacpMessage = RacpRequest | RacpNumberOfRecords | RacpResponse;

/**
 * Decodes a Record Access Control Point value in either direction: a request (as written by the Client) or an
 * indication from the Server. Op code, operator and operand layout per GLS 1.0.1 3.4: request op
 * codes need a non-null operator, abort and both responses need the Null operator; an operand appears only for
 * <=, >=, within-range (Filter Type + one or two values), number-of-records (uint16) and response-code (request
 * op code + response code value). Unknown op codes, operators and filter types are DECODE_INVALID_FIELD.
 */
export function decodeRacp(bytes: Uint8Array): RacpMessage {
  // Annotated, so TypeScript treats r.invalid() (returns never) as ending the branch.
  const r: ByteReader = new ByteReader(bytes, 'Record Access Control Point');
  const op = r.u8('Op Code');
  const opCode = RACP_OP_CODES[op];
  if (opCode === undefined) r.invalid(`op code ${op} is not a GLS 1.0.1 RACP op code`, 0);
  const operatorValue = r.u8('Operator');
  const operator = RACP_OPERATORS[operatorValue];
  if (operator === undefined) r.invalid(`operator ${operatorValue} is not defined`, 1);
  switch (opCode) {
    case 'number-of-stored-records-response': {
      if (operator !== 'null') r.invalid(`${opCode} needs the Null operator, got ${operator}`, 1);
      const numberOfRecords = r.u16('Number of Stored Records');
      r.end();
      return { opCode, operator, numberOfRecords };
    }
    case 'response-code': {
      if (operator !== 'null') r.invalid(`${opCode} needs the Null operator, got ${operator}`, 1);
      const requestOpCode = r.u8('Request Op Code');
      const responseCode = r.u8('Response Code Value');
      r.end();
      return {
        opCode,
        operator,
        requestOpCode,
        requestOpCodeName: RACP_OP_CODES[requestOpCode],
        responseCode,
        responseCodeName: RACP_RESPONSE_CODES[responseCode] ?? 'reserved',
      };
    }
    case 'abort-operation':
      if (operator !== 'null') r.invalid(`${opCode} needs the Null operator, got ${operator}`, 1);
      r.end();
      return { opCode, operator };
    default: {
      if (operator === 'null') r.invalid(`${opCode} needs an operator, got Null`, 1);
      if (operator !== 'less-or-equal' && operator !== 'greater-or-equal' && operator !== 'within-range') {
        r.end();
        return { opCode, operator };
      }
      const filter = readFilter(r, operator);
      r.end();
      return { opCode, operator, filter };
    }
  }
}

function readFilter(
  r: ByteReader,
  operator: 'less-or-equal' | 'greater-or-equal' | 'within-range',
): RacpFilter {
  const typeValue = r.u8('Filter Type');
  const type = RACP_FILTER_TYPES[typeValue];
  if (type === undefined) r.invalid(`filter type ${typeValue} is not defined`);
  if (type === 'sequence-number') {
    const first = r.u16('Sequence Number');
    if (operator === 'less-or-equal') return { type, max: first };
    if (operator === 'greater-or-equal') return { type, min: first };
    return { type, min: first, max: r.u16('Sequence Number') };
  }
  const first = r.dateTime('User Facing Time');
  if (operator === 'less-or-equal') return { type, max: first };
  if (operator === 'greater-or-equal') return { type, min: first };
  return { type, min: first, max: r.dateTime('User Facing Time') };
}

/**
 * Encodes any RACP message (requests for the session; responses for the simulator). User-facing-time filters
 * take DeviceDateTime values with an ISO time. Throws RangeError for a message decodeRacp would refuse.
 */
export function encodeRacp(message: RacpMessage): Uint8Array {
  const op = RACP_OP_CODES.indexOf(message.opCode);
  const operator = RACP_OPERATORS.indexOf(message.operator);
  const needsNull = op === 3 || op === 5 || op === 6;
  if (op < 1 || operator < 0 || needsNull !== (operator === 0)) {
    throw new RangeError(`${message.opCode} cannot take the operator ${message.operator}`);
  }
  const out = [op, operator];
  switch (message.opCode) {
    case 'number-of-stored-records-response':
      pushU16(out, message.numberOfRecords);
      break;
    case 'response-code':
      out.push(message.requestOpCode & 0xff, message.responseCode & 0xff);
      break;
    default: {
      const f = message.filter;
      const ranged =
        message.operator === 'less-or-equal' ||
        message.operator === 'greater-or-equal' ||
        message.operator === 'within-range';
      if (ranged !== (f !== undefined))
        throw new RangeError(`operator ${message.operator} and filter disagree`);
      if (f === undefined) break;
      out.push(RACP_FILTER_TYPES.indexOf(f.type));
      const values =
        message.operator === 'less-or-equal'
          ? [f.max]
          : message.operator === 'greater-or-equal'
            ? [f.min]
            : [f.min, f.max];
      for (const value of values) {
        if (value === undefined) throw new RangeError(`filter for ${message.operator} lacks a bound`);
        if (typeof value === 'number') pushU16(out, value);
        else out.push(...encodeDateTime(fieldsFromIso(value.iso)));
      }
    }
  }
  return Uint8Array.from(out);
}

/** Report all stored records (GLS 1.0.1 3.4): 01 01. */
export function encodeRacpReportAll(): Uint8Array {
  return encodeRacp({ opCode: 'report-stored-records', operator: 'all' });
}

/**
 * Report stored records with sequence number >= `sequenceNumber` (01 03 01 nn nn): how a session resumes an
 * interrupted download (pass the last stored sequence number + 1).
 */
export function encodeRacpReportFrom(sequenceNumber: number): Uint8Array {
  return encodeRacp({
    opCode: 'report-stored-records',
    operator: 'greater-or-equal',
    filter: { type: 'sequence-number', min: sequenceNumber },
  });
}

/** Report number of stored records: all (04 01), or those with sequence number >= `fromSequenceNumber`. */
export function encodeRacpReportNumberOfRecords(fromSequenceNumber?: number): Uint8Array {
  return fromSequenceNumber === undefined
    ? encodeRacp({ opCode: 'report-number-of-stored-records', operator: 'all' })
    : encodeRacp({
        opCode: 'report-number-of-stored-records',
        operator: 'greater-or-equal',
        filter: { type: 'sequence-number', min: fromSequenceNumber },
      });
}

/** Abort operation (GLS 1.0.1 3.4): 03 00. */
export function encodeRacpAbort(): Uint8Array {
  return encodeRacp({ opCode: 'abort-operation', operator: 'null' });
}

function pushU16(out: number[], value: number): void {
  out.push(value & 0xff, (value >> 8) & 0xff);
}

/** "YYYY-MM-DDThh:mm:ss" -> fields (encoder side only). */
function fieldsFromIso(iso: string | null): Parameters<typeof encodeDateTime>[0] {
  if (iso === null || iso.length !== 19) throw new RangeError('a user-facing-time filter needs a known time');
  return {
    year: Number(iso.slice(0, 4)),
    month: Number(iso.slice(5, 7)),
    day: Number(iso.slice(8, 10)),
    hours: Number(iso.slice(11, 13)),
    minutes: Number(iso.slice(14, 16)),
    seconds: Number(iso.slice(17, 19)),
  };
}
