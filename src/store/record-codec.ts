import { StoreError } from './errors.js';
import type { OutboxPayload } from './outbox.js';

/**
 * How the outbox writes a record's body. Each row names its format (column `format`), so a store keeps
 * working when the gateway's choice changes: rows written before stay readable.
 *
 * - 0, JSON: built in; what the store wrote before schema version 4, and the fallback for a reading the
 *   configured codec refuses (the uplink then quarantines it rather than block the queue).
 * - 1, the wire format's batch item (src/uplink/record-codec.ts): the gateway's choice. The item is encoded and
 *   checked once, when the reading is stored; a batch is then a concatenation of stored items.
 *
 * The store only moves these bytes; it does not depend on the wire format (the codec is injected).
 */
export interface RecordCodec {
  /** Stored in each row; 0 is reserved for JSON. */
  readonly format: number;
  /** Throws when the payload cannot be written in this format (the row is then stored as JSON). */
  encode(payload: OutboxPayload): Uint8Array;
  decode(body: Uint8Array): OutboxPayload;
}

export const JSON_FORMAT = 0;

export const jsonRecords: RecordCodec = {
  format: JSON_FORMAT,
  encode: (payload) => Buffer.from(JSON.stringify(payload)),
  decode: (body) => JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.length).toString('utf8')),
};

/** Decodes a stored body by its row's format. */
export function decodeBody(format: number, body: Uint8Array, codec: RecordCodec): OutboxPayload {
  if (format === JSON_FORMAT) return jsonRecords.decode(body);
  if (format === codec.format) return codec.decode(body);
  throw new StoreError(
    'STORE_RECORD_FORMAT',
    `a stored record has body format ${format}, which this gateway is not configured to read`,
  );
}
