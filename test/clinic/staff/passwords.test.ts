import argon2 from 'argon2';
import { describe, expect, it } from 'vitest';
import { StaffStoreError } from '../../../src/clinic/staff/errors.js';
import {
  hashPassword,
  INITIAL_PASSWORD_ALPHABET,
  INITIAL_PASSWORD_LENGTH,
  MAX_PASSWORD_BYTES,
  needsRehash,
  randomInitialPassword,
  verifyPassword,
} from '../../../src/clinic/staff/passwords.js';
import { checkPasswordHash } from '../../../src/clinic/staff/rules.js';

describe('staff passwords', () => {
  it('hashes with argon2id at the OWASP parameters, a fresh salt each time, and verifies', async () => {
    const a = await hashPassword('correct horse battery staple');
    const b = await hashPassword('correct horse battery staple');
    expect(a).toMatch(/^\$argon2id\$v=19\$[^$]+\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    const parameters = Object.fromEntries((a.split('$')[3] ?? '').split(',').map((kv) => kv.split('=')));
    expect(parameters).toEqual({ m: '19456', t: '2', p: '1' });
    expect(() => checkPasswordHash(a)).not.toThrow(); // what the stores accept
    expect(a).not.toBe(b);
    expect(await verifyPassword(a, 'correct horse battery staple')).toBe(true);
    expect(await verifyPassword(a, 'correct horse battery stapl')).toBe(false);
    expect(await verifyPassword(a, '')).toBe(false);
    expect(needsRehash(a)).toBe(false);
  });

  it('treats composed and decomposed accents as the same password (NFC)', async () => {
    const hash = await hashPassword('caf\u00e9-au-lait');
    expect(await verifyPassword(hash, 'cafe\u0301-au-lait')).toBe(true);
  });

  it('answers false, never throws, for hashes it cannot use and passwords beyond the bound', async () => {
    const hash = await hashPassword('x'.repeat(MAX_PASSWORD_BYTES));
    expect(await verifyPassword(hash, 'x'.repeat(MAX_PASSWORD_BYTES))).toBe(true);
    expect(await verifyPassword(hash, 'x'.repeat(MAX_PASSWORD_BYTES + 1))).toBe(false);
    for (const junk of [
      '',
      'plaintext',
      '$argon2id$v=19$m=1',
      '$argon2id$$$$',
      '$2b$10$abcdefghijklmnopqrstuv',
    ]) {
      expect(await verifyPassword(junk, 'plaintext')).toBe(false);
      expect(needsRehash(junk)).toBe(true);
    }
  });

  it('asks for a rehash of hashes made with weaker parameters or another variant', async () => {
    const weak = await argon2.hash('pw', {
      type: argon2.argon2id,
      memoryCost: 8192,
      timeCost: 2,
      parallelism: 1,
    });
    const argon2i = await argon2.hash('pw', {
      type: argon2.argon2i,
      memoryCost: 19456,
      timeCost: 2,
      parallelism: 1,
    });
    expect(await verifyPassword(weak, 'pw')).toBe(true); // still verifies, so the login can replace it
    expect(needsRehash(weak)).toBe(true);
    expect(needsRehash(argon2i)).toBe(true);
  });

  it('refuses to hash an empty or over-long password', async () => {
    for (const password of ['', 'é'.repeat(MAX_PASSWORD_BYTES / 2 + 1)]) {
      const error = await hashPassword(password).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StaffStoreError);
      expect((error as StaffStoreError).code).toBe('STAFF_PASSWORD_INVALID');
    }
  });

  it('makes random initial passwords of 20 characters from 62, every character used', () => {
    expect(INITIAL_PASSWORD_ALPHABET).toHaveLength(62);
    expect(new Set(INITIAL_PASSWORD_ALPHABET).size).toBe(62);
    const passwords = Array.from({ length: 500 }, randomInitialPassword);
    for (const p of passwords) expect(p).toMatch(new RegExp(`^[A-Za-z0-9]{${INITIAL_PASSWORD_LENGTH}}$`));
    expect(new Set(passwords).size).toBe(passwords.length);
    // 10,000 characters drawn: every one of the 62 appears (each is missing with probability ~1e-70).
    expect(new Set(passwords.join('')).size).toBe(62);
  });
});
