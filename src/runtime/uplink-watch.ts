import type { Lane } from '../store/outbox.js';
import { type BrokerAddress, brokerLabel, type UplinkEvent } from '../uplink/uplink.js';

/**
 * What the hub knows of its connection to the clinic, from the uplink's events: the broker's state and since
 * when, which configured broker it is, and the last few batches the clinic acknowledged (for the patient page:
 * "what was sent when, and to which clinic"). A bounded list: the page shows ten, nothing grows with uptime.
 */
export type BrokerState = 'connected' | 'connecting' | 'disconnected';

export interface BrokerView {
  readonly state: BrokerState;
  /** The position in `uplink.brokers` of the broker connected to, or tried next; null before the uplink starts. */
  readonly index: number | null;
  /** That broker's address. */
  readonly broker: BrokerAddress | null;
  /** Since when `state` holds, epoch ms; null before the uplink starts. */
  readonly sinceMs: number | null;
}

export interface AckedBatch {
  /** When the clinic's broker acknowledged it (MQTT PUBACK), epoch ms. */
  readonly atMs: number;
  readonly lane: Lane;
  /** Records in the batch (readings, and gap records telling the clinic what was lost). */
  readonly records: number;
  /** The broker that acknowledged it. */
  readonly broker: BrokerAddress | null;
}

export const KEEP_ACKED_BATCHES = 20;

export class UplinkWatch {
  private state: BrokerState = 'disconnected';
  private index: number | null = null;
  private sinceMs: number | null = null;
  private readonly acked: AckedBatch[] = [];

  constructor(
    private readonly brokers: readonly BrokerAddress[],
    private readonly now: () => number,
    private readonly keep = KEEP_ACKED_BATCHES,
  ) {}

  /** The uplink was started: it connects to the first broker. */
  started(): void {
    this.set('connecting', 0);
  }

  /** The uplink was stopped. */
  stopped(): void {
    this.set('disconnected', this.index);
  }

  event(event: UplinkEvent): void {
    switch (event.type) {
      case 'connected':
        this.set('connected', this.indexOf(event.broker));
        return;
      case 'connect-failed':
      case 'disconnected':
        // The uplink retries on its own, on the next broker in the list: connecting again, not offline.
        this.set('connecting', this.indexOf(event.next));
        return;
      case 'batch-acked':
        this.acked.unshift({
          atMs: this.now(),
          lane: event.lane,
          records: event.records,
          broker: this.broker(this.index),
        });
        if (this.acked.length > this.keep) this.acked.length = this.keep;
        return;
      default:
        return;
    }
  }

  get view(): BrokerView {
    return { state: this.state, index: this.index, broker: this.broker(this.index), sinceMs: this.sinceMs };
  }

  /** The last acknowledged batches, newest first. */
  get sent(): readonly AckedBatch[] {
    return [...this.acked];
  }

  private set(state: BrokerState, index: number | null): void {
    // "Since" is when the state began: a retry that stays "connecting" keeps its first time.
    if (state !== this.state || this.sinceMs === null) this.sinceMs = this.now();
    this.state = state;
    this.index = index;
  }

  private indexOf(label: string): number | null {
    const index = this.brokers.findIndex((b) => brokerLabel(b) === label);
    return index === -1 ? null : index;
  }

  private broker(index: number | null): BrokerAddress | null {
    return index === null ? null : (this.brokers[index] ?? null);
  }
}
