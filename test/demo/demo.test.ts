import { type ChildProcess, execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Secret, TOTP } from 'otpauth';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { SqliteClinicStore } from '../../src/clinic/storage/sqlite/sqlite-clinic-store.js';
import { ClinicView } from '../../src/demo/clinic-view.js';
import { parseKey } from '../../src/store/keys.js';
import { type CliProcess, spawnCli } from '../support/cli-process.js';
import { until } from '../support/until.js';
import { csrfOf, HttpsBrowser } from './https-browser.js';

/**
 * `rpm-gateway demo` (what `npm start` runs) as a user runs it: the built dist/ in a child process, the real
 * path end to end (simulated radio, sessions, the encrypted store, signed batches over mutual TLS to the
 * embedded broker, the clinic intake committing to the encrypted clinic database). The acceptance command runs for 25 s; these runs
 * are shorter, which is enough since every device reports within a few seconds (its stored records first).
 */
const _bin = join(import.meta.dirname, '../../dist/src/cli/bin.js');
const KINDS = ['pulse oximeter', 'BP cuff', 'thermometer', 'scale', 'glucose meter'];

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rpm-demo-test-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

type Run = CliProcess;
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

function demo(args: string[]): Run {
  const run = spawnCli(['demo', ...args], { PATH: process.env.PATH, HOME: root, TMPDIR: root });
  children.push(run.child);
  return run;
}

/** The clinic view's reading lines: "clinic <- <gateway>  <kind padded to 16> <values>  at <time>". */
function readings(run: Run): { kind: string; values: string }[] {
  return run.lines.flatMap((line) => {
    const m = /^clinic <- \S+ {2}(.{16}) (.*) {2}at \d{4}-/.exec(line);
    return m ? [{ kind: (m[1] as string).trim(), values: m[2] as string }] : [];
  });
}

/** A reading line without its device label (the label comes from the hub's registry, not the clinic's record). */
function unlabelled(line: string): string | undefined {
  const m = /^(clinic <- \S+ {2}).{16} (.* {2}at \d{4}-.*)$/.exec(line);
  return m ? `${m[1]}${m[2]}` : undefined;
}

/**
 * Every reading in the clinic database of data dir D, each rendered as the clinic view renders it, and its
 * assignments: read by opening the database again with its key file, as a later run (or a dashboard) would.
 */
async function clinicRecord(
  dataDir: string,
): Promise<{ ids: string[]; lines: string[]; assignments: number }> {
  const key = parseKey(readFileSync(join(dataDir, 'clinic', 'clinic.key'), 'utf8'), 'the clinic key');
  const store = await SqliteClinicStore.open({ path: join(dataDir, 'clinic', 'clinic.db'), key });
  try {
    const ids = await store.measurementIds();
    const lines: string[] = [];
    const view = new ClinicView(
      (line) => lines.push(unlabelled(line) as string),
      () => '',
    );
    for (const id of ids) {
      const stored = await store.measurement(id);
      if (stored) view.measurement(stored.receipt.gatewayId, stored.measurement, stored.receipt.topic);
    }
    return { ids, lines, assignments: (await store.assignments()).length };
  } finally {
    await store.close();
  }
}

/** What the demo printed about its dashboard, once the lines are there. */
async function dashboardLines(
  run: Run,
): Promise<{ origin: string; username: string; password: string; ca: string; curl: string }> {
  await until("the dashboard's lines", () => run.lines.some((l) => l.startsWith('             curl ')), {
    timeoutMs: 30_000,
  });
  const find = (pattern: RegExp) => {
    for (const line of run.lines) {
      const m = pattern.exec(line);
      if (m) return m;
    }
    throw new Error(`no line matches ${pattern}: ${run.lines.join('\n')}`);
  };
  const url = find(/^demo: the clinic dashboard: (https:\/\/localhost:\d+)\/ \(this machine only\)/);
  const login = find(
    /^ {2}login: {3}(\S+) {2}password: (\S+) {2}\(a new admin; the password is shown only here\)$/,
  );
  const ca = find(/^ {2}trust: {3}the certificate is from the demo's own CA, (\S+); for a quick look:$/);
  const curl = find(/^ {13}(curl --cacert \S+ https:\/\/localhost:\d+\/login)$/);
  return {
    origin: url[1] as string,
    username: login[1] as string,
    password: login[2] as string,
    ca: ca[1] as string,
    curl: curl[1] as string,
  };
}

const sorted = (lines: readonly string[]) => [...lines].sort();

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(path) : [path];
  });
}

describe('rpm-gateway demo', () => {
  it('runs the whole path for --duration, exits 0, and leaves no reading value or code in any file of the data dir', async () => {
    const dataDir = join(root, 'kept');
    const run = demo(['--duration', '12', '--data-dir', dataDir]);
    const { code } = await run.exited;
    expect(run.stderr).toBe('');
    expect(code).toBe(0);

    const received = readings(run);
    expect(new Set(received.map((r) => r.kind))).toEqual(new Set(KINDS));
    const summary = run.lines.find((l) => l.startsWith('demo: the clinic received')) ?? '';
    expect(summary).toMatch(/from 5 of 5 devices/);
    expect(summary).toMatch(new RegExp(`received ${received.length} reading`));

    // The distinctive values the clinic printed: decimals such as the planted weight (81.35 kg, so 81.2 to
    // 81.5), temperatures and BMI. Whole numbers (SpO2 97, 120 mmHg) are too common to look for in binary
    // files; the codes stand for every reading in a structured form (the store's records carry them as text).
    const values = new Set<string>();
    for (const r of received)
      for (const v of r.values.matchAll(/(?<![\w.])(\d+\.\d+)(?![\w.])/g)) values.add(v[1] as string);
    expect([...values].some((v) => v.startsWith('81.'))).toBe(true);
    expect(values.size).toBeGreaterThan(3);

    const files = filesUnder(dataDir);
    for (const expected of [
      'gateway.yaml',
      'outbox.db',
      'audit.log',
      join('logs', 'hub.log'),
      join('pki', 'ca.crt'),
    ]) {
      expect(files).toContain(join(dataDir, expected));
    }
    expect(statSync(join(dataDir, 'logs', 'hub.log')).size).toBeGreaterThan(0);
    for (const file of files) {
      const text = readFileSync(file).toString('latin1');
      expect(text.includes('MDC_'), `${file} holds an MDC code`).toBe(false);
      for (const value of values) {
        // Not inside a longer number, and not the seconds of a timestamp ("12:36:48.1"): a digit and ':' before.
        const found = new RegExp(`(?<![\\d.]|\\d:)${value.replace('.', '\\.')}(?![\\d])`).test(text);
        expect(found, `${file} holds the reading value ${value}`).toBe(false);
      }
    }
    // The store is encrypted from its first page: no SQLite header (https://sqlite.org/fileformat.html 1.3).
    expect(readFileSync(join(dataDir, 'outbox.db')).subarray(0, 16).toString('latin1')).not.toBe(
      'SQLite format 3\0',
    );

    // The clinic database too: encrypted from its first page, its key file owner-only.
    expect(
      readFileSync(join(dataDir, 'clinic', 'clinic.db'))
        .subarray(0, 16)
        .toString('latin1'),
    ).not.toBe('SQLite format 3\0');
    expect(statSync(join(dataDir, 'clinic', 'clinic.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'clinic', 'broker.key')).mode & 0o777).toBe(0o600);
    expect(files).toContain(join(dataDir, 'clinic', 'broker', 'CURRENT'));

    // Reopened, the clinic database holds every reading the view printed, each exactly once, and nothing else
    // (the view prints from the database's live feed, after each commit); the summary counts the database.
    const printed = run.lines.flatMap((l) => unlabelled(l) ?? []);
    expect(printed.length).toBe(received.length);
    const first = await clinicRecord(dataDir);
    expect(new Set(first.ids).size).toBe(first.ids.length);
    expect(sorted(first.lines)).toEqual(sorted(printed));
    expect(run.lines).toContain(
      `demo: the clinic database holds ${first.ids.length} reading(s), each once: it refused 0 duplicate(s) by its measurement-id key; refused messages: none`,
    );
    expect(first.assignments).toBe(1);
    expect(
      run.lines.filter((l) => l.startsWith('demo: the clinic assigned gw-demo-0001 to patient DEMO-0001')),
    ).toHaveLength(1);

    // A second run on the same folder reuses it: the same PKI, configuration and store; nothing enrolled again,
    // the patient not assigned again, and the clinic keeps the first run's readings beside the new ones.
    const ca = readFileSync(join(dataDir, 'pki', 'ca.crt'), 'utf8');
    // Long enough for the stored records after the start (which includes the dashboard's, and hashing its
    // login's password with argon2id) on a loaded machine.
    const again = demo(['--duration', '7', '--data-dir', dataDir]);
    expect((await again.exited).code).toBe(0);
    expect(again.stderr).toBe('');
    expect(again.lines.some((l) => l.startsWith('demo: enrolled'))).toBe(false);
    expect(again.lines.some((l) => l.startsWith('demo: the clinic assigned'))).toBe(false);
    expect(readFileSync(join(dataDir, 'pki', 'ca.crt'), 'utf8')).toBe(ca);
    expect(readings(again).length).toBeGreaterThan(0);
    const second = await clinicRecord(dataDir);
    expect(second.assignments).toBe(1);
    expect(second.ids).toEqual(expect.arrayContaining(first.ids));
    expect(sorted(second.lines)).toEqual(
      sorted([...printed, ...again.lines.flatMap((l) => unlabelled(l) ?? [])]),
    );
    const audit = readFileSync(join(dataDir, 'clinic', 'clinic-audit.log'), 'utf8');
    expect(audit.split('\n').filter((l) => l.includes('"clinic.assignment.created"'))).toHaveLength(1);
    // The hub's status: at the first run's stop the hub sent its offline status and ended with a DISCONNECT
    // (so the broker discarded its Last Will), while the intake was still connected; the clinic committed it
    // then. The second run's hub comes online again. That the broker keeps its queues across a restart (and a
    // SIGKILL) is test/broker/persistence.test.ts's to show.
    const statuses = (lines: readonly string[]) =>
      lines.flatMap((l) => /^clinic <- gw-demo-0001 {2}status: (\w+)/.exec(l)?.[1] ?? []);
    expect(statuses(run.lines)).toEqual(['online', 'offline']);
    expect(statuses(again.lines)[0]).toBe('online');
  }, 60_000);

  it("prints the dashboard's URL and a one-time login that work over HTTPS: password, TOTP enrolment, the tile wall, the patient's readings live", async () => {
    const dataDir = join(root, 'dashboard');
    const run = demo(['--data-dir', dataDir]);
    const printed = await dashboardLines(run);
    expect(printed.origin).toMatch(/^https:\/\/localhost:\d+$/);
    expect(printed.username).toBe('demo-admin-1');
    // crypto.randomInt over letters and digits (src/clinic/staff/passwords.ts), never a fixed one.
    expect(printed.password).toMatch(/^[A-Za-z0-9]{20}$/);
    expect(printed.ca).toBe(join(dataDir, 'pki', 'ca.crt'));
    expect(run.lines).toContain(
      '           the first login asks you to enrol a second factor: scan its QR code with an authenticator app (TOTP)',
    );

    // The quick look exactly as printed: curl verifying the dashboard's certificate against the demo CA.
    const { stdout } = await promisify(execFile)('sh', ['-c', printed.curl]);
    expect(stdout).toMatch(/<form method="post" action="\/login">/);

    const browser = new HttpsBrowser(printed.origin, readFileSync(printed.ca, 'utf8'));
    const login = await browser.get('/login');
    expect(login.status).toBe(200);
    const password = await browser.post('/login', {
      username: printed.username,
      password: printed.password,
      _csrf: csrfOf(login),
    });
    // A new account has no second factor yet: enrolment comes before anything else.
    expect(password.status).toBe(303);
    expect(password.location).toBe('/mfa/enrol');
    expect((await browser.get('/')).location).toBe('/mfa/enrol');

    // The enrolment page, read as a person reads it: the QR code, and the key as text under it.
    const enrol = await browser.get('/mfa/enrol');
    expect(enrol.status).toBe(200);
    expect(enrol.body).toMatch(/<img src="data:image\/png;base64,[A-Za-z0-9+/=]+"/);
    const secret = /<p class="secret" id="totp-secret">([A-Z2-7]+)<\/p>/.exec(enrol.body)?.[1];
    expect(secret).toBeDefined();
    // The authenticator app: RFC 6238 with the parameters every app uses (SHA-1, 6 digits, 30 s).
    const code = new TOTP({
      secret: Secret.fromBase32(secret as string),
      algorithm: 'SHA1',
      digits: 6,
      period: 30,
    });
    const confirmed = await browser.post('/mfa/enrol', { code: code.generate(), _csrf: csrfOf(enrol) });
    expect(confirmed.status).toBe(303);
    expect(confirmed.location).toBe('/');

    // The tile wall holds the demo patient (the admin sees every assigned patient).
    const wall = await browser.get('/');
    expect(wall.status).toBe(200);
    expect(wall.body).toContain('data-mrn="DEMO-0001"');
    const tiles = JSON.parse((await browser.get('/api/tiles')).body) as { tiles: { mrn: string }[] };
    expect(tiles.tiles.map((t) => t.mrn)).toEqual(['DEMO-0001']);

    // The live feed: the pulse oximeter streams (every 3 s), so a reading committed after this connection
    // opened arrives as an event for the demo patient.
    const feed = await browser.openLive();
    type LiveReading = { mrn: string; points: { id: string; code: string; stored: boolean; hub: string }[] };
    const event = await feed.next<LiveReading>(
      'reading',
      (data) => data.mrn === 'DEMO-0001' && data.points.some((p) => p.code === 'MDC_PULS_OXIM_SAT_O2'),
      20_000,
    );
    const spo2 = event.points.find((p) => p.code === 'MDC_PULS_OXIM_SAT_O2');
    expect(spo2?.stored).toBe(false);
    expect(spo2?.hub).toBe('gw-demo-0001');

    // SIGTERM with the live feed still open (a browser left on the page): the demo ends the stream and stops
    // in order, exit status 0.
    run.child.kill('SIGTERM');
    await feed.ended;
    const { code: status, signal } = await run.exited;
    expect(signal).toBeNull();
    expect(status).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.lines.some((l) => l.startsWith('demo: the clinic received'))).toBe(true);

    // The event's reading is in the clinic database; the password is in no file (only its argon2id hash, in
    // the encrypted database); the audit log's chain holds, with the account, the login and the enrolment.
    expect((await clinicRecord(dataDir)).ids).toContain(spo2?.id);
    for (const file of filesUnder(dataDir)) {
      expect(readFileSync(file).toString('latin1').includes(printed.password), file).toBe(false);
    }
    const auditFile = join(dataDir, 'clinic', 'clinic-audit.log');
    new AuditLog(auditFile).verify();
    const types = readFileSync(auditFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { type: string }).type);
    expect(types).toEqual(expect.arrayContaining(['staff.user.added', 'login.ok', 'mfa.enrolled']));

    // A second run on the same folder: a new login, and the first one no longer works.
    const again = demo(['--data-dir', dataDir]);
    const second = await dashboardLines(again);
    expect(second.username).toBe('demo-admin-2');
    expect(second.password).not.toBe(printed.password);
    expect(again.lines).toContain('           the login of an earlier run is disabled: demo-admin-1');
    const late = new HttpsBrowser(second.origin, readFileSync(second.ca, 'utf8'));
    const page = await late.get('/login');
    const refused = await late.post('/login', {
      username: printed.username,
      password: printed.password,
      _csrf: csrfOf(page),
    });
    expect(refused.status).toBe(401);
    const page2 = await late.get('/login');
    const accepted = await late.post('/login', {
      username: second.username,
      password: second.password,
      _csrf: csrfOf(page2),
    });
    expect(accepted.location).toBe('/mfa/enrol');
    again.child.kill('SIGINT');
    expect((await again.exited).code).toBe(0);
    expect(again.stderr).toBe('');
  }, 90_000);

  it('stops in order on SIGINT with exit status 0 and removes its temporary data directory', async () => {
    const run = demo([]);
    await until('a reading at the clinic', () => readings(run).length > 0, { timeoutMs: 20_000 });
    const dataDir = /^ {2}data: +(\S+) \(temporary/.exec(
      run.lines.find((l) => l.startsWith('  data:')) ?? '',
    )?.[1];
    expect(dataDir).toBeDefined();
    expect(existsSync(dataDir as string)).toBe(true);
    run.child.kill('SIGINT');
    const { code, signal } = await run.exited;
    expect(signal).toBeNull();
    expect(code).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.lines.some((l) => l.startsWith('demo: the clinic received'))).toBe(true);
    expect(existsSync(dataDir as string)).toBe(false);
  }, 40_000);

  it('--scenario outage: the backlog kept during the outage reaches the clinic, each reading once', async () => {
    const run = demo([
      '--duration',
      '25',
      '--data-dir',
      join(root, 'outage'),
      '--scenario',
      'outage',
      '--outage-seconds',
      '5',
    ]);
    const { code } = await run.exited;
    expect(run.stderr).toBe('');
    expect(code).toBe(0);
    const text = run.lines.join('\n');
    expect(text).toMatch(/demo: outage: the clinic's broker goes off the network for 5 s/);
    const back =
      /demo: the broker is back after \d+ s; (\d+) reading\(s\) kept during the outage now drain/.exec(text);
    expect(back).not.toBeNull();
    expect(Number(back?.[1])).toBeGreaterThan(0);
    expect(text).toMatch(
      new RegExp(
        `demo: drained: all ${back?.[1]} reading\\(s\\) kept during the outage reached the clinic, each exactly once, in [\\d.]+ s; the clinic dropped \\d+ re-sent duplicate\\(s\\) by id`,
      ),
    );
    expect(text).toMatch(/demo: the clinic received \d+ reading\(s\) from 5 of 5 devices/);
    expect(text).toMatch(
      /demo: the clinic database holds \d+ reading\(s\), each once: it refused \d+ duplicate/,
    );
  }, 60_000);

  it('--fhir-folder: the readings the clinic stored are written as FHIR transaction Bundles for patient DEMO-0001', async () => {
    const dataDir = join(root, 'fhir-data');
    const folder = join(root, 'fhir-out');
    const run = demo(['--duration', '6', '--data-dir', dataDir, '--fhir-folder', folder]);
    const { code } = await run.exited;
    expect(run.stderr).toBe('');
    expect(code).toBe(0);
    const written =
      /^demo: FHIR: wrote (\d+) transaction Bundle\(s\) holding (\d+) Observation\(s\) to (.+)$/.exec(
        run.lines.find((l) => l.startsWith('demo: FHIR:')) ?? '',
      );
    expect(written?.[3]).toBe(folder);
    const bundles = readdirSync(folder).map(
      (file) =>
        JSON.parse(readFileSync(join(folder, file), 'utf8')) as {
          type: string;
          entry: { resource: { resourceType: string; subject?: { identifier?: { value?: string } } } }[];
        },
    );
    expect(bundles.length).toBe(Number(written?.[1]));
    const observations = bundles.flatMap((b) =>
      b.entry.filter((e) => e.resource.resourceType === 'Observation'),
    );
    expect(observations.length).toBe(Number(written?.[2]));
    expect(observations.length).toBeGreaterThan(0);
    expect(bundles.every((b) => b.type === 'transaction')).toBe(true);
    expect(new Set(observations.map((o) => o.resource.subject?.identifier?.value))).toEqual(
      new Set(['DEMO-0001']),
    );

    // Never into the data directory, which holds no reading value in the clear.
    const refused = demo(['--duration', '3', '--data-dir', dataDir, '--fhir-folder', join(dataDir, 'fhir')]);
    expect((await refused.exited).code).toBe(2);
    expect(refused.stderr).toMatch(/--fhir-folder: .* outside the data directory/);
    expect(existsSync(join(dataDir, 'fhir'))).toBe(false);
  }, 40_000);

  it('refuses a data directory that is not a demo one, and changes nothing in it', async () => {
    const dataDir = join(root, 'someone-else');
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, 'outbox.db'), 'not ours');
    const run = demo(['--duration', '3', '--data-dir', dataDir]);
    const { code } = await run.exited;
    expect(code).toBe(1);
    expect(run.stderr).toMatch(/\[DEMO_DATA_DIR_IN_USE\]/);
    expect(readdirSync(dataDir)).toEqual(['outbox.db']);
  }, 20_000);
});
