import type { ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { Store } from '../../src/store/store.js';
import { type CliProcess, spawnCli } from '../support/cli-process.js';
import { until } from '../support/until.js';
import { type Clinic, configOf, KEY_VARIABLE, STORE_KEY, startClinic, writeConfig } from './hub-rig.js';

/**
 * `rpm-gateway start` as the service runs it: a real child process (the built dist/), the simulated radio, the
 * embedded broker over mutual TLS, signals from outside.
 */
const _bin = join(import.meta.dirname, '../../dist/src/cli/bin.js');
const OXIMETER = 'D0:5E:00:00:00:01'; // the sim backend's devices (src/ble/sim/devices/model-context.ts)
const STRAP = 'D0:5E:00:00:00:06';

let root: string;
let clinic: Clinic;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rpm-start-'));
  clinic = await startClinic(root);
});
afterAll(async () => {
  await clinic.stop();
  await rm(root, { recursive: true, force: true });
});

type Run = CliProcess;
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

function run(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const result = spawnCli(args, { PATH: process.env.PATH, HOME: root, [KEY_VARIABLE]: STORE_KEY, ...env });
  children.push(result.child);
  return result;
}

const events = (r: Run) => r.lines.map((l) => JSON.parse(l) as { event: string; [k: string]: unknown });
const logged = (r: Run, event: string) => events(r).some((e) => e.event === event);

let runs = 0;
/** A configuration and an initialised store with the sim oximeter and strap enrolled. */
async function service(extra = 'log:\n  level: debug'): Promise<{ file: string; ids: string[] }> {
  const dir = join(root, `svc-${++runs}`);
  const file = writeConfig(dir, clinic, extra);
  const init = run(['init', '--config', file]);
  const { code } = await init.exited;
  expect(init.stderr).toBe('');
  expect(code).toBe(0);
  const again = run(['init', '--config', file]);
  expect((await again.exited).code).toBe(1);
  expect(again.stderr).toMatch(/a store already exists/);
  const config = configOf(file);
  const store = await Store.open({
    path: join(config.paths.dataDir, 'outbox.db'),
    keys: new EnvKeyProvider(KEY_VARIABLE, { [KEY_VARIABLE]: STORE_KEY }),
    existing: 'must-exist',
  });
  try {
    const ids = [
      store.devices.enrol({
        address: OXIMETER,
        driverId: 'sig/pulse-oximeter',
        category: 'pulse-oximeter',
        bonded: false,
      }),
      store.devices.enrol({
        address: STRAP,
        driverId: 'sig/heart-rate',
        category: 'heart-rate',
        bonded: false,
      }),
    ].map((r) => r.device.id);
    return { file, ids };
  } finally {
    store.close();
  }
}

describe('rpm-gateway start', () => {
  it('runs until SIGTERM, then stops within the deadline with exit 0 and nothing lost', async () => {
    const { file, ids } = await service();
    const hub = run(['start', '--config', file]);
    const at = (id: string | undefined) => clinic.received.filter((r) => r.measurement.deviceId === id);
    await until(
      'readings of both devices at the clinic',
      () => at(ids[0]).length >= 3 && at(ids[1]).length >= 3,
      {
        timeoutMs: 20_000,
      },
    );
    const signalledAt = Date.now();
    hub.child.kill('SIGTERM');
    const { code } = await hub.exited;
    expect(hub.stderr).toBe('');
    expect(code).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(10_000); // shutdown.deadline
    expect(logged(hub, 'hub.stopping')).toBe(true);
    expect(logged(hub, 'hub.stopped')).toBe(true);
    await until('the offline status at the clinic', () =>
      clinic.statuses.some((s) => s.state === 'offline' && s.gatewayId === clinic.pki.gatewayId),
    );

    // Every append that resolved is at the clinic, or still in the store.
    const appended = events(hub)
      .filter((e) => e.event === 'reading.appended')
      .map((e) => e.measurementId as string);
    expect(appended.length).toBeGreaterThanOrEqual(6);
    const config = configOf(file);
    const store = await Store.open({
      path: join(config.paths.dataDir, 'outbox.db'),
      keys: new EnvKeyProvider(KEY_VARIABLE, { [KEY_VARIABLE]: STORE_KEY }),
      existing: 'must-exist',
    });
    let kept: Set<string>;
    try {
      kept = new Set(store.outbox.lease({ maxRows: 1_000_000 }).records.map((r) => r.id));
    } finally {
      store.close();
    }
    const delivered = new Set(clinic.received.map((r) => r.measurement.id));
    const lost = appended.filter((id) => !delivered.has(id) && !kept.has(id));
    expect(lost).toEqual([]);
  });

  it('exits at once, non-zero, on a second signal while stopping', async () => {
    // The hub reaches the broker through a relay the test can freeze: then the offline status it publishes while
    // stopping gets no acknowledgement, so the stop is still under way when the second signal comes.
    const frozen = { now: false };
    const sockets: Socket[] = [];
    const relay = createServer((inbound) => {
      const outbound = connect(clinic.port, '127.0.0.1');
      sockets.push(inbound, outbound);
      inbound.on('data', (chunk) => {
        if (!frozen.now) outbound.write(chunk);
      });
      outbound.on('data', (chunk) => {
        if (!frozen.now) inbound.write(chunk);
      });
      inbound.on('error', () => undefined);
      outbound.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const relayPort = (relay.address() as AddressInfo).port;
    try {
      const { file } = await service();
      const hub = run(['start', '--config', file, '--broker', `mqtts://localhost:${relayPort}`]);
      await until('the uplink to connect', () => logged(hub, 'uplink.connected'), { timeoutMs: 20_000 });
      frozen.now = true;
      hub.child.kill('SIGTERM');
      await until('the stop to begin', () => logged(hub, 'hub.stopping'));
      hub.child.kill('SIGINT');
      const { code } = await hub.exited;
      expect(code).toBe(130); // 128 + SIGINT
      expect(logged(hub, 'hub.forced-exit')).toBe(true);
      expect(logged(hub, 'hub.stopped')).toBe(false);
    } finally {
      for (const socket of sockets) socket.destroy();
      relay.close();
    }
  });

  it('reports every mistake of a configuration file with its path, and starts and creates nothing', async () => {
    const dir = join(root, 'bad');
    const file = writeConfig(dir, clinic);
    const dataDir = join(dir, 'never-made');
    writeFileSync(
      file,
      [
        'gateway:',
        '  id: Not_A_Gateway',
        'paths:',
        `  dataDir: ${dataDir}`,
        'uplink:',
        '  brokers:',
        '    - url: http://broker.example:1883',
        'ble:',
        '  backend: bluetooth',
        'log:',
        '  level: loud',
        'shutdown:',
        '  deadline: 5 parsecs',
      ].join('\n'),
    );
    const result = run(['start', '--config', file]);
    const { code } = await result.exited;
    expect(code).toBe(2);
    expect(result.lines).toEqual([]); // no log line: nothing started
    expect(result.stderr).toMatch(/nothing was started or created/);
    for (const path of [
      'gateway.id',
      'uplink.brokers[0].url',
      'ble.backend',
      'log.level',
      'shutdown.deadline',
    ]) {
      expect(result.stderr).toContain(`${path}: `);
    }
    expect(result.stderr.match(/^ {2}\S.*\[CONFIG_[A-Z_]+\]$/gm)?.length).toBeGreaterThanOrEqual(5);
    expect(existsSync(dataDir)).toBe(false);
  });

  it('refuses a mistyped --data-dir, naming it, and creates nothing there', async () => {
    const { file } = await service();
    const typo = join(root, 'svc-typo', 'datta');
    const result = run(['start', '--config', file, '--data-dir', typo]);
    const { code } = await result.exited;
    expect(code).toBe(2);
    expect(result.stderr).toContain(`${typo} does not exist`);
    expect(result.stderr).toMatch(/flag --data-dir/);
    expect(existsSync(typo)).toBe(false);
    expect(existsSync(join(root, 'svc-typo'))).toBe(false);
  });

  it('has --help', async () => {
    const result = run(['start', '--help']);
    expect((await result.exited).code).toBe(0);
    expect(result.lines.join('\n')).toMatch(/Usage: rpm-gateway start/);
    const init = run(['init', '--help']);
    expect((await init.exited).code).toBe(0);
    expect(init.lines.join('\n')).toMatch(/Usage: rpm-gateway init/);
    expect(await readdir(root)).not.toContain('datta');
  });
});
