import { existsSync } from 'node:fs';
import type { ClinicStore } from '../../src/clinic/storage/clinic-store.js';
import { PgClinicStore } from '../../src/clinic/storage/postgres/pg-clinic-store.js';
import { startPostgres } from './postgres.js';

/**
 * The PostgreSQL side of bench:clinic and bench:clinic-store, behind a check: without Debian's postgresql-15
 * binaries, `postgresMissing()` says why and the benchmarks run SQLite only.
 */
const PG_BIN = '/usr/lib/postgresql/15/bin';

export function postgresMissing(): string | undefined {
  if (!existsSync(`${PG_BIN}/initdb`)) return `PostgreSQL 15 is not installed (${PG_BIN})`;
  return undefined;
}

export interface BenchPostgres {
  /** A fresh database's connection URL. */
  database(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * The benchmarks' server settings, on top of initdb's defaults. fsync and full_page_writes ON, as production runs
 * them: startPostgres (./postgres.ts) turns both off for tests, but a benchmark against an unsynced database would compare PostgreSQL
 * without durability with SQLite at synchronous=FULL, and without full-page images a crash can leave torn pages
 * (PostgreSQL docs, "Write Ahead Log" settings, full_page_writes). wal_buffers 16MB: what docs/clinic-intake.md
 * ("Running it") recommends, and what the server picks by itself when shared_buffers is 512 MB or more; initdb's
 * 128 MB gives 4 MB, less than one intake commit's WAL.
 */
export const BENCH_PG_SETTINGS: Readonly<Record<string, string>> = {
  fsync: 'on',
  full_page_writes: 'on',
  wal_buffers: '16MB',
};

/** A throwaway server with BENCH_PG_SETTINGS, and `settings` (the benchmarks' --pg-setting) over them. */
export async function startBenchPostgres(
  settings: Readonly<Record<string, string>> = {},
): Promise<BenchPostgres> {
  const server = await startPostgres({
    settings: { ...BENCH_PG_SETTINGS, ...settings },
  });
  return {
    database: async () => server.url(await server.createDatabase('bench')),
    stop: () => server.stop(),
  };
}

export function openPgStore(url: string): Promise<ClinicStore> {
  return PgClinicStore.open({ connection: { connectionString: url } });
}
