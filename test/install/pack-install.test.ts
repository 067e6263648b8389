// The release artefact: `npm pack` of a copy of this checkout, installed by scripts/install-pi.sh
// --package-only into a temporary prefix with npm offline (npm_config_offline: every package comes from the
// npm cache that `npm ci` filled) and without dev dependencies, so without TypeScript. Then the installed
// `rpm-gateway` answers --help and decodes a reading, and the native modules it compiled load.
//
// It compiles better-sqlite3-multiple-ciphers (SQLite with its ciphers) from source: minutes, not seconds.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const INSTALL_TIMEOUT_MS = 20 * 60_000;

/** Skipped only where npm itself is missing; everything else that goes wrong fails. */
const hasNpm = spawnSync('npm', ['--version'], { encoding: 'utf8' }).status === 0;

/** The environment without the npm_* variables `npm test` sets, so the npm run here reads only its own flags. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.toLowerCase().startsWith('npm_')) env[key] = value;
  }
  return { ...env, ...extra };
}

function must(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv }) {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} exited ${result.status}:\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result;
}

describe.skipIf(!hasNpm)('the packed release, installed offline without dev dependencies', () => {
  let dir: string;
  let prefix: string;
  let tarballFiles: string[];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rpm-pack-install-'));
    // Pack a copy: prepack cleans and rebuilds dist/, which other test files running now read in this checkout.
    const checkout = join(dir, 'checkout');
    const skip = new Set(['node_modules', 'dist', '.git', 'coverage', '.tmp']);
    cpSync(ROOT, checkout, {
      recursive: true,
      filter: (source) => !skip.has(relative(ROOT, source).split(sep)[0] ?? ''),
    });
    symlinkSync(join(ROOT, 'node_modules'), join(checkout, 'node_modules'));
    const out = join(dir, 'out');
    mkdirSync(out);
    must('npm', ['pack', '--pack-destination', out], { cwd: checkout, env: cleanEnv({}) });
    const [tarball, ...others] = readdirSync(out);
    expect(others).toEqual([]);
    tarballFiles = must('tar', ['-tzf', join(out, tarball as string)], {})
      .stdout.trim()
      .split('\n');

    prefix = join(dir, 'opt', 'rpm-gateway');
    must(
      'bash',
      [
        join(checkout, 'scripts/install-pi.sh'),
        '--package-only',
        '--tarball',
        join(out, tarball as string),
        '--prefix',
        prefix,
      ],
      {
        cwd: dir,
        // Offline: npm resolves nothing and downloads nothing; build-from-source keeps prebuild-install from
        // fetching a binary from GitHub, so the native module is compiled here as on a Pi without one.
        env: cleanEnv({ npm_config_offline: 'true', npm_config_build_from_source: 'true' }),
      },
    );
  }, INSTALL_TIMEOUT_MS);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('carries the built JavaScript and what the installer needs, and no sources, tests, maps or keys', () => {
    expect(tarballFiles).toContain('package/dist/src/cli/bin.js');
    expect(tarballFiles).toContain('package/npm-shrinkwrap.json');
    expect(tarballFiles).toContain('package/config/systemd/rpm-gateway.service');
    expect(tarballFiles).toContain('package/config/gateway.example.yaml');
    expect(tarballFiles).toContain('package/scripts/install-pi.sh');
    expect(tarballFiles.some((file) => /^package\/dist\/devices\/sig\/[^/]+\/driver\.js$/.test(file))).toBe(
      true,
    );
    const unwanted = tarballFiles.filter((file) =>
      /\.ts$|\.map$|^package\/(test|src|devices|certs|\.ci)\/|^package\/dist\/(scripts|test)\/|\.(pem|key)$/.test(
        file,
      ),
    );
    expect(unwanted).toEqual([]);
  });

  it('installs no TypeScript and no other development dependency', () => {
    expect(existsSync(join(prefix, 'dist/src/cli/bin.js'))).toBe(true);
    for (const dev of ['typescript', 'vitest', '@biomejs/biome', 'better-sqlite3']) {
      expect(existsSync(join(prefix, 'node_modules', dev)), dev).toBe(false);
    }
  });

  it('rpm-gateway --help runs from the install', () => {
    // Run as the installer's link does: the file itself, through its #! line.
    const result = spawnSync(join(prefix, 'dist/src/cli/bin.js'), ['--help'], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('Usage: rpm-gateway <command>');
    expect(result.stdout).toMatch(/^ {2}decode /m);
  });

  it('rpm-gateway drivers knows the evidence of each bundled driver from the install (fixtures beside the drivers)', () => {
    const result = spawnSync(join(prefix, 'dist/src/cli/bin.js'), ['drivers'], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^sig\/pulse-oximeter@\S+ .* verified$/m);
    expect(result.stdout).not.toMatch(/ unknown$/m);
  });

  it('rpm-gateway decode decodes a blood-pressure reading with the bundled drivers', () => {
    const result = spawnSync(join(prefix, 'dist/src/cli/bin.js'), ['decode', '2a35', '00780050005d00'], {
      encoding: 'utf8',
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const decoded = JSON.parse(result.stdout) as {
      observations: { code: string; value: number; unit: string }[];
      driver: string;
    };
    expect(decoded.observations).toEqual([
      { code: 'MDC_PRESS_BLD_NONINV_SYS', value: 120, unit: 'mm[Hg]' },
      { code: 'MDC_PRESS_BLD_NONINV_DIA', value: 80, unit: 'mm[Hg]' },
      { code: 'MDC_PRESS_BLD_NONINV_MEAN', value: 93, unit: 'mm[Hg]' },
    ]);
    expect(decoded.driver).toMatch(/^sig\/blood-pressure@/);
  });

  it('the native modules were compiled and work: an encrypted SQLite file as the store makes it, unix-dgram', () => {
    // The store's own settings (src/store/encrypted-database.ts): ChaCha20 cipher, a raw 256-bit key.
    const check = `
      const { readFileSync } = require('node:fs');
      const file = process.argv[1];
      const Database = require('better-sqlite3-multiple-ciphers');
      const db = new Database(file);
      db.pragma("cipher = 'chacha20'");
      db.pragma('key = "raw:${'ab'.repeat(32)}"');
      db.exec("create table t (v text); insert into t values ('plain-marker')");
      console.log(db.prepare('select sqlite_version() as v').get().v);
      db.close();
      const bytes = readFileSync(file);
      if (bytes.includes('SQLite format 3') || bytes.includes('plain-marker')) throw new Error('not encrypted');
      require('unix-dgram').createSocket('unix_dgram').close();`;
    const result = spawnSync(process.execPath, ['-e', check, join(dir, 'native.db')], {
      cwd: prefix,
      encoding: 'utf8',
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toMatch(/^3\.\d+\.\d+$/);
  });
});
