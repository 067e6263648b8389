import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWaitSampler } from '../../scripts/support/pg-wait-sampler.js';
import { type RunningPostgres, startPostgres } from '../support/postgres.js';

/**
 * bench:clinic --pg-waits: the sampler sees what another connection of the same database is doing, and nothing
 * of its own queries or of other databases.
 */
let server: RunningPostgres;

/** Resolves once `condition` holds, asking again on the next turn of the event loop. */
async function until(condition: () => Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setImmediate(resolve));
}

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

describe('the PostgreSQL wait sampler', () => {
  it('counts a backend of its database by wait event, state and statement, and ignores other databases', async () => {
    const url = server.url(await server.createDatabase('waits'));
    const other = server.url(await server.createDatabase('elsewhere'));
    const busy = new pg.Client({ connectionString: url });
    const elsewhere = new pg.Client({ connectionString: other });
    await busy.connect();
    await elsewhere.connect();
    try {
      const sampler = await startWaitSampler(url, 5);
      // Handled from the start: they end in the cancellation below, which may come before they are awaited.
      const outcome = (query: Promise<unknown>) =>
        query.then(
          () => 'finished',
          (error: { code?: string }) => error.code,
        );
      const sleeping = outcome(busy.query('SELECT pg_sleep(60)'));
      const sleepingElsewhere = outcome(elsewhere.query('SELECT pg_sleep(61)'));
      const control = new pg.Client({ connectionString: url });
      await control.connect();
      try {
        // Both backends asleep, then two more rounds answered: the second began after they were.
        await until(async () => {
          const { rows } = await control.query<{ n: string }>(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event = 'PgSleep'",
          );
          return Number(rows[0]?.n) === 2;
        });
        const seen = sampler.rounds();
        await until(async () => sampler.rounds() >= seen + 2);
        const { rounds, waits } = await sampler.stop();
        await control.query(
          "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep'",
        );
        // 57014: query_canceled (PostgreSQL docs, "PostgreSQL Error Codes").
        expect(await Promise.all([sleeping, sleepingElsewhere])).toEqual(['57014', '57014']);

        const sleep = waits.find((w) => w.statement === 'SELECT pg_sleep(60)');
        expect(sleep).toMatchObject({ wait: 'Timeout: PgSleep', state: 'active' });
        // At least the two rounds after both slept, at most one a round; the other database's backend never,
        // nor the sampler's own query.
        expect(sleep?.samples).toBeGreaterThanOrEqual(2);
        expect(sleep?.samples).toBeLessThanOrEqual(rounds);
        expect(waits.filter((w) => w.statement === 'SELECT pg_sleep(61)')).toEqual([]);
        expect(waits.filter((w) => w.statement.startsWith('SELECT coalesce(wait_event_type'))).toEqual([]);
      } finally {
        await control.end();
      }
    } finally {
      await busy.end();
      await elsewhere.end();
    }
  });
});
