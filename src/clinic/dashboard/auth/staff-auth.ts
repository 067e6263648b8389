import { randomBytes } from 'node:crypto';
import type { AuditLog } from '../../../audit/audit-log.js';
import type { Clock } from '../../../util/clock.js';
import { hashPassword, needsRehash, verifyPassword } from '../../staff/passwords.js';
import type { StaffSession, StaffStore, StaffUser } from '../../staff/staff-store.js';
import { hashSessionId, looksLikeSessionId, newCsrfSecret, newSessionId } from './tokens.js';
import { newTotpSecret, totpStepOf, totpUri } from './totp.js';

/**
 * The rules of a staff login, apart from HTTP (the routes in ../routes.ts only translate): password, then the
 * TOTP second factor, then a session. Every time comes from the injected clock, so lockout and the session
 * timeouts are tested in virtual time.
 *
 * - Two session ids per login (OWASP Session Management Cheat Sheet, "Renew the Session ID After Any
 *   Privilege Level Change"): one when the password is right, good only for the second-factor pages and for a
 *   few minutes, and a new one when the second factor is right, so an id seen or planted before the login
 *   completes is worth nothing after it (session fixation).
 * - Failures of either factor count against the user; after `maxFailures` in a row the account is locked for
 *   `lockForMs` (OWASP Authentication Cheat Sheet, "Account Lockout"). A lock refuses the right password too,
 *   with the same answer as a wrong one, and ends a login half-way through its second factor.
 * - Sessions end server-side: after `idleMs` without a request, at their absolute end, at logout, and as soon
 *   as their user is disabled (checked on every request, not only at login).
 */
export interface StaffAuthSettings {
  readonly idleMs: number;
  readonly absoluteMs: number;
  readonly maxFailures: number;
  readonly lockForMs: number;
  /** The issuer an authenticator app shows next to the username: the clinic's name. */
  readonly issuer: string;
}

/** How long the password-only stage of a login lasts: long enough to open an authenticator app. */
export const SECOND_FACTOR_WINDOW_MS = 5 * 60_000;

export interface StaffAuthDeps {
  readonly staff: StaffStore;
  readonly audit: AuditLog;
  readonly clock: Clock;
}

/** A request's session, valid at this moment. `id` is the cookie value (never stored). */
export interface LiveSession {
  readonly id: string;
  readonly session: StaffSession;
  readonly user: StaffUser;
}

export type FactorOutcome =
  | { readonly ok: true; readonly sessionId: string }
  /** `ended`: the login must start again (the account was locked, or the session is gone). */
  | { readonly ok: false; readonly ended: boolean };

export type PasswordOutcome =
  | { readonly ok: true; readonly sessionId: string; readonly next: 'enrol' | 'verify' }
  | { readonly ok: false };

/** Where a request comes from, for the audit log. */
export interface RequestMeta {
  readonly ip: string;
}

let dummyHash: Promise<string> | undefined;

/**
 * A check that costs what a real one costs, for a username that does not exist: answering at once would tell
 * an attacker which usernames do (OWASP Authentication Cheat Sheet, "Authentication Responses"). The hash is
 * made once per process, with the parameters real hashes are made with.
 */
async function verifyAgainstNothing(password: string): Promise<void> {
  dummyHash ??= hashPassword(randomBytes(24).toString('base64url'));
  await verifyPassword(await dummyHash, password);
}

export class StaffAuth {
  constructor(
    private readonly deps: StaffAuthDeps,
    private readonly settings: StaffAuthSettings,
  ) {}

  private now(): number {
    return this.deps.clock.now();
  }

  async passwordLogin(username: string, password: string, meta: RequestMeta): Promise<PasswordOutcome> {
    const { staff, audit } = this.deps;
    const user = await staff.userByName(username);
    if (!user) {
      await verifyAgainstNothing(password);
      // At most the 64 characters a username can have: the field may hold anything, even a password typed
      // into the wrong box; the audit log keeps no more of it than a real name would take.
      audit.record('login.failed', 'dashboard', {
        username: username.slice(0, 64),
        reason: 'unknown-user',
        ip: meta.ip,
      });
      return { ok: false };
    }
    // The password is checked in every case, so a locked or disabled account answers as slowly as any other.
    const right = await verifyPassword(user.passwordHash, password);
    const now = this.now();
    const locked = user.lockedUntil !== undefined && now < user.lockedUntil;
    if (locked || user.disabled) {
      audit.record('login.failed', user.username, {
        username: user.username,
        reason: locked ? 'locked' : 'disabled',
        ip: meta.ip,
      });
      return { ok: false };
    }
    if (!right) {
      await this.countFailure(user, 'bad-password', meta);
      return { ok: false };
    }
    await staff.clearLoginFailures(user.id);
    // The one moment the password is known: a hash made under older parameters is replaced (passwords.ts).
    if (needsRehash(user.passwordHash)) {
      await staff.setPasswordHash(user.id, await hashPassword(password), now);
    }
    const sessionId = await this.newSession(user.id, 'password', now + SECOND_FACTOR_WINDOW_MS);
    const next = user.totpConfirmedAt === undefined ? 'enrol' : 'verify';
    audit.record('login.ok', user.username, { secondFactor: next, ip: meta.ip });
    return { ok: true, sessionId, next };
  }

  /** The live session the cookie names, or undefined; ends one that timed out or whose user is disabled. */
  async resolve(
    sessionId: string | undefined,
    options: { readonly touch?: boolean } = {},
  ): Promise<LiveSession | undefined> {
    if (sessionId === undefined || !looksLikeSessionId(sessionId)) return undefined;
    const { staff } = this.deps;
    const idHash = hashSessionId(sessionId);
    const session = await staff.session(idHash);
    if (!session || session.revokedAt !== undefined) return undefined;
    const now = this.now();
    if (now >= session.expiresAt || now - session.lastSeenAt >= this.settings.idleMs) {
      await staff.revokeSession(idHash, now);
      return undefined;
    }
    const user = await staff.userById(session.userId);
    if (!user || user.disabled) {
      await staff.revokeSessionsOf(session.userId, now);
      return undefined;
    }
    // The live feed's periodic check passes touch: false: an open page alone is not activity, so a session
    // left on a screen still ends after the idle timeout.
    if (options.touch !== false) await staff.touchSession(idHash, now);
    return { id: sessionId, session, user };
  }

  /**
   * The secret to enrol (made now, or the one made at an earlier visit of the page that was not confirmed
   * yet, so a reload does not invalidate what the user already scanned).
   */
  async enrolment(live: LiveSession): Promise<{ secret: string; uri: string }> {
    let secret = live.user.totpSecret;
    if (secret === undefined) {
      secret = newTotpSecret();
      await this.deps.staff.setTotpSecret(live.user.id, secret, this.now());
    }
    return { secret, uri: totpUri(secret, this.settings.issuer, live.user.username) };
  }

  /** Confirms enrolment with a first code; the login completes with it. */
  async confirmEnrolment(live: LiveSession, code: string, meta: RequestMeta): Promise<FactorOutcome> {
    const secret = live.user.totpSecret;
    if (secret === undefined || live.user.totpConfirmedAt !== undefined) return { ok: false, ended: false };
    const outcome = await this.secondFactor(live, secret, code, meta);
    if (outcome.ok) {
      await this.deps.staff.confirmTotp(live.user.id, this.now());
      this.deps.audit.record('mfa.enrolled', live.user.username, { ip: meta.ip });
    }
    return outcome.ok ? await this.complete(live, meta) : outcome;
  }

  async verifyCode(live: LiveSession, code: string, meta: RequestMeta): Promise<FactorOutcome> {
    const secret = live.user.totpSecret;
    if (secret === undefined || live.user.totpConfirmedAt === undefined) return { ok: false, ended: false };
    const outcome = await this.secondFactor(live, secret, code, meta);
    return outcome.ok ? await this.complete(live, meta) : outcome;
  }

  async logout(live: LiveSession, meta: RequestMeta): Promise<void> {
    await this.deps.staff.revokeSession(live.session.idHash, this.now());
    this.deps.audit.record('logout', live.user.username, { ip: meta.ip });
  }

  private async secondFactor(
    live: LiveSession,
    secret: string,
    code: string,
    meta: RequestMeta,
  ): Promise<{ ok: true } | { ok: false; ended: boolean }> {
    const step = totpStepOf(secret, code, this.now());
    // useTotpStep is the compare-and-set that makes a code good once, even for two requests at once.
    if (step !== undefined && (await this.deps.staff.useTotpStep(live.user.id, step))) return { ok: true };
    const locked = await this.countFailure(
      live.user,
      step === undefined ? 'wrong-code' : 'reused-code',
      meta,
      'mfa.failed',
    );
    if (locked) await this.deps.staff.revokeSession(live.session.idHash, this.now());
    return { ok: false, ended: locked };
  }

  /** The second session of the login: a new id, the old one ended. */
  private async complete(live: LiveSession, meta: RequestMeta): Promise<FactorOutcome> {
    const { staff, audit } = this.deps;
    const now = this.now();
    await staff.revokeSession(live.session.idHash, now);
    await staff.clearLoginFailures(live.user.id);
    const sessionId = await this.newSession(live.user.id, 'complete', now + this.settings.absoluteMs);
    audit.record('mfa.verified', live.user.username, { ip: meta.ip });
    return { ok: true, sessionId };
  }

  private async newSession(userId: number, stage: StaffSession['stage'], expiresAt: number): Promise<string> {
    const id = newSessionId();
    const now = this.now();
    await this.deps.staff.createSession({
      idHash: hashSessionId(id),
      userId,
      stage,
      createdAt: now,
      lastSeenAt: now,
      expiresAt,
      csrfSecret: newCsrfSecret(),
    });
    return id;
  }

  /** Counts a failure; true when it locked the account. */
  private async countFailure(
    user: StaffUser,
    reason: string,
    meta: RequestMeta,
    type = 'login.failed',
  ): Promise<boolean> {
    const { staff, audit } = this.deps;
    const now = this.now();
    // A lock that has run out starts a fresh count: the user gets maxFailures tries again, not one.
    if (user.lockedUntil !== undefined && user.lockedUntil <= now) await staff.clearLoginFailures(user.id);
    const before = user.lockedUntil !== undefined && user.lockedUntil <= now ? 0 : user.failedLogins;
    const lockedUntil = now + this.settings.lockForMs;
    const reaches = before + 1 >= this.settings.maxFailures;
    let count = await staff.recordLoginFailure(user.id, now, reaches ? lockedUntil : undefined);
    audit.record(type, user.username, { username: user.username, reason, ip: meta.ip });
    if (!reaches && count >= this.settings.maxFailures) {
      // Another request counted a failure meanwhile: the store's count decides.
      count = await staff.recordLoginFailure(user.id, now, lockedUntil);
    }
    const locked = reaches || count >= this.settings.maxFailures;
    if (locked) {
      audit.record('login.locked', user.username, {
        username: user.username,
        failures: count,
        until: new Date(lockedUntil).toISOString(),
      });
    }
    return locked;
  }
}
