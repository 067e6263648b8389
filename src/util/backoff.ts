/**
 * Exponential backoff, the one formula behind every retry in the gateway (the uplink's reconnect, a device
 * session's retry per error class, the presence monitor's scan restarts, the radio watchdog's power-cycle gaps).
 * The jitter variants are the ones named in "Exponential Backoff And Jitter" (Marc Brooker, AWS Architecture
 * Blog, 2015): full jitter spreads a fleet best; equal jitter keeps a floor so a retry is never immediate.
 */

/** Doubling stops here: 2^30 times any base is far beyond every cap, and 2^attempt never overflows. */
const MAX_DOUBLINGS = 30;

/**
 * The ceiling of the delay before retry `attempt` (0-based): `min(capMs, baseMs * 2^attempt)`. Pass
 * `Number.POSITIVE_INFINITY` as the cap for an uncapped doubling.
 */
export function backoffCeiling(attempt: number, baseMs: number, capMs: number): number {
  return Math.min(capMs, baseMs * 2 ** Math.min(Math.max(0, attempt), MAX_DOUBLINGS));
}

/** Full jitter: a whole number of ms drawn uniformly from [0, ceiling). `random` returns [0, 1). */
export function fullJitter(ceiling: number, random: () => number): number {
  return Math.floor(random() * ceiling);
}

/** Equal jitter: half the ceiling fixed, half drawn, so the delay is never below ceiling / 2. */
export function equalJitter(ceiling: number, random: () => number): number {
  return Math.floor(ceiling / 2 + (random() * ceiling) / 2);
}
