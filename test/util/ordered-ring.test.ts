import { describe, expect, it } from 'vitest';
import { OrderedRing } from '../../src/util/ordered-ring.js';
import { oldSpaceBytesPerOperation } from '../support/old-space.js';

/** A small seeded generator (mulberry32), so the random sequences below replay. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('OrderedRing', () => {
  it('keeps keys in order whatever order they come and go in', () => {
    const ring = new OrderedRing<string>(2);
    for (const key of [5, 1, 9, 3, 7, 2]) ring.set(key, `v${key}`);
    expect(ring.keyList()).toEqual([1, 2, 3, 5, 7, 9]);
    expect(ring.size).toBe(6);
    expect(ring.delete(5)).toBe('v5');
    expect(ring.delete(1)).toBe('v1');
    expect(ring.delete(9)).toBe('v9');
    expect(ring.delete(4)).toBeUndefined();
    expect(ring.keyList()).toEqual([2, 3, 7]);
    expect([ring.get(2), ring.get(3), ring.get(7), ring.get(5)]).toEqual(['v2', 'v3', 'v7', undefined]);
    expect([ring.has(3), ring.has(0), ring.has(8)]).toEqual([true, false, false]);
  });

  it('replaces the value of a key it holds, as Map.set does', () => {
    const ring = new OrderedRing<string>();
    ring.set(1, 'a');
    ring.set(2, 'b');
    ring.set(1, 'c');
    expect(ring.size).toBe(2);
    expect(ring.get(1)).toBe('c');
  });

  it('clears, and is usable again', () => {
    const ring = new OrderedRing<number>(4);
    for (let key = 0; key < 10; key++) ring.set(key, key);
    ring.clear();
    expect(ring.size).toBe(0);
    expect(ring.has(3)).toBe(false);
    ring.set(42, 1);
    expect(ring.keyList()).toEqual([42]);
  });

  it('agrees with a Map over a long random run of appends, inserts and deletes, wrapping and growing', () => {
    const next = random(20261205);
    const ring = new OrderedRing<number>(4);
    const model = new Map<number, number>();
    let high = 0;
    for (let step = 0; step < 20_000; step++) {
      const choice = next();
      if (choice < 0.45) {
        high += 1 + Math.floor(next() * 3);
        ring.set(high, step);
        model.set(high, step);
      } else if (choice < 0.55) {
        const key = Math.floor(next() * (high + 1)); // below the largest: the shifting path
        ring.set(key, step);
        model.set(key, step);
      } else {
        const keys = [...model.keys()];
        // mostly the smallest (PUBACKs in order), sometimes any
        const key =
          next() < 0.7 ? Math.min(...keys, high + 1) : (keys[Math.floor(next() * keys.length)] ?? 0);
        expect(ring.delete(key)).toBe(model.get(key));
        model.delete(key);
      }
      if (step % 97 === 0) {
        expect(ring.keyList()).toEqual([...model.keys()].sort((a, b) => a - b));
        for (const [key, value] of model) expect(ring.get(key)).toBe(value);
      }
      expect(ring.size).toBe(model.size);
    }
  });

  it('makes no old-generation garbage as keys come and go, where an old Set does', () => {
    // The outbox's and the uplink's pattern: one key in, the oldest out (a lease, then its PUBACK).
    const times = 20_000;
    const set = oldSpaceBytesPerOperation(
      () => new Set<number>(),
      (subject, i) => {
        subject.add(i);
        subject.delete(i - 1);
      },
      times,
    );
    const ring = oldSpaceBytesPerOperation(
      () => new OrderedRing<number>(),
      (subject, i) => {
        subject.set(i, i);
        subject.delete(i - 1);
      },
      times,
    );
    expect(set).toBeGreaterThan(10); // the measurement sees the garbage it is about
    expect(ring).toBeLessThan(1);
  });
});
