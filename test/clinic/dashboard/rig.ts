import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { spo2Measurement } from '../../../scripts/support/measurements.js';
import { AuditLog } from '../../../src/audit/audit-log.js';
import { buildDashboardApp, type DashboardAppOptions } from '../../../src/clinic/dashboard/app.js';
import { totpCode } from '../../../src/clinic/dashboard/auth/totp.js';
import { hashPassword } from '../../../src/clinic/staff/passwords.js';
import { SqliteStaffStore } from '../../../src/clinic/staff/sqlite/sqlite-staff-store.js';
import type { StaffRole, StaffStore, StaffUser } from '../../../src/clinic/staff/staff-store.js';
import type { ClinicStore } from '../../../src/clinic/storage/clinic-store.js';
import { SqliteClinicStore } from '../../../src/clinic/storage/sqlite/sqlite-clinic-store.js';
import { type Clock, ManualClock } from '../../../src/util/clock.js';

export const ORIGIN = 'https://localhost:8443';
export const HOST = 'localhost:8443';
export const PASSWORD = 'correct horse battery staple';
export const MINUTE = 60_000;

/** A dashboard (fastify.inject) in virtual time on makeStores. */
export interface Rig {
  readonly dir: string;
  readonly app: FastifyInstance;
  readonly clock: ManualClock;
  readonly staff: StaffStore;
  readonly clinic: ClinicStore;
  readonly audit: AuditLog;
  readonly users: { admin: StaffUser; clinician: StaffUser; newcomer: StaffUser };
  /** The TOTP secret of admin and clinician (already enrolled). */
  readonly secret: string;
  close(): Promise<void>;
}

export const MRN_CARED = 'MRN-1001';
export const MRN_OTHER = 'MRN-2002';

/** The stores of a rig: a real encrypted SQLite clinic database with two patients, readings and three staff users. */
export interface Stores {
  readonly staff: StaffStore;
  readonly clinic: ClinicStore;
  readonly audit: AuditLog;
  readonly users: { admin: StaffUser; clinician: StaffUser; newcomer: StaffUser };
  readonly secret: string;
}

export async function makeStores(dir: string, clock: Clock): Promise<Stores> {
  const path = join(dir, 'clinic.db');
  const key = Uint8Array.from(Buffer.from('5a'.repeat(32), 'hex'));
  const clinic = await SqliteClinicStore.open({ path, key });
  // Relative to the clock, so the readings are "the last 24 hours" in virtual and in real time alike: the hubs
  // assigned 12 hours ago, three readings 4 hours ago (with the rig's ManualClock: 08:00:01 to 08:00:03 UTC).
  const now = clock.now();
  const t0 = now - 12 * 60 * MINUTE;
  await clinic.assign({ gatewayId: 'gw-a', mrn: MRN_CARED, from: t0, createdBy: 'test', at: t0 });
  await clinic.assign({ gatewayId: 'gw-b', mrn: MRN_OTHER, from: t0, createdBy: 'test', at: t0 });
  await clinic.commit({
    measurements: [1, 2, 3].map((n) => ({
      measurement: spo2Measurement(n, {
        time: new Date(now - 4 * 60 * MINUTE + n * 1000).toISOString(),
        receivedAt: new Date(now - 4 * 60 * MINUTE + n * 1000).toISOString(),
      }),
      measuredAt: now - 4 * 60 * MINUTE + n * 1000,
      receipt: {
        gatewayId: 'gw-a',
        topic: 'obs' as const,
        batchSeq: n,
        sentAt: t0,
        signerSerial: '01',
        receivedAt: t0,
      },
    })),
    gaps: [],
    statuses: [],
    rejections: [],
  });
  // The staff tables live in the clinic's database file, on their own connection (as in `clinic serve`).
  const staff = await SqliteStaffStore.open({ path, key });
  const add = async (username: string, role: StaffRole) =>
    staff.addUser({
      username,
      role,
      passwordHash: await hashPassword(PASSWORD),
      createdBy: 'test',
      at: clock.now(),
    });
  const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
  const admin = await add('alice', 'admin');
  const clinician = await add('carl', 'clinician');
  const newcomer = await add('nina', 'clinician');
  for (const user of [admin, clinician]) {
    await staff.setTotpSecret(user.id, secret, clock.now());
    await staff.confirmTotp(user.id, clock.now());
  }
  await staff.addToCareTeam(MRN_CARED, clinician.id, 'test', clock.now());
  const audit = new AuditLog(join(dir, 'clinic-audit.log'), clock);
  return { staff, clinic, audit, users: { admin, clinician, newcomer }, secret };
}

export const TEST_SETTINGS = {
  session: { idleMs: 15 * MINUTE, absoluteMs: 12 * 60 * MINUTE },
  lockout: { maxFailures: 5, lockForMs: 15 * MINUTE },
  loginsPerMinute: 1000,
  clinicName: 'st-mary',
  timeZone: 'UTC',
  staleAfterMs: 15_000,
} as const;

/**
 * `wrapClinic` puts something between the dashboard and the real clinic store (a test watching its calls);
 * the rig's own `clinic` stays the store itself.
 */
export async function startRig(
  overrides: Partial<DashboardAppOptions> = {},
  wrapClinic: (clinic: ClinicStore) => ClinicStore = (clinic) => clinic,
): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'rpm-dashboard-'));
  const clock = new ManualClock();
  const stores = await makeStores(dir, clock);
  const app = await buildDashboardApp({
    ...stores,
    clinic: wrapClinic(stores.clinic),
    clock,
    publicOrigin: ORIGIN,
    ...TEST_SETTINGS,
    ...overrides,
  });
  return {
    dir,
    app,
    clock,
    ...stores,
    close: async () => {
      await app.close();
      await stores.staff.close();
      await stores.clinic.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A set-cookie header parsed: name, value and attributes as written. */
/** One entry of the rig's audit log (src/audit/audit-log.ts writes one JSON object a line). */
export interface AuditLine {
  readonly type: string;
  readonly actor: string;
  readonly details: Record<string, unknown>;
}

/** The audit entries of this type in a rig's (or makeStores') audit log, oldest first. */
export function auditOf(r: { readonly audit: AuditLog }, type: string): AuditLine[] {
  return readFileSync(r.audit.path, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as AuditLine)
    .filter((e) => e.type === type);
}

export interface SetCookie {
  readonly name: string;
  readonly value: string;
  readonly attributes: readonly string[];
}

export function setCookies(response: LightMyRequestResponse): SetCookie[] {
  const header = response.headers['set-cookie'];
  const lines = header === undefined ? [] : Array.isArray(header) ? header : [header];
  return lines.map((line) => {
    const [pair, ...attributes] = line.split(';').map((part) => part.trim());
    const at = (pair as string).indexOf('=');
    return {
      name: (pair as string).slice(0, at),
      value: (pair as string).slice(at + 1),
      attributes,
    };
  });
}

/** A browser's cookie jar for one origin, enough for these tests. */
export class Browser {
  readonly cookies = new Map<string, string>();
  constructor(private readonly app: FastifyInstance) {}

  private remember(response: LightMyRequestResponse): void {
    for (const c of setCookies(response)) {
      const cleared = c.value === '' || c.attributes.some((a) => /^Expires=Thu, 01 Jan 1970/i.test(a));
      if (cleared) this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
  }

  private cookieHeader(): string | undefined {
    if (this.cookies.size === 0) return undefined;
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async get(url: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    const cookie = this.cookieHeader();
    const response = await this.app.inject({
      method: 'GET',
      url,
      headers: { host: HOST, ...(cookie ? { cookie } : {}), ...headers },
    });
    this.remember(response);
    return response;
  }

  async post(
    url: string,
    form: Record<string, string>,
    headers: Record<string, string> = {},
  ): Promise<LightMyRequestResponse> {
    const cookie = this.cookieHeader();
    const response = await this.app.inject({
      method: 'POST',
      url,
      headers: {
        host: HOST,
        origin: ORIGIN,
        'content-type': 'application/x-www-form-urlencoded',
        ...(cookie ? { cookie } : {}),
        ...headers,
      },
      payload: new URLSearchParams(form).toString(),
    });
    this.remember(response);
    return response;
  }

  /** The hidden _csrf value of the page's first form. */
  static csrfOf(response: LightMyRequestResponse): string {
    const match = /name="_csrf" value="([^"]+)"/.exec(response.body);
    if (!match) throw new Error(`no CSRF token on the page (status ${response.statusCode})`);
    return match[1] as string;
  }

  /** Opens the login page and posts the password. */
  async password(username: string, password = PASSWORD): Promise<LightMyRequestResponse> {
    const page = await this.get('/login');
    return this.post('/login', { username, password, _csrf: Browser.csrfOf(page) });
  }

  /** Password, then the code of the current step: a complete login. */
  async login(username: string, secret: string, at: number): Promise<LightMyRequestResponse> {
    const first = await this.password(username);
    if (first.headers.location !== '/mfa') throw new Error(`password step went to ${first.headers.location}`);
    const page = await this.get('/mfa');
    return this.post('/mfa', { code: totpCode(secret, at), _csrf: Browser.csrfOf(page) });
  }

  get session(): string | undefined {
    return this.cookies.get('__Host-rpm_session');
  }
}
