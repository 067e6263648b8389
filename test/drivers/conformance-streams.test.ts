import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import berrymed from '../../devices/vendor/berrymed-bm1000/driver.js';
import { checkDriver } from '../../src/drivers/conformance.js';
import { type Fixture, readFixtureFile } from '../../src/drivers/fixtures.js';
import { DriverError } from '../../src/errors.js';

/** The conformance kit on stream fixtures: frame errors are checked like readings, never ignored. */
const CHAR = '49535343-1e4d-4bd9-ba61-23c647249616';
const READING = {
  observations: [
    { code: 'MDC_PULS_OXIM_SAT_O2', value: 98, unit: '%' },
    { code: 'MDC_PULS_OXIM_PULS_RATE', value: 72, unit: '/min' },
  ],
  time: null,
} as const;

const check = (fixture: Partial<Fixture>) =>
  checkDriver(berrymed, {
    sources: { s: 'test' },
    fixtures: [{ name: 't', char: CHAR, source: 's', ...fixture } as Fixture],
  }).results[0];

describe('conformance kit: stream fixtures', () => {
  it('passes a split frame given as a stream, with its readings and no errors', () => {
    expect(check({ stream: ['873205', '4862'], expect: READING })?.problems).toEqual([]);
  });

  it('fails a fixture whose stream reports an error it does not list', () => {
    const result = check({ stream: ['01873205', '4862'], expect: READING });
    expect(result?.ok).toBe(false);
    expect(result?.problems.join()).toContain('DECODE_FRAME_GARBAGE');
  });

  it('checks the listed errors code, byte count and offset, in order', () => {
    const base = { stream: ['01873205', '4862'], expect: READING };
    expect(check({ ...base, errors: [{ code: 'DECODE_FRAME_GARBAGE', bytes: 1, offset: 0 }] })?.ok).toBe(
      true,
    );
    expect(check({ ...base, errors: [{ code: 'DECODE_FRAME_GARBAGE', bytes: 2 }] })?.ok).toBe(false);
    expect(check({ ...base, errors: [{ code: 'DECODE_CHECKSUM' }] })?.ok).toBe(false);
    expect(check({ ...base, errors: [] })?.ok).toBe(false);
  });

  it('takes error on a framed fixture that decodes nothing as its only error', () => {
    expect(check({ hex: '873205', error: { code: 'DECODE_TRUNCATED' } })?.ok).toBe(true);
    expect(check({ hex: '873205', expect: [] })?.ok).toBe(false);
  });

  it('refuses fixture files that give both hex and stream, or an empty stream', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fixtures-'));
    try {
      for (const bad of [
        { hex: '00', stream: ['00'] },
        { stream: [] },
        { stream: [1] },
        { hex: '00', errors: 'x' },
      ]) {
        const path = join(dir, 'fixtures.json');
        await writeFile(
          path,
          JSON.stringify({
            sources: { s: 'x' },
            fixtures: [{ name: 'n', char: CHAR, source: 's', expect: [], ...bad }],
          }),
        );
        await expect(readFixtureFile(path)).rejects.toBeInstanceOf(DriverError);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
