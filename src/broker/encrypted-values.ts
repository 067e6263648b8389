import type {
  BatchOperation,
  BatchOptions,
  ClassicLevel,
  GetOptions,
  IteratorOptions,
  PutOptions,
} from 'classic-level';
import { BrokerError } from './errors.js';
import { UnsealError, type ValueCipher } from './value-cipher.js';

/**
 * The broker's LevelDB store with every value sealed on the way in and opened on the way out (value-cipher.ts),
 * for aedes-persistence-level, which then never sees a ciphertext and never writes a plaintext.
 *
 * What aedes-persistence-level 9.2 calls (asyncPersistence.js): `get` (`#dbGet`), `put` (`#dbPut`), `del`,
 * `clear` (a key range), `batch` with an array of puts and dels (`#dbBatch`), a chained `batch()` with dels
 * (`outgoingClearMessageId`), `values({ gte, lt })` for every range scan (`decodedDbValues`), and `close`. Its
 * values are msgpack Buffers (`valueEncoding: 'buffer'`), its keys strings. Every read path that hands out a
 * value is wrapped: `get`, `getSync`, `getMany`, `values` and `iterator`; every write path that takes one:
 * `put`, array `batch` and the chained batch's `put`. Keys pass through unchanged (see value-cipher.ts).
 * `sublevel` is refused: a sublevel writes through its parent's internals, around this wrapper.
 *
 * A value that does not open (changed on disk, moved from another key, sealed under another key) is
 * reported through `onCorrupt` as BROKER_PERSISTENCE_CORRUPT and then treated as absent: `get` returns
 * undefined and iterators skip it. aedes then sees the entry as missing (a queued message that is not there,
 * no will, no subscription) and goes on serving every other entry, rather than failing every read of a
 * session, and so every reconnect of its subscriber. The bytes stay on disk: a wrong key must not wipe the
 * queues (restoring the right key recovers them), and a damaged entry is evidence. It is reported each time
 * it is read.
 */

type Store = ClassicLevel<string, Buffer>;
type Operation = BatchOperation<Store, string, Buffer>;
type Entry = [string, Buffer];

/** The parts of a classic-level iterator this wrapper reads from (key and value, both asked for). */
interface RawIterator {
  next(): Promise<[string, Buffer] | undefined>;
  nextv(size: number): Promise<[string, Buffer][]>;
  seek(target: string, options?: object): void;
  close(): Promise<void>;
}

export function encryptedValues(
  db: Store,
  cipher: ValueCipher,
  onCorrupt: (error: BrokerError) => void,
): Store {
  const seal = (key: unknown, value: unknown): Buffer => {
    if (typeof key !== 'string') throw new TypeError('the encrypted broker store takes string keys only');
    if (!(value instanceof Uint8Array)) {
      throw new TypeError('the encrypted broker store takes Buffer values only');
    }
    return cipher.seal(key, value);
  };
  const unseal = (key: string, value: Buffer | undefined): Buffer | undefined => {
    if (value === undefined) return undefined;
    try {
      return cipher.unseal(key, value);
    } catch (error) {
      if (!(error instanceof UnsealError)) throw error;
      onCorrupt(
        new BrokerError(
          'BROKER_PERSISTENCE_CORRUPT',
          `the stored value of ${key} ${error.message}; it is skipped and left on disk`,
          { cause: error },
        ),
      );
      return undefined;
    }
  };
  const raw = { valueEncoding: 'buffer' } as const;

  const get = async (key: string, options?: GetOptions<string, Buffer>) =>
    unseal(key, await db.get(key, { ...options, ...raw }));
  const getSync = (key: string, options?: GetOptions<string, Buffer>) =>
    unseal(key, db.getSync(key, { ...options, ...raw }));
  const getMany = async (keys: string[], options?: GetOptions<string, Buffer>) => {
    const values = await db.getMany(keys, { ...options, ...raw });
    return values.map((value, i) => unseal(keys[i] as string, value));
  };
  // async: a value that cannot be sealed rejects, as abstract-level's own checks do, rather than throwing
  const put = async (key: string, value: Buffer, options?: PutOptions<string, Buffer>) =>
    db.put(key, seal(key, value), { ...options, ...raw });
  const arrayBatch = async (operations: Operation[], options?: BatchOptions<string, Buffer>) => {
    const sealed = operations.map((op): Operation => {
      if ('sublevel' in op && op.sublevel !== undefined) {
        throw new TypeError('the encrypted broker store has no sublevels');
      }
      return op.type === 'put' ? { ...op, value: seal(op.key, op.value), ...raw } : op;
    });
    return db.batch(sealed, { ...options, ...raw });
  };
  const batch = (operations?: Operation[], options?: BatchOptions<string, Buffer>) => {
    if (operations === undefined) {
      const chained = db.batch();
      const chainedPut = chained.put.bind(chained);
      chained.put = (key: string, value: Buffer, putOptions?: object) => {
        chainedPut(key, seal(key, value), { ...putOptions, ...raw });
        return chained;
      };
      return chained;
    }
    return arrayBatch(operations, options);
  };
  const entries = (options?: IteratorOptions<string, Buffer>): Unsealing<Entry> =>
    new Unsealing(
      db.iterator({ ...options, keys: true, values: true, ...raw }) as unknown as RawIterator,
      (key, value) => {
        const plain = unseal(key, value);
        return plain === undefined ? undefined : [key, plain];
      },
    );
  const values = (options?: IteratorOptions<string, Buffer>): Unsealing<Buffer> =>
    new Unsealing(
      db.iterator({ ...options, keys: true, values: true, ...raw }) as unknown as RawIterator,
      unseal,
    );
  const sublevel = () => {
    throw new TypeError('the encrypted broker store has no sublevels');
  };

  const wrapped: Record<string, unknown> = {
    get,
    getSync,
    getMany,
    put,
    batch,
    iterator: entries,
    values,
    sublevel,
  };
  return new Proxy(db, {
    get(target, property) {
      if (typeof property === 'string' && Object.hasOwn(wrapped, property)) return wrapped[property];
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * An iterator over the opened values of a raw iterator, skipping those that do not open: the methods of
 * abstract-level's iterators that aedes-persistence-level or a reader of this store may use (`for await`,
 * `next`, `nextv`, `all`, `seek`, `close`).
 */
class Unsealing<T> {
  constructor(
    private readonly inner: RawIterator,
    private readonly open: (key: string, value: Buffer) => T | undefined,
  ) {}

  async next(): Promise<T | undefined> {
    for (;;) {
      const entry = await this.inner.next();
      if (entry === undefined) return undefined;
      const opened = this.open(entry[0], entry[1]);
      if (opened !== undefined) return opened;
    }
  }

  async nextv(size: number): Promise<T[]> {
    const out: T[] = [];
    while (out.length < size) {
      const entries = await this.inner.nextv(size - out.length);
      if (entries.length === 0) break;
      for (const [key, value] of entries) {
        const opened = this.open(key, value);
        if (opened !== undefined) out.push(opened);
      }
    }
    return out;
  }

  async all(): Promise<T[]> {
    const out: T[] = [];
    try {
      for (;;) {
        const chunk = await this.nextv(1000);
        if (chunk.length === 0) return out;
        out.push(...chunk);
      }
    } finally {
      await this.close();
    }
  }

  seek(target: string, options?: object): void {
    this.inner.seek(target, options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    try {
      for (;;) {
        const opened = await this.next();
        if (opened === undefined) return;
        yield opened;
      }
    } finally {
      await this.close();
    }
  }
}
