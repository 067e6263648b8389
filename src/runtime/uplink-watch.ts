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

/** One entry of the acknowledged-batches ring, written in place. */
interface AckedSlot {
  atMs: number;
  lane: Lane;
  records: number;
  broker: BrokerAddress | null;
}

export class UplinkWatch {
  private state: BrokerState = 'disconnected';
  private index: number | null = null;
  private sinceMs: number | null = null;
  /**
   * The last `keep` acknowledged batches, as a ring of entries made once and overwritten: a batch is acknowledged
   * every ~0.1 s in a live hub, and a new record per batch, kept for the next `keep` acknowledgements (a few
   * seconds), lived through young collections into V8's old generation, where it became garbage that only a
   * full collection frees (a third of the live hub's old-generation garbage in a heap profile; docs/runtime.md,
   * "Memory").
   */
  private readonly acked: AckedSlot[];
  /** The slot the next acknowledgement goes into; the newest is the one before it. */
  private next = 0;
  private count = 0;

  constructor(
    private readonly brokers: readonly BrokerAddress[],
    private readonly now: () => number,
    private readonly keep = KEEP_ACKED_BATCHES,
  ) {
    this.acked = Array.from({ length: keep }, () => ({
      atMs: 0,
      lane: 'live' as Lane,
      records: 0,
      broker: null,
    }));
  }

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
      case 'batch-acked': {
        if (this.keep === 0) return;
        const slot = this.acked[this.next] as AckedSlot;
        slot.atMs = this.now();
        slot.lane = event.lane;
        slot.records = event.records;
        slot.broker = this.broker(this.index);
        this.next = (this.next + 1) % this.keep;
        this.count = Math.min(this.count + 1, this.keep);
        return;
      }
      default:
        return;
    }
  }

  get view(): BrokerView {
    return { state: this.state, index: this.index, broker: this.broker(this.index), sinceMs: this.sinceMs };
  }

  /** The last acknowledged batches, newest first (copies: the ring's entries are overwritten). */
  get sent(): readonly AckedBatch[] {
    const batches: AckedBatch[] = [];
    for (let i = 1; i <= this.count; i++) {
      const slot = this.acked[(this.next - i + this.keep) % this.keep] as AckedSlot;
      batches.push({ atMs: slot.atMs, lane: slot.lane, records: slot.records, broker: slot.broker });
    }
    return batches;
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
