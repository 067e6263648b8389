import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const execFileAsync = promisify(execFile);
const bin = join(import.meta.dirname, '../../dist/src/cli/bin.js');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rpm-clinic-config-cli-'));
  mkdirSync(join(dir, 'state'));
  mkdirSync(join(dir, 'pki', 'gateways'), { recursive: true });
  for (const name of ['ca.crt', 'broker.crt', 'broker.key', 'intake.crt', 'intake.key']) {
    writeFileSync(join(dir, 'pki', name), 'x');
  }
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const VALID = `clinic:
  name: st-mary
  timeZone: UTC
paths:
  dataDir: state
pki:
  ca: pki/ca.crt
  gatewayCerts: pki/gateways
broker:
  cert: pki/broker.crt
  key: { file: pki/broker.key }
intake:
  cert: pki/intake.crt
  key: { file: pki/intake.key }
`;

/** The built `rpm-gateway`, in its own process, with only the environment given. */
async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [bin, ...args], {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: dir, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function config(text: string, name = 'clinic.yaml'): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('rpm-gateway clinic config check', () => {
  it('prints ok and a one-line summary for a valid configuration', async () => {
    const path = config(VALID);
    const result = await cli(['clinic', 'config', 'check', '--config', path]);
    expect(result).toEqual({
      code: 0,
      stdout: `ok: clinic st-mary (UTC), broker on 127.0.0.1:8883, intake as clinic-st-mary-in (first mqtts://127.0.0.1:8883), database sqlite ${join(dir, 'state', 'clinic.db')}, FHIR export off, file ${path}\n`,
      stderr: '',
    });
  });

  it('lists every problem with file:line:col and exits 1, reading $RPM_CLINIC_CONFIG', async () => {
    const path = config(
      VALID.replace('name: st-mary', 'name: St Mary').replace('pki/broker.crt', 'pki/brokr.crt') +
        'log:\n  levle: debug\n',
      'other.yaml',
    );
    const result = await cli(['clinic', 'config', 'check'], { RPM_CLINIC_CONFIG: path });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n').slice(0, 3)).toEqual([
      'rpm-gateway clinic config: 2 problems:',
      expect.stringMatching(new RegExp(`^  ${path}:2:9: clinic.name: .*\\[CONFIG_BAD_VALUE\\]$`)),
      expect.stringMatching(
        new RegExp(
          `^  ${path}:16:3: log.levle: unknown key \\(did you mean level\\?\\).*\\[CONFIG_UNKNOWN_KEY\\]$`,
        ),
      ),
    ]);
    // Paths are checked once the configuration reads.
    const fixed = config(VALID.replace('pki/broker.crt', 'pki/brokr.crt'));
    const missing = await cli(['clinic', 'config', 'check', '--json', '--config', fixed]);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout)).toMatchObject({
      ok: false,
      issues: [{ code: 'CONFIG_PATH_MISSING', path: 'broker.cert', source: `${fixed}:10:9` }],
    });
  });

  it('refuses a database file whose key is missing, but lets a new database be made with its key', async () => {
    const path = config(VALID);
    writeFileSync(join(dir, 'state', 'clinic.db'), '');
    const result = await cli(['clinic', 'config', 'check', '--config', path]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('database.sqlite.key:');
    expect(result.stderr).toContain('[CONFIG_PATH_MISSING]');
  });

  it('refuses a broker store whose key is missing; an empty store folder may still get a new key', async () => {
    const path = config(VALID);
    mkdirSync(join(dir, 'state', 'broker'));
    const empty = await cli(['clinic', 'config', 'check', '--config', path]);
    expect(empty.code).toBe(0);
    writeFileSync(join(dir, 'state', 'broker', 'CURRENT'), 'MANIFEST-000001\n');
    const result = await cli(['clinic', 'config', 'check', '--json', '--config', path]);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({
      ok: false,
      issues: [{ code: 'CONFIG_PATH_MISSING', path: 'broker.persistence.key' }],
    });
  });
});

describe('rpm-gateway clinic config print', () => {
  it('shows every value with where it came from, hub variables ignored', async () => {
    const result = await cli(
      ['clinic', 'config', 'print', '--config', config(VALID), '--set', 'broker.port=18883'],
      {
        RPM_CLINIC_LOG_LEVEL: 'debug',
        RPM_LOG_LEVEL: 'trace',
      },
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('layers: defaults < file');
    expect(result.stdout).toContain('< RPM_CLINIC_* environment < flags');
    expect(result.stdout).toContain('  name: st-mary # file:2');
    expect(result.stdout).toContain('  port: 18883 # flag --set');
    expect(result.stdout).toContain('  level: debug # env RPM_CLINIC_LOG_LEVEL');
    expect(result.stdout).toContain(
      '    - url: mqtts://127.0.0.1:18883 # default (the broker of this machine)',
    );
    expect(result.stdout).toContain(
      `      file: ${join(dir, 'state', 'clinic.key')} # default (in paths.dataDir)`,
    );
  });
});

describe('rpm-gateway clinic --help', () => {
  it('shows help for the group and the command, and usage errors exit 2', async () => {
    const group = await cli(['clinic', '--help']);
    expect(group.code).toBe(0);
    expect(group.stdout).toMatch(/config +check the clinic/);
    const command = await cli(['clinic', 'config', '--help']);
    expect(command.code).toBe(0);
    expect(command.stdout).toContain('Usage: rpm-gateway clinic config <check|print>');
    const top = await cli(['--help']);
    expect(top.stdout).toContain('  clinic ');
    const wrong = await cli(['clinic', 'config', 'verify']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('unknown clinic config action "verify"');
    expect(wrong.stderr).toContain('Usage: rpm-gateway clinic config');
  });
});
