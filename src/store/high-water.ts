import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  closeSync,
  fdatasyncSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { basename, dirname } from 'node:path';
import { storeErrorFrom } from './errors.js';

/**
 * `<store>.hwm`: what the outbox had committed, kept OUTSIDE the database and its WAL.
 *
 * Why: SQLite stops reading the WAL at the first frame whose checksum fails and ignores every frame after it,
 * by design (sqlite.org/fileformat2.html#walformat, "WAL recovery"); a damaged or deleted WAL therefore opens
 * cleanly as an older state of the store, and the next checkpoint makes that permanent. The database cannot
 * tell, because its own row counter (sqlite_sequence) lives in the same lost frames. This file holds the
 * highest sequence number committed, so the outbox sees at open that rows it reported stored are gone
 * (src/store/damage.ts).
 *
 * It is written after every commit that stored rows and before the append promises resolve: one pwrite of one
 * 512-byte slot and one fdatasync (fdatasync(2)). Two slots alternate, each with a generation number and an
 * HMAC-SHA256 under a key derived from the store key: a torn write (power cut in the middle) spoils only the
 * slot being written, and the other slot still holds the previous, lower mark, which can hide at most the loss
 * of the commit being recorded, never report a false one. Without the store key nobody can forge a slot, e.g.
 * lower the mark to hide a truncated WAL; see docs/store.md for what it does not protect against.
 */
export interface HighWater {
  /** The highest outbox seq committed (readings and gap records). */
  readonly seq: number;
  /** Rows in the outbox after that commit: at most this many unacknowledged rows can have been lost. */
  readonly rows: number;
  /** The lowest seq still in the outbox then (seq + 1 when it was empty): rows below were already gone. */
  readonly firstSeq: number;
  /** When the row `firstSeq` was stored (epoch ms; the time of the commit when the outbox was empty). */
  readonly firstAtMs: number;
  /** When this mark was written (epoch ms). */
  readonly atMs: number;
}

export type HighWaterRead =
  | { readonly state: 'missing' }
  | { readonly state: 'invalid' }
  | { readonly state: 'ok'; readonly value: HighWater; readonly generation: number };

const LABEL = 'rpm-gateway store high-water v1';
const MAGIC = Buffer.from('RPMHWM01', 'latin1');
const FIELDS = 6; // generation, seq, rows, firstSeq, firstAtMs, atMs
const BODY = MAGIC.length + FIELDS * 8;
const SLOT = 512; // one sector: the unit a disk writes whole, so one slot's write cannot touch the other

export const highWaterPathOf = (store: string) => `${store}.hwm`;

/** The MAC key: HMAC-SHA256 of a fixed label under the store key, so the store key itself is never reused. */
export function highWaterKeyOf(storeKey: Uint8Array): Buffer {
  return createHmac('sha256', storeKey).update(LABEL).digest();
}

function encodeSlot(value: HighWater, generation: number, macKey: Buffer): Buffer {
  const slot = Buffer.alloc(SLOT);
  MAGIC.copy(slot, 0);
  const numbers = [generation, value.seq, value.rows, value.firstSeq, value.firstAtMs, value.atMs];
  for (const [i, n] of numbers.entries()) slot.writeBigUInt64BE(BigInt(n), MAGIC.length + i * 8);
  createHmac('sha256', macKey).update(slot.subarray(0, BODY)).digest().copy(slot, BODY);
  return slot;
}

function decodeSlot(slot: Buffer, macKey: Buffer): { value: HighWater; generation: number } | undefined {
  if (slot.length < BODY + 32 || !slot.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const mac = createHmac('sha256', macKey).update(slot.subarray(0, BODY)).digest();
  if (!timingSafeEqual(mac, slot.subarray(BODY, BODY + 32))) return undefined;
  const n = (i: number) => Number(slot.readBigUInt64BE(MAGIC.length + i * 8));
  return {
    generation: n(0),
    value: { seq: n(1), rows: n(2), firstSeq: n(3), firstAtMs: n(4), atMs: n(5) },
  };
}

/** The newest slot whose MAC verifies. */
export function readHighWater(path: string, macKey: Buffer): HighWaterRead {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
    throw storeErrorFrom(error, `reading ${basename(path)}`);
  }
  const slots = [0, 1]
    .map((i) => decodeSlot(bytes.subarray(i * SLOT, (i + 1) * SLOT), macKey))
    .filter((slot) => slot !== undefined);
  if (slots.length === 0) return { state: 'invalid' };
  const newest = slots.reduce((a, b) => (b.generation > a.generation ? b : a));
  return { state: 'ok', ...newest };
}

/** The whole file for a value, both slots (what a new mark or a key rotation writes). */
export function highWaterFileBytes(value: HighWater, macKey: Buffer, generation = 1): Buffer {
  return Buffer.concat([encodeSlot(value, generation, macKey), encodeSlot(value, generation, macKey)]);
}

/** Replaces the file atomically (temporary file, fsync, rename, fsync of the folder). */
export function replaceHighWaterFile(path: string, bytes: Uint8Array): void {
  const temporary = `${path}.tmp`;
  try {
    writeFileSync(temporary, bytes, { mode: 0o600 });
    syncPath(temporary);
    renameSync(temporary, path);
    syncPath(dirname(path));
  } catch (error) {
    throw storeErrorFrom(error, `writing ${basename(path)}`);
  }
}

/** The open mark of a running outbox: each write() is one slot and one fdatasync. */
export class HighWaterMark {
  private constructor(
    private fd: number | undefined,
    private readonly macKey: Buffer,
    private generation: number,
    private current: HighWater,
  ) {}

  /** Starts the file afresh with `value` (atomically), then opens it for writing. */
  static create(path: string, macKey: Buffer, value: HighWater): HighWaterMark {
    replaceHighWaterFile(path, highWaterFileBytes(value, macKey, 1));
    return HighWaterMark.open(path, macKey, value, 1);
  }

  /** Opens an existing, verified file whose newest slot has `generation`. */
  static open(path: string, macKey: Buffer, value: HighWater, generation: number): HighWaterMark {
    try {
      return new HighWaterMark(openSync(path, 'r+'), macKey, generation, value);
    } catch (error) {
      throw storeErrorFrom(error, `opening ${basename(path)}`);
    }
  }

  get value(): HighWater {
    return this.current;
  }

  /** Records `value` durably: returns once it is on disk. */
  write(value: HighWater): void {
    if (this.fd === undefined) return;
    const generation = this.generation + 1;
    const slot = encodeSlot(value, generation, this.macKey);
    try {
      writeSync(this.fd, slot, 0, SLOT, (generation % 2) * SLOT);
      fdatasyncSync(this.fd);
    } catch (error) {
      throw storeErrorFrom(error, 'recording the stored readings');
    }
    this.generation = generation;
    this.current = value;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.macKey.fill(0);
  }
}

function syncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
