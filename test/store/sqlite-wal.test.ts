import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { commitsBetween, readWal } from '../support/sqlite-wal.js';

/**
 * The WAL reader the store's tests count commits with, checked against transactions made on purpose in a
 * plain (unencrypted) SQLite database.
 */
let dir: string;
let db: Database.Database;
let wal: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-wal-'));
  db = new Database(join(dir, 'plain.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('wal_autocheckpoint = 0'); // checkpoints only where a test asks for one
  db.exec('CREATE TABLE t (x TEXT)');
  wal = join(dir, 'plain.db-wal');
});

afterEach(async () => {
  db.close();
  await rm(dir, { recursive: true, force: true });
});

const insert = (x: string) => db.prepare('INSERT INTO t VALUES (?)').run(x);

describe('readWal / commitsBetween', () => {
  it('counts one commit per autocommit statement and one for a whole transaction', () => {
    const start = readWal(wal);
    expect(start?.commits).toBe(1); // CREATE TABLE
    for (let i = 0; i < 3; i++) insert(`row ${i}`);
    const three = readWal(wal);
    expect(commitsBetween(start, three)).toBe(3);
    db.transaction(() => {
      for (let i = 0; i < 200; i++) insert('x'.repeat(100));
    })();
    expect(commitsBetween(three, readWal(wal))).toBe(1);
  });

  it('sees a log that started over after a checkpoint, and counts only what came after', () => {
    insert('a');
    const before = readWal(wal);
    db.pragma('wal_checkpoint(PASSIVE)');
    insert('b'); // the first write after a complete checkpoint starts the log over
    const after = readWal(wal);
    expect(after?.checkpointSequence).toBe((before?.checkpointSequence ?? 0) + 1);
    expect(after?.salts).not.toEqual(before?.salts);
    expect(commitsBetween(before, after)).toBe(1);
    db.pragma('wal_checkpoint(PASSIVE)');
    insert('c');
    db.pragma('wal_checkpoint(PASSIVE)');
    insert('d');
    expect(commitsBetween(after, readWal(wal))).toBe(2);
  });

  it('stops at the first frame whose checksum does not match, as recovery does', () => {
    for (let i = 0; i < 3; i++) insert(`row ${i}`);
    expect(readWal(wal)).toMatchObject({ commits: 4 });
    const bytes = readFileSync(wal);
    const pageSize = bytes.readUInt32BE(8);
    // The frame after the second commit record: one byte of its page flipped.
    let frame = 0;
    for (let commits = 0; commits < 2; frame++) {
      if (bytes.readUInt32BE(32 + frame * (24 + pageSize) + 4) !== 0) commits++;
    }
    const damaged = join(dir, 'damaged-wal');
    const at = 32 + frame * (24 + pageSize) + 24 + 100;
    bytes.writeUInt8(bytes.readUInt8(at) ^ 0x01, at);
    writeFileSync(damaged, bytes);
    expect(readWal(damaged)).toMatchObject({ frames: frame, commits: 2 });
    expect(readWal(join(dir, 'absent-wal'))).toBeUndefined();
  });
});
