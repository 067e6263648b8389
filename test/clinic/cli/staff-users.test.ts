import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../../src/audit/audit-log.js';
import { verifyPassword } from '../../../src/clinic/staff/passwords.js';
import { SqliteStaffStore } from '../../../src/clinic/staff/sqlite/sqlite-staff-store.js';
import type { StaffStore } from '../../../src/clinic/staff/staff-store.js';
import { Children, type ClinicRig, clinicRig } from './rig.js';

/** `rpm-gateway clinic user ...` over the built CLI (dist/), on the database `clinic init` made. */
let root: string;
let rig: ClinicRig;
const children = new Children();
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rpm-clinic-staff-'));
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

const auditPath = () => join(rig.dataDir, 'clinic-audit.log');
const audit = () =>
  readFileSync(auditPath(), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { type: string; actor: string; details: Record<string, unknown> });

/** The staff tables as the dashboard would open them, while no command runs. */
async function withStaff<T>(work: (store: StaffStore) => Promise<T>): Promise<T> {
  const key = Uint8Array.from(
    Buffer.from(readFileSync(join(rig.dataDir, 'clinic.key'), 'utf8').trim(), 'hex'),
  );
  const store = await SqliteStaffStore.open({ path: join(rig.dataDir, 'clinic.db'), key });
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

function session(userId: number) {
  const now = Date.now();
  return {
    idHash: createHash('sha256').update(randomBytes(32)).digest('hex'),
    userId,
    stage: 'complete' as const,
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + 3_600_000,
    csrfSecret: randomBytes(18).toString('base64url'),
  };
}

describe('rpm-gateway clinic user', () => {
  it('refuses to run before clinic init, creating nothing', async () => {
    const run = await cli('clinic', 'user', 'list');
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/clinic init.*CLINIC_NOT_INITIALISED/);
    expect(readdirSync(root)).not.toContain('data');
    expect((await cli('clinic', 'init')).code).toBe(0);
  });

  it('shows help for every action', async () => {
    expect((await cli('clinic', 'user', '--help')).stdout).toMatch(/add .*disable.*reset-mfa.*list.*care/s);
    const actions = ['add', 'disable', 'reset-mfa', 'list', 'care'];
    const runs = await Promise.all(actions.map((action) => cli('clinic', 'user', action, '--help')));
    runs.forEach((run, i) => {
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(new RegExp(`^Usage: rpm-gateway clinic user ${actions[i]}`));
    });
    const unknown = await cli('clinic', 'user', 'delete', 'x');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown clinic user action "delete"/);
  });

  it('adds a user with a random password shown once, stored only as argon2id, no second factor, audited', async () => {
    const run = await cli('clinic', 'user', 'add', 'dr.admin', '--role', 'admin', '--by', 'alice');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const password = /^initial password: ([A-Za-z0-9]{20})$/m.exec(run.stdout)?.[1];
    expect(password).toBeDefined();
    const user = await withStaff((s) => s.userByName('dr.admin'));
    expect(user?.role).toBe('admin');
    expect(user?.passwordHash).toMatch(/^\$argon2id\$/);
    expect(await verifyPassword(user?.passwordHash ?? '', password ?? '')).toBe(true);
    expect(user?.totpSecret).toBeUndefined(); // enrolment is forced at the first login
    expect(user?.createdBy).toBe('alice');
    const entry = audit().at(-1);
    expect(entry).toMatchObject({
      type: 'staff.user.added',
      actor: 'alice',
      details: { userId: user?.id, username: 'dr.admin', role: 'admin' },
    });
    // The password is in no file of the data directory (the audit log is plain text; the database encrypted).
    for (const file of readdirSync(rig.dataDir)) {
      expect(readFileSync(join(rig.dataDir, file)).includes(Buffer.from(password ?? ''))).toBe(false);
    }
    // Another add makes another password.
    const second = await cli('clinic', 'user', 'add', 'nurse.kim', '--role', 'clinician');
    expect(second.code).toBe(0);
    expect(second.stdout).not.toContain(password);
    expect(audit().at(-1)?.actor).toBe(userInfo().username);
  });

  it('refuses a taken name (exit 1), a bad name or a missing role (exit 2), changing nothing', async () => {
    const before = readFileSync(auditPath(), 'utf8');
    const taken = await cli('clinic', 'user', 'add', 'dr.admin', '--role', 'clinician');
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/dr\.admin is taken \[STAFF_USER_EXISTS\]/);
    expect(taken.stdout).not.toMatch(/password/);
    const bad = await cli('clinic', 'user', 'add', 'Dr Who', '--role', 'admin');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/3 to 64 characters/);
    const noRole = await cli('clinic', 'user', 'add', 'someone');
    expect(noRole.code).toBe(2);
    expect(noRole.stderr).toMatch(/--role admin or --role clinician/);
    const badBy = await cli('clinic', 'user', 'add', 'someone', '--role', 'admin', '--by', 'x\ny');
    expect(badBy.code).toBe(2);
    expect(readFileSync(auditPath(), 'utf8')).toBe(before);
    expect((await withStaff((s) => s.listUsers())).map((u) => u.username)).toEqual(['dr.admin', 'nurse.kim']);
  });

  it("changes and shows a clinician's care teams, refuses them for an admin, audits each change", async () => {
    expect((await cli('clinic', 'user', 'care', 'nurse.kim', '--add', 'MRN-4711', '--by', 'bob')).code).toBe(
      0,
    );
    expect((await cli('clinic', 'user', 'care', 'nurse.kim', '--add', 'MRN-0815')).code).toBe(0);
    const again = await cli('clinic', 'user', 'care', 'nurse.kim', '--add', 'MRN-4711');
    expect(again.stdout).toMatch(/already in the care team of MRN-4711/);
    expect((await cli('clinic', 'user', 'care', 'nurse.kim')).stdout).toBe('MRN-0815\nMRN-4711');
    const kim = await withStaff((s) => s.userByName('nurse.kim'));
    expect(await withStaff((s) => s.patientsOf(kim?.id ?? 0))).toEqual(['MRN-0815', 'MRN-4711']);

    expect((await cli('clinic', 'user', 'care', 'nurse.kim', '--remove', 'MRN-0815')).code).toBe(0);
    expect(await withStaff((s) => s.patientsOf(kim?.id ?? 0))).toEqual(['MRN-4711']);
    const admin = await cli('clinic', 'user', 'care', 'dr.admin', '--add', 'MRN-4711');
    expect(admin.code).toBe(1);
    expect(admin.stderr).toMatch(/admins see every patient.*\[STAFF_FIELD_INVALID\]/);
    const both = await cli('clinic', 'user', 'care', 'nurse.kim', '--add', 'A', '--remove', 'B');
    expect(both.code).toBe(2);
    const nobody = await cli('clinic', 'user', 'care', 'nobody', '--add', 'MRN-1');
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toMatch(/STAFF_USER_UNKNOWN/);

    const care = audit().filter((e) => e.type.startsWith('staff.care.'));
    expect(care.map((e) => [e.type, e.details.mrn])).toEqual([
      ['staff.care.added', 'MRN-4711'],
      ['staff.care.added', 'MRN-0815'],
      ['staff.care.removed', 'MRN-0815'],
    ]);
    expect(care[0]?.actor).toBe('bob');
  });

  it('disable ends every live session of the user, and only theirs', async () => {
    const [kim, admin] = await withStaff(async (s) => [
      await s.userByName('nurse.kim'),
      await s.userByName('dr.admin'),
    ]);
    const kims = [session(kim?.id ?? 0), session(kim?.id ?? 0)];
    const admins = session(admin?.id ?? 0);
    await withStaff(async (s) => {
      for (const x of [...kims, admins]) await s.createSession(x);
    });
    const run = await cli('clinic', 'user', 'disable', 'nurse.kim', '--by', 'carol');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('user nurse.kim disabled; 2 sessions ended');
    await withStaff(async (s) => {
      expect((await s.userByName('nurse.kim'))?.disabled).toBe(true);
      for (const x of kims) expect((await s.session(x.idHash))?.revokedAt).toBeDefined();
      expect((await s.session(admins.idHash))?.revokedAt).toBeUndefined();
    });
    expect(audit().at(-1)).toMatchObject({
      type: 'staff.user.disabled',
      actor: 'carol',
      details: { username: 'nurse.kim', sessionsRevoked: 2 },
    });
    const entries = audit().length;
    expect((await cli('clinic', 'user', 'disable', 'nurse.kim')).stdout).toMatch(/already disabled/);
    expect(audit()).toHaveLength(entries);
  });

  it('reset-mfa removes the second factor and ends the sessions: the next login enrols again', async () => {
    const admin = await withStaff((s) => s.userByName('dr.admin'));
    const id = admin?.id ?? 0;
    const live = session(id);
    await withStaff(async (s) => {
      await s.setTotpSecret(id, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', Date.now());
      await s.confirmTotp(id, Date.now());
      await s.createSession(live);
    });
    const run = await cli('clinic', 'user', 'reset-mfa', 'dr.admin');
    expect(run.code).toBe(0);
    // This one and the one the previous test left live (disabling nurse.kim did not end it).
    expect(run.stdout).toMatch(/second factor removed, 2 sessions ended/);
    await withStaff(async (s) => {
      const read = await s.userById(id);
      expect(read?.totpSecret).toBeUndefined();
      expect(read?.totpConfirmedAt).toBeUndefined();
      expect((await s.session(live.idHash))?.revokedAt).toBeDefined();
    });
    expect(audit().at(-1)).toMatchObject({
      type: 'staff.mfa.reset',
      details: { username: 'dr.admin', sessionsRevoked: 2, hadSecondFactor: true },
    });
    expect((await cli('clinic', 'user', 'reset-mfa', 'dr.admin')).stdout).toMatch(/nothing to reset/);
  });

  it('lists users as a table and as JSON, without hashes or secrets; the audit chain verifies', async () => {
    const text = await cli('clinic', 'user', 'list');
    expect(text.code).toBe(0);
    const lines = text.stdout.split('\n');
    expect(lines[0]).toMatch(
      /^USERNAME\s+ROLE\s+STATE\s+MFA\s+FAILED\s+LOCKED UNTIL\s+PATIENTS\s+CREATED\s+BY$/,
    );
    expect(lines[1]).toMatch(/^dr\.admin\s+admin\s+active\s+none\s+0\s+-\s+all\s/);
    expect(lines[2]).toMatch(/^nurse\.kim\s+clinician\s+disabled\s+none\s+0\s+-\s+1\s/);
    const json = await cli('clinic', 'user', 'list', '--json');
    const users = JSON.parse(json.stdout) as Record<string, unknown>[];
    expect(users.map((u) => [u.username, u.role, u.disabled, u.mfa, u.patients])).toEqual([
      ['dr.admin', 'admin', false, 'none', []],
      ['nurse.kim', 'clinician', true, 'none', ['MRN-4711']],
    ]);
    expect(json.stdout).not.toMatch(/argon2|passwordHash|totpSecret/);
    expect(new AuditLog(auditPath()).verify().entries).toBe(audit().length);
  });
});
