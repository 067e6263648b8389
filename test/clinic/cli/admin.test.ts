import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fleetMeasurement } from '../../../scripts/support/gateway-fleet.js';
import { AuditLog } from '../../../src/audit/audit-log.js';
import type { Receipt } from '../../../src/clinic/storage/clinic-store.js';
import { SqliteClinicStore } from '../../../src/clinic/storage/sqlite/sqlite-clinic-store.js';
import { Children, type ClinicRig, clinicRig } from './rig.js';

/** `rpm-gateway clinic init` and the administrator's commands, over the built CLI (dist/). */
let root: string;
let rig: ClinicRig;
const children = new Children();
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rpm-clinic-admin-'));
  rig = await clinicRig(root);
});
afterEach(() => children.killAll());
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function cli(...args: string[]) {
  const run = children.spawn([...args, '--config', rig.config], {});
  const { code } = await run.exited;
  return { code, stdout: run.lines.join('\n'), stderr: run.stderr };
}

const auditTypes = () =>
  readFileSync(join(rig.dataDir, 'clinic-audit.log'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { type: string; actor: string; details: Record<string, unknown> });

describe('rpm-gateway clinic init', () => {
  it('makes the data directory, a 0600 key and an empty database, and never overwrites them', async () => {
    const made = await cli('clinic', 'init');
    expect(made.stderr).toBe('');
    expect(made.code).toBe(0);
    const key = join(rig.dataDir, 'clinic.key');
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(statSync(rig.dataDir).mode & 0o777).toBe(0o700);
    expect(existsSync(join(rig.dataDir, 'clinic.db'))).toBe(true);
    const keyText = readFileSync(key, 'utf8');

    const again = await cli('clinic', 'init');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exist.*nothing was changed.*CLINIC_ALREADY_INITIALISED/);
    expect(readFileSync(key, 'utf8')).toBe(keyText);

    const entries = auditTypes();
    expect(entries.map((e) => e.type)).toEqual(['clinic.initialised']);
    expect(entries[0]?.actor).toBe(userInfo().username);
    expect(new AuditLog(join(rig.dataDir, 'clinic-audit.log')).verify().entries).toBe(1);
  });
});

describe('rpm-gateway clinic assign, unassign, assignments, unassigned, rejections', () => {
  const gateway = 'gw-ward-0001';
  beforeAll(async () => {
    if (!existsSync(join(rig.dataDir, 'clinic.db'))) expect((await cli('clinic', 'init')).code).toBe(0);
    // Readings as the intake would have stored them: the 3rd measured 2026-12-01T00:00:02Z, and so on.
    const key = Uint8Array.from(
      Buffer.from(readFileSync(join(rig.dataDir, 'clinic.key'), 'utf8').trim(), 'hex'),
    );
    const store = await SqliteClinicStore.open({ path: join(rig.dataDir, 'clinic.db'), key });
    const receipt: Receipt = {
      gatewayId: gateway,
      topic: 'obs',
      batchSeq: 1,
      sentAt: Date.UTC(2026, 11, 2),
      signerSerial: '01',
      receivedAt: Date.UTC(2026, 11, 2),
    };
    await store.commit({
      measurements: [0, 1, 2, 3].map((n) => {
        const measurement = fleetMeasurement(gateway, n);
        return { measurement, measuredAt: Date.parse(measurement.time), receipt };
      }),
      gaps: [],
      statuses: [],
      rejections: [
        { topic: 'rpm/v1/gw-x/obs', code: 'WIRE_BAD_SIGNATURE', message: 'forged', receivedAt: 1 },
        { topic: 'rpm/v1/gw-x/obs', code: 'WIRE_BAD_SIGNATURE', message: 'forged', receivedAt: 2 },
        { topic: 'rpm/v1/gw-y/obs', code: 'INTAKE_SIGNER_EXPIRED', message: 'expired', receivedAt: 3 },
      ],
    });
    await store.close();
  });

  it('round trip: assign from a time, list, readings before it unassigned, unassign, all audited', async () => {
    const before = await cli('clinic', 'unassigned', '--json');
    expect(before.code).toBe(0);
    const all = JSON.parse(before.stdout) as { measurementId: string; measuredAt: string }[];
    expect(all.map((r) => r.measuredAt)).toEqual(
      [0, 1, 2, 3].map((n) => new Date(Date.UTC(2026, 11, 1) + n * 1000).toISOString()),
    );
    // No values: only ids, gateway, device, driver, time.
    expect(Object.keys(all[0] ?? {}).sort()).toEqual([
      'deviceId',
      'driver',
      'gatewayId',
      'measuredAt',
      'measurementId',
    ]);

    const assigned = await cli(
      'clinic',
      'assign',
      gateway,
      'MRN-4711',
      '--from',
      '2026-12-01T01:00:02+01:00',
      '--by',
      'nurse jones',
    );
    expect(assigned.stderr).toBe('');
    expect(assigned.code).toBe(0);
    expect(assigned.stdout).toMatch(/assignment 1: gateway gw-ward-0001 from 2026-12-01T00:00:02.000Z/);
    const unassigned = JSON.parse((await cli('clinic', 'unassigned', '--json')).stdout) as unknown[];
    expect(unassigned).toHaveLength(2); // readings 0 and 1 were measured before --from

    const reassigned = await cli(
      'clinic',
      'assign',
      gateway,
      'MRN-0815',
      '--from',
      '2026-12-01T00:00:03Z',
      '--time-zone',
      'Europe/Berlin',
    );
    expect(reassigned.code).toBe(0);
    const listed = JSON.parse((await cli('clinic', 'assignments', gateway, '--json')).stdout) as {
      mrn: string;
      to: string | null;
      timeZone: string | null;
    }[];
    expect(listed).toMatchObject([
      { mrn: 'MRN-4711', to: '2026-12-01T00:00:03.000Z', timeZone: null },
      { mrn: 'MRN-0815', to: null, timeZone: 'Europe/Berlin' },
    ]);
    const text = await cli('clinic', 'assignments');
    expect(text.stdout).toMatch(/^ID\s+GATEWAY\s+MRN/);
    expect(text.stdout).toMatch(/MRN-0815.*open\s+Europe\/Berlin/);

    const ended = await cli('clinic', 'unassign', gateway, '--at', '2026-12-02T00:00:00Z');
    expect(ended.code).toBe(0);
    const none = await cli('clinic', 'unassign', gateway, '--at', '2026-12-03T00:00:00Z');
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no open assignment/);

    const entries = auditTypes().filter((e) => e.type.startsWith('clinic.assignment'));
    expect(entries.map((e) => [e.type, e.actor])).toEqual([
      ['clinic.assignment.created', 'nurse jones'],
      ['clinic.assignment.created', userInfo().username],
      ['clinic.assignment.ended', userInfo().username],
    ]);
    expect(entries[1]?.details).toMatchObject({
      gatewayId: gateway,
      mrn: 'MRN-0815',
      ended: 1,
      endedMrn: 'MRN-4711',
    });
    expect(entries[2]?.details).toMatchObject({ to: '2026-12-02T00:00:00.000Z' });
    expect(new AuditLog(join(rig.dataDir, 'clinic-audit.log')).verify().torn).toBe(0);
  });

  it('refuses an overlapping assignment and a time without an offset, changing nothing', async () => {
    const count = auditTypes().length;
    const overlap = await cli('clinic', 'assign', 'gw-ward-0002', 'MRN-1', '--from', '2026-12-01T00:00:00Z');
    expect(overlap.code).toBe(0);
    const earlier = await cli('clinic', 'assign', 'gw-ward-0002', 'MRN-2', '--from', '2026-11-30T00:00:00Z');
    expect(earlier.code).toBe(1);
    expect(earlier.stderr).toMatch(/CLINIC_ASSIGNMENT_CONFLICT/);
    expect(earlier.stderr).not.toMatch(/MRN-2/); // an MRN is PHI, even in an error
    const local = await cli('clinic', 'assign', 'gw-ward-0002', 'MRN-3', '--from', '2026-12-05T08:00:00');
    expect(local.code).toBe(2);
    expect(local.stderr).toMatch(/--from: expected an RFC 3339 date-time with an offset/);
    expect(auditTypes().length).toBe(count + 1);
  });

  it('counts rejections per code', async () => {
    const counts = await cli('clinic', 'rejections', '--json');
    expect(JSON.parse(counts.stdout)).toEqual(
      expect.arrayContaining([
        { code: 'WIRE_BAD_SIGNATURE', count: 2 },
        { code: 'INTAKE_SIGNER_EXPIRED', count: 1 },
      ]),
    );
    expect((await cli('clinic', 'rejections')).stdout).toMatch(/WIRE_BAD_SIGNATURE\s+2/);
  });

  it('every command has --help', async () => {
    const names = ['init', 'intake', 'assign', 'unassign', 'assignments', 'unassigned', 'rejections'];
    const runs = names.map((name) => children.spawn(['clinic', name, '--help'], {}));
    for (const [i, run] of runs.entries()) {
      expect((await run.exited).code).toBe(0);
      expect(run.lines[0]).toMatch(new RegExp(`^Usage: rpm-gateway clinic ${names[i]}`));
    }
  });
});
