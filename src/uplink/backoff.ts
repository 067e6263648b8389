import { backoffCeiling, fullJitter } from '../util/backoff.js';

/**
 * Reconnect delays: exponential backoff with "full jitter" (delay = random(0, min(cap, base * 2^attempt))),
 * which spreads a fleet of hubs reconnecting after a broker restart instead of synchronising them. mqtt.js
 * reconnects at a fixed period (mqttjs/MQTT.js#561), so the uplink turns that off and uses this.
 * The attempt counter resets only after a connection stayed up for `stableAfterMs`, so a broker that accepts
 * and immediately drops connections still backs off.
 */
export interface BackoffPolicy {
  readonly baseMs: number;
  readonly capMs: number;
  readonly stableAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1_000, capMs: 5 * 60_000, stableAfterMs: 60_000 };

export class Backoff {
  private attempt = 0;

  constructor(
    private readonly policy: BackoffPolicy = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next connection attempt; each call counts as one more failure. */
  next(): number {
    const ceiling = backoffCeiling(this.attempt, this.policy.baseMs, this.policy.capMs);
    this.attempt++;
    return fullJitter(ceiling, this.random);
  }

  /** Call when a connection ends; `upMs` is how long it lasted. */
  connectionEnded(upMs: number): void {
    if (upMs >= this.policy.stableAfterMs) this.attempt = 0;
  }

  get failures(): number {
    return this.attempt;
  }
}
