import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assignGateway, clinicAuditLog } from '../../src/clinic/service/admin.js';
import { addStaffUser, changeCareTeam } from '../../src/clinic/staff/admin.js';
import { openStaffStore } from '../../src/clinic/staff/open.js';
import { openClinicStore } from '../../src/clinic/storage/open.js';
import { loadClinicConfig } from '../../src/config/clinic/load.js';
import type { DevelopmentPki } from '../../src/pki/index.js';
import { systemClock } from '../../src/util/clock.js';
import { type BenchUser, gatewayIdOf, mrnOf } from './dashboard-bench-plan.js';

/**
 * The clinic side of bench:dashboard, set up as an administrator sets up a clinic: a configuration file (every
 * key as config/clinic.example.yaml has it), `rpm-gateway clinic init`, the patients' assignments and the staff
 * accounts (the library functions `clinic assign`, `clinic user add` and `clinic user care` call, in this
 * process, before anything runs: 200 patients by hand would be 200 command starts), then `rpm-gateway broker`
 * and `rpm-gateway clinic serve` as processes of the built CLI, whose CPU and memory the kernel reports
 * (/proc/<pid>/stat and status, proc(5)).
 */

/** The clinic's name: its intake's client ids (clinic-dash-bench-in, -in-a) stay within MQTT 3.1.1's 23 characters. */
export const BENCH_CLINIC = 'dash-bench';

const CLI_BIN = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));

export interface BenchClinicFiles {
  readonly config: string;
  readonly dataDir: string;
}

/**
 * The configuration: SQLite (the default), the broker and the intake on loopback, the dashboard with the
 * PKI's server certificate (it names localhost and 127.0.0.1). Two settings differ from the defaults, each
 * because of how the benchmark runs, not to make it faster: every staff login comes from one address here
 * (rateLimit), and a session's live feed alone never counts as activity (session.idle must outlast the run).
 */
export function writeBenchConfig(options: {
  readonly root: string;
  readonly pki: Pick<DevelopmentPki, 'files'>;
  readonly gatewayCerts: string;
  readonly brokerPort: number;
  /** The intake's broker when it is not this machine's `rpm-gateway broker` (Mosquitto). */
  readonly intakeBrokerPort?: number;
  readonly dashboardPort: number;
  readonly runSeconds: number;
}): BenchClinicFiles {
  const { files } = options.pki;
  const dataDir = join(options.root, 'data');
  const config = join(options.root, 'clinic.yaml');
  const idleMinutes = Math.max(15, Math.ceil(options.runSeconds / 60) + 10);
  writeFileSync(
    config,
    [
      'clinic:',
      `  name: ${BENCH_CLINIC}`,
      '  timeZone: Europe/Berlin',
      'paths:',
      `  dataDir: ${dataDir}`,
      'pki:',
      `  ca: ${files.ca}`,
      `  gatewayCerts: ${options.gatewayCerts}`,
      'broker:',
      `  port: ${options.brokerPort}`,
      `  cert: ${files.broker}`,
      `  key: { file: ${files.brokerKey} }`,
      'intake:',
      `  cert: ${files.clinic}`,
      `  key: { file: ${files.clinicKey} }`,
      ...(options.intakeBrokerPort === undefined
        ? []
        : [
            '  brokers:',
            `    - url: mqtts://127.0.0.1:${options.intakeBrokerPort}`,
            '      servername: localhost',
          ]),
      'dashboard:',
      `  port: ${options.dashboardPort}`,
      `  cert: ${files.broker}`,
      `  key: { file: ${files.brokerKey} }`,
      '  # Every benchmark login comes from 127.0.0.1; in a clinic each browser has an address of its own.',
      '  rateLimit: 1000',
      '  session:',
      `    idle: ${idleMinutes}min`,
      'log:',
      '  level: info',
      '',
    ].join('\n'),
  );
  return { config, dataDir };
}

/** `rpm-gateway <args>` of the built CLI with only PATH from this environment (no RPM_* setting leaks in). */
export interface CliChild {
  readonly child: ChildProcess;
  readonly lines: string[];
  stderr: string;
  readonly exited: Promise<number | null>;
  /** Resolves with the first JSON log line whose event is `event`; rejects if the process exits first. */
  waitFor(event: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Log events seen so far with this name. */
  count(event: string): number;
}

export function spawnCli(args: readonly string[], logFile?: string): CliChild {
  const child = spawn(process.execPath, [CLI_BIN, ...args], {
    env: { PATH: process.env.PATH },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const listeners = new Set<() => void>();
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts.filter((line) => line.length > 0));
    if (logFile !== undefined) appendFileSync(logFile, chunk);
    for (const l of listeners) l();
  });
  const run: CliChild = {
    child,
    lines,
    stderr: '',
    exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
    waitFor: (event, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = parsed(lines).find((e) => e.event === event);
          if (found === undefined) return;
          done();
          resolve(found);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${event} from rpm-gateway ${args.join(' ')} within ${timeoutMs} ms`));
        }, timeoutMs);
        const exited = (code: number | null) => {
          done();
          reject(new Error(`rpm-gateway ${args.join(' ')} exited (${code}) before ${event}: ${run.stderr}`));
        };
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off('exit', exited);
        };
        listeners.add(check);
        child.once('exit', exited);
        check();
      }),
    count: (event) => parsed(lines).filter((e) => e.event === event).length,
  };
  child.stderr?.on('data', (chunk: Buffer) => {
    run.stderr += chunk.toString('utf8');
  });
  return run;
}

function parsed(lines: readonly string[]): Record<string, unknown>[] {
  return lines.flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

/** SIGTERM, then the exit status (SIGKILL after 20 s: the ordered stop has 10 s). */
export async function stopCli(run: CliChild): Promise<number | null> {
  if (run.child.exitCode !== null || run.child.signalCode !== null) return run.child.exitCode;
  run.child.kill('SIGTERM');
  const timer = setTimeout(() => run.child.kill('SIGKILL'), 20_000);
  const code = await run.exited;
  clearTimeout(timer);
  return code;
}

/** `rpm-gateway clinic init`: the encrypted database and its key. */
export async function initClinic(config: string): Promise<void> {
  const init = spawnCli(['clinic', 'init', '--config', config]);
  const code = await init.exited;
  if (code !== 0) throw new Error(`rpm-gateway clinic init exited ${code}: ${init.stderr}`);
}

/**
 * One hub per patient, assigned from an hour ago; the staff accounts with their initial passwords (returned
 * for the clients' logins, as an administrator hands them over) and the clinicians' care teams.
 */
export async function setUpClinic(
  config: string,
  patients: number,
  users: readonly BenchUser[],
): Promise<{ username: string; password: string; role: BenchUser['role'] }[]> {
  const { config: settings } = loadClinicConfig({
    configFile: config,
    env: {},
    defaultConfigFile: '/nonexistent',
  });
  const audit = clinicAuditLog(settings.paths.dataDir);
  const clinic = await openClinicStore(settings.database, { env: {}, mode: 'existing' });
  const staff = await openStaffStore(settings.database, { env: {} });
  try {
    const from = Date.now() - 3_600_000;
    const context = { audit, actor: 'bench', clock: systemClock };
    for (let p = 0; p < patients; p++) {
      await assignGateway({ ...context, store: clinic }, { gatewayId: gatewayIdOf(p), mrn: mrnOf(p), from });
    }
    const accounts: { username: string; password: string; role: BenchUser['role'] }[] = [];
    for (const user of users) {
      const { password } = await addStaffUser({ ...context, store: staff }, user);
      accounts.push({ username: user.username, password, role: user.role });
      if (user.role !== 'clinician') continue;
      for (const p of user.patients) {
        await changeCareTeam(
          { ...context, store: staff },
          { username: user.username, mrn: mrnOf(p), action: 'add' },
        );
      }
    }
    return accounts;
  } finally {
    await staff.close();
    await clinic.close();
  }
}

/** A process's CPU time so far (user, system) in milliseconds, from /proc/<pid>/stat (proc(5)). */
export function processCpu(pid: number): { userMs: number; systemMs: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may hold spaces: count the fields after its ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 (utime, stime), in clock ticks; fields[0] is field 3.
  return { userMs: (Number(fields[11]) * 1000) / TICKS, systemMs: (Number(fields[12]) * 1000) / TICKS };
}

/** VmRSS (resident now) and VmHWM (the peak) of a process in bytes, from /proc/<pid>/status (proc(5)). */
export function processMemory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rss: kib('VmRSS') * 1024, peak: kib('VmHWM') * 1024 };
}

/** Clock ticks per second (sysconf(_SC_CLK_TCK), getconf(1)); 100 on Linux when it cannot be asked. */
const TICKS = (() => {
  const answer = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim());
  return Number.isFinite(answer) && answer > 0 ? answer : 100;
})();

/**
 * Waits until the intake has committed `ids` (read from the database by a connection of this process, as
 * `clinic` commands read it while the intake runs), at most `timeoutMs`. The hub's PUBACK comes from the
 * broker once it holds the message, not from the intake: only the database says what is committed.
 */
export async function awaitCommitted(
  config: string,
  ids: readonly string[],
  timeoutMs: number,
): Promise<{ committed: Map<string, number>; missing: string[] }> {
  const { config: settings } = loadClinicConfig({
    configFile: config,
    env: {},
    defaultConfigFile: '/nonexistent',
  });
  const clinic = await openClinicStore(settings.database, { env: {}, mode: 'existing' });
  const committed = new Map<string, number>();
  let missing = [...ids];
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const still: string[] = [];
      for (const id of missing) {
        const stored = await clinic.measurement(id);
        if (stored === undefined) still.push(id);
        else committed.set(id, stored.committedAt);
      }
      missing = still;
      if (missing.length === 0 || Date.now() > deadline) return { committed, missing };
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    await clinic.close();
  }
}
