import { describe, expect, it } from 'vitest';
import { until } from './until.js';

describe('until (the one polling wait of the tests)', () => {
  it('resolves once the condition holds, sync or async', async () => {
    let checks = 0;
    await until('the third check', () => ++checks === 3, { intervalMs: 1 });
    expect(checks).toBe(3);
    await expect(until('an async yes', async () => true)).resolves.toBeUndefined();
  });

  it('fails naming what it waited for', async () => {
    await expect(until('the moon to turn blue', () => false, { timeoutMs: 30 })).rejects.toThrow(
      'timed out after 30 ms waiting for the moon to turn blue',
    );
  });

  it('passes on a failing check as it is', async () => {
    const broken = () => {
      throw new Error('mosquitto exited with status 3');
    };
    await expect(until('mosquitto', broken)).rejects.toThrow('mosquitto exited with status 3');
  });
});
