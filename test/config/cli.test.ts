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
  dir = mkdtempSync(join(tmpdir(), 'rpm-config-cli-'));
  mkdirSync(join(dir, 'state'));
  mkdirSync(join(dir, 'tls'));
  for (const name of ['ca.crt', 'gateway.crt', 'gateway.key']) writeFileSync(join(dir, 'tls', name), 'x');
  writeFileSync(join(dir, 'state', 'store.key'), 'x');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const VALID = `gateway:
  id: hub-0001
paths:
  dataDir: state
store:
  key: { file: state/store.key }
tls:
  ca: tls/ca.crt
  cert: tls/gateway.crt
  key: { file: tls/gateway.key }
uplink:
  brokers:
    - url: mqtts://broker.example:8883
`;

/** The built `rpm-gateway`, in its own process, with only the environment given (no stray RPM_* variables). */
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

function config(text: string): string {
  const path = join(dir, 'gateway.yaml');
  writeFileSync(path, text);
  return path;
}

describe('rpm-gateway config check', () => {
  it('prints ok and a one-line summary for a valid configuration', async () => {
    const result = await cli(['config', 'check', '--config', config(VALID)]);
    expect(result).toEqual({
      code: 0,
      stdout: `ok: gateway hub-0001, 1 broker (first mqtts://broker.example:8883), data ${join(dir, 'state')}, store key from key file ${join(dir, 'state/store.key')}, file ${join(dir, 'gateway.yaml')}\n`,
      stderr: '',
    });
  });

  it('prints every problem with its place, exit status 1, no stack trace', async () => {
    const path = config(
      VALID.replace('id: hub-0001', 'id: Hub_1').replace('uplink:', 'uplnk:') +
        'log:\n  level: loud\nmetrics:\n  port: 0\nshutdown:\n  deadline: 10\n',
    );
    const result = await cli(['config', 'check', '--config', path], { RPM_LOG_REDACT: 'maybe' });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('rpm-gateway config: 7 problems:');
    expect(lines.slice(1).map((l) => l.trim().split(': ').slice(0, 2).join(': '))).toEqual([
      `${path}:2:7: gateway.id`,
      `${path}:11:1: uplnk`,
      `${path}:15:10: log.level`,
      `${path}:17:9: metrics.port`,
      `${path}:19:13: shutdown.deadline`,
      // uplink.brokers is now unset: said once, with how to set it.
      'uplink.brokers: required',
      'env RPM_LOG_REDACT: log.redact',
    ]);
    expect(result.stderr).toContain('did you mean uplink?');
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });

  it('refuses a data directory that does not exist, naming it and the flag, and creates nothing', async () => {
    const result = await cli(['config', 'check', '--config', config(VALID), '--data-dir', 'stat']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `flag --data-dir: paths.dataDir: ${join(dir, 'stat')} does not exist; check it for a typo (nothing was created)`,
    );
    const again = await cli(['config', 'check', '--config', config(VALID), '--data-dir', 'stat']);
    expect(again.stderr).toContain(`${join(dir, 'stat')} does not exist`);
  });

  it('warns when log redaction is turned off, and still passes', async () => {
    const result = await cli(['config', 'check', '--config', config(VALID), '--set', 'log.redact=false']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ok: /);
    expect(result.stderr).toBe(
      'rpm-gateway config: warning: log.redact is false (flag --set): reading values, Bluetooth addresses, device names and keys will be written to the logs\n',
    );
  });

  it('answers in JSON with --json', async () => {
    const bad = await cli(['config', 'check', '--json', '--config', config(VALID), '--gateway-id', 'X']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toEqual({
      ok: false,
      issues: [
        {
          code: 'CONFIG_BAD_VALUE',
          path: 'gateway.id',
          message: expect.stringContaining('3 to 63 lower-case letters'),
          source: 'flag --gateway-id',
        },
      ],
      warnings: [],
    });
  });
});

describe('rpm-gateway config print', () => {
  it('prints the effective configuration with the source of each value', async () => {
    const result = await cli(
      [
        'config',
        'print',
        '--config',
        config(VALID),
        '--set',
        'metrics.port=9100',
        '--credential',
        'store-key',
      ],
      { RPM_LOG_LEVEL: 'debug' },
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('  id: hub-0001 # file:2\n');
    expect(result.stdout).toContain('  level: debug # env RPM_LOG_LEVEL\n');
    expect(result.stdout).toContain('  port: 9100 # flag --set\n');
    expect(result.stdout).toContain('    maxAge: 30d # default\n');
    // The store key as its reference: the flag's credential replaced the file's key file.
    expect(result.stdout).toContain('  key:\n    credential: store-key # flag --credential\n');
    expect(result.stdout).not.toContain('state/store.key');
  });

  it('prints JSON with --json, and a file it prints reads back as the same configuration', async () => {
    const json = await cli(['config', 'print', '--json', '--config', config(VALID)]);
    const printed = JSON.parse(json.stdout) as { config: { gateway: { id: string } }; sources: object };
    expect(printed.config.gateway.id).toBe('hub-0001');
    expect(printed.sources).toMatchObject({
      'gateway.id': `${join(dir, 'gateway.yaml')}:2:7`,
      'log.level': 'default',
    });
    const yaml = await cli(['config', 'print', '--config', config(VALID)]);
    writeFileSync(join(dir, 'printed.yaml'), yaml.stdout);
    const again = await cli(['config', 'print', '--json', '--config', join(dir, 'printed.yaml')]);
    expect((JSON.parse(again.stdout) as { config: unknown }).config).toEqual(printed.config);
  });

  it('prints what it can and every problem, exit status 1, for an invalid configuration', async () => {
    const result = await cli(['config', 'print', '--config', config(`${VALID}log:\n  level: loud\n`)]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('  level: loud # file:15\n');
    expect(result.stderr).toContain('log.level: not one of');
  });
});

describe('usage', () => {
  it('has help for the command and its actions', async () => {
    for (const args of [
      ['config', '--help'],
      ['config', 'check', '--help'],
      ['config', 'print', '-h'],
    ]) {
      const result = await cli(args);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^Usage: rpm-gateway config <check\|print>/);
    }
    const main = await cli(['--help']);
    expect(main.stdout).toMatch(/\n {2}config +check the configuration/);
  });

  it('exits 2 with the help for a missing action or an unknown option', async () => {
    for (const args of [['config'], ['config', 'verify'], ['config', 'check', '--bogus']]) {
      const result = await cli(args);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('Usage: rpm-gateway config');
    }
  });
});
