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
import { StoreError } from '../store/errors.js';
import type { KeyProvider } from '../store/keys.js';
import { encryptedValues } from './encrypted-values.js';
import { BrokerError } from './errors.js';
import { storeExists } from './store-dir.js';
import { UnsealError, ValueCipher } from './value-cipher.js';

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
 *
 * Encryption at rest. Queued messages are signed batches with readings in the clear, so every value is sealed
 * with AES-256-GCM under the store key, bound to its LevelDB key (value-cipher.ts, encrypted-values.ts); keys
 * stay in the clear for aedes' range scans (client ids, topics, counters: no readings). LevelDB keeps old
 * values in its log and tables until compaction, so nothing short of sealing every write keeps readings off
 * the disk. A key check entry, sealed at creation, makes a wrong key fail the start instead of every read.
 */
export interface PersistenceOptions {
  /** The LevelDB directory; created when missing. One broker process at a time (LevelDB's LOCK file). */
  readonly dir: string;
  /** fsync every write before it counts as done (default true). false: a power cut may lose recent writes. */
  readonly sync?: boolean;
  /**
   * The 256-bit key the values are sealed with: the bytes, or where they come from (a key file, made with
   * 256 random bits on the first start, or a systemd credential: src/store/keys.ts). A key is made only when
   * the store does not exist yet; an existing store without its key is BROKER_PERSISTENCE_KEY_MISSING.
   * `'none-for-tests'` stores readings in the clear: only for tests that must see the plain bytes.
   */
  readonly key: Uint8Array | KeyProvider | 'none-for-tests';
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

/**
 * The entry that proves the key: sealed at creation under a LevelDB key outside every range aedes scans
 * (its prefixes are retained:, subscriptions:, outgoing:, outgoing-id:, incoming:, will:).
 */
export const KEY_CHECK = 'rpm-gateway:key-check';
const KEY_CHECK_TEXT = 'rpm-gateway broker store';

/**
 * Opens (or creates) the store in `options.dir` and returns the persistence aedes takes as `persistence`.
 * `onCorrupt` hears of every stored value that fails authentication (then skipped, encrypted-values.ts).
 */
export async function openLevelPersistence(
  options: PersistenceOptions,
  onCorrupt: (error: BrokerError) => void = () => undefined,
): Promise<BrokerPersistence> {
  // Before anything is created in dir: whether the store exists decides whether a key may be made.
  const exists = storeExists(options.dir);
  const cipher = options.key === 'none-for-tests' ? undefined : await openCipher(options, exists);
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
  const synced = options.sync === false ? db : syncedWrites(db);
  if (!cipher) return levelPersistence(synced);
  try {
    await checkKey(db, synced, cipher, options.dir);
  } catch (error) {
    await db.close();
    throw error;
  }
  return levelPersistence(encryptedValues(synced, cipher, onCorrupt));
}

async function openCipher(options: PersistenceOptions, exists: boolean): Promise<ValueCipher> {
  const given = options.key;
  let key: Uint8Array;
  if (given instanceof Uint8Array) {
    key = Uint8Array.from(given);
  } else if (given === 'none-for-tests') {
    throw new TypeError('no cipher without a key');
  } else {
    try {
      key = await given.load({ create: !exists });
    } catch (error) {
      if (exists && error instanceof StoreError && error.code === 'STORE_KEY_MISSING') {
        throw new BrokerError(
          'BROKER_PERSISTENCE_KEY_MISSING',
          `the broker store in ${options.dir} exists but its key (${given.description}) does not: a new key ` +
            'could never read it; restore the key, or move the store away to start with empty queues',
          { cause: error },
        );
      }
      throw new BrokerError(
        'BROKER_PERSISTENCE_KEY',
        `the broker store key cannot be used: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
  try {
    if (key.byteLength !== 32) {
      throw new BrokerError('BROKER_PERSISTENCE_KEY', 'the broker store key must be 256 bits (32 bytes)');
    }
    return new ValueCipher(key);
  } finally {
    key.fill(0);
  }
}

/**
 * Opens the key check with the cipher's key; seals it when the store has no entries yet (new, or created and
 * killed before the check was written). Entries without a key check were written unencrypted.
 */
async function checkKey(raw: Store, synced: Store, cipher: ValueCipher, dir: string): Promise<void> {
  const sealed = await raw.get(KEY_CHECK);
  if (sealed === undefined) {
    const empty = (await raw.keys({ limit: 1 }).all()).length === 0;
    if (!empty) {
      throw new BrokerError(
        'BROKER_PERSISTENCE_KEY_WRONG',
        `the broker store in ${dir} holds entries but no key check: it was written unencrypted ` +
          '(an earlier version); let its queues drain with that version, or move it away',
      );
    }
    await synced.put(KEY_CHECK, cipher.seal(KEY_CHECK, Buffer.from(KEY_CHECK_TEXT)));
    return;
  }
  try {
    if (cipher.unseal(KEY_CHECK, sealed).toString() === KEY_CHECK_TEXT) return;
  } catch (error) {
    if (!(error instanceof UnsealError)) throw error;
  }
  throw new BrokerError(
    'BROKER_PERSISTENCE_KEY_WRONG',
    `the broker store in ${dir} was sealed under another key than the one given: restore the key it was made with`,
  );
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
