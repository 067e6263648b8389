import type {
  NewStaffUser,
  StaffSession,
  StaffStore,
  StaffUser,
} from '../../../src/clinic/staff/staff-store.js';

/**
 * An in-memory StaffStore that keeps the interface's promises (src/clinic/staff/staff-store.ts): unique
 * usernames, the compare-and-set of useTotpStep, lock kept by recordLoginFailure, sessions by id hash. It
 * stands in for the SQLite and PostgreSQL stores only until they are on this branch; the dashboard's tests
 * then run on the real SQLite store.
 */
export class FakeStaffStore implements StaffStore {
  private readonly users = new Map<number, StaffUser>();
  private readonly sessions = new Map<string, StaffSession>();
  private readonly careTeams = new Map<string, Set<number>>();
  private nextId = 1;
  closed = false;

  private update(userId: number, change: Partial<StaffUser>): StaffUser {
    const user = this.users.get(userId);
    if (!user) throw new Error(`no user ${userId}`);
    const next = { ...user, ...change } as StaffUser;
    this.users.set(userId, next);
    return next;
  }

  async addUser(user: NewStaffUser): Promise<StaffUser> {
    if ([...this.users.values()].some((u) => u.username === user.username)) {
      throw Object.assign(new Error('the username is taken'), { code: 'STAFF_USER_EXISTS' });
    }
    const added: StaffUser = {
      id: this.nextId++,
      username: user.username,
      role: user.role,
      disabled: false,
      passwordHash: user.passwordHash,
      failedLogins: 0,
      createdAt: user.at,
      createdBy: user.createdBy,
    };
    this.users.set(added.id, added);
    return added;
  }
  async userByName(username: string) {
    return [...this.users.values()].find((u) => u.username === username);
  }
  async userById(id: number) {
    return this.users.get(id);
  }
  async listUsers() {
    return [...this.users.values()];
  }
  async setDisabled(userId: number, disabled: boolean, _at: number) {
    this.update(userId, { disabled });
  }
  async setPasswordHash(userId: number, passwordHash: string, _at: number) {
    this.update(userId, { passwordHash });
  }
  async setTotpSecret(userId: number, secret: string, _at: number) {
    const { totpConfirmedAt: _c, totpLastStep: _s, ...rest } = this.users.get(userId) as StaffUser;
    this.users.set(userId, { ...rest, totpSecret: secret });
  }
  async confirmTotp(userId: number, at: number) {
    this.update(userId, { totpConfirmedAt: at });
  }
  async clearTotp(userId: number) {
    const {
      totpSecret: _t,
      totpConfirmedAt: _c,
      totpLastStep: _s,
      ...rest
    } = this.users.get(userId) as StaffUser;
    this.users.set(userId, rest);
  }
  async useTotpStep(userId: number, step: number) {
    const user = this.users.get(userId);
    if (!user) return false;
    if (user.totpLastStep !== undefined && step <= user.totpLastStep) return false;
    this.update(userId, { totpLastStep: step });
    return true;
  }
  async recordLoginFailure(userId: number, _at: number, lockedUntil?: number) {
    const user = this.users.get(userId) as StaffUser;
    const failedLogins = user.failedLogins + 1;
    this.update(userId, { failedLogins, ...(lockedUntil === undefined ? {} : { lockedUntil }) });
    return failedLogins;
  }
  async clearLoginFailures(userId: number) {
    const { lockedUntil: _l, ...rest } = this.users.get(userId) as StaffUser;
    this.users.set(userId, { ...rest, failedLogins: 0 });
  }
  async createSession(session: Omit<StaffSession, 'revokedAt'>) {
    if (this.sessions.has(session.idHash)) throw new Error('session id hash exists');
    this.sessions.set(session.idHash, session);
  }
  async session(idHash: string) {
    return this.sessions.get(idHash);
  }
  async touchSession(idHash: string, at: number) {
    const s = this.sessions.get(idHash);
    if (s) this.sessions.set(idHash, { ...s, lastSeenAt: at });
  }
  async completeSession(idHash: string) {
    const s = this.sessions.get(idHash);
    if (s) this.sessions.set(idHash, { ...s, stage: 'complete' });
  }
  async revokeSession(idHash: string, at: number) {
    const s = this.sessions.get(idHash);
    if (s && s.revokedAt === undefined) this.sessions.set(idHash, { ...s, revokedAt: at });
  }
  async revokeSessionsOf(userId: number, at: number) {
    let live = 0;
    for (const [hash, s] of this.sessions) {
      if (s.userId === userId && s.revokedAt === undefined) {
        if (at < s.expiresAt) live++;
        this.sessions.set(hash, { ...s, revokedAt: at });
      }
    }
    return live;
  }
  async pruneSessions(before: number) {
    let n = 0;
    for (const [hash, s] of this.sessions) {
      if ((s.revokedAt ?? s.expiresAt) < before) {
        this.sessions.delete(hash);
        n++;
      }
    }
    return n;
  }
  async addToCareTeam(mrn: string, userId: number, _by: string, _at: number) {
    const team = this.careTeams.get(mrn) ?? new Set<number>();
    team.add(userId);
    this.careTeams.set(mrn, team);
  }
  async removeFromCareTeam(mrn: string, userId: number) {
    this.careTeams.get(mrn)?.delete(userId);
  }
  async patientsOf(userId: number) {
    return [...this.careTeams].filter(([, team]) => team.has(userId)).map(([mrn]) => mrn);
  }
  async careTeamOf(mrn: string) {
    return [...(this.careTeams.get(mrn) ?? [])].map((id) => this.users.get(id) as StaffUser);
  }
  /** Every session ever made (tests read what the store holds: only hashes). */
  allSessions(): StaffSession[] {
    return [...this.sessions.values()];
  }
  async close() {
    this.closed = true;
  }
}
