import { parseArgs } from 'node:util';

/**
 * The plan and the arithmetic of bench:dashboard (scripts/bench-dashboard.ts): its options, who the staff are
 * and which patients each may see, and the tally of what the live connections received against what they
 * should have. No processes and no I/O here, so the test (test/clinic/dashboard/bench.test.ts) checks it
 * directly.
 */

export const DASHBOARD_BENCH_HELP = `Usage: npm run bench:dashboard -- [options]

Measures \`rpm-gateway clinic serve\` on SQLite (intake, alarm engine and dashboard in one process, as a clinic
runs it): P hubs, one per patient, each publish one signed reading a second over mutual-TLS MQTT through
\`rpm-gateway broker\`; the intake commits them; staff sessions (logged in over HTTPS with password and TOTP)
hold the live feed (/api/live). Prints, per group of connections, the delay from each reading's commit to its
event at the client (p50, p90, p99, max), the events lost, and the server process's CPU and RSS.
docs/dashboard.md, "Performance", has the method and results.

Options:
  --patients <n>      patients, one hub each, one reading a second each (default 200)
  --admins <n>        admin sessions: each sees every patient (default 5)
  --clinicians <n>    clinician sessions: each sees its care team (default 15)
  --team <n>          patients in each clinician's care team (default 20)
  --warmup <s>        seconds of readings before the measurement (default 20)
  --seconds <s>       seconds measured (default 120)
  --broker <name>     clinic (\`rpm-gateway broker\`, the default) or mosquitto (Debian's Mosquitto 2.0)
  --quick             a short run: --warmup 5 --seconds 20 (explicit options still win)
  --json <file>       also write the figures as JSON
  --keep              keep the run's folder: PKI, configuration, database, the broker's and the server's
                      logs, and readings.json (every reading sent and every event received, with times)
  -h, --help          show this help`;

/** Issue 12, "Benchmark": a reading's commit to its event at the client, p99. */
export const GOAL_P99_MS = 500;

export interface DashboardBenchOptions {
  readonly patients: number;
  readonly admins: number;
  readonly clinicians: number;
  readonly team: number;
  readonly warmupSeconds: number;
  readonly seconds: number;
  readonly broker: 'clinic' | 'mosquitto';
  readonly json?: string;
  readonly keep: boolean;
}

const DEFAULTS = { patients: 200, admins: 5, clinicians: 15, team: 20, warmup: 20, seconds: 120 };
const QUICK = { warmup: 5, seconds: 20 };

/** The options, or `help` when asked for; a bad value throws an Error that says which and why. */
export function parseDashboardBenchArgs(argv: readonly string[]): DashboardBenchOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      patients: { type: 'string' },
      admins: { type: 'string' },
      clinicians: { type: 'string' },
      team: { type: 'string' },
      warmup: { type: 'string' },
      seconds: { type: 'string' },
      broker: { type: 'string', default: 'clinic' },
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  const int = (name: string, text: string | undefined, fallback: number, min: number, max: number) => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min || n > max) {
      throw new Error(`--${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(text)}`);
    }
    return n;
  };
  const short = values.quick ? QUICK : DEFAULTS;
  // 9,999 hubs at most: their ids are numbered with four digits (scripts/support/gateway-fleet.ts).
  const patients = int('patients', values.patients, DEFAULTS.patients, 1, 9_999);
  const admins = int('admins', values.admins, DEFAULTS.admins, 0, 1_000);
  const clinicians = int('clinicians', values.clinicians, DEFAULTS.clinicians, 0, 1_000);
  const team = int('team', values.team, Math.min(DEFAULTS.team, patients), 1, patients);
  const broker = values.broker;
  if (broker !== 'clinic' && broker !== 'mosquitto') {
    throw new Error(`--broker must be clinic or mosquitto, not ${JSON.stringify(broker)}`);
  }
  if (admins + clinicians === 0) throw new Error('--admins and --clinicians make no live connection at all');
  return {
    patients,
    admins,
    clinicians,
    team,
    warmupSeconds: int('warmup', values.warmup, short.warmup, 0, 3_600),
    seconds: int('seconds', values.seconds, short.seconds, 1, 3_600),
    broker,
    ...(values.json === undefined ? {} : { json: values.json }),
    keep: values.keep,
  };
}

export function gatewayIdOf(patient: number): string {
  return `gw-dash-${patient.toString().padStart(4, '0')}`;
}

export function mrnOf(patient: number): string {
  return `MRN-D${patient.toString().padStart(4, '0')}`;
}

export interface BenchUser {
  readonly username: string;
  readonly role: 'admin' | 'clinician';
  /** The patients (by index) this user's connection may see. */
  readonly patients: readonly number[];
}

/**
 * The staff: admins see every patient; clinician i's care team is the `team` patients from i * team on (wrapping
 * round), so the teams cover the patients in turn and overlap only once there are more team places than patients.
 */
export function staffPlan(
  options: Pick<DashboardBenchOptions, 'patients' | 'admins' | 'clinicians' | 'team'>,
) {
  const users: BenchUser[] = [];
  const everyone = Array.from({ length: options.patients }, (_, p) => p);
  for (let i = 0; i < options.admins; i++) {
    users.push({ username: `bench-admin-${i + 1}`, role: 'admin', patients: everyone });
  }
  for (let i = 0; i < options.clinicians; i++) {
    const patients = Array.from(
      { length: options.team },
      (_, j) => (i * options.team + j) % options.patients,
    );
    users.push({ username: `bench-clinician-${i + 1}`, role: 'clinician', patients });
  }
  return users;
}

/** One reading's event at one connection: the measurement id, the store's commit time, the arrival (epoch ms). */
export type Delivery = readonly [id: string, committedAt: number, arrivedAt: number];

export interface ClientRecord {
  readonly username: string;
  readonly role: 'admin' | 'clinician';
  readonly deliveries: readonly Delivery[];
  /** The stream ended before the run did (the server closed it, or the connection broke). */
  readonly ended: boolean;
}

export interface Tally {
  readonly connections: number;
  /** Deliveries a connection should have had: measured readings of the patients it may see. */
  readonly expected: number;
  /** Measured readings that arrived (each connection counted once per reading). */
  readonly delivered: number;
  readonly lost: number;
  /** A reading that arrived at the same connection more than once (beyond the first). */
  readonly duplicates: number;
  /** A reading of a patient the connection may not see: must never happen (access by care team). */
  readonly foreign: number;
  /** Commit-to-arrival delays of the delivered measured readings, ascending, in milliseconds. */
  readonly delays: readonly number[];
}

/**
 * What the connections received against what they should have: every measured reading the intake committed
 * (`measured`: id to patient) must reach every connection that may see its patient, once, and no other.
 * Readings outside the measurement (warm-up, the closing round; `patientOf` knows them too) count for the
 * access check but not for delays or losses.
 */
export function tally(
  measured: ReadonlyMap<string, number>,
  patientOf: ReadonlyMap<string, number>,
  users: readonly BenchUser[],
  clients: readonly ClientRecord[],
): Tally {
  let expected = 0;
  let delivered = 0;
  let duplicates = 0;
  let foreign = 0;
  const delays: number[] = [];
  const byName = new Map(users.map((u) => [u.username, u]));
  for (const client of clients) {
    const user = byName.get(client.username);
    if (user === undefined) throw new Error(`a report from ${client.username}, who is not in the plan`);
    const visible = new Set(user.patients);
    for (const patient of measured.values()) if (visible.has(patient)) expected++;
    const seen = new Set<string>();
    for (const [id, committedAt, arrivedAt] of client.deliveries) {
      const patient = patientOf.get(id);
      if (patient !== undefined && !visible.has(patient)) {
        foreign++;
        continue;
      }
      if (!measured.has(id)) continue;
      if (seen.has(id)) {
        duplicates++;
        continue;
      }
      seen.add(id);
      delivered++;
      delays.push(arrivedAt - committedAt);
    }
  }
  delays.sort((a, b) => a - b);
  return {
    connections: clients.length,
    expected,
    delivered,
    lost: expected - delivered,
    duplicates,
    foreign,
    delays,
  };
}

/** The nearest-rank percentile (the smallest value with at least p % of the values at or below it). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}
