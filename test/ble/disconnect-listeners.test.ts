import { describe, expect, it } from 'vitest';
import type { DisconnectReason } from '../../src/ble/central.js';
import { DisconnectListeners } from '../../src/ble/disconnect-listeners.js';

describe('DisconnectListeners', () => {
  it('tells every listener once, with the first reason; a second end does nothing', () => {
    const listeners = new DisconnectListeners();
    const a: DisconnectReason[] = [];
    const b: DisconnectReason[] = [];
    listeners.add((reason) => a.push(reason));
    listeners.add((reason) => b.push(reason));
    expect(listeners.endedWith).toBeUndefined();

    expect(listeners.fire('remote')).toBe(true);
    expect(listeners.fire('local')).toBe(false);
    expect(listeners.endSilently('local')).toBe(false);

    expect(a).toEqual(['remote']);
    expect(b).toEqual(['remote']);
    expect(listeners.endedWith).toBe('remote');
  });

  it('does not tell a listener that unsubscribed before the end', () => {
    const listeners = new DisconnectListeners();
    const told: DisconnectReason[] = [];
    const unsubscribe = listeners.add((reason) => told.push(reason));
    unsubscribe();
    listeners.fire('remote');
    expect(told).toEqual([]);
  });

  it('tells a listener registered after the end once, in a microtask, not inside add()', async () => {
    const listeners = new DisconnectListeners();
    listeners.fire('adapter');
    const told: DisconnectReason[] = [];
    listeners.add((reason) => told.push(reason));
    expect(told).toEqual([]);
    await Promise.resolve();
    expect(told).toEqual(['adapter']);
    await Promise.resolve();
    expect(told).toEqual(['adapter']);
  });

  it('does not tell a late listener that unsubscribed before its microtask ran', async () => {
    const listeners = new DisconnectListeners();
    listeners.fire('local');
    const told: DisconnectReason[] = [];
    const unsubscribe = listeners.add((reason) => told.push(reason));
    unsubscribe();
    await Promise.resolve();
    expect(told).toEqual([]);
  });

  it('runs the cleanup after recording the end and before any listener; a re-entrant end is ignored', () => {
    const listeners = new DisconnectListeners();
    const order: string[] = [];
    listeners.add((reason) => order.push(`listener ${reason} ended=${listeners.endedWith}`));
    listeners.fire('remote', () => {
      order.push(`cleanup ended=${listeners.endedWith}`);
      expect(listeners.fire('local', () => order.push('second cleanup'))).toBe(false);
    });
    expect(order).toEqual(['cleanup ended=remote', 'listener remote ended=remote']);
  });

  it('endSilently records the end without telling the listeners registered so far', async () => {
    const listeners = new DisconnectListeners();
    const early: DisconnectReason[] = [];
    listeners.add((reason) => early.push(reason));
    expect(listeners.endSilently('local')).toBe(true);
    expect(listeners.fire('remote')).toBe(false);
    const late: DisconnectReason[] = [];
    listeners.add((reason) => late.push(reason));
    await Promise.resolve();
    expect(early).toEqual([]);
    expect(late).toEqual(['local']);
  });
});
