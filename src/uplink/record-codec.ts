import type { OutboxRecord } from '../store/outbox.js';
import type { RecordCodec } from '../store/record-codec.js';
import { decodeBatchItem, encodeBatchItem } from '../wire/batch.js';

/**
 * The outbox body format the gateway uses: each reading is stored as its wire-format batch item (CBOR, checked
 * against the doc's rules when it is stored). Building a batch is then a concatenation of stored bodies with
 * no decoding or re-encoding, which is most of what draining a backlog used to cost.
 */
export const WIRE_ITEM_FORMAT = 1;

export const wireItemRecords: RecordCodec = {
  format: WIRE_ITEM_FORMAT,
  encode: (payload) => encodeBatchItem(payload),
  decode: (body) => decodeBatchItem(body),
};

/** A record's batch item: its stored bytes when stored in the wire format, else encoded (and checked) now. */
export function batchItemOf(record: OutboxRecord, path: string): Uint8Array {
  return record.format === WIRE_ITEM_FORMAT ? record.body : encodeBatchItem(record.payload, path);
}
