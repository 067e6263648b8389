import { toHex } from '../gatt/hex.js';
import type { ConformanceReport } from './conformance.js';
import { type FixtureFile, type Provenance, sourceOf } from './fixtures.js';
import type { FuzzResult } from './fuzz.js';
import { type Driver, SAMPLE_SETUP_CONTEXTS, type SetupWrite, setupValue } from './sdk/define-driver.js';

/**
 * The conformance report `npm run driver:test` writes for one driver: a markdown page a vendor attaches to the
 * pull request that adds or changes the driver. It states what the driver is (id, version, match rule,
 * characteristics, setup writes), what was checked (fixtures, fuzz run, simulator model) with the result of
 * each, and the evidence behind the fixtures (real captures against constructed vectors: `unverified` when no
 * measurement was captured from a device). Pure: the caller runs the checks and writes the file.
 */
export interface ModelCheckSummary {
  /** Where the simulated device comes from. */
  readonly origin: 'core' | 'folder' | 'fixtures' | 'none';
  readonly payloads: number;
  readonly readings: number;
  readonly refused: number;
  readonly problems: readonly string[];
  readonly ok: boolean;
}

export interface ReportInput {
  readonly driver: Driver;
  readonly fixtures: FixtureFile;
  readonly conformance: ConformanceReport;
  readonly fuzz: readonly FuzzResult[];
  readonly model: ModelCheckSummary;
  readonly evidence: Provenance;
  readonly gatewayVersion: string;
  /** When the checks ran (ISO 8601). */
  readonly generatedAt: string;
}

export function reportPassed(input: ReportInput): boolean {
  return input.conformance.ok && input.fuzz.every((f) => f.failure === undefined) && input.model.ok;
}

const ORIGIN: Readonly<Record<ModelCheckSummary['origin'], string>> = {
  core: 'core model (src/ble/sim/devices)',
  folder: "the driver folder's sim.ts",
  fixtures: "fixture replay (the driver's passing fixtures, in turn)",
  none: 'none',
};

export function renderConformanceReport(input: ReportInput): string {
  const { driver, fixtures, conformance, fuzz, model, evidence } = input;
  const passed = reportPassed(input);
  const lines: string[] = [];
  const fixturesPassed = conformance.results.filter((r) => r.ok).length;
  const fixturesFailed = conformance.results.length - fixturesPassed;
  lines.push(
    `# Conformance report: ${driver.id}@${driver.version}`,
    '',
    `Result: **${passed ? 'PASS' : 'FAIL'}**. Evidence: **${evidence.verified ? 'verified' : 'unverified'}** ` +
      `(${evidence.capture} fixture(s) from real captures, ${evidence.constructed} constructed).`,
    '',
  );
  if (!evidence.verified) {
    lines.push(
      '> **unverified**: no fixture of a measurement characteristic comes from a real capture. The decoder, its',
      '> constructed fixtures and a simulator built from them can all repeat one misreading of a document; add a',
      '> capture (vendor sample app, reader project test data or log, forum post, or your own capture) to',
      '> fixtures.json with `"kind": "capture"` (devices/README.md, "Fixtures and their provenance").',
      '',
    );
  }
  lines.push(
    '| | |',
    '|---|---|',
    `| Driver | \`${driver.id}\` ${driver.version}: ${cell(driver.name)} |`,
    `| Category | ${driver.category} |`,
    `| Match rule | ${cell(matchRule(driver))} |`,
    `| Fixtures | ${fixturesPassed} passed, ${fixturesFailed} failed |`,
    `| Fuzz run | ${fuzzSummary(fuzz)} |`,
    `| Simulator model | ${cell(ORIGIN[model.origin])}: ${model.ok ? 'pass' : 'FAIL'} |`,
    `| Checked with | rpm-gateway ${input.gatewayVersion}, \`npm run driver:test\`, ${input.generatedAt} |`,
    '',
    '## Characteristics',
    '',
    '| UUID | service | access | name | emits |',
    '|---|---|---|---|---|',
  );
  for (const c of driver.characteristics) {
    const emits = c.emits.map((e) => `${e.code} (${e.units.join(', ')})`).join('; ') || '-';
    const access = c.optional ? `${c.access}, optional` : c.access;
    lines.push(`| \`${c.uuid}\` | \`${c.service}\` | ${access} | ${cell(c.name)} | ${cell(emits)} |`);
  }
  if (driver.setup?.length) {
    lines.push(
      '',
      '## Setup writes',
      '',
      '| characteristic | value | repeat | answer | reason |',
      '|---|---|---|---|---|',
    );
    for (const w of driver.setup) {
      const repeat = w.repeatEveryMs === undefined ? 'once' : `every ${w.repeatEveryMs} ms`;
      const e = w.expect;
      const answer =
        e === undefined
          ? '-'
          : `on \`${e.characteristic}\` within ${e.timeoutMs} ms, ${e.retries ?? 0} retries${e.refused ? ', refusal declared' : ''}`;
      lines.push(`| \`${w.characteristic}\` | ${valueCell(w)} | ${repeat} | ${answer} | ${cell(w.reason)} |`);
    }
  }
  if (driver.quirks && Object.keys(driver.quirks).length > 0) {
    lines.push('', '## Declared quirks', '');
    for (const [name, { reason }] of Object.entries(driver.quirks)) lines.push(`- **${name}**: ${reason}`);
  }

  lines.push('', `## Fixtures: ${fixturesPassed} passed, ${fixturesFailed} failed`, '');
  lines.push('| result | characteristic | fixture | source | kind |', '|---|---|---|---|---|');
  for (const r of conformance.results) {
    const entry = fixtures.sources[r.fixture.source];
    const kind = entry === undefined ? '-' : sourceOf(entry).kind;
    lines.push(
      `| ${r.ok ? 'pass' : '**FAIL**'} | \`${cell(r.fixture.char)}\` | ${cell(r.fixture.name)} | ${cell(r.fixture.source)} | ${kind} |`,
    );
  }
  const failures = conformance.results.filter((r) => !r.ok);
  if (failures.length > 0 || conformance.driverProblems.length > 0) {
    lines.push('', 'Problems:', '');
    for (const r of failures) for (const p of r.problems) lines.push(`- ${cell(r.fixture.name)}: ${cell(p)}`);
    for (const p of conformance.driverProblems) lines.push(`- ${cell(p)}`);
  }

  lines.push('', '## Fixture provenance', '');
  lines.push('| source | kind | published | fixtures | citation |', '|---|---|---|---|---|');
  for (const [id, entry] of Object.entries(fixtures.sources)) {
    const source = sourceOf(entry);
    const used = fixtures.fixtures.filter((f) => f.source === id).length;
    const published = source.kind === 'capture' ? source.published : '-';
    lines.push(`| ${cell(id)} | ${source.kind} | ${published} | ${used} | ${cell(source.cite)} |`);
  }

  lines.push('', '## Fuzz run', '');
  lines.push(
    'Random and mutated payloads per characteristic (src/drivers/fuzz.ts): a decoder must throw only',
    'DecodeError and return only readings that satisfy the decode contract.',
    '',
    '| characteristic | payloads | decoded | refused | seed | result |',
    '|---|---|---|---|---|---|',
  );
  for (const f of fuzz) {
    const result = f.failure === undefined ? 'pass' : `**FAIL**: ${cell(f.failure)}`;
    lines.push(`| \`${f.target}\` | ${f.payloads} | ${f.decoded} | ${f.refused} | ${f.seed} | ${result} |`);
  }

  lines.push('', '## Simulator model', '');
  lines.push(
    `Origin: ${ORIGIN[model.origin]}. Through a simulated session (scan, connect, bond when asked, reads,`,
    `subscriptions, setup writes) it sent ${model.payloads} measurement value(s), decoded by the driver into`,
    `${model.readings} reading(s) with observations; ${model.refused} refused.` +
      (model.origin === 'fixtures' ? ' Each replayed value decoded as its fixture says.' : ''),
  );
  if (model.problems.length > 0) {
    lines.push('', 'Problems:', '');
    for (const p of model.problems) lines.push(`- ${cell(p)}`);
  }
  return `${lines.join('\n')}\n`;
}

function fuzzSummary(fuzz: readonly FuzzResult[]): string {
  const failed = fuzz.filter((f) => f.failure !== undefined).length;
  const total = fuzz.reduce((n, f) => n + f.payloads, 0);
  return `${fuzz.length} characteristic(s), ${total} payloads: ${failed === 0 ? 'pass' : `${failed} FAILED`}`;
}

function matchRule(driver: Driver): string {
  const m = driver.match;
  const parts = [
    m.services?.length ? `services ${m.services.join(', ')}` : '',
    m.name ? `name ${m.name}` : '',
    m.manufacturerId === undefined ? '' : `manufacturer 0x${m.manufacturerId.toString(16).padStart(4, '0')}`,
    m.supersedes?.length ? `supersedes ${m.supersedes.join(', ')}` : '',
  ].filter(Boolean);
  return parts.join('; ');
}

/** Text safe inside a markdown table cell: no pipes, no line breaks. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** A fixed value's bytes; a computed one's bytes at the first sample context, said to be an example. */
function valueCell(write: SetupWrite): string {
  if (write.value instanceof Uint8Array) return `\`${toHex(write.value)}\``;
  const ctx = SAMPLE_SETUP_CONTEXTS[0];
  if (ctx === undefined || ctx.now === null) return 'computed at each write';
  // defineDriver has already computed it in this context, so this does not throw.
  return `computed at each write, e.g. \`${toHex(setupValue(write, ctx))}\` at ${ctx.now.toISOString()}`;
}
