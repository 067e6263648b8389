import { startPostgres } from '../../scripts/support/postgres.js';

/**
 * For test/support/postgres.test.ts: starts a throwaway PostgreSQL, prints where it is (one JSON line), and
 * then waits to be killed, never stopping the server itself: the watchdog must.
 */
const server = await startPostgres();
process.stdout.write(`${JSON.stringify({ port: server.port, dir: server.socketDir })}\n`);
setInterval(() => undefined, 60_000);
