import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/uplink/backoff.js';

describe('Backoff (exponential, full jitter)', () => {
  const policy = { baseMs: 1_000, capMs: 60_000, stableAfterMs: 30_000 };

  it('draws each delay uniformly below an exponentially growing, capped ceiling', () => {
    const top = new Backoff(policy, () => 0.999_999);
    expect(Array.from({ length: 9 }, () => Math.round(top.next() / 1000))).toEqual([
      1, 2, 4, 8, 16, 32, 60, 60, 60,
    ]);
    const bottom = new Backoff(policy, () => 0);
    expect(bottom.next()).toBe(0); // full jitter reaches down to zero: a fleet does not reconnect in step
  });

  it('resets only after a connection that stayed up', () => {
    const backoff = new Backoff(policy, () => 0.5);
    for (let i = 0; i < 5; i++) backoff.next();
    backoff.connectionEnded(1_000); // accepted and dropped at once: keep backing off
    expect(backoff.failures).toBe(5);
    backoff.connectionEnded(30_000);
    expect(backoff.failures).toBe(0);
    expect(backoff.next()).toBe(500);
  });

  it('never overflows the exponent', () => {
    const backoff = new Backoff(policy, () => 0.999);
    for (let i = 0; i < 2_000; i++) expect(backoff.next()).toBeLessThan(60_000);
  });
});
