import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SqliteClinicStore } from '../../src/clinic/storage/sqlite/sqlite-clinic-store.js';
import { ClinicView } from '../../src/demo/clinic-view.js';
import { parseKey } from '../../src/store/keys.js';
import { type CliProcess, spawnCli } from '../support/cli-process.js';
import { until } from '../support/until.js';

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
    const again = demo(['--duration', '4', '--data-dir', dataDir]);
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
