/**
 * A map from integer keys to values, kept in ascending key order in a ring buffer: for bookkeeping that lives
 * as long as the process and that every reading adds to and deletes from (the outbox's leased rows and leases,
 * the uplink's leases of a connection).
 *
 * Why not a `Map` or `Set`: V8 stores them as ordered hash tables that are reallocated as entries come and go:
 * a table that fills up (deleted entries count, until a rehash drops them) is rehashed into a new one, and a
 * table less than a quarter full is shrunk into a new one (`OrderedHashTable::EnsureCapacityForAdding`,
 * `Rehash` and `Shrink` in V8's src/objects/ordered-hash-table.cc). The new table is allocated in the generation
 * the old one lives in, so a long-lived collection turns every few additions into garbage in the old
 * generation, which only a major collection frees (about 27 bytes per add+delete on an old `Set`, measured with
 * Node 20; docs/runtime.md, "Memory"). Here the two arrays are allocated once and written in place: adding and
 * deleting allocate nothing. They double when full and never shrink, so their size is the most entries ever
 * held at once (for a lease, bounded by the uplink's PUBACK window), not the number that went through.
 *
 * The keys these structures see are increasing sequence numbers and lease ids, and entries mostly leave in the
 * order they came (PUBACKs arrive in publish order, MQTT 3.1.1 section 4.6): so adding a key larger than every
 * key held and deleting the smallest are O(1). Any other insert or delete moves the entries on its shorter side
 * by one (O(n), the rare path: rows released and leased again); lookups are a binary search.
 */
export class OrderedRing<T> {
  private keys: number[];
  private values: (T | undefined)[];
  /** Physical index of the smallest key; the ring holds `count` entries from there, wrapping around. */
  private head = 0;
  private count = 0;

  constructor(initialCapacity = 16) {
    let capacity = 1;
    while (capacity < initialCapacity) capacity *= 2;
    this.keys = new Array<number>(capacity).fill(0);
    this.values = new Array<T | undefined>(capacity).fill(undefined);
  }

  get size(): number {
    return this.count;
  }

  has(key: number): boolean {
    return this.find(key) >= 0;
  }

  get(key: number): T | undefined {
    const at = this.find(key);
    return at < 0 ? undefined : this.values[this.slot(at)];
  }

  /** Adds `key` with its value, or replaces the value of a key already held (as `Map.set`). */
  set(key: number, value: T): void {
    // Where the key goes: after every smaller key. The common case, a key larger than all, needs no search.
    const at = this.count === 0 || key > this.keyAt(this.count - 1) ? this.count : this.lowerBound(key);
    if (at < this.count && this.keyAt(at) === key) {
      this.values[this.slot(at)] = value;
      return;
    }
    if (this.count === this.keys.length) this.grow();
    if (at < this.count / 2) {
      // Open the gap by moving the entries before it one place towards the front.
      this.head = (this.head - 1) & this.mask();
      for (let i = 0; i < at; i++) this.move(i + 1, i);
    } else {
      for (let i = this.count; i > at; i--) this.move(i - 1, i);
    }
    this.count++;
    this.keys[this.slot(at)] = key;
    this.values[this.slot(at)] = value;
  }

  /** Removes `key`; returns its value, or undefined when it was not held. */
  delete(key: number): T | undefined {
    const at = this.find(key);
    if (at < 0) return undefined;
    const value = this.values[this.slot(at)];
    if (at < this.count / 2) {
      for (let i = at; i > 0; i--) this.move(i - 1, i);
      this.values[this.slot(0)] = undefined; // holds no reference to what left
      this.head = (this.head + 1) & this.mask();
    } else {
      for (let i = at; i < this.count - 1; i++) this.move(i + 1, i);
      this.values[this.slot(this.count - 1)] = undefined;
    }
    this.count--;
    return value;
  }

  /** The keys held, smallest first (a copy: the ring may change while the caller goes through them). */
  keyList(): number[] {
    const list: number[] = [];
    for (let i = 0; i < this.count; i++) list.push(this.keyAt(i));
    return list;
  }

  clear(): void {
    for (let i = 0; i < this.count; i++) this.values[this.slot(i)] = undefined;
    this.head = 0;
    this.count = 0;
  }

  private mask(): number {
    return this.keys.length - 1; // the capacity is a power of two
  }

  private slot(logical: number): number {
    return (this.head + logical) & this.mask();
  }

  private keyAt(logical: number): number {
    return this.keys[this.slot(logical)] as number;
  }

  private move(from: number, to: number): void {
    this.keys[this.slot(to)] = this.keys[this.slot(from)] as number;
    this.values[this.slot(to)] = this.values[this.slot(from)];
  }

  /** The logical index of the first key >= `key` (`count` when there is none). */
  private lowerBound(key: number): number {
    let low = 0;
    let high = this.count;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.keyAt(middle) < key) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** The logical index of `key`, or -1. */
  private find(key: number): number {
    if (this.count === 0 || key < this.keyAt(0) || key > this.keyAt(this.count - 1)) return -1;
    const at = this.lowerBound(key);
    return this.keyAt(at) === key ? at : -1;
  }

  /** Doubles the capacity, the entries laid out from index 0 again. The only allocation after construction. */
  private grow(): void {
    const capacity = this.keys.length * 2;
    const keys = new Array<number>(capacity).fill(0);
    const values = new Array<T | undefined>(capacity).fill(undefined);
    for (let i = 0; i < this.count; i++) {
      keys[i] = this.keyAt(i);
      values[i] = this.values[this.slot(i)];
    }
    this.keys = keys;
    this.values = values;
    this.head = 0;
  }
}
