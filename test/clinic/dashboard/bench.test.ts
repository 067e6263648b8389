import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ClientRecord,
  gatewayIdOf,
  mrnOf,
  parseDashboardBenchArgs,
  percentile,
  staffPlan,
  tally,
} from '../../../scripts/support/dashboard-bench-plan.js';

/**
 * bench:dashboard (scripts/bench-dashboard.ts) cannot rot silently: its plan and tally are checked here, and the
 * whole benchmark runs at a tiny scale (2 patients, 2 staff sessions, 3 seconds of readings) over the built
 * script, end to end: broker, `clinic serve`, MQTT hubs, HTTPS logins with TOTP, the live feed. Nothing here
 * asserts a delay or a rate: those depend on the machine; what must hold anywhere is that every committed
 * reading reached every session allowed to see it, once, and no other.
 */
const BENCH = join(import.meta.dirname, '../../../dist/scripts/bench-dashboard.js');

describe('bench:dashboard plan', () => {
  it('has the issue defaults, a quick run, and explicit options that win over --quick', () => {
    expect(parseDashboardBenchArgs([])).toEqual({
      patients: 200,
      admins: 5,
      clinicians: 15,
      team: 20,
      warmupSeconds: 20,
      seconds: 120,
      broker: 'clinic',
      keep: false,
    });
    expect(parseDashboardBenchArgs(['--broker', 'mosquitto'])).toMatchObject({ broker: 'mosquitto' });
    expect(parseDashboardBenchArgs(['--quick'])).toMatchObject({ warmupSeconds: 5, seconds: 20 });
    expect(parseDashboardBenchArgs(['--quick', '--seconds', '7'])).toMatchObject({
      warmupSeconds: 5,
      seconds: 7,
    });
    expect(parseDashboardBenchArgs(['--patients', '3'])).toMatchObject({ patients: 3, team: 3 });
    expect(parseDashboardBenchArgs(['-h'])).toBe('help');
  });

  it('refuses a bad value, naming the option', () => {
    expect(() => parseDashboardBenchArgs(['--patients', '0'])).toThrow(
      /--patients must be a whole number from 1/,
    );
    expect(() => parseDashboardBenchArgs(['--seconds', '2.5'])).toThrow(/--seconds must be a whole number/);
    expect(() => parseDashboardBenchArgs(['--patients', '10', '--team', '11'])).toThrow(
      /--team must be .* to 10/,
    );
    expect(() => parseDashboardBenchArgs(['--admins', '0', '--clinicians', '0'])).toThrow(
      /no live connection/,
    );
    expect(() => parseDashboardBenchArgs(['--broker', 'emqx'])).toThrow(
      /--broker must be clinic or mosquitto/,
    );
    expect(() => parseDashboardBenchArgs(['--bogus'])).toThrow(/bogus/);
  });

  it('gives admins every patient and clinicians care teams that take the patients in turn', () => {
    const users = staffPlan({ patients: 5, admins: 1, clinicians: 3, team: 2 });
    expect(users.map((u) => [u.username, u.role, u.patients])).toEqual([
      ['bench-admin-1', 'admin', [0, 1, 2, 3, 4]],
      ['bench-clinician-1', 'clinician', [0, 1]],
      ['bench-clinician-2', 'clinician', [2, 3]],
      ['bench-clinician-3', 'clinician', [4, 0]],
    ]);
    expect([gatewayIdOf(7), mrnOf(7)]).toEqual(['gw-dash-0007', 'MRN-D0007']);
  });

  it('counts lost, duplicate and foreign events against what each connection may see', () => {
    const users = staffPlan({ patients: 2, admins: 1, clinicians: 1, team: 1 });
    // Measured readings a (patient 0) and b (patient 1); w is a warm-up reading of patient 1.
    const measured = new Map([
      ['a', 0],
      ['b', 1],
    ]);
    const patientOf = new Map([...measured, ['w', 1]]);
    const clients: ClientRecord[] = [
      {
        username: 'bench-admin-1',
        role: 'admin',
        ended: false,
        deliveries: [
          ['w', 100, 101],
          ['a', 1000, 1030],
          ['a', 1000, 1031],
        ],
      },
      {
        username: 'bench-clinician-1',
        role: 'clinician',
        ended: false,
        deliveries: [
          ['a', 1000, 1010],
          ['b', 2000, 2005],
        ],
      },
    ];
    const t = tally(measured, patientOf, users, clients);
    expect(t).toMatchObject({
      connections: 2,
      expected: 3,
      delivered: 2,
      lost: 1,
      duplicates: 1,
      foreign: 1,
    });
    expect(t.delays).toEqual([10, 30]);
    expect(() =>
      tally(measured, patientOf, users, [{ ...(clients[0] as ClientRecord), username: 'x' }]),
    ).toThrow(/x, who is not in the plan/);
  });

  it('takes nearest-rank percentiles', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([percentile(sorted, 50), percentile(sorted, 99), percentile(sorted, 100)]).toEqual([50, 99, 100]);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });
});

describe('bench:dashboard at a tiny scale (the built script, every process real)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rpm-bench-dashboard-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('delivers every measured reading to every session that may see it, once, and prints the table', async () => {
    const json = join(dir, 'result.json');
    const child = spawn(
      process.execPath,
      [
        BENCH,
        '--patients',
        '2',
        '--admins',
        '1',
        '--clinicians',
        '1',
        '--team',
        '1',
        '--warmup',
        '1',
        '--seconds',
        '3',
        '--json',
        json,
      ],
      { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, stderr).toBe(0);
    const result = JSON.parse(readFileSync(json, 'utf8')) as {
      readingsSent: number;
      readingsCommitted: number;
      notCommitted: number;
      publishFailures: number;
      endedStreams: number;
      groups: {
        name: string;
        expected: number;
        delivered: number;
        lost: number;
        duplicates: number;
        foreign: number;
      }[];
    };
    // 2 hubs x 3 measured seconds; the admin sees both patients (6), the clinician one (3).
    expect([result.readingsSent, result.readingsCommitted, result.notCommitted]).toEqual([6, 6, 0]);
    expect(result.publishFailures).toBe(0);
    expect(result.endedStreams).toBe(0);
    expect(
      result.groups.map((g) => [g.name, g.expected, g.delivered, g.lost, g.duplicates, g.foreign]),
    ).toEqual([
      ['1 admin (2 patients each)', 6, 6, 0, 0, 0],
      ['1 clinician (1 patient each)', 3, 3, 0, 0, 0],
      ['all 2 connections', 9, 9, 0, 0, 0],
    ]);
    expect(stdout).toContain('goal p99 < 500 ms');
    expect(stdout).toMatch(/^rpm-gateway clinic serve +6 /m);
  }, 300_000);
});
