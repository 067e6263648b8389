import type { AlarmStore } from '../clinic/alarms/alarm-store.js';
import { SqliteAlarmStore } from '../clinic/alarms/sqlite/sqlite-alarm-store.js';
import { ComposedProcess } from '../clinic/service/compose.js';
import { dashboardProcess } from '../clinic/service/dashboard-process.js';
import { addStaffUser, disableStaffUser } from '../clinic/staff/admin.js';
import { SqliteStaffStore } from '../clinic/staff/sqlite/sqlite-staff-store.js';
import type { StaffStore } from '../clinic/staff/staff-store.js';
import { dashboardSection } from '../config/clinic/dashboard.js';
import { SECTION_DEFAULTS } from '../config/clinic/defaults.js';
import type { RuntimeLog } from '../runtime/log.js';
import { KeyFileProvider } from '../store/keys.js';
import type { Scheduler } from '../util/scheduler.js';
import { DEMO_MRN, type DemoClinic } from './clinic-side.js';
import { DEMO_CLINIC_NAME, type DemoEnvironment, freePorts } from './environment.js';

/**
 * The demo's clinic dashboard: the alarm engine and the dashboard exactly as `rpm-gateway clinic serve`
 * composes them (src/clinic/service/dashboard-process.ts), on the demo's clinic database, in the demo's
 * process: on SQLite the live feed reaches only the process that commits, and the demo's intake commits here
 * (clinic-side.ts), so every reading it commits reaches the tiles and charts over /api/live.
 *
 * Settings: the defaults of the clinic configuration's `dashboard:` section (src/config/clinic/defaults.ts),
 * parsed by its schema, on 127.0.0.1 only, at https://localhost:<port>/ with a port free at each start, and
 * with the demo PKI's server certificate (pki/broker.crt names localhost and 127.0.0.1); browsers must trust
 * the demo CA, pki/ca.crt.
 *
 * Staff: each run adds one admin (`demo-admin-<n>`) through the staff store's `add` path, as `rpm-gateway
 * clinic user add` does (src/clinic/staff/admin.ts): a random 20-character password, stored only as an
 * argon2id hash and handed to the terminal once, and no second factor, so the first login enrols TOTP from a
 * QR code before anything else. The logins of earlier runs on the same data directory are disabled first
 * (audited), so the one just printed is the only demo login that works. An admin sees every patient with a hub
 * assignment, the demo patient among them, and may try the alarm limits page.
 */
export const DEMO_STAFF_ACTOR = 'demo';
const USERNAME_PREFIX = 'demo-admin-';
/** Another port when the one found free was taken before the dashboard listened on it (a race, rare). */
const LISTEN_ATTEMPTS = 3;

export interface DemoLogin {
  readonly username: string;
  /** Shown once on the terminal; never stored (only its hash), logged or audited. */
  readonly password: string;
  /** The logins of earlier runs this run disabled. */
  readonly disabled: readonly string[];
}

export class DemoDashboard {
  private constructor(
    private readonly process: ComposedProcess,
    private readonly staff: StaffStore,
    private readonly alarmStore: AlarmStore,
    /** https://localhost:<port> */
    readonly origin: string,
    readonly login: DemoLogin,
  ) {}

  /** Opens the staff and alarm tables, starts the engine and the dashboard, then adds this run's login. */
  static async start(options: {
    readonly environment: DemoEnvironment;
    readonly clinic: DemoClinic;
    readonly scheduler: Scheduler;
    readonly log: RuntimeLog;
  }): Promise<DemoDashboard> {
    const { clinic } = options;
    // The clinic database exists (DemoClinic.open made it); its key file must too.
    const key = await new KeyFileProvider(clinic.paths.key, { create: false }).load();
    let staff: StaffStore | undefined;
    let alarmStore: AlarmStore | undefined;
    try {
      staff = await SqliteStaffStore.open({ path: clinic.paths.database, key });
      alarmStore = await SqliteAlarmStore.open({ path: clinic.paths.database, key });
    } catch (error) {
      await staff?.close();
      throw error;
    } finally {
      key.fill(0);
    }
    // Side by side: the password's argon2id hash runs on libuv's thread pool while the dashboard starts.
    const [started, login] = await Promise.allSettled([
      listen(options, staff, alarmStore),
      freshLogin(staff, clinic, options.scheduler),
    ]);
    if (started.status === 'fulfilled' && login.status === 'fulfilled') {
      return new DemoDashboard(started.value.process, staff, alarmStore, started.value.origin, login.value);
    }
    // A login made for a dashboard that did not start was never shown; the next run disables it.
    if (started.status === 'fulfilled') await started.value.process.stop('the demo dashboard did not start');
    await alarmStore.close();
    await staff.close();
    throw started.status === 'rejected' ? started.reason : (login as PromiseRejectedResult).reason;
  }

  /** Stops the dashboard (its live connections end), then the engine, then closes the tables. */
  async stop(reason: string): Promise<void> {
    await this.process.stop(reason);
    await this.alarmStore.close();
    await this.staff.close();
  }

  /** What the terminal shows about the dashboard: the URL, the login (once), the CA to trust. */
  lines(environment: DemoEnvironment): string[] {
    const ca = shellWord(environment.pki.files.ca);
    const url = `${this.origin}/`;
    const { username, password, disabled } = this.login;
    return [
      `demo: the clinic dashboard: ${url} (this machine only), patient ${DEMO_MRN}'s vitals live`,
      `  login:   ${username}  password: ${password}  (a new admin; the password is shown only here)`,
      '           the first login asks you to enrol a second factor: scan its QR code with an authenticator app (TOTP)',
      ...(disabled.length > 0
        ? [`           the login of an earlier run is disabled: ${disabled.join(', ')}`]
        : []),
      `  trust:   the certificate is from the demo's own CA, ${ca}; for a quick look:`,
      `             curl --cacert ${ca} ${url}login`,
      `           for Chromium/Chrome on Linux: certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n rpm-gateway-demo -i ${ca}`,
      '           (and afterwards: certutil -d sql:$HOME/.pki/nssdb -D -n rpm-gateway-demo)',
    ];
  }
}

/** The engine and the dashboard started on a port free now; another port if that one was taken meanwhile. */
async function listen(
  options: {
    readonly environment: DemoEnvironment;
    readonly clinic: DemoClinic;
    readonly scheduler: Scheduler;
    readonly log: RuntimeLog;
  },
  staff: StaffStore,
  alarmStore: AlarmStore,
): Promise<{ process: ComposedProcess; origin: string }> {
  const { environment, clinic, log } = options;
  for (let attempt = 1; ; attempt++) {
    const [port] = (await freePorts(1)) as [number];
    const origin = `https://localhost:${port}`;
    const settings = dashboardSection.parse({
      ...SECTION_DEFAULTS.dashboard,
      port,
      cert: environment.pki.files.broker,
      key: { file: environment.pki.files.brokerKey },
      publicOrigin: origin,
    });
    const { parts } = dashboardProcess({
      clinic: clinic.store,
      staff,
      alarmStore,
      settings,
      https: { cert: environment.pki.pem.broker, key: environment.pki.pem.brokerKey },
      clinicName: DEMO_CLINIC_NAME,
      // The pages show times in this machine's zone, as `clinic serve` does by default (clinic.timeZone).
      timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone,
      audit: clinic.audit,
      log,
      scheduler: options.scheduler,
      clock: options.scheduler,
    });
    const process = new ComposedProcess(parts, log, 'demo.dashboard');
    try {
      await process.start();
      return { process, origin };
    } catch (error) {
      // ComposedProcess stopped what had started; a port taken since freePorts let it go is tried again.
      const cause = (error as { cause?: { code?: unknown } }).cause;
      if (attempt >= LISTEN_ATTEMPTS || cause?.code !== 'EADDRINUSE') throw error;
    }
  }
}

/** Disables the demo logins of earlier runs, then adds this run's admin with a random password. */
async function freshLogin(staff: StaffStore, clinic: DemoClinic, scheduler: Scheduler): Promise<DemoLogin> {
  const context = { store: staff, audit: clinic.audit, actor: DEMO_STAFF_ACTOR, clock: scheduler };
  const users = await staff.listUsers();
  const earlier = users.filter((u) => u.createdBy === DEMO_STAFF_ACTOR && !u.disabled);
  for (const user of earlier) await disableStaffUser(context, user.username);
  const taken = new Set(users.map((u) => u.username));
  let n = users.filter((u) => u.createdBy === DEMO_STAFF_ACTOR).length + 1;
  while (taken.has(`${USERNAME_PREFIX}${n}`)) n++;
  const { user, password } = await addStaffUser(context, {
    username: `${USERNAME_PREFIX}${n}`,
    role: 'admin',
  });
  return { username: user.username, password, disabled: earlier.map((u) => u.username) };
}

/** A path as one shell word (POSIX sh single quotes, 2.2.2) when it holds anything but safe characters. */
function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
