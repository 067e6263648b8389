import { describe, expect, it } from 'vitest';
import { measurementId } from '../../src/model/ids.js';

const identity = {
  deviceId: 'dev-1',
  characteristic: '2a35',
  deviceTime: '2026-11-28T08:00:00',
  payload: Uint8Array.of(0x1e, 0x78, 0x00),
};

describe('measurementId', () => {
  it('is stable for a re-sent stored record', () => {
    expect(measurementId(identity)).toBe(
      measurementId({ ...identity, payload: Uint8Array.of(0x1e, 0x78, 0x00) }),
    );
    expect(measurementId(identity)).toMatch(/^m1-[0-9a-f]{32}$/);
  });

  it('changes with every part of the identity', () => {
    const base = measurementId(identity);
    expect(measurementId({ ...identity, deviceId: 'dev-2' })).not.toBe(base);
    expect(measurementId({ ...identity, characteristic: '2a36' })).not.toBe(base);
    expect(measurementId({ ...identity, deviceTime: '2026-11-28T08:00:01' })).not.toBe(base);
    expect(measurementId({ ...identity, payload: Uint8Array.of(0x1e, 0x78, 0x01) })).not.toBe(base);
  });

  it('cannot be forged by moving bytes between fields (length-prefixed)', () => {
    const a = measurementId({ ...identity, deviceId: 'ab', characteristic: 'c' });
    const b = measurementId({ ...identity, deviceId: 'a', characteristic: 'bc' });
    expect(a).not.toBe(b);
  });

  it('gives untimestamped readings a fresh id each time', () => {
    const untimed = { ...identity, deviceTime: null };
    expect(measurementId(untimed)).not.toBe(measurementId(untimed));
    expect(measurementId(untimed, () => '123e4567-e89b-12d3-a456-426614174000')).toBe(
      'm1-123e4567e89b12d3a456426614174000',
    );
  });
});
