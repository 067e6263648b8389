/**
 * Clinic staff, their second factor, their sessions and the patients they care for, behind one interface with
 * the same two engines as the clinic's record (SQLite for one machine, PostgreSQL when several dashboard
 * processes serve one clinic: sessions must then be shared, so they live in the database, never in a process's
 * memory). test/clinic/staff/contract.ts is the contract both must pass.
 *
 * The store keeps state; the rules (argon2id parameters, the TOTP window, lockout, session timeouts) live in
 * the dashboard's auth code that calls it. Where a rule must hold under concurrency, the store gives the atomic
 * step: `useTotpStep` is a compare-and-set, so a TOTP code is accepted once even when two requests race.
 *
 * Times are epoch milliseconds. Session ids never reach the database: only their SHA-256 (`idHash`), so a copy
 * of the database does not log anyone in.
 */

export type StaffRole = 'admin' | 'clinician';

export interface StaffUser {
  readonly id: number;
  /** Unique, case-sensitive as stored; 3-64 characters `a-z 0-9 . _ -`. */
  readonly username: string;
  readonly role: StaffRole;
  readonly disabled: boolean;
  /** argon2id PHC string (`$argon2id$v=19$...`), never the password. */
  readonly passwordHash: string;
  /** The TOTP secret (base32) once enrolment started; `totpConfirmedAt` once the user proved they hold it. */
  readonly totpSecret?: string;
  readonly totpConfirmedAt?: number;
  /** The last TOTP time step accepted (RFC 6238 section 4: T = floor(unix time / 30 s)). */
  readonly totpLastStep?: number;
  readonly failedLogins: number;
  readonly lockedUntil?: number;
  readonly createdAt: number;
  readonly createdBy: string;
}

export interface NewStaffUser {
  readonly username: string;
  readonly role: StaffRole;
  readonly passwordHash: string;
  readonly createdBy: string;
  readonly at: number;
}

/** A server-side session. `stage` 'password': the password was right, the second factor is still due. */
export interface StaffSession {
  readonly idHash: string;
  readonly userId: number;
  readonly stage: 'password' | 'complete';
  readonly createdAt: number;
  readonly lastSeenAt: number;
  /** The absolute end, fixed at creation. */
  readonly expiresAt: number;
  readonly revokedAt?: number;
  /** The CSRF secret bound to this session. */
  readonly csrfSecret: string;
}

export interface StaffStore {
  /** Throws STAFF_USER_EXISTS when the username is taken. */
  addUser(user: NewStaffUser): Promise<StaffUser>;
  userByName(username: string): Promise<StaffUser | undefined>;
  userById(id: number): Promise<StaffUser | undefined>;
  listUsers(): Promise<StaffUser[]>;
  setDisabled(userId: number, disabled: boolean, at: number): Promise<void>;
  setPasswordHash(userId: number, passwordHash: string, at: number): Promise<void>;

  /** Starts (or restarts) enrolment: a new secret, not confirmed; the last step is cleared. */
  setTotpSecret(userId: number, secret: string, at: number): Promise<void>;
  confirmTotp(userId: number, at: number): Promise<void>;
  /** Removes the second factor (an admin's reset-mfa): the next login enrols again. */
  clearTotp(userId: number, at: number): Promise<void>;
  /**
   * Records `step` as used if it is later than the last used one; false when it is not (a reused code, or an
   * older one than the last accepted). Atomic.
   */
  useTotpStep(userId: number, step: number): Promise<boolean>;

  /** Counts a failed login and sets (or keeps) the lock; returns the new count. */
  recordLoginFailure(userId: number, at: number, lockedUntil?: number): Promise<number>;
  clearLoginFailures(userId: number): Promise<void>;

  createSession(session: Omit<StaffSession, 'revokedAt'>): Promise<void>;
  session(idHash: string): Promise<StaffSession | undefined>;
  touchSession(idHash: string, at: number): Promise<void>;
  completeSession(idHash: string, at: number): Promise<void>;
  revokeSession(idHash: string, at: number): Promise<void>;
  /** Ends every session of a user (logout everywhere, disable, MFA reset). Returns how many were live. */
  revokeSessionsOf(userId: number, at: number): Promise<number>;
  /** Deletes sessions that ended before `before` (expired or revoked). */
  pruneSessions(before: number): Promise<number>;

  /** The care team: which clinicians may see which patient (by MRN). Admins see every patient. */
  addToCareTeam(mrn: string, userId: number, by: string, at: number): Promise<void>;
  removeFromCareTeam(mrn: string, userId: number): Promise<void>;
  patientsOf(userId: number): Promise<string[]>;
  careTeamOf(mrn: string): Promise<StaffUser[]>;

  close(): Promise<void>;
}
