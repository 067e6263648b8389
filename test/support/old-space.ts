import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * How many bytes per operation a long-lived structure adds to V8's old generation while it churns: the
 * garbage that only a major collection frees, what made the live hub's RSS climb (docs/runtime.md, "Memory").
 *
 * `setup` makes the structure; two full collections move it to the old generation, as hours of running would;
 * then `operation` runs `times` times with no collection forced, and the old space's growth is divided by
 * `times`. That is measured three times and the least is returned: what the structure makes, it makes in every
 * round, while a scavenge that happens to fall in a round also promotes whatever else the process holds young at
 * that moment (the test runner's own objects: once 32 KiB in a round of 20,000 operations, 1.6 bytes each).
 * Young garbage (what most code makes) dies in the young generation and does not count; what does is
 * what the structure reallocates in the old generation (a Map's or Set's hash table is reallocated in the
 * generation it lives in: V8 src/objects/ordered-hash-table.cc) and whatever is still alive at a scavenge.
 */
export function oldSpaceBytesPerOperation<T>(
  setup: () => T,
  operation: (subject: T, index: number) => void,
  times: number,
): number {
  const gc = exposedGc();
  const subject = setup();
  // Warm-up: the structure at its size, and the functions optimised (V8 writes optimised code's metadata to the
  // old generation: counted, it would be the first run's cost, not the structure's).
  const warm = Math.max(5_000, times);
  for (let i = 0; i < warm; i++) operation(subject, i);
  let least = Number.POSITIVE_INFINITY;
  for (let round = 0, next = warm; round < ROUNDS; round++, next += times) {
    gc();
    gc();
    const before = oldSpaceUsed();
    for (let i = next; i < next + times; i++) operation(subject, i);
    least = Math.min(least, (oldSpaceUsed() - before) / times);
  }
  return least;
}

const ROUNDS = 3;

/**
 * The same for an operation that goes through the event loop (an append waits for its group commit): each one
 * awaited before the next, as readings come one by one. `warm` operations first (they cost an fsync each here),
 * then the least of three rounds of `times`, as above: between awaits the event loop runs whatever else the
 * worker has queued (the test runner's RPC, timers), and a scavenge that falls in one round promotes it (once
 * 169 bytes per operation in CI against 58-72 in every other run).
 */
export async function oldSpaceBytesPerAsyncOperation<T>(
  subject: T,
  operation: (subject: T, index: number) => Promise<void>,
  times: number,
  warm: number,
): Promise<number> {
  const gc = exposedGc();
  for (let i = 0; i < warm; i++) await operation(subject, i);
  let least = Number.POSITIVE_INFINITY;
  for (let round = 0, next = warm; round < ROUNDS; round++, next += times) {
    gc();
    gc();
    const before = oldSpaceUsed();
    for (let i = next; i < next + times; i++) await operation(subject, i);
    least = Math.min(least, (oldSpaceUsed() - before) / times);
  }
  return least;
}

function oldSpaceUsed(): number {
  const old = getHeapSpaceStatistics().find((space) => space.space_name === 'old_space');
  if (!old) throw new Error('V8 reports no old_space');
  return old.space_used_size;
}

/** V8's gc(), made available at run time (the flag must be set before the function is looked up). */
function exposedGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
