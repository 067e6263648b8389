import { describe, expect, it } from 'vitest';
import { copyField, copyText } from '../../../src/clinic/storage/postgres/copy-rows.js';

// PostgreSQL docs, COPY, "Text Format": backslash, newline, carriage return and tab are written as backslash
// sequences; NULL is \N. The round trip through a real server is in the contract suite (postgres.test.ts).
describe('COPY text format', () => {
  it('escapes the four characters the format reserves, and nothing else', () => {
    expect(copyField('plain "quoted" é ☃')).toBe('plain "quoted" é ☃');
    expect(copyField('a\tb\nc\rd\\e')).toBe('a\\tb\\nc\\rd\\\\e');
    expect(copyField('\\N')).toBe('\\\\N');
  });

  it('writes NULL, booleans and numbers as PostgreSQL reads them', () => {
    expect(copyField(null)).toBe('\\N');
    expect([copyField(true), copyField(false)]).toEqual(['t', 'f']);
    expect([copyField(1796500000000), copyField(88.5), copyField(-0.25), copyField(Number.NaN)]).toEqual([
      '1796500000000',
      '88.5',
      '-0.25',
      'NaN',
    ]);
  });

  it('one line per row, fields separated by tabs; no rows is no data', () => {
    expect(
      copyText([
        ['a', 1, null],
        ['b\tc', 2, true],
      ]),
    ).toBe('a\t1\t\\N\nb\\tc\t2\tt\n');
    expect(copyText([])).toBe('');
  });
});
