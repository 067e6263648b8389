import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SIM_PASSKEY } from '../../src/ble/backends.js';
import type { HubStatus } from '../../src/control/status.js';
import { KeyFileProvider } from '../../src/store/keys.js';
import { Store } from '../../src/store/store.js';
import { until } from '../support/until.js';
import { type Clinic, configOf, freePort, startClinic, writeConfig } from './hub-rig.js';

/**
 * The running hub's windows, used as an operator uses them: `rpm-gateway start` as a child process (the built
 * dist/, the sim radio, the embedded broker over mutual TLS), and `status`, `devices`, `forget`, `pair` as other
 * processes talking to it over its control socket; the Prometheus endpoint and the patient page over HTTP.
 */
const bin = join(import.meta.dirname, '../../dist/src/cli/bin.js');
const OXIMETER = 'D0:5E:00:00:00:01'; // the sim backend's devices (src/ble/sim/devices/model-context.ts)
const ADDRESS = /[0-9A-F]{2}(:[0-9A-F]{2}){5}/i;

let root: string;
let clinic: Clinic;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rpm-hubctl-'));
  clinic = await startClinic(root);
});
afterAll(async () => {
  await clinic.stop();
  await rm(root, { recursive: true, force: true });
});

interface Run {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exited: Promise<number | null>;
}
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

function run(args: string[], stdin?: string): Run {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { PATH: process.env.PATH, HOME: root },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  const result: Run = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
  };
  child.stdout?.on('data', (chunk: Buffer) => {
    result.stdout += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    result.stderr += chunk.toString('utf8');
  });
  if (stdin !== undefined) child.stdin?.end(stdin);
  return result;
}

async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = run(args, '');
  const code = await r.exited;
  return { code, stdout: r.stdout, stderr: r.stderr };
}

const lines = (r: Run) =>
  r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { event: string; [k: string]: unknown });

/** One sample of a metric with the given labels, from Prometheus text exposition. */
function sample(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? Number.NaN : Number(line.split(' ')[1]);
}

describe('the running hub, through its control socket, metrics endpoint and patient page', () => {
  it('status, devices, pair and forget reach the hub; sessions start and stop without a restart; metrics and page show it', async () => {
    const dir = join(root, 'hub');
    const metricsPort = await freePort();
    const pagePort = await freePort();
    const file = writeConfig(dir, clinic, 'log:\n  level: debug', { metricsPort, pagePort, keyFile: true });
    const config = configOf(file);
    const dataDir = config.paths.dataDir;
    const runtimeDir = config.paths.runtimeDir;
    const socket = ['--runtime-dir', runtimeDir, '--data-dir', dataDir];
    const init = await cli(['init', '--config', file]);
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);
    const store = await Store.open({
      path: join(dataDir, 'outbox.db'),
      keys: new KeyFileProvider(join(dataDir, 'store.key')),
      existing: 'must-exist',
    });
    let oxId: string;
    try {
      oxId = store.devices.enrol({
        address: OXIMETER,
        driverId: 'sig/pulse-oximeter',
        category: 'pulse-oximeter',
        bonded: false,
        label: 'Bedroom',
      }).device.id;
    } finally {
      store.close();
    }

    const hub = run(['start', '--config', file]);
    const from = (id: string) => clinic.received.filter((r) => r.measurement.deviceId === id);
    await until('readings of the oximeter at the clinic', () => from(oxId).length >= 2, {
      timeoutMs: 20_000,
    });
    await until('the control socket', () => lines(hub).some((l) => l.event === 'control.listening'));

    // status: the running hub answers, as JSON and as text.
    await until(
      'the oximeter streaming, as status tells it',
      async () => {
        const now = await cli(['status', '--json', ...socket]);
        return (JSON.parse(now.stdout) as HubStatus).devices[0]?.state === 'streaming';
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    const json = await cli(['status', '--json', ...socket]);
    expect(json.stderr).toBe('');
    expect(json.code).toBe(0);
    const status = JSON.parse(json.stdout) as HubStatus;
    expect(status.hub).toMatchObject({ running: true, gatewayId: clinic.pki.gatewayId });
    expect(status.hub.since).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(status.devices).toEqual([
      expect.objectContaining({
        id: oxId,
        label: 'Bedroom',
        profile: 'pulse-oximeter',
        state: 'streaming',
        batteryPercent: expect.any(Number),
        lastSeen: expect.stringMatching(/^\d{4}-/),
      }),
    ]);
    expect(status.broker).toMatchObject({ state: 'connected', url: `mqtts://127.0.0.1:${clinic.port}` });
    expect(status.clock).toMatchObject({ synchronised: true, source: 'not-required', held: 0 });
    expect(status.certificate).toMatchObject({ status: 'ok' });
    expect(status.certificate?.daysLeft).toBeGreaterThan(0);
    expect(status.backlog).toHaveProperty('live.pending');
    expect(status.store).toMatchObject({ path: join(dataDir, 'outbox.db') });
    expect(status.store.bytes).toBeGreaterThan(0);
    expect(status.alertReadings).toBe(0);
    const text = await cli(['status', ...socket]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^hub +running as /m);
    expect(text.stdout).toMatch(/^broker +connected mqtts:\/\/127\.0\.0\.1:/m);
    expect(text.stdout).toMatch(
      new RegExp(`^${oxId} +pulse-oximeter +sig/pulse-oximeter +streaming .* \\d+ % +Bedroom$`, 'm'),
    );
    expect(`${json.stdout}${text.stdout}`).not.toMatch(ADDRESS);

    // Metrics: readings stored and acknowledged go up between two scrapes; sessions are counted per state.
    const scrape = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const first = await scrape();
    expect(sample(first, 'rpm_gateway_sessions', 'state="streaming"')).toBe(1);
    expect(sample(first, 'rpm_gateway_broker_connected', 'broker="0"')).toBe(1);
    const stored = sample(first, 'rpm_gateway_readings_stored_total', 'lane="live"');
    const acked = sample(first, 'rpm_gateway_readings_acknowledged_total', 'lane="live"');
    expect(stored).toBeGreaterThan(0);
    const seen = from(oxId).length;
    await until('two more readings at the clinic', () => from(oxId).length >= seen + 2, {
      timeoutMs: 10_000,
    });
    const second = await scrape();
    expect(sample(second, 'rpm_gateway_readings_stored_total', 'lane="live"')).toBeGreaterThan(stored);
    expect(sample(second, 'rpm_gateway_readings_acknowledged_total', 'lane="live"')).toBeGreaterThan(acked);

    // pair through the socket: the strap is enrolled on the hub's own radio, and its readings start flowing.
    const pair = run(['pair', '--seconds', '0.5', '--label', 'Chest strap', ...socket]);
    await until('the list of nearby devices', () => /Pair which device\?/.test(pair.stdout), {
      timeoutMs: 15_000,
    });
    const number = /^ *(\d+)\. heart-rate /m.exec(pair.stdout)?.[1];
    expect(number).toBeDefined();
    pair.child.stdin?.end(`${number}\ny\n${SIM_PASSKEY}\n`);
    expect(await pair.exited).toBe(0);
    expect(pair.stderr).toBe('');
    expect(`${pair.stdout}`).not.toMatch(ADDRESS);
    const listed = await cli(['devices', '--json', ...socket]);
    expect(listed.code).toBe(0);
    expect(listed.stderr).toBe(''); // no STORE_LOCKED: the hub answered
    const devices = listed.stdout
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as { id: string; profile: string; label: string | null });
    const strapId = devices.find((d) => d.profile === 'heart-rate')?.id as string;
    expect(devices.map((d) => d.label).sort()).toEqual(['Bedroom', 'Chest strap']);
    await until('readings of the strap, paired while the hub ran', () => from(strapId).length >= 2, {
      timeoutMs: 15_000,
    });

    // The patient page: both devices, with their last readings.
    const page = (await (await fetch(`http://127.0.0.1:${pagePort}/status.json`)).json()) as {
      devices: { id: string; label: string; lastReading: { observations: unknown[] } | null }[];
    };
    expect(page.devices.map((d) => d.label).sort()).toEqual(['Bedroom', 'Chest strap']);
    for (const d of page.devices.filter((d) => d.id === oxId)) {
      expect(d.lastReading?.observations.length).toBeGreaterThan(0);
    }
    const html = await (await fetch(`http://127.0.0.1:${pagePort}/`)).text();
    expect(html).toContain('Chest strap');
    expect(html).toContain('Bedroom');

    // forget through the socket: once it replies, the oximeter's session has stopped. Proof by order: readings
    // of the strap taken after the reply arrive, and none of the oximeter taken after it does.
    const forget = await cli(['forget', oxId, '--yes', ...socket]);
    const repliedAt = Date.now();
    expect(forget.stderr).toBe('');
    expect(forget.code).toBe(0);
    const takenAfter = (id: string) => from(id).filter((r) => Date.parse(r.measurement.time) > repliedAt);
    await until('three readings of the strap taken after the reply', () => takenAfter(strapId).length >= 3, {
      timeoutMs: 15_000,
    });
    expect(takenAfter(oxId)).toEqual([]);
    const later = JSON.parse((await cli(['status', '--json', ...socket])).stdout) as HubStatus;
    expect(later.devices.map((d) => d.id)).toEqual([strapId]);
    expect(lines(hub).some((l) => l.event === 'device.session-stopped' && l.deviceId === oxId)).toBe(true);

    // Stopped: status reads the store itself and exits 3 (LSB "program is not running").
    hub.child.kill('SIGTERM');
    expect(await hub.exited).toBe(0);
    const stopped = await cli(['status', '--json', ...socket]);
    expect(stopped.code).toBe(3);
    expect(JSON.parse(stopped.stdout)).toMatchObject({ hub: { running: false }, broker: null });
    // No PHI in the hub's log: no address, no label, while the page and metrics were read.
    expect(hub.stdout).not.toMatch(ADDRESS);
    expect(hub.stdout).not.toContain('Bedroom');
    expect(hub.stdout).not.toContain('Chest strap');
  }, 120_000);
});
