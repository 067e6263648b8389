import { describe, expect, it } from 'vitest';
import { CopyData, copyData, copyField } from '../../../src/clinic/storage/postgres/copy-rows.js';

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

  it('one line per row, fields separated by tabs, as UTF-8; no rows is no data', () => {
    expect(
      copyData([
        ['a', 1, null],
        ['b\tc', 2, true],
        ['é ☃ 𝄞', 0.5, false],
      ]).toString('utf8'),
    ).toBe('a\t1\t\\N\nb\\tc\t2\tt\né ☃ 𝄞\t0.5\tf\n');
    expect(copyData([])).toHaveLength(0);
  });

  it('grows past its first allocation without losing what it holds, even by one multi-byte field', () => {
    const data = new CopyData(8);
    const rows: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const text = `${i}-${'☃'.repeat(i % 7)}`;
      data.field(i);
      data.field(text);
      data.endRow();
      rows.push(`${i}\t${text}\n`);
    }
    data.field('𝄞'.repeat(5000));
    data.endRow();
    rows.push(`${'𝄞'.repeat(5000)}\n`);
    expect(data.bytes().toString('utf8')).toBe(rows.join(''));

    const fromNothing = new CopyData(0);
    fromNothing.field('a');
    fromNothing.endRow();
    expect(fromNothing.bytes().toString('utf8')).toBe('a\n');
  });
});
