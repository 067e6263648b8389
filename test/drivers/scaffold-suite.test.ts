import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * A new driver needs no core edit: `npm run driver:new` in a copy of the repository (sources, devices, scripts,
 * tests and configuration; node_modules linked), then Biome, `driver:test` and the suite's tests that go over
 * every bundled driver run there on the untouched scaffold. A copy, so that the real devices/ never holds a
 * temporary driver while other test files read it.
 */
const ROOT = join(import.meta.dirname, '../..');
const ID = 'vendor/acme-ox100';
const NAME = "Acme's OX-100 fingertip pulse oximeter";
const SLOW_MS = 600_000;

let copy: string;

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string }> {
  // The child gets a clean environment for vitest (the outer run's VITEST_* variables would confuse it).
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST')));
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      { cwd: copy, env: { ...base, ...env }, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, out: `${stdout}${stderr}` });
      },
    );
  });
}

const node = (script: string) => join(copy, 'node_modules', script);
const build = () => run([node('typescript/bin/tsc'), '-p', 'tsconfig.build.json']);

beforeAll(async () => {
  copy = mkdtempSync(join(tmpdir(), 'rpm-scaffold-'));
  for (const entry of ['src', 'devices', 'scripts', 'test', 'package.json', 'tsconfig.json']) {
    cpSync(join(ROOT, entry), join(copy, entry), { recursive: true });
  }
  for (const entry of ['tsconfig.build.json', 'vitest.config.ts', 'biome.json']) {
    cpSync(join(ROOT, entry), join(copy, entry));
  }
  symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(copy, 'node_modules'), 'dir');
  expect((await build()).code).toBe(0);
  const scaffold = await run(['dist/scripts/driver-new.js', ID, '--name', NAME]);
  expect(scaffold.out).toContain(`wrote devices/${ID}/driver.ts`);
  expect(scaffold.code).toBe(0);
  expect((await build()).code).toBe(0); // `npm run driver:test` builds first, as here
}, SLOW_MS);

afterAll(() => {
  if (copy) rmSync(copy, { recursive: true, force: true });
});

describe('a driver as `npm run driver:new` writes it', () => {
  it('passes Biome', async () => {
    const biome = await run([node('@biomejs/biome/bin/biome'), 'check', `devices/${ID}`]);
    expect(biome.out).not.toMatch(/error/i);
    expect(biome.code).toBe(0);
  });

  it(
    'passes driver:test (fixtures, fuzz run, simulator replay) and is reported unverified',
    async () => {
      const out = join(copy, 'report.md');
      const result = await run([
        'dist/scripts/driver-test.js',
        `devices/${ID}`,
        '--fuzz',
        '5000',
        '--out',
        out,
      ]);
      expect(result.out).toMatch(/ok {3}fuzz vendor\/acme-ox100 \S+: 5000 payloads/);
      expect(result.out).toMatch(/ok {3}simulator \(fixtures\): 200 values/);
      expect(result.code).toBe(0);
      const report = readFileSync(out, 'utf8');
      expect(report).toContain(`# Conformance report: ${ID}@0.1.0`);
      expect(report).toContain(
        'Result: **PASS**. Evidence: **unverified** (0 fixture(s) from real captures, 3 constructed)',
      );
      expect(report).toContain('| Fixtures | 3 passed, 0 failed |');
      expect(report).toMatch(/\| Simulator model \| fixture replay .*: pass \|/);
      expect(report).toContain('| placeholder | constructed | - | 3 |');
    },
    SLOW_MS,
  );

  it(
    'is accepted by the suite tests that go over every bundled driver',
    async () => {
      const suite = await run(
        [
          node('vitest/vitest.mjs'),
          'run',
          '--reporter=verbose',
          'test/drivers/conformance.test.ts',
          'test/drivers/fuzz.test.ts',
          'test/drivers/provenance.test.ts',
          'test/ble/sim-central.test.ts',
          'test/cli/scan.test.ts',
          'test/cli/drivers.test.ts',
          'test/architecture.test.ts',
        ],
        { RPM_FUZZ_DRIVERS: ID, NO_COLOR: '1', FORCE_COLOR: '0' },
      );
      expect(suite.out).toContain(`${ID}@0.1.0`); // the conformance kit saw the new driver
      expect(suite.out).toMatch(/vendor\/acme-ox100: 1,000 samples decode/); // and the simulator
      expect(suite.out).toMatch(/Test Files +7 passed/);
      expect(suite.code).toBe(0);
    },
    SLOW_MS,
  );

  it(
    'fails driver:test when its decoder throws anything but DecodeError on bytes no fixture has',
    async () => {
      const path = join(copy, 'devices', ID, 'driver.ts');
      const source = readFileSync(path, 'utf8');
      const broken = source.replace(
        "const spo2 = r.u8('SpO2');",
        "const spo2 = r.u8('SpO2');\n  if (spo2 > 200) throw new RangeError('SpO2 out of range');",
      );
      expect(broken).not.toBe(source);
      writeFileSync(path, broken);
      try {
        expect((await build()).code).toBe(0);
        const out = join(copy, 'broken.md');
        const result = await run([
          'dist/scripts/driver-test.js',
          `devices/${ID}`,
          '--fuzz',
          '5000',
          '--out',
          out,
        ]);
        expect(result.out).toMatch(/FAIL fuzz vendor\/acme-ox100 \S+: 5000 payloads/);
        expect(result.out).toMatch(
          /threw RangeError: SpO2 out of range; decoders may throw only DecodeError/,
        );
        expect(result.code).toBe(1);
        expect(readFileSync(out, 'utf8')).toContain('Result: **FAIL**');
      } finally {
        writeFileSync(path, source);
      }
    },
    SLOW_MS,
  );
});
