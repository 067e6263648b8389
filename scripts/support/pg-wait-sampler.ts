import pg from 'pg';

/**
 * What the intake's PostgreSQL backends are doing, sampled: every `everyMs` one query of pg_stat_activity (the
 * PostgreSQL docs, "The Cumulative Statistics System", pg_stat_activity: `wait_event_type`, `wait_event`,
 * `state`, `query`) over its own connection, counting the client backends of the database that are not idle by
 * what they wait on and which statement they are in. A backend that is active and waits on nothing is on the CPU
 * (or waiting for one); `Client: ClientRead` is a backend waiting for the intake (its next statement or COPY
 * data); `LWLock: WALWrite`, `Lock: extend`, `Lock: object`, `IO: ...` are the server's own waits. The sampling
 * connection costs the server one small query `everyMs` after the previous answer (a few per cent of one core
 * at 10 ms).
 */
export interface WaitSample {
  /** `wait_event_type: wait_event`, or `CPU` for an active backend that waits on nothing. */
  readonly wait: string;
  /** The backend's state (`active`, `idle in transaction`, ...). */
  readonly state: string;
  /** The first words of its current (or, when idle in a transaction, last) statement. */
  readonly statement: string;
  readonly samples: number;
}

export interface WaitSampler {
  /** Sampling rounds answered so far. */
  rounds(): number;
  /** Stops sampling; the counts, largest first, and how many times it sampled. */
  stop(): Promise<{ readonly rounds: number; readonly waits: readonly WaitSample[] }>;
}

const QUERY = `
  SELECT coalesce(wait_event_type || ': ' || wait_event, 'CPU') AS wait, state,
         left(btrim(regexp_replace(query, '\\s+', ' ', 'g')), 32) AS statement
  FROM pg_stat_activity
  WHERE backend_type = 'client backend' AND datname = current_database() AND pid <> pg_backend_pid()
    AND state <> 'idle'`;

export async function startWaitSampler(connectionString: string, everyMs = 10): Promise<WaitSampler> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  const counts = new Map<string, { wait: string; state: string; statement: string; samples: number }>();
  let rounds = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<void> = Promise.resolve();
  const sample = async () => {
    const { rows } = await client.query<{ wait: string; state: string; statement: string }>(QUERY);
    rounds++;
    for (const row of rows) {
      const key = `${row.wait}\u0000${row.state}\u0000${row.statement}`;
      const entry = counts.get(key) ?? { ...row, samples: 0 };
      entry.samples++;
      counts.set(key, entry);
    }
  };
  const tick = () => {
    round = sample().finally(() => {
      if (!stopped) timer = setTimeout(tick, everyMs);
    });
  };
  tick();
  return {
    rounds: () => rounds,
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await round.catch(() => undefined);
      await client.end();
      return { rounds, waits: [...counts.values()].sort((a, b) => b.samples - a.samples) };
    },
  };
}
