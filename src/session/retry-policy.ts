import type { BleErrorCode } from '../ble/central.js';
import { backoffCeiling, fullJitter } from '../util/backoff.js';

/**
 * How a device session waits after a failure, by error class (after Home Assistant's bleak-retry-connector,
 * which learned these on thousands of real hubs). Each class backs off exponentially with full jitter within
 * its own range; some stop retrying until something changes.
 */
export interface RetryRule {
  /** First ceiling and cap of the jittered delay, ms. */
  readonly baseMs: number;
  readonly capMs: number;
  /** 'retry' keeps trying; 'wait-for-user' stops until the user pairs again; 'recover-adapter' power-cycles first. */
  readonly action: 'retry' | 'wait-for-user' | 'recover-adapter';
}

export const RETRY_RULES: Readonly<Record<BleErrorCode | 'unknown', RetryRule>> = {
  // Out of range or asleep (cuffs and scales sleep between uses): retry, slowly.
  BLE_DEVICE_GONE: { baseMs: 5_000, capMs: 5 * 60_000, action: 'retry' },
  // The controller has no free connection slot: another link will end soon.
  BLE_NO_SLOTS: { baseMs: 1_000, capMs: 15_000, action: 'retry' },
  // A timed-out call: the device may be busy; middle ground.
  BLE_TIMEOUT: { baseMs: 2_000, capMs: 60_000, action: 'retry' },
  // "le-connection-abort-by-local" and friends: usually transient, retry soon.
  BLE_ABORTED: { baseMs: 250, capMs: 10_000, action: 'retry' },
  // Bonding keys lost or refused: retrying would only lock the device out; the user must pair again.
  BLE_AUTH_FAILED: { baseMs: 0, capMs: 0, action: 'wait-for-user' },
  // A characteristic the driver needs is missing: likely a stale GATT cache; reconnect after a pause.
  BLE_NOT_FOUND: { baseMs: 5_000, capMs: 60_000, action: 'retry' },
  // The device cannot do what the driver needs (it lacks a required characteristic even after a fresh
  // discovery): nothing will change soon, but a firmware update or a flaky discovery might; retry rarely.
  BLE_NOT_SUPPORTED: { baseMs: 60_000, capMs: 30 * 60_000, action: 'retry' },
  // The adapter is off, wedged or gone: power-cycle it, then retry.
  BLE_ADAPTER: { baseMs: 5_000, capMs: 2 * 60_000, action: 'recover-adapter' },
  BLE_BACKEND_UNAVAILABLE: { baseMs: 0, capMs: 0, action: 'wait-for-user' },
  // The link is up but the device did not answer a driver's command (its setup step or poll) in time, after the
  // driver's retries: a firmware that is busy or wedged until the link is cycled; reconnect after a pause.
  BLE_NO_ANSWER: { baseMs: 5_000, capMs: 5 * 60_000, action: 'retry' },
  // The device answered a driver's command with a refusal (a wrong unlock key, a rejected mode): trying again at
  // once would be refused again, but a device that was busy (another app's session) may accept later; rarely.
  BLE_REFUSED: { baseMs: 60_000, capMs: 30 * 60_000, action: 'retry' },
  unknown: { baseMs: 5_000, capMs: 5 * 60_000, action: 'retry' },
};

/** The delay before attempt `attempt` (0-based) of a class: random(0, min(cap, base * 2^attempt)). */
export function retryDelay(rule: RetryRule, attempt: number, random: () => number): number {
  return fullJitter(backoffCeiling(attempt, rule.baseMs, rule.capMs), random);
}
