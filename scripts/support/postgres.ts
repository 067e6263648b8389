import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './mosquitto.js';

/**
 * A throwaway PostgreSQL 15 server for one test file: Debian's binaries (package `postgresql-15`, which
 * .ci/run installs), a fresh cluster made by initdb in a temporary directory, listening on a free 127.0.0.1
 * port and a Unix socket in that directory, and gone after `stop()`.
 *
 * Authentication is scram-sha-256 with a random password (initdb --auth, --pwfile), the shape production uses,
 * so every test connects with a password (trust would hide a connection string that forgets it).
 *
 * initdb and the server refuse to run as root (PostgreSQL docs, "Creating a Database Cluster"), so as root
 * they run as the `postgres` user Debian's package creates (runuser), and the directory is handed to it.
 *
 * Settings for a throwaway cluster: fsync off (a test never survives a power cut, and fsync costs seconds on a
 * shared disk; PostgreSQL docs, "Non-Durable Settings"); synchronous_commit stays at its default (on), which is
 * what the store relies on. Nothing else is tuned, so the server behaves like a stock one.
 *
 * Leftovers cannot accumulate: a watchdog child (its own process group, so a signal to the test runner's group
 * does not reach it) holds the read end of a pipe from this process. When this process ends for any reason,
 * SIGKILL included, the kernel closes the pipe; the watchdog then stops the server (`pg_ctl stop -m immediate`)
 * and deletes the directory. `stop()` closes the pipe on purpose and waits for the same cleanup (with a fast
 * shutdown first). The watchdog also gives up after `maxLifetimeSeconds` (default 30 min), stopping the server
 * even while this process still runs: no test file takes that long.
 */
export interface RunningPostgres {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** The Unix socket directory (`host` for a socket connection). */
  readonly socketDir: string;
  readonly user: string;
  readonly password: string;
  /** Connection options for `pg` to the given database (default `postgres`). */
  connection(database?: string): pg.ClientConfig;
  /** A connection URL (postgres://user:password@127.0.0.1:port/database). */
  url(database?: string): string;
  /** Creates an empty database and returns its name: one per test keeps tests apart cheaply. */
  createDatabase(prefix?: string): Promise<string>;
  /** Stops the server and deletes its directory; safe to call twice. */
  stop(): Promise<void>;
}

const BIN = '/usr/lib/postgresql/15/bin';
const run = promisify(execFile);

function requireInstalled(): void {
  if (!existsSync(join(BIN, 'initdb')) || !existsSync(join(BIN, 'pg_ctl'))) {
    throw new Error(`PostgreSQL 15 is not installed (no ${BIN}): apt-get install postgresql (.ci/run does)`);
  }
}

export async function startPostgres(
  options: {
    readonly maxLifetimeSeconds?: number;
    readonly settings?: Readonly<Record<string, string>>;
  } = {},
): Promise<RunningPostgres> {
  requireInstalled();
  const dir = mkdtempSync(join(tmpdir(), 'rpm-pg-'));
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  // As root, postgres owns everything in `dir`; the watchdog (root) deletes it afterwards.
  const owner = asRoot ? await postgresIds() : undefined;
  if (owner) chownSync(dir, owner.uid, owner.gid);
  chmodSync(dir, 0o700);
  const asOwner = (bin: string, args: readonly string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', join(BIN, bin), ...args]] : [join(BIN, bin), [...args]];

  const user = 'rpm_test';
  const password = randomBytes(18).toString('base64url');
  const pwfile = join(dir, 'pwfile');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (owner) chownSync(pwfile, owner.uid, owner.gid);

  const watchdog = startWatchdog(dir, data, asRoot, options.maxLifetimeSeconds ?? 1800);
  try {
    await run(
      ...asOwner('initdb', [
        '-D',
        data,
        '-U',
        user,
        '--auth=scram-sha-256',
        `--pwfile=${pwfile}`,
        '--encoding=UTF8',
        '--locale=C',
        '--no-sync', // the cluster is thrown away; see fsync above
      ]),
    );
    rmSync(pwfile);
    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: dir,
      fsync: 'off',
      full_page_writes: 'off',
      ...options.settings,
    };
    const port = await startServer(asOwner, data, dir, settings);
    let stopped: Promise<void> | undefined;
    const connection = (database = 'postgres'): pg.ClientConfig => ({
      host: '127.0.0.1',
      port,
      user,
      password,
      database,
    });
    let databases = 0;
    return {
      host: '127.0.0.1',
      port,
      socketDir: dir,
      user,
      password,
      connection,
      url: (database = 'postgres') =>
        `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`,
      async createDatabase(prefix = 'test') {
        databases += 1;
        const name = `${prefix}_${databases}`;
        const client = new pg.Client(connection());
        await client.connect();
        try {
          await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
        } finally {
          await client.end();
        }
        return name;
      },
      stop() {
        stopped ??= watchdog.finish();
        return stopped;
      },
    };
  } catch (error) {
    await watchdog.finish();
    throw error;
  }
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid))
    throw new Error('no `postgres` user to run the server');
  return { uid, gid };
}

/** pg_ctl start on a free port; retried on another port if one was taken between choosing and binding. */
async function startServer(
  asOwner: (bin: string, args: readonly string[]) => [string, string[]],
  data: string,
  dir: string,
  settings: Readonly<Record<string, string>>,
): Promise<number> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const serverOptions = [`-p ${port}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(
      ' ',
    );
    try {
      await run(
        ...asOwner('pg_ctl', [
          '-D',
          data,
          '-l',
          join(dir, 'server.log'),
          '-o',
          serverOptions,
          '-w',
          '-t',
          '60',
          'start',
        ]),
      );
      return port;
    } catch (error) {
      lastError = error;
    }
  }
  const log = existsSync(join(dir, 'server.log')) ? ` (see the server log: ${join(dir, 'server.log')})` : '';
  throw new Error(`PostgreSQL did not start${log}: ${(lastError as Error).message}`);
}

/**
 * The watchdog: `timeout N cat` returns when this process closes the pipe (or dies: the kernel closes it), or
 * after N seconds; then the server is stopped and the directory removed. Arguments are passed as $1.. so no
 * path is ever parsed by the shell.
 */
function startWatchdog(
  dir: string,
  data: string,
  asRoot: boolean,
  lifetimeSeconds: number,
): { finish(): Promise<void> } {
  const pgCtl = join(BIN, 'pg_ctl');
  const stopAs = asRoot ? 'runuser -u postgres -- "$3"' : '"$3"';
  const script = [
    'timeout "$4" cat >/dev/null',
    // A fast shutdown disconnects clients and stops cleanly; immediate only if that did not finish in 30 s.
    `[ -f "$2/postmaster.pid" ] && ${stopAs} -D "$2" -m fast -w -t 30 stop >/dev/null 2>&1`,
    `[ -f "$2/postmaster.pid" ] && ${stopAs} -D "$2" -m immediate -w stop >/dev/null 2>&1`,
    'rm -rf "$1"',
  ].join('; ');
  const child: ChildProcess = spawn(
    'sh',
    ['-c', script, 'watchdog', dir, data, pgCtl, String(lifetimeSeconds)],
    {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
    },
  );
  child.unref();
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    child.once('exit', () => resolve());
  });
  return {
    finish() {
      child.stdin?.end();
      return exited;
    },
  };
}
