import type { AuditLog } from '../../audit/audit-log.js';
import type { Clock } from '../../util/clock.js';
import { StaffStoreError } from './errors.js';
import { hashPassword, randomInitialPassword } from './passwords.js';
import type { StaffRole, StaffStore, StaffUser } from './staff-store.js';

/**
 * What an administrator changes about staff (`rpm-gateway clinic user ...`), each change recorded in the
 * clinic's hash-chained audit log (src/clinic/service/admin.ts, `clinic-audit.log`) with who and when, after the
 * database accepted it (HIPAA 164.312(b) audit controls; 164.308(a)(3)(ii)(C) termination procedures for
 * disabling). No password, hash or TOTP secret is ever written there.
 *
 * Where a change is two steps, they are ordered so a crash between them leaves the safer state: a user is
 * disabled before their sessions are revoked, and sessions are revoked before the second factor is cleared.
 */
export interface StaffAdminContext {
  readonly store: StaffStore;
  readonly audit: AuditLog;
  /** Who: the OS user running the command, or --by. */
  readonly actor: string;
  readonly clock: Clock;
}

/**
 * Adds a user with a random initial password (returned once, for the caller to show; never stored or logged)
 * and no second factor: their first login asks for the password, then enrols TOTP before anything else.
 */
export async function addStaffUser(
  context: StaffAdminContext,
  request: { readonly username: string; readonly role: StaffRole },
): Promise<{ user: StaffUser; password: string }> {
  const password = randomInitialPassword();
  const user = await context.store.addUser({
    username: request.username,
    role: request.role,
    passwordHash: await hashPassword(password),
    createdBy: context.actor,
    at: context.clock.now(),
  });
  context.audit.record('staff.user.added', context.actor, {
    userId: user.id,
    username: user.username,
    role: user.role,
  });
  return { user, password };
}

/** Disables a user and ends their sessions. `changed` is false when they were already disabled with none live. */
export async function disableStaffUser(
  context: StaffAdminContext,
  username: string,
): Promise<{ user: StaffUser; sessionsRevoked: number; changed: boolean }> {
  const user = await userNamed(context.store, username);
  const at = context.clock.now();
  if (!user.disabled) await context.store.setDisabled(user.id, true, at);
  const sessionsRevoked = await context.store.revokeSessionsOf(user.id, at);
  const changed = !user.disabled || sessionsRevoked > 0;
  if (changed) {
    context.audit.record('staff.user.disabled', context.actor, {
      userId: user.id,
      username: user.username,
      sessionsRevoked,
      ...(user.disabled ? { alreadyDisabled: true } : {}),
    });
  }
  return { user, sessionsRevoked, changed };
}

/**
 * Removes a user's second factor and ends their sessions: the next login enrols TOTP again (a lost phone).
 * Sessions are revoked before and after the secret is cleared, so a login completed in between ends too.
 */
export async function resetStaffMfa(
  context: StaffAdminContext,
  username: string,
): Promise<{ user: StaffUser; sessionsRevoked: number; changed: boolean }> {
  const user = await userNamed(context.store, username);
  const at = context.clock.now();
  let sessionsRevoked = await context.store.revokeSessionsOf(user.id, at);
  await context.store.clearTotp(user.id, at);
  sessionsRevoked += await context.store.revokeSessionsOf(user.id, at);
  const changed = user.totpSecret !== undefined || sessionsRevoked > 0;
  if (changed) {
    context.audit.record('staff.mfa.reset', context.actor, {
      userId: user.id,
      username: user.username,
      sessionsRevoked,
      hadSecondFactor: user.totpConfirmedAt !== undefined,
    });
  }
  return { user, sessionsRevoked, changed };
}

/**
 * Adds a clinician to a patient's care team (by MRN) or removes them. Admins see every patient, so a care
 * team of an admin would mean nothing and is refused. The MRN is written to the audit log as it is, as for
 * patient assignments (src/clinic/service/admin.ts says why).
 */
export async function changeCareTeam(
  context: StaffAdminContext,
  request: { readonly username: string; readonly mrn: string; readonly action: 'add' | 'remove' },
): Promise<{ user: StaffUser; changed: boolean }> {
  const user = await userNamed(context.store, request.username);
  if (user.role !== 'clinician') {
    throw new StaffStoreError(
      'STAFF_FIELD_INVALID',
      `${user.username} is an admin, and admins see every patient: care teams are for clinicians`,
    );
  }
  const member = (await context.store.patientsOf(user.id)).includes(request.mrn);
  if (request.action === 'add' ? member : !member) return { user, changed: false };
  if (request.action === 'add') {
    await context.store.addToCareTeam(request.mrn, user.id, context.actor, context.clock.now());
  } else {
    await context.store.removeFromCareTeam(request.mrn, user.id);
  }
  context.audit.record(request.action === 'add' ? 'staff.care.added' : 'staff.care.removed', context.actor, {
    userId: user.id,
    username: user.username,
    mrn: request.mrn,
  });
  return { user, changed: true };
}

export async function userNamed(store: StaffStore, username: string): Promise<StaffUser> {
  const user = await store.userByName(username);
  if (user === undefined)
    throw new StaffStoreError('STAFF_USER_UNKNOWN', `no user is named ${JSON.stringify(username)}`);
  return user;
}

/** Where a user's second factor stands: none (the next login enrols), pending (enrolment begun), enrolled. */
export function mfaState(user: StaffUser): 'none' | 'pending' | 'enrolled' {
  if (user.totpSecret === undefined) return 'none';
  return user.totpConfirmedAt === undefined ? 'pending' : 'enrolled';
}
