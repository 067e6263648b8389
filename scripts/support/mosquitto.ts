import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TLS12_AEAD_CIPHERS } from '../../src/pki/tls.js';

/**
 * Starts a real Mosquitto (Debian package, 2.0.x) for interoperability tests and bench:uplink: 127.0.0.1 only, mutual TLS
 * with the given CA, identity from the certificate CN (use_identity_as_username), an ACL equivalent to the
 * embedded broker's, no persistence. Wrapped in `timeout` so it stops by itself even if the test process dies.
 */
export interface RunningMosquitto {
  readonly port: number;
  readonly stop: () => Promise<void>;
}

/** Debian installs it in /usr/sbin, which is not on every PATH. */
const MOSQUITTO = ['mosquitto', '/usr/sbin/mosquitto'].find((bin) => !spawnSync(bin, ['-h']).error);

export function mosquittoAvailable(): boolean {
  return MOSQUITTO !== undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startMosquitto(options: {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  clinicName: string;
  /**
   * More mosquitto.conf(5) lines, after the defaults above (a later line wins for a global setting), e.g.
   * `max_queued_messages 0` for tests whose subscribers are away while hubs publish.
   */
  settings?: readonly string[];
}): Promise<RunningMosquitto> {
  const port = await freePort();
  const acl = join(options.dir, 'mosquitto.acl');
  writeFileSync(
    acl,
    [
      '# gateways: the certificate CN is the username (%u); each hub only under its own topics',
      'pattern write rpm/v1/%u/obs',
      'pattern write rpm/v1/%u/alert',
      'pattern write rpm/v1/%u/status',
      'pattern write rpm/v1/%u/cmd/res',
      'pattern read rpm/v1/%u/cmd',
      `user ${options.clinicName}`,
      'topic read rpm/v1/#',
      'topic write rpm/v1/+/cmd',
      '',
    ].join('\n'),
  );
  const config = join(options.dir, 'mosquitto.conf');
  writeFileSync(
    config,
    [
      'user root', // test-only: the key files are 0600 and owned by the test user
      'persistence false',
      'allow_anonymous false',
      'per_listener_settings false',
      `acl_file ${acl}`,
      `listener ${port} 127.0.0.1`,
      `cafile ${options.caFile}`,
      `certfile ${options.certFile}`,
      `keyfile ${options.keyFile}`,
      'require_certificate true',
      'use_identity_as_username true',
      'tls_version tlsv1.2',
      `ciphers ${TLS12_AEAD_CIPHERS}`, // TLS 1.2 suites: ECDHE + AEAD only, as docs/brokers.md says
      ...(options.settings ?? []),
      '',
    ].join('\n'),
  );
  const proc: ChildProcess = spawn('timeout', ['600', MOSQUITTO ?? 'mosquitto', '-c', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  try {
    await acceptsWithin(port, proc, 10_000);
  } catch (error) {
    proc.kill('SIGKILL');
    throw new Error(`mosquitto did not start (${(error as Error).message}): ${stderr}`);
  }
  return {
    port,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

/** Polls until the broker accepts a TCP connection, it exits, or `timeoutMs` passes. */
async function acceptsWithin(port: number, proc: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`mosquitto exited with status ${proc.exitCode}`);
    if (await accepts(port)) return;
    if (Date.now() > deadline) throw new Error(`no connection accepted within ${timeoutMs} ms`);
    await sleep(50);
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
