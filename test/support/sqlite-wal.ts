import { existsSync, readFileSync } from 'node:fs';

/**
 * What an SQLite write-ahead log holds, read the way SQLite reads it when it recovers the log
 * (https://www.sqlite.org/fileformat2.html#the_write_ahead_log): a 32-byte header, then frames of a 24-byte
 * header and one page. A frame is valid only while its salts equal the header's and the running checksum
 * matches; the first invalid frame ends the log. A valid frame whose "database size after commit" field is
 * non-zero is a commit record: it ends one transaction. So `commits` counts the transactions the log holds,
 * whatever the pages contain (encrypted, for the outbox): only page contents are encrypted, frame headers are
 * SQLite's own.
 *
 * When a checkpoint has copied the whole log into the database, the next writer starts the log over from its
 * beginning: it increments the checkpoint sequence number and changes the salts, so frames of the previous
 * generation no longer count.
 */
export interface WalSummary {
  /** Incremented each time the log starts over. */
  readonly checkpointSequence: number;
  readonly salts: readonly [number, number];
  /** Valid frames of the current generation. */
  readonly frames: number;
  /** Of those, commit records: transactions. */
  readonly commits: number;
}

const HEADER = 32;
const FRAME_HEADER = 24;

/** Summarises the log at `path`; undefined when there is none (missing, or shorter than its header). */
export function readWal(path: string): WalSummary | undefined {
  if (!existsSync(path)) return undefined;
  const wal = readFileSync(path);
  if (wal.length < HEADER) return undefined;
  const magic = wal.readUInt32BE(0);
  if (magic !== 0x377f0682 && magic !== 0x377f0683) throw new Error(`${path}: not an SQLite WAL`);
  // The checksums read the content as 32-bit words, big-endian when the magic's lowest bit is set.
  const bigEndian = (magic & 1) === 1;
  const word = (offset: number) => (bigEndian ? wal.readUInt32BE(offset) : wal.readUInt32LE(offset));
  const pageSize = wal.readUInt32BE(8);
  const salts: [number, number] = [wal.readUInt32BE(16), wal.readUInt32BE(20)];
  const sum = (start: number, end: number, from: readonly [number, number]): [number, number] => {
    let [s0, s1] = from;
    for (let i = start; i < end; i += 8) {
      s0 = (s0 + word(i) + s1) >>> 0;
      s1 = (s1 + word(i + 4) + s0) >>> 0;
    }
    return [s0, s1];
  };
  let checksum = sum(0, 24, [0, 0]);
  if (checksum[0] !== wal.readUInt32BE(24) || checksum[1] !== wal.readUInt32BE(28)) {
    throw new Error(`${path}: the WAL header's checksum does not match`);
  }
  let frames = 0;
  let commits = 0;
  for (let at = HEADER; at + FRAME_HEADER + pageSize <= wal.length; at += FRAME_HEADER + pageSize) {
    if (wal.readUInt32BE(at + 8) !== salts[0] || wal.readUInt32BE(at + 12) !== salts[1]) break;
    checksum = sum(at + FRAME_HEADER, at + FRAME_HEADER + pageSize, sum(at, at + 8, checksum));
    if (checksum[0] !== wal.readUInt32BE(at + 16) || checksum[1] !== wal.readUInt32BE(at + 20)) break;
    frames++;
    if (wal.readUInt32BE(at + 4) !== 0) commits++;
  }
  return { checkpointSequence: wal.readUInt32BE(12), salts, frames, commits };
}

/**
 * Transactions committed between two readings of the same log. A restart of the log happens when a
 * transaction writes its first frame after a complete checkpoint, so it happens at most once per transaction:
 * - no restart in between: the difference of the commit counts, exact;
 * - one restart: the commits of the new generation, a lower bound (commits made before the restart are gone
 *   from the log); exact when the restart came with the first transaction after `before`;
 * - more restarts: at least that many transactions.
 */
export function commitsBetween(before: WalSummary | undefined, after: WalSummary | undefined): number {
  if (!after) return 0;
  if (!before) return after.commits;
  const restarts = after.checkpointSequence - before.checkpointSequence;
  if (restarts === 0) return after.commits - before.commits;
  return Math.max(restarts, after.commits);
}
