import { Readable } from 'node:stream';
import type { IStore } from 'mqtt';

/** mqtt-packet's Packet, as mqtt.js's store interface names it (mqtt-packet is mqtt.js's dependency, not ours). */
type Packet = Parameters<IStore['put']>[0];

/**
 * mqtt.js's outgoing store for the uplink: the QoS 1 PUBLISHes awaiting their PUBACK, by message id.
 *
 * Why not mqtt.js's own (`Store`, a Map): a live hub publishes and is acknowledged every ~0.1 s, and each
 * `set` and `delete` on a long-lived Map makes V8 reallocate its hash table now and then in the generation the
 * Map lives in, the old one (V8 src/objects/ordered-hash-table.cc), as garbage only a full collection frees:
 * in a heap profile of an interpreted hub (docs/runtime.md, "Memory") the largest source of the live hub's
 * old-generation garbage. Here a table indexed by message id (1-65535, MQTT 3.1.1 section 2.3.1) is made once per
 * client (65,536 slots of 8 bytes: 512 KB, allocated once per connection); a put writes a slot and a delete
 * clears it, so nothing is reallocated however long the hub runs.
 *
 * Behaviour is the default store's (mqtt.js 5 `lib/store.ts`): `get` and `del` of an id not stored call back
 * with an error; `createStream` gives the stored packets in the order they were put (what mqtt.js re-sends
 * after a connect); `close` empties it. The uplink makes a new client per connection, so it only ever re-sends
 * from an empty store, but the order is kept anyway.
 */
export class OutgoingPackets implements IStore {
  /** The packet put under each message id, with the count of puts before it (its place in put order). */
  private readonly slots: ({ readonly packet: Packet; readonly order: number } | undefined)[] = new Array(
    MESSAGE_IDS,
  );
  private puts = 0;

  put(packet: Packet, cb?: (error?: Error) => void): this {
    const id = messageIdOf(packet);
    if (id === undefined) {
      cb?.(new Error(`cannot store a packet without a message id (cmd ${packet.cmd})`));
      return this;
    }
    this.slots[id] = { packet, order: this.puts++ };
    cb?.();
    return this;
  }

  get(packet: Pick<Packet, 'messageId'>, cb: (error?: Error, packet?: Packet) => void): this {
    const stored = this.slot(packet);
    if (stored) cb(undefined, stored.packet);
    else cb(new Error('missing packet'));
    return this;
  }

  del(packet: Pick<Packet, 'messageId'>, cb: (error?: Error, packet?: Packet) => void): this {
    const stored = this.slot(packet);
    if (stored) {
      this.slots[stored.packet.messageId as number] = undefined;
      cb(undefined, stored.packet);
    } else {
      cb(new Error('missing packet'));
    }
    return this;
  }

  createStream(): ReturnType<IStore['createStream']> {
    const stored = this.slots.filter((slot) => slot !== undefined).sort((a, b) => a.order - b.order);
    // An object-mode stream of the packets: what mqtt.js reads (read(1), 'readable', 'end', destroy()). Its type
    // names readable-stream's Readable, which node:stream's implements.
    return Readable.from(stored.map((slot) => slot.packet)) as unknown as ReturnType<IStore['createStream']>;
  }

  close(cb?: (error?: Error) => void): void {
    this.slots.fill(undefined);
    cb?.();
  }

  private slot(packet: Pick<Packet, 'messageId'>) {
    const id = messageIdOf(packet);
    return id === undefined ? undefined : this.slots[id];
  }
}

/** Message ids are 16-bit and never 0 (MQTT 3.1.1 section 2.3.1; MQTT 5.0 section 2.2.1). */
const MESSAGE_IDS = 65_536;

function messageIdOf(packet: Pick<Packet, 'messageId'>): number | undefined {
  const id = packet.messageId;
  return Number.isInteger(id) && (id as number) > 0 && (id as number) < MESSAGE_IDS
    ? (id as number)
    : undefined;
}
