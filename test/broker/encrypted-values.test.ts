import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { encryptedValues } from '../../src/broker/encrypted-values.js';
import type { BrokerError } from '../../src/broker/errors.js';
import { SEAL_OVERHEAD, UnsealError, ValueCipher } from '../../src/broker/value-cipher.js';

/**
 * The encrypting store wrapper on a real LevelDB: every path aedes-persistence-level reads or writes values
 * through seals or opens them, and a value that does not open is reported and skipped, never handed out.
 */
let dir: string;
let raw: ClassicLevel<string, Buffer>;
const key = randomBytes(32);
const errors: BrokerError[] = [];
let db: ClassicLevel<string, Buffer>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-sealed-values-'));
  raw = new ClassicLevel<string, Buffer>(dir, { valueEncoding: 'buffer' });
  await raw.open();
});
afterAll(async () => {
  await raw.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await raw.clear();
  errors.length = 0;
  db = encryptedValues(raw, new ValueCipher(key), (e) => errors.push(e));
});

const text = (value: Buffer | undefined) => value?.toString();

describe('sealing and opening', () => {
  it('put, array batch and chained batch write sealed values; get, getSync, getMany, values, iterator open them', async () => {
    await db.put('outgoing:a:1', Buffer.from('one'));
    await db.batch([
      { type: 'put', key: 'outgoing:a:2', value: Buffer.from('two') },
      { type: 'del', key: 'outgoing:a:1' },
    ]);
    const chained = db.batch();
    chained.put('outgoing:a:3', Buffer.from('three'));
    await chained.write();

    for (const [k, plain] of [
      ['outgoing:a:2', 'two'],
      ['outgoing:a:3', 'three'],
    ] as const) {
      const stored = (await raw.get(k)) as Buffer;
      expect(stored.includes(plain)).toBe(false);
      expect(stored.length).toBe(SEAL_OVERHEAD + plain.length);
    }
    expect(text(await db.get('outgoing:a:2'))).toBe('two');
    expect(text(db.getSync('outgoing:a:3'))).toBe('three');
    expect(await db.get('outgoing:a:1')).toBeUndefined();
    expect((await db.getMany(['outgoing:a:2', 'outgoing:a:1', 'outgoing:a:3'])).map(text)).toEqual([
      'two',
      undefined,
      'three',
    ]);
    const values: string[] = [];
    for await (const v of db.values({ gte: 'outgoing:', lt: 'outgoing;' })) values.push(v.toString());
    expect(values).toEqual(['two', 'three']);
    expect((await db.iterator().all()).map(([k, v]) => [k, v.toString()])).toEqual([
      ['outgoing:a:2', 'two'],
      ['outgoing:a:3', 'three'],
    ]);
    expect(errors).toEqual([]);
  });

  it('a value moved under another key, a changed byte, another key: reported, skipped, left on disk', async () => {
    await db.batch(
      ['a', 'b', 'c', 'd', 'e'].map((k) => ({ type: 'put', key: `will:${k}`, value: Buffer.from(k) })),
    );
    // b gets a's value, c a flipped last byte (the tag), d a value sealed under another key
    await raw.put('will:b', (await raw.get('will:a')) as Buffer);
    const c = Buffer.from((await raw.get('will:c')) as Buffer);
    c[c.length - 1] = (c[c.length - 1] as number) ^ 0x80;
    await raw.put('will:c', c);
    await raw.put('will:d', new ValueCipher(randomBytes(32)).seal('will:d', Buffer.from('d')));

    const values: string[] = [];
    for await (const v of db.values()) values.push(v.toString());
    expect(values).toEqual(['a', 'e']);
    expect(errors.map((e) => [e.code, e.message])).toEqual([
      [
        'BROKER_PERSISTENCE_CORRUPT',
        expect.stringMatching(/^the stored value of will:b failed authentication/),
      ],
      [
        'BROKER_PERSISTENCE_CORRUPT',
        expect.stringMatching(/^the stored value of will:c failed authentication/),
      ],
      [
        'BROKER_PERSISTENCE_CORRUPT',
        expect.stringMatching(/^the stored value of will:d sealed under another key/),
      ],
    ]);
    expect(await db.get('will:b')).toBeUndefined();
    expect((await db.iterator().nextv(10)).map(([k]) => k)).toEqual(['will:a', 'will:e']);
    expect(await raw.get('will:b')).toBeDefined();
  });

  it('the cipher refuses a short or unknown-version value as malformed', () => {
    const cipher = new ValueCipher(key);
    const sealed = cipher.seal('k', Buffer.from('x'));
    expect(() => cipher.unseal('k', sealed.subarray(0, 10))).toThrow(UnsealError);
    const v2 = Buffer.from(sealed);
    v2[0] = 2;
    expect(() => cipher.unseal('k', v2)).toThrow(expect.objectContaining({ problem: 'malformed' }));
    // a later run (another subkey) of the same key opens it
    expect(new ValueCipher(key).unseal('k', sealed).toString()).toBe('x');
  });

  it('refuses sublevels, non-string keys and non-Buffer values rather than writing around the cipher', async () => {
    expect(() => db.sublevel('s')).toThrow(/no sublevels/);
    await expect(db.put('k', 'text' as unknown as Buffer)).rejects.toThrow(/Buffer values only/);
    await expect(db.batch([{ type: 'put', key: 'k', value: 'text' as unknown as Buffer }])).rejects.toThrow(
      /Buffer values only/,
    );
    expect(await raw.keys().all()).toEqual([]);
  });
});
