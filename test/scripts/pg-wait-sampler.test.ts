import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWaitSampler } from '../../scripts/support/pg-wait-sampler.js';
import { type RunningPostgres, startPostgres } from '../../scripts/support/postgres.js';

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
    // A backend that waits for as long as the test says: blocked on an advisory lock another connection holds
    // (PostgreSQL docs, "Advisory Locks"; they belong to one database), released when the test is done. One such
    // waiter in this database and one in another.
    const holder = new pg.Client({ connectionString: url });
    const holderElsewhere = new pg.Client({ connectionString: other });
    const waiter = new pg.Client({ connectionString: url });
    const waiterElsewhere = new pg.Client({ connectionString: other });
    const clients = [holder, holderElsewhere, waiter, waiterElsewhere];
    await Promise.all(clients.map((client) => client.connect()));
    try {
      await holder.query('SELECT pg_advisory_lock(42)');
      await holderElsewhere.query('SELECT pg_advisory_lock(43)');
      const sampler = await startWaitSampler(url, 5);
      const waiting = waiter.query('SELECT pg_advisory_lock(42)');
      const waitingElsewhere = waiterElsewhere.query('SELECT pg_advisory_lock(43)');

      // Both backends blocked, then two more rounds answered: the second began after they were.
      await until(async () => {
        const { rows } = await holder.query<{ n: string }>(
          "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'",
        );
        return Number(rows[0]?.n) === 2;
      });
      const seen = sampler.rounds();
      await until(async () => sampler.rounds() >= seen + 2);
      const { rounds, waits } = await sampler.stop();
      await holder.query('SELECT pg_advisory_unlock(42)');
      await holderElsewhere.query('SELECT pg_advisory_unlock(43)');
      await Promise.all([waiting, waitingElsewhere]);

      const blocked = waits.find((w) => w.statement === 'SELECT pg_advisory_lock(42)');
      expect(blocked).toMatchObject({ wait: 'Lock: advisory', state: 'active' });
      // At least the two rounds after both were blocked, at most one a round; the other database's backend
      // never, nor the sampler's own query.
      expect(blocked?.samples).toBeGreaterThanOrEqual(2);
      expect(blocked?.samples).toBeLessThanOrEqual(rounds);
      expect(waits.filter((w) => w.statement === 'SELECT pg_advisory_lock(43)')).toEqual([]);
      expect(waits.filter((w) => w.statement.startsWith('SELECT coalesce(wait_event_type'))).toEqual([]);
    } finally {
      await Promise.all(clients.map((client) => client.end()));
    }
  });
});
