import { describe, expect, it } from 'vitest';
import { GroupCommitter, type GroupEntry } from '../../../src/clinic/intake/group-commit.js';
import { VirtualScheduler } from '../../../src/util/scheduler.js';

/** The group committer in virtual time: when a group commits, the memory bound, and retries after failures. */
interface Item extends GroupEntry {
  readonly n: number;
}

const item = (n: number, items = 1, bytes = 100): Item => ({ n, items, bytes });

function setup(overrides: Partial<ConstructorParameters<typeof GroupCommitter>[0]> = {}) {
  const scheduler = new VirtualScheduler();
  const commits: number[][] = [];
  const acked: number[] = [];
  const failures: (number | undefined)[] = [];
  let fail = false;
  let hold: Promise<void> | undefined;
  const committer = new GroupCommitter<Item>(
    {
      scheduler,
      maxMessages: 4,
      maxItems: 100,
      maxDelayMs: 10,
      maxPendingMessages: 8,
      maxPendingItems: 1_000,
      maxPendingBytes: 1_000_000,
      retryBaseMs: 100,
      retryCapMs: 1_000,
      random: () => 0.5,
      ...overrides,
    },
    async (entries) => {
      await hold;
      if (fail) throw new Error('database is down');
      commits.push(entries.map((e) => e.n));
    },
    {
      committed: (entries) => acked.push(...entries.map((e) => e.n)),
      failed: (_error, _attempt, retryInMs) => failures.push(retryInMs),
    },
  );
  return {
    scheduler,
    committer,
    commits,
    acked,
    failures,
    setFail: (value: boolean) => {
      fail = value;
    },
    setHold: (value: Promise<void> | undefined) => {
      hold = value;
    },
  };
}

describe('GroupCommitter', () => {
  it('commits after maxDelayMs, or at once when maxMessages wait', async () => {
    const t = setup();
    await t.committer.add(item(1));
    await t.committer.add(item(2));
    await t.scheduler.advanceAsync(9);
    expect(t.commits).toEqual([]);
    await t.scheduler.advanceAsync(1);
    expect(t.commits).toEqual([[1, 2]]);
    for (let n = 3; n <= 6; n++) await t.committer.add(item(n));
    await t.scheduler.advanceAsync(0);
    expect(t.commits).toEqual([
      [1, 2],
      [3, 4, 5, 6],
    ]);
    expect(t.acked).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('commits at once when maxItems readings wait', async () => {
    const t = setup({ maxItems: 10 });
    await t.committer.add(item(1, 6));
    await t.committer.add(item(2, 6));
    await t.scheduler.advanceAsync(0);
    expect(t.commits).toEqual([[1, 2]]);
  });

  it('a group stops at maxItems readings, however many messages waited during the previous commit', async () => {
    const t = setup({ maxItems: 10 });
    let open = () => {};
    t.setHold(
      new Promise<void>((resolve) => {
        open = resolve;
      }),
    );
    await t.committer.add(item(1, 6));
    await t.committer.add(item(2, 6)); // 12 readings: committing, held
    for (let n = 3; n <= 6; n++) await t.committer.add(item(n, 6));
    t.setHold(undefined);
    open();
    await t.scheduler.advanceAsync(0);
    expect(t.commits).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(t.acked).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('what arrives during a commit goes into the next one; add() waits beyond the memory bound', async () => {
    const t = setup();
    let open = () => {};
    t.setHold(
      new Promise<void>((resolve) => {
        open = resolve;
      }),
    );
    for (let n = 1; n <= 4; n++) await t.committer.add(item(n)); // a full group: committing, held
    for (let n = 5; n <= 7; n++) await t.committer.add(item(n));
    let roomFor8 = false;
    const eighth = t.committer.add(item(8)).then(() => {
      roomFor8 = true;
    });
    await t.scheduler.advanceAsync(1_000);
    expect(roomFor8).toBe(false); // 8 messages waiting or committing: the bound
    expect(t.committer.backlog).toBe(8);
    t.setHold(undefined);
    open();
    await eighth;
    await t.scheduler.advanceAsync(0);
    expect(t.commits).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ]);
  });

  it('add() also waits beyond the bound in items (readings waiting or committing), and resumes after the commit', async () => {
    const t = setup({ maxItems: 500, maxPendingItems: 1_000 });
    let open = () => {};
    t.setHold(
      new Promise<void>((resolve) => {
        open = resolve;
      }),
    );
    await t.committer.add(item(1, 250));
    await t.committer.add(item(2, 250)); // 500 readings: committing, held
    await t.committer.add(item(3, 250)); // 750 waiting or committing
    let roomAfter4 = false;
    // 1,000 readings in 4 messages, far below maxPendingMessages (8): the items bound holds the reader here.
    const fourth = t.committer.add(item(4, 250)).then(() => {
      roomAfter4 = true;
    });
    await t.scheduler.advanceAsync(1_000);
    expect(roomAfter4).toBe(false);
    expect(t.committer.backlog).toBe(4);
    t.setHold(undefined);
    open();
    await fourth;
    await t.scheduler.advanceAsync(0);
    expect(t.commits).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });

  it('a failed commit acknowledges nothing and is retried with backoff until it commits', async () => {
    const t = setup();
    t.setFail(true);
    await t.committer.add(item(1));
    await t.scheduler.advanceAsync(10);
    expect(t.failures).toEqual([75]); // equal jitter of 100 ms with random 0.5
    await t.scheduler.advanceAsync(75);
    expect(t.failures).toEqual([75, 150]);
    expect(t.acked).toEqual([]);
    t.setFail(false);
    await t.scheduler.advanceAsync(150);
    expect(t.commits).toEqual([[1]]);
    expect(t.acked).toEqual([1]);
  });

  it('with maxConcurrent 2, a second group commits while the first is held; each is acknowledged after its own', async () => {
    const scheduler = new VirtualScheduler();
    const started: number[][] = [];
    const opens: ((error?: Error) => void)[] = [];
    const acked: number[][] = [];
    const failures: number[] = [];
    const committer = new GroupCommitter<Item>(
      {
        scheduler,
        maxMessages: 2,
        maxItems: 100,
        maxDelayMs: 10,
        maxPendingMessages: 100,
        maxPendingItems: 1_000,
        maxPendingBytes: 1_000_000,
        retryBaseMs: 100,
        retryCapMs: 1_000,
        random: () => 0.5,
        maxConcurrent: 2,
      },
      (entries) => {
        started.push(entries.map((e) => e.n));
        return new Promise<void>((resolve, reject) => {
          opens.push((error) => (error ? reject(error) : resolve()));
        });
      },
      {
        committed: (entries) => acked.push(entries.map((e) => e.n)),
        failed: (_error, attempt) => failures.push(attempt),
      },
    );
    for (let n = 1; n <= 6; n++) await committer.add(item(n));
    await scheduler.advanceAsync(0);
    expect(started).toEqual([
      [1, 2],
      [3, 4],
    ]); // two in flight, the third group waits for one of them
    opens[1]?.();
    await scheduler.advanceAsync(0);
    expect(acked).toEqual([[3, 4]]); // the second, not the first, which is still held
    expect(started).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    // A failed group blocks new groups until its retry commits; the one in flight finishes meanwhile.
    opens[0]?.(new Error('database is down'));
    for (let n = 7; n <= 8; n++) await committer.add(item(n));
    await scheduler.advanceAsync(0);
    expect(failures).toEqual([1]);
    opens[2]?.();
    await scheduler.advanceAsync(0);
    expect(acked).toEqual([
      [3, 4],
      [5, 6],
    ]);
    expect(started).toHaveLength(3); // [7, 8] does not start while [1, 2] waits for its retry
    await scheduler.advanceAsync(75);
    expect(started[3]).toEqual([1, 2]);
    opens[3]?.();
    await scheduler.advanceAsync(0);
    expect(started[4]).toEqual([7, 8]);
    opens[4]?.();
    await committer.drain();
    expect(acked).toEqual([
      [3, 4],
      [5, 6],
      [1, 2],
      [7, 8],
    ]);
  });

  it('drain commits what waits now, and gives up (acknowledging nothing) on a commit that fails', async () => {
    const t = setup();
    await t.committer.add(item(1));
    await t.committer.drain();
    expect(t.acked).toEqual([1]);

    const u = setup();
    u.setFail(true);
    await u.committer.add(item(2));
    await u.committer.drain();
    expect(u.acked).toEqual([]);
    expect(u.failures).toEqual([undefined]);
    expect(u.committer.backlog).toBe(0);
  });
});
