import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  type BatchOperation,
  type BatchOptions,
  type ChainedBatchWriteOptions,
  ClassicLevel,
  type DelOptions,
  type PutOptions,
} from 'classic-level';
import { BrokerError } from './errors.js';

/**
 * The broker's sessions on disk: aedes-persistence-level (subscriptions, QoS 1/2 queues, retained messages,
 * wills) over a classic-level LevelDB store in `dir`.
 *
 * Durability. LevelDB appends every write to its log and by default leaves it in the OS page cache: a process
 * kill (SIGKILL, OOM) loses nothing the call reported done, a power cut or kernel crash can lose the last writes
 * ("sync" in leveldb/doc/index.md, "Synchronous Writes"). aedes-persistence-level passes no write options to
 * LevelDB (asyncPersistence.js: `#dbPut`, `#dbBatch`, `outgoingClearMessageId`), so with `sync` (the default)
 * the store it gets is wrapped to add `{ sync: true }` to every put, del, batch and chained-batch write: LevelDB
 * then fsyncs its log before the write is reported done, and concurrent synced writers share one fsync (LevelDB
 * groups the writers queued behind the one writing). The one write that stays unsynced is `clear` (LevelDB's
 * range delete in classic-level has no sync option); aedes uses it only to drop a clean-session client's
 * unfinished QoS 2 receipts, where a resurrected entry after a power cut costs at most a duplicate.
 */
export interface PersistenceOptions {
  /** The LevelDB directory; created when missing. One broker process at a time (LevelDB's LOCK file). */
  readonly dir: string;
  /** fsync every write before it counts as done (default true). false: a power cut may lose recent writes. */
  readonly sync?: boolean;
}

/** The aedes persistence API this project calls itself (aedes calls much more: aedes-persistence README). */
export interface BrokerPersistence {
  setup(broker: unknown): Promise<void>;
  addSubscriptions(
    client: { readonly id: string },
    subscriptions: readonly { readonly topic: string; readonly qos: 0 | 1 | 2 }[],
  ): Promise<unknown>;
  subscriptionsByClient(client: { readonly id: string }): Promise<{ topic: string; qos: number }[]>;
  outgoingEnqueueCombi(subscriptions: unknown[], packet: unknown): Promise<unknown>;
  destroy(): Promise<void>;
}

type Store = ClassicLevel<string, Buffer>;
type Operation = BatchOperation<Store, string, Buffer>;
type LevelPersistenceFactory = (db: Store) => BrokerPersistence;

const require = createRequire(import.meta.url);
// CommonJS without type declarations: module.exports = (db) => new CallBackPersistence(...) (persistence.js).
const levelPersistence = require('aedes-persistence-level') as LevelPersistenceFactory;

/** Opens (or creates) the store in `options.dir` and returns the persistence aedes takes as `persistence`. */
export async function openLevelPersistence(options: PersistenceOptions): Promise<BrokerPersistence> {
  const db: Store = new ClassicLevel<string, Buffer>(options.dir, { valueEncoding: 'buffer' });
  try {
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    // Opened here rather than lazily on the first write, so a store another broker holds (LevelDB's LOCK)
    // or an unreadable directory fails start() instead of the first PUBLISH.
    await db.open();
  } catch (error) {
    throw new BrokerError(
      'BROKER_PERSISTENCE',
      `cannot open the broker store in ${options.dir} (is another broker running on it?)`,
      { cause: error },
    );
  }
  return levelPersistence(options.sync === false ? db : syncedWrites(db));
}

/**
 * The same store, with `{ sync: true }` added to every write. A Proxy rather than a subclass: classic-level
 * keeps its native handle in a private field, so every other method runs on the real instance (bound to it).
 */
export function syncedWrites(db: Store): Store {
  const put = (key: string, value: Buffer, options?: PutOptions<string, Buffer>) =>
    db.put(key, value, { ...options, sync: true });
  const del = (key: string, options?: DelOptions<string>) => db.del(key, { ...options, sync: true });
  const batch = (operations?: Operation[], options?: BatchOptions<string, Buffer>) => {
    if (operations === undefined) {
      const chained = db.batch();
      const write = chained.write.bind(chained);
      chained.write = (writeOptions?: ChainedBatchWriteOptions) => write({ ...writeOptions, sync: true });
      return chained;
    }
    return db.batch(operations, { ...options, sync: true });
  };
  return new Proxy(db, {
    get(target, property) {
      if (property === 'put') return put;
      if (property === 'del') return del;
      if (property === 'batch') return batch;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
