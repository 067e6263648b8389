import { createHash, randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StaffStoreError } from '../../../src/clinic/staff/errors.js';
import type {
  NewStaffUser,
  StaffSession,
  StaffStore,
  StaffUser,
} from '../../../src/clinic/staff/staff-store.js';

/**
 * THE contract every StaffStore implementation passes (src/clinic/staff/staff-store.ts): the SQLite test
 * (test/clinic/staff/sqlite.test.ts) and the PostgreSQL test each call `staffStoreContract` with a factory that
 * makes a new, empty database. Everything here goes through the interface only.
 */
export interface StaffContractSubject {
  /** An open store on a new, empty database. */
  readonly store: StaffStore;
  /** Opens the same database again: another store object, as a second process would hold. */
  readonly reopen: () => Promise<StaffStore>;
  /** Closes every store it opened (close is idempotent) and removes the database. */
  readonly cleanup: () => Promise<void>;
}

export type StaffContractFactory = () => Promise<StaffContractSubject>;

const T0 = Date.UTC(2026, 2, 1, 9, 0, 0);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** A well-formed argon2id PHC string (the store keeps it; passwords.ts makes real ones). */
const HASH =
  '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g';
const HASH2 =
  '$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0b3RoZXI$b3RoZXJoYXNob3RoZXJoYXNob3RoZXJoYXNob3RoZXI';
/** 160 bits in base32 (RFC 4226 section 4 recommends 160). */
const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const SECRET2 = 'KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU';

function newUser(username: string, overrides: Partial<NewStaffUser> = {}): NewStaffUser {
  return { username, role: 'clinician', passwordHash: HASH, createdBy: 'root', at: T0, ...overrides };
}

function idHash(): string {
  return createHash('sha256').update(randomBytes(32)).digest('hex');
}

function newSession(userId: number, overrides: Partial<StaffSession> = {}): Omit<StaffSession, 'revokedAt'> {
  return {
    idHash: idHash(),
    userId,
    stage: 'password',
    createdAt: T0,
    lastSeenAt: T0,
    expiresAt: T0 + 12 * HOUR,
    csrfSecret: randomBytes(18).toString('base64url'),
    ...overrides,
  };
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StaffStoreError);
  expect((error as StaffStoreError).code).toBe(code);
}

export function staffStoreContract(name: string, open: StaffContractFactory): void {
  describe(`StaffStore contract: ${name}`, () => {
    let subject: StaffContractSubject;
    let store: StaffStore;

    beforeEach(async () => {
      subject = await open();
      store = subject.store;
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    describe('users', () => {
      it('adds a user with no second factor yet, and reads them back by name and id', async () => {
        const added = await store.addUser(newUser('dr.lee', { role: 'admin' }));
        expect(added).toEqual({
          id: added.id,
          username: 'dr.lee',
          role: 'admin',
          disabled: false,
          passwordHash: HASH,
          failedLogins: 0,
          createdAt: T0,
          createdBy: 'root',
        } satisfies StaffUser);
        expect(await store.userByName('dr.lee')).toEqual(added);
        expect(await store.userById(added.id)).toEqual(added);
        expect(await store.userByName('nobody')).toBeUndefined();
        expect(await store.userById(added.id + 1000)).toBeUndefined();
      });

      it('refuses a taken username (also a disabled one) and lists users by name', async () => {
        const b = await store.addUser(newUser('bravo'));
        await store.addUser(newUser('alpha'));
        await rejectsWith(store.addUser(newUser('bravo', { role: 'admin' })), 'STAFF_USER_EXISTS');
        await store.setDisabled(b.id, true, T0 + MINUTE);
        await rejectsWith(store.addUser(newUser('bravo')), 'STAFF_USER_EXISTS');
        expect((await store.listUsers()).map((u) => u.username)).toEqual(['alpha', 'bravo']);
        // The refused add changed nothing.
        expect((await store.userByName('bravo'))?.role).toBe('clinician');
      });

      it('refuses bad usernames, roles and hashes before storing anything', async () => {
        for (const username of ['ab', 'Dr.Lee', 'a b c', 'x'.repeat(65), 'élodie', "o'neil"]) {
          await rejectsWith(store.addUser(newUser(username)), 'STAFF_USERNAME_INVALID');
        }
        await rejectsWith(
          store.addUser({ ...newUser('carol'), role: 'root' as unknown as 'admin' }),
          'STAFF_FIELD_INVALID',
        );
        await rejectsWith(
          store.addUser(newUser('carol', { passwordHash: 'hunter2hunter2' })),
          'STAFF_FIELD_INVALID',
        );
        await rejectsWith(store.addUser(newUser('carol', { at: -1 })), 'STAFF_FIELD_INVALID');
        expect(await store.listUsers()).toEqual([]);
        // Junk looked up is simply absent.
        expect(await store.userByName("x' OR '1'='1")).toBeUndefined();
      });

      it('disables and enables a user; operations on an unknown user are refused', async () => {
        const u = await store.addUser(newUser('carol'));
        await store.setDisabled(u.id, true, T0 + MINUTE);
        expect((await store.userById(u.id))?.disabled).toBe(true);
        await store.setDisabled(u.id, true, T0 + 2 * MINUTE); // idempotent
        await store.setDisabled(u.id, false, T0 + 3 * MINUTE);
        expect((await store.userById(u.id))?.disabled).toBe(false);
        const missing = u.id + 1000;
        await rejectsWith(store.setDisabled(missing, true, T0), 'STAFF_USER_UNKNOWN');
        await rejectsWith(store.setPasswordHash(missing, HASH2, T0), 'STAFF_USER_UNKNOWN');
        await rejectsWith(store.setTotpSecret(missing, SECRET, T0), 'STAFF_USER_UNKNOWN');
        await rejectsWith(store.clearTotp(missing, T0), 'STAFF_USER_UNKNOWN');
        await rejectsWith(store.confirmTotp(missing, T0), 'STAFF_USER_UNKNOWN');
        await rejectsWith(store.recordLoginFailure(missing, T0), 'STAFF_USER_UNKNOWN');
        await rejectsWith(store.clearLoginFailures(missing), 'STAFF_USER_UNKNOWN');
        expect(await store.useTotpStep(missing, 5)).toBe(false);
      });

      it('replaces the password hash (argon2id only)', async () => {
        const u = await store.addUser(newUser('dave'));
        await store.setPasswordHash(u.id, HASH2, T0 + MINUTE);
        expect((await store.userById(u.id))?.passwordHash).toBe(HASH2);
        await rejectsWith(
          store.setPasswordHash(u.id, '$2b$10$bcryptbcryptbcrypt', T0),
          'STAFF_FIELD_INVALID',
        );
        expect((await store.userById(u.id))?.passwordHash).toBe(HASH2);
      });
    });

    describe('TOTP', () => {
      it('enrols: secret set unconfirmed, then confirmed; restarting clears confirmation and the last step', async () => {
        const u = await store.addUser(newUser('erin'));
        await rejectsWith(store.confirmTotp(u.id, T0), 'STAFF_TOTP_NOT_ENROLLED');
        await store.setTotpSecret(u.id, SECRET, T0 + MINUTE);
        let read = await store.userById(u.id);
        expect(read?.totpSecret).toBe(SECRET);
        expect(read?.totpConfirmedAt).toBeUndefined();
        expect(await store.useTotpStep(u.id, 1000)).toBe(true);
        await store.confirmTotp(u.id, T0 + 2 * MINUTE);
        read = await store.userById(u.id);
        expect(read?.totpConfirmedAt).toBe(T0 + 2 * MINUTE);
        expect(read?.totpLastStep).toBe(1000);
        await store.setTotpSecret(u.id, SECRET2, T0 + 3 * MINUTE);
        read = await store.userById(u.id);
        expect(read?.totpSecret).toBe(SECRET2);
        expect(read?.totpConfirmedAt).toBeUndefined();
        expect(read?.totpLastStep).toBeUndefined();
        await rejectsWith(store.setTotpSecret(u.id, 'too-short', T0), 'STAFF_FIELD_INVALID');
      });

      it('clears the second factor (reset-mfa): no secret, nothing to confirm, no step accepted', async () => {
        const u = await store.addUser(newUser('frank'));
        await store.setTotpSecret(u.id, SECRET, T0);
        await store.confirmTotp(u.id, T0);
        await store.clearTotp(u.id, T0 + HOUR);
        const read = await store.userById(u.id);
        expect(read?.totpSecret).toBeUndefined();
        expect(read?.totpConfirmedAt).toBeUndefined();
        expect(read?.totpLastStep).toBeUndefined();
        expect(await store.useTotpStep(u.id, 2000)).toBe(false);
        await rejectsWith(store.confirmTotp(u.id, T0 + HOUR), 'STAFF_TOTP_NOT_ENROLLED');
      });

      it('accepts each step once and only later ones after it', async () => {
        const u = await store.addUser(newUser('gina'));
        await store.setTotpSecret(u.id, SECRET, T0);
        expect(await store.useTotpStep(u.id, 100)).toBe(true);
        expect(await store.useTotpStep(u.id, 100)).toBe(false); // the same code again
        expect(await store.useTotpStep(u.id, 99)).toBe(false); // an older code (the window's previous step)
        expect(await store.useTotpStep(u.id, 101)).toBe(true);
        expect(await store.useTotpStep(u.id, 100)).toBe(false);
        expect((await store.userById(u.id))?.totpLastStep).toBe(101);
        await rejectsWith(store.useTotpStep(u.id, -1), 'STAFF_FIELD_INVALID');
        await rejectsWith(store.useTotpStep(u.id, 1.5), 'STAFF_FIELD_INVALID');
      });

      it('of many concurrent uses of one step, exactly one succeeds', async () => {
        const u = await store.addUser(newUser('hank'));
        await store.setTotpSecret(u.id, SECRET, T0);
        const results = await Promise.all(Array.from({ length: 50 }, () => store.useTotpStep(u.id, 5000)));
        expect(results.filter(Boolean)).toHaveLength(1);
      });

      it('of concurrent uses of one step through two store objects (two processes), exactly one succeeds', async () => {
        const u = await store.addUser(newUser('ivy'));
        await store.setTotpSecret(u.id, SECRET, T0);
        const other = await subject.reopen();
        for (let step = 7000; step < 7010; step++) {
          const results = await Promise.all(
            Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? store : other).useTotpStep(u.id, step)),
          );
          expect(results.filter(Boolean)).toHaveLength(1);
        }
        expect((await other.userById(u.id))?.totpLastStep).toBe(7009);
      });
    });

    describe('failed logins', () => {
      it('counts failures, keeps the latest lock, and clears both', async () => {
        const u = await store.addUser(newUser('jack'));
        expect(await store.recordLoginFailure(u.id, T0)).toBe(1);
        expect(await store.recordLoginFailure(u.id, T0 + 1)).toBe(2);
        expect((await store.userById(u.id))?.lockedUntil).toBeUndefined();
        expect(await store.recordLoginFailure(u.id, T0 + 2, T0 + 15 * MINUTE)).toBe(3);
        // A later failure without a lock keeps it; an earlier lock never shortens it.
        expect(await store.recordLoginFailure(u.id, T0 + 3)).toBe(4);
        expect(await store.recordLoginFailure(u.id, T0 + 4, T0 + 5 * MINUTE)).toBe(5);
        let read = await store.userById(u.id);
        expect(read?.failedLogins).toBe(5);
        expect(read?.lockedUntil).toBe(T0 + 15 * MINUTE);
        await store.clearLoginFailures(u.id);
        read = await store.userById(u.id);
        expect(read?.failedLogins).toBe(0);
        expect(read?.lockedUntil).toBeUndefined();
      });

      it('counts every one of many concurrent failures', async () => {
        const u = await store.addUser(newUser('kim'));
        const other = await subject.reopen();
        const counts = await Promise.all(
          Array.from({ length: 30 }, (_, i) =>
            (i % 2 === 0 ? store : other).recordLoginFailure(u.id, T0 + i),
          ),
        );
        expect([...counts].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
        expect((await store.userById(u.id))?.failedLogins).toBe(30);
      });
    });

    describe('sessions', () => {
      it('creates, reads, touches (never backwards) and completes a session', async () => {
        const u = await store.addUser(newUser('lena'));
        const s = newSession(u.id);
        await store.createSession(s);
        expect(await store.session(s.idHash)).toEqual(s);
        await store.touchSession(s.idHash, T0 + 10 * MINUTE);
        await store.touchSession(s.idHash, T0 + 5 * MINUTE);
        expect((await store.session(s.idHash))?.lastSeenAt).toBe(T0 + 10 * MINUTE);
        await store.completeSession(s.idHash, T0 + 11 * MINUTE);
        expect(await store.session(s.idHash)).toEqual({
          ...s,
          stage: 'complete',
          lastSeenAt: T0 + 11 * MINUTE,
        });
        expect(await store.session(idHash())).toBeUndefined();
      });

      it('refuses a duplicate id hash, an unknown user and bad fields', async () => {
        const u = await store.addUser(newUser('mona'));
        const s = newSession(u.id);
        await store.createSession(s);
        await rejectsWith(
          store.createSession({ ...s, csrfSecret: 'another-secret-value' }),
          'STAFF_SESSION_EXISTS',
        );
        expect((await store.session(s.idHash))?.csrfSecret).toBe(s.csrfSecret);
        await rejectsWith(store.createSession(newSession(u.id + 1000)), 'STAFF_USER_UNKNOWN');
        await rejectsWith(
          store.createSession(newSession(u.id, { idHash: 'not-a-hash' })),
          'STAFF_FIELD_INVALID',
        );
        await rejectsWith(store.createSession(newSession(u.id, { expiresAt: T0 })), 'STAFF_FIELD_INVALID');
      });

      it('revokes one session: it stays readable with its revocation time, and cannot be completed or touched', async () => {
        const u = await store.addUser(newUser('nina'));
        const s = newSession(u.id);
        await store.createSession(s);
        await store.revokeSession(s.idHash, T0 + MINUTE);
        await store.revokeSession(s.idHash, T0 + 2 * MINUTE); // the first revocation time stays
        await store.touchSession(s.idHash, T0 + 3 * MINUTE);
        expect(await store.session(s.idHash)).toEqual({ ...s, revokedAt: T0 + MINUTE });
        await rejectsWith(store.completeSession(s.idHash, T0 + 3 * MINUTE), 'STAFF_SESSION_ENDED');
        await rejectsWith(store.completeSession(idHash(), T0), 'STAFF_SESSION_ENDED');
        const expired = newSession(u.id, { expiresAt: T0 + HOUR });
        await store.createSession(expired);
        await rejectsWith(store.completeSession(expired.idHash, T0 + HOUR), 'STAFF_SESSION_ENDED');
      });

      it("revokes every live session of a user and counts them, leaving other users' alone", async () => {
        const u = await store.addUser(newUser('olga'));
        const v = await store.addUser(newUser('pete'));
        const live = [newSession(u.id), newSession(u.id, { stage: 'complete' })];
        const revoked = newSession(u.id);
        const expired = newSession(u.id, { expiresAt: T0 + MINUTE });
        const others = newSession(v.id);
        for (const s of [...live, revoked, expired, others]) await store.createSession(s);
        await store.revokeSession(revoked.idHash, T0 + 10);
        expect(await store.revokeSessionsOf(u.id, T0 + HOUR)).toBe(2);
        for (const s of live) expect((await store.session(s.idHash))?.revokedAt).toBe(T0 + HOUR);
        expect((await store.session(revoked.idHash))?.revokedAt).toBe(T0 + 10);
        expect((await store.session(others.idHash))?.revokedAt).toBeUndefined();
        expect(await store.revokeSessionsOf(u.id, T0 + 2 * HOUR)).toBe(0);
      });

      it('prunes sessions that ended before a time, expired or revoked, and keeps the rest', async () => {
        const u = await store.addUser(newUser('quinn'));
        const expired = newSession(u.id, { expiresAt: T0 + HOUR });
        const revoked = newSession(u.id);
        const revokedLate = newSession(u.id);
        const live = newSession(u.id);
        for (const s of [expired, revoked, revokedLate, live]) await store.createSession(s);
        await store.revokeSession(revoked.idHash, T0 + MINUTE);
        await store.revokeSession(revokedLate.idHash, T0 + 3 * HOUR);
        expect(await store.pruneSessions(T0 + 2 * HOUR)).toBe(2);
        expect(await store.session(expired.idHash)).toBeUndefined();
        expect(await store.session(revoked.idHash)).toBeUndefined();
        expect(await store.session(revokedLate.idHash)).toBeDefined();
        expect(await store.session(live.idHash)).toBeDefined();
        expect(await store.pruneSessions(T0 + 2 * HOUR)).toBe(0);
      });
    });

    describe('care team', () => {
      it('adds (idempotently) and removes clinicians per patient, both ways round', async () => {
        const a = await store.addUser(newUser('rita'));
        const b = await store.addUser(newUser('sam'));
        await store.addToCareTeam('MRN-002', a.id, 'root', T0);
        await store.addToCareTeam('MRN-001', a.id, 'root', T0);
        await store.addToCareTeam('MRN-001', b.id, 'root', T0);
        await store.addToCareTeam('MRN-001', b.id, 'root', T0 + 1);
        expect(await store.patientsOf(a.id)).toEqual(['MRN-001', 'MRN-002']);
        expect(await store.patientsOf(b.id)).toEqual(['MRN-001']);
        expect((await store.careTeamOf('MRN-001')).map((u) => u.username)).toEqual(['rita', 'sam']);
        await store.removeFromCareTeam('MRN-001', a.id);
        await store.removeFromCareTeam('MRN-001', a.id); // absent: nothing to do
        expect(await store.patientsOf(a.id)).toEqual(['MRN-002']);
        expect((await store.careTeamOf('MRN-001')).map((u) => u.username)).toEqual(['sam']);
        expect(await store.careTeamOf('MRN-404')).toEqual([]);
        await rejectsWith(store.addToCareTeam('MRN-001', b.id + 1000, 'root', T0), 'STAFF_USER_UNKNOWN');
        await rejectsWith(store.addToCareTeam('', a.id, 'root', T0), 'STAFF_FIELD_INVALID');
      });
    });

    it('keeps everything across close and reopen', async () => {
      const u = await store.addUser(newUser('tess', { role: 'admin' }));
      await store.setTotpSecret(u.id, SECRET, T0);
      await store.confirmTotp(u.id, T0 + 1);
      expect(await store.useTotpStep(u.id, 42)).toBe(true);
      await store.recordLoginFailure(u.id, T0 + 2, T0 + HOUR);
      const s = newSession(u.id, { stage: 'complete' });
      await store.createSession(s);
      await store.addToCareTeam('MRN-007', u.id, 'root', T0);
      const before = await store.userById(u.id);
      await store.close();
      await store.close(); // idempotent
      store = await subject.reopen();
      expect(await store.userById(u.id)).toEqual(before);
      expect(await store.useTotpStep(u.id, 42)).toBe(false);
      expect(await store.session(s.idHash)).toEqual(s);
      expect(await store.patientsOf(u.id)).toEqual(['MRN-007']);
      await rejectsWith(store.addUser(newUser('tess')), 'STAFF_USER_EXISTS');
    });
  });
}
