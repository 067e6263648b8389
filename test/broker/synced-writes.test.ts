import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { syncedWrites } from '../../src/broker/persistence.js';

/**
 * Every write aedes-persistence-level can make reaches LevelDB with `sync: true` (the option classic-level's
 * native put/del/batch read, binding.cc): checked at classic-level's own `_put`, `_del`, `_batch` and the chained
 * batch's `_write`, which is where abstract-level hands the options to the native code.
 */
type Options = { sync?: boolean } | undefined;
let dir: string;
let db: ClassicLevel<string, Buffer>;
const seen: { readonly op: string; readonly sync: boolean | undefined }[] = [];

function spy(target: object, method: string, op: string, optionsAt: number): void {
  const holder = target as Record<string, (...args: unknown[]) => Promise<void>>;
  const original = holder[method] as (...args: unknown[]) => Promise<void>;
  holder[method] = function (this: unknown, ...args: unknown[]) {
    seen.push({ op, sync: (args[optionsAt] as Options)?.sync });
    return original.apply(this, args);
  };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-synced-'));
  db = new ClassicLevel<string, Buffer>(dir, { valueEncoding: 'buffer' });
  await db.open();
  spy(db, '_put', 'put', 2);
  spy(db, '_del', 'del', 1);
  spy(db, '_batch', 'batch', 1);
});
afterAll(async () => {
  await db.close();
  await rm(dir, { recursive: true, force: true });
});

it('adds sync: true to put, del, batch and chained batch writes; reads still work', async () => {
  const synced = syncedWrites(db);
  await synced.put('a', Buffer.from('1'), { valueEncoding: 'buffer' });
  await synced.del('a');
  await synced.batch([{ type: 'put', key: 'b', value: Buffer.from('2') }], { valueEncoding: 'buffer' });
  const chained = synced.batch();
  spy(chained, '_write', 'chained', 0);
  chained.put('c', Buffer.from('3'));
  await chained.write();
  expect(seen).toEqual([
    { op: 'put', sync: true },
    { op: 'del', sync: true },
    { op: 'batch', sync: true },
    { op: 'chained', sync: true },
  ]);
  expect((await synced.get('c'))?.toString()).toBe('3');
  expect(await synced.get('a')).toBeUndefined();
  // the unwrapped store writes without it: what the wrapper is for
  seen.length = 0;
  await db.put('d', Buffer.from('4'));
  expect(seen).toEqual([{ op: 'put', sync: undefined }]);
});
