import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

const run = promisify(execFile);
const bin = join(import.meta.dirname, '../../dist/src/cli/bin.js');

const cli = (args: string[], stdin = '') => runCli(args, { stdin });

// Blood Pressure Measurement, flags 0 (mmHg, no options): 120/80, MAP 93 (GATT Spec Supplement 3.31).
const BP = '00780050005d00';
const BP_OBSERVATIONS = [
  { code: 'MDC_PRESS_BLD_NONINV_SYS', value: 120, unit: 'mm[Hg]' },
  { code: 'MDC_PRESS_BLD_NONINV_DIA', value: 80, unit: 'mm[Hg]' },
  { code: 'MDC_PRESS_BLD_NONINV_MEAN', value: 93, unit: 'mm[Hg]' },
];

describe('rpm-gateway decode (devices/README.md, "Checking by hand")', () => {
  it('prints one JSON object for one payload', async () => {
    const { code, stdout } = await cli(['decode', '2a35', BP]);
    expect(code).toBe(0);
    expect(stdout.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(stdout)).toMatchObject({ observations: BP_OBSERVATIONS, time: null });
  });

  it.each(['2A35', '0x2a35', '0X2A35', '00002a35-0000-1000-8000-00805f9b34fb'])(
    'accepts the UUID as %s',
    async (uuid) => {
      const { code, stdout } = await cli(['decode', uuid, BP]);
      expect(code).toBe(0);
      expect(JSON.parse(stdout).observations).toEqual(BP_OBSERVATIONS);
    },
  );

  it.each([
    ['2a35', '0078', 'DECODE_TRUNCATED'],
    ['2a35', `${BP}00`, 'DECODE_TRAILING_BYTES'],
    ['2aff', '00', 'DECODE_UNKNOWN_CHARACTERISTIC'],
    ['2a35', 'zz', 'DECODE_BAD_HEX'],
    ['not-a-uuid', '00', 'DECODE_BAD_UUID'],
  ])('exits 1 with a typed error for %s %s', async (uuid, hex, errorCode) => {
    const { code, stdout, stderr } = await cli(['decode', uuid, hex]);
    expect(code).toBe(1);
    expect(JSON.parse(stdout).error.code).toBe(errorCode);
    expect(stderr).toBe('');
  });

  it('answers every NDJSON line in order, errors included', async () => {
    const lines = [
      JSON.stringify({ char: '2a35', hex: BP }),
      '',
      'not json',
      JSON.stringify({ char: '2a35', hex: '00' }),
      JSON.stringify({ char: 42, hex: '00' }),
      JSON.stringify({ char: '0x2A35', hex: BP }),
    ];
    const { code, stdout } = await cli(['decode', '--ndjson'], `${lines.join('\n')}\n`);
    expect(code).toBe(0);
    const out = stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(out).toHaveLength(lines.length);
    expect(out[0].observations).toEqual(BP_OBSERVATIONS);
    expect(out.slice(1, 5).map((o) => o.error.code)).toEqual([
      'DECODE_EMPTY_INPUT',
      'DECODE_BAD_REQUEST',
      'DECODE_TRUNCATED',
      'DECODE_BAD_REQUEST',
    ]);
    expect(out[5].observations).toEqual(BP_OBSERVATIONS);
  });

  it('is a usage error (exit 2) without arguments', async () => {
    const { code, stderr } = await cli(['decode']);
    expect(code).toBe(2);
    expect(stderr).toContain('Usage:');
  });

  it('has --help on every command', async () => {
    for (const command of ['decode', 'drivers', 'start', 'init']) {
      const { code, stdout } = await cli([command, '--help']);
      expect(code).toBe(0);
      expect(stdout).toContain('Usage:');
    }
    const top = await cli(['--help']);
    expect(top.stdout).toMatch(/decode\s+decode a characteristic/);
  });

  it('takes --driver as `drivers` prints it (id@version) or by its id, and refuses another version', async () => {
    const listed = (await cli(['drivers'])).stdout.match(/^sig\/heart-rate@\S+/m)?.[0] as string;
    expect(listed).toMatch(/^sig\/heart-rate@\d+\.\d+\.\d+$/);
    // Heart Rate Measurement, flags 0 (8-bit value, no contact detection): 72 /min (GATT Spec Supplement 3.116).
    for (const driver of [listed, 'sig/heart-rate']) {
      const { code, stdout } = await cli(['decode', '--driver', driver, '2a37', '0048']);
      expect(code).toBe(0);
      expect(JSON.parse(stdout)).toMatchObject({
        observations: [{ code: 'MDC_ECG_HEART_RATE', value: 72, unit: '/min' }],
        driver: listed,
      });
    }
    const ndjson = await cli(['decode', '--ndjson', '--driver', listed], '{"char":"2a37","hex":"0048"}\n');
    expect(JSON.parse(ndjson.stdout).driver).toBe(listed);
    const other = await cli(['decode', '--driver', 'sig/heart-rate@0.0.1', '2a37', '0048']);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(
      /^rpm-gateway decode: --driver sig\/heart-rate@0\.0\.1: the bundled sig\/heart-rate is version \d/,
    );
    const unknown = await cli(['decode', '--driver', 'acme/nothing', '2a37', '0048']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /^rpm-gateway decode: --driver acme\/nothing: no bundled driver has the id acme\/nothing/,
    );
  });

  it('refuses unknown commands and options without a stack trace', async () => {
    expect((await cli(['fly'])).code).toBe(2);
    const bad = await cli(['decode', '--bogus']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('the built executable', () => {
  it('exists (npm test builds first; run `npm run build` when calling vitest directly)', () => {
    expect(existsSync(bin)).toBe(true);
  });

  it('decodes and exits 0, and exits 1 on bad input without a stack trace', async () => {
    const ok = await run(process.execPath, [bin, 'decode', '2a35', BP]);
    expect(JSON.parse(ok.stdout).observations).toEqual(BP_OBSERVATIONS);
    const bad = await run(process.execPath, [bin, 'decode', '2a35', '00']).catch((error) => error);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout).error).toMatchObject({ code: 'DECODE_TRUNCATED', offset: 1 });
    expect(bad.stderr).toBe('');
  });

  it('stops quietly, with status 0, when the reader of its output goes away (decode --ndjson | head -1)', async () => {
    const child = spawn(process.execPath, [bin, 'decode', '--ndjson'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal })),
    );
    // More requests than one pipe buffer of answers, so the command is still writing when the reader leaves.
    child.stdin.on('error', () => undefined); // it may stop reading its input before the end: expected
    child.stdin.end(`${JSON.stringify({ char: '2a35', hex: BP })}\n`.repeat(100_000));
    const first = await new Promise<string>((resolve) => {
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        const end = out.indexOf('\n');
        if (end >= 0) {
          child.stdout.destroy(); // what `head -1` does after the first line: close its end of the pipe
          resolve(out.slice(0, end));
        }
      });
    });
    expect(JSON.parse(first).observations).toEqual(BP_OBSERVATIONS);
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(stderr).toBe('');
  });
});
