import { describe, expect, it } from 'vitest';
import { backoffCeiling, equalJitter, fullJitter } from '../../src/util/backoff.js';

describe('backoffCeiling', () => {
  it('doubles from the base with each attempt and stops at the cap', () => {
    expect(Array.from({ length: 9 }, (_, attempt) => backoffCeiling(attempt, 1_000, 60_000))).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000,
    ]);
  });

  it('doubles without end when the cap is infinite, yet never overflows to Infinity', () => {
    expect(backoffCeiling(3, 250, Number.POSITIVE_INFINITY)).toBe(2_000);
    expect(backoffCeiling(10_000, 1, Number.POSITIVE_INFINITY)).toBe(2 ** 30);
    expect(Number.isFinite(backoffCeiling(Number.MAX_SAFE_INTEGER, 1_000, Number.POSITIVE_INFINITY))).toBe(
      true,
    );
  });

  it('treats a negative attempt as the first one and a zero base as no wait', () => {
    expect(backoffCeiling(-4, 1_000, 60_000)).toBe(1_000);
    expect(backoffCeiling(7, 0, 0)).toBe(0);
  });
});

describe('jitter', () => {
  it('full jitter draws from [0, ceiling): zero at the bottom, below the ceiling at the top', () => {
    expect(fullJitter(8_000, () => 0)).toBe(0);
    expect(fullJitter(8_000, () => 0.5)).toBe(4_000);
    expect(fullJitter(8_000, () => 0.999_999)).toBe(7_999);
  });

  it('equal jitter keeps half the ceiling as a floor', () => {
    expect(equalJitter(8_000, () => 0)).toBe(4_000);
    expect(equalJitter(8_000, () => 0.5)).toBe(6_000);
    expect(equalJitter(8_000, () => 0.999_999)).toBe(7_999);
  });
});
