import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

/**
 * Rows sent to the server with COPY ... FROM STDIN in the text format (PostgreSQL docs, COPY, "File Formats",
 * "Text Format"): one line per row, columns separated by a tab, NULL as `\N`, and a backslash, newline,
 * carriage return or tab inside a value written as a backslash sequence.
 *
 * Why COPY: the intake's commit inserts thousands of readings per statement. Sent as one JSON document and
 * read back with json_to_recordset, parsing that document was a third of the server's time for the statement
 * (66 of 201 ms for 5,000 readings, auto_explain), where COPY's text format is split by a scanner that only
 * looks for tabs, newlines and backslashes.
 */
export type CopyValue = string | number | boolean | null;

const SPECIAL = /[\\\n\r\t]/;
const SPECIALS = /[\\\n\r\t]/g;
const ESCAPED: Readonly<Record<string, string>> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** One value as a text-format field. Numbers as JavaScript prints them, which PostgreSQL's input accepts (NaN, Infinity included). */
export function copyField(value: CopyValue): string {
  if (value === null) return '\\N';
  if (typeof value === 'string') {
    return SPECIAL.test(value) ? value.replace(SPECIALS, (c) => ESCAPED[c] as string) : value;
  }
  if (typeof value === 'boolean') return value ? 't' : 'f';
  return String(value);
}

/**
 * Rows as COPY text-format data, written as UTF-8 straight into one growing Buffer.
 *
 * Why a Buffer and not a string: appending to one JavaScript string made a rope of ~130,000 pieces for a
 * 5,000-reading commit, which V8 then flattened and `Buffer.from` encoded (two more copies of ~3.5 MB), and a rope
 * still being built when a young-generation collection runs is live, so it is copied, and promoted with its
 * pieces. Here each field is encoded once, into memory outside the JavaScript heap. In the intake's profile
 * during `npm run bench:clinic -- --stores pg --phases backlog`, garbage collection fell from 21% to 7% of the
 * phase, and the intake's CPU per reading by about a fifth (docs/clinic-intake.md).
 */
export class CopyData {
  #buffer: Buffer;
  #length = 0;
  #atRowStart = true;

  constructor(initialBytes = 64 * 1024) {
    this.#buffer = Buffer.allocUnsafe(initialBytes);
  }

  /** Appends one field to the current row. */
  field(value: CopyValue): void {
    const text = copyField(value);
    // A UTF-16 code unit is at most 3 bytes of UTF-8 (a surrogate pair, two units, is 4).
    this.#reserve(1 + 3 * text.length);
    if (!this.#atRowStart) this.#buffer[this.#length++] = TAB;
    this.#atRowStart = false;
    this.#length += this.#buffer.write(text, this.#length, 'utf8');
  }

  /** Ends the current row. */
  endRow(): void {
    this.#reserve(1);
    this.#buffer[this.#length++] = NEWLINE;
    this.#atRowStart = true;
  }

  /** The data written so far: a view of the buffer, not a copy. */
  bytes(): Buffer {
    return this.#buffer.subarray(0, this.#length);
  }

  #reserve(bytes: number): void {
    if (this.#length + bytes <= this.#buffer.length) return;
    let size = Math.max(this.#buffer.length * 2, 1024); // doubling from 0 would never get there
    while (size < this.#length + bytes) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.#buffer.copy(grown, 0, 0, this.#length);
    this.#buffer = grown;
  }
}

const TAB = 0x09;
const NEWLINE = 0x0a;

/** `rows` as COPY text-format data (CopyData). */
export function copyData(rows: Iterable<readonly CopyValue[]>): Buffer {
  const data = new CopyData();
  for (const row of rows) {
    for (const value of row) data.field(value);
    data.endRow();
  }
  return data.bytes();
}

/**
 * COPY `data` (copyData's output) into `table` (its listed columns) on `client`, in the client's current
 * transaction. The data is made beforehand, so the server is not kept waiting in the statement while it is
 * built. `table` and `columns` are constants of this package, never input.
 */
export async function copyRows(
  client: pg.PoolClient,
  table: string,
  columns: readonly string[],
  data: Buffer,
): Promise<void> {
  const stream = client.query(copyFrom(`COPY ${table} (${columns.join(', ')}) FROM STDIN`));
  await pipeline(Readable.from([data]), stream);
}
