import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { startPostgres } from '../../scripts/support/postgres.js';
import { until } from './until.js';

const child = join(import.meta.dirname, '../../dist/test/support/postgres-orphan-child.js');

async function connects(config: pg.ClientConfig): Promise<boolean> {
  const client = new pg.Client({ ...config, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

describe('the throwaway PostgreSQL of the tests', () => {
  it('starts with a password, and stop() removes the server and its directory', async () => {
    const server = await startPostgres();
    expect(await connects(server.connection())).toBe(true);
    expect(await connects({ ...server.connection(), password: 'wrong' })).toBe(false);
    await server.stop();
    await server.stop(); // twice is fine
    expect(existsSync(server.socketDir)).toBe(false);
    expect(await connects(server.connection())).toBe(false);
  });

  it('is built (npm test builds first; run `npm run build` when calling vitest directly)', () => {
    expect(existsSync(child)).toBe(true);
  });

  it('stops and disappears when the test process is SIGKILLed', async () => {
    const proc = spawn(process.execPath, [child], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (chunk) => {
      out += chunk;
    });
    await until('the child started its server', () => out.includes('\n'), { timeoutMs: 30_000 });
    const { port, dir } = JSON.parse(out) as { port: number; dir: string };
    expect(existsSync(join(dir, 'data', 'postmaster.pid'))).toBe(true);
    proc.kill('SIGKILL');
    await until('the watchdog removed the directory', () => !existsSync(dir), { timeoutMs: 30_000 });
    // The directory goes after pg_ctl stop returned: the server is gone, nothing accepts on its port.
    expect(await connects({ host: '127.0.0.1', port, user: 'x', password: 'x' })).toBe(false);
  });

  it('stops by itself after its maximum lifetime, even while the test process runs', async () => {
    // The lifetime counts from before initdb (a crash while starting is cleaned up too): 8 s outlasts a start.
    const server = await startPostgres({ maxLifetimeSeconds: 8 });
    expect(await connects(server.connection())).toBe(true);
    await until('the server stopped by itself', () => !existsSync(server.socketDir), { timeoutMs: 30_000 });
    expect(await connects(server.connection())).toBe(false);
    await server.stop();
  });
});
