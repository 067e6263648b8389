import type { IStore } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { OutgoingPackets } from '../../src/uplink/outgoing-packets.js';
import { oldSpaceBytesPerOperation } from '../support/old-space.js';

type Packet = Parameters<IStore['put']>[0];

const publish = (messageId: number): Packet =>
  ({ cmd: 'publish', qos: 1, dup: false, retain: false, topic: 't', payload: 'p', messageId }) as Packet;

/** Calls a store method and returns what its callback got. */
function call(
  method: (packet: Pick<Packet, 'messageId'>, cb: (error?: Error, packet?: Packet) => void) => unknown,
  messageId: number,
): { error?: Error; packet?: Packet } {
  let result: { error?: Error; packet?: Packet } | undefined;
  method({ messageId }, (error, packet) => {
    result = { error, packet };
  });
  if (!result) throw new Error('the callback was not called');
  return result;
}

async function streamed(store: OutgoingPackets): Promise<number[]> {
  const ids: number[] = [];
  for await (const packet of store.createStream() as unknown as AsyncIterable<Packet>) {
    ids.push(packet.messageId as number);
  }
  return ids;
}

describe("the uplink's outgoing store for mqtt.js", () => {
  it("stores, finds and deletes by message id, and says when one is missing, as mqtt.js's own store does", () => {
    const store = new OutgoingPackets();
    const packet = publish(7);
    let stored = false;
    store.put(packet, () => {
      stored = true;
    });
    expect(stored).toBe(true);
    expect(call(store.get.bind(store), 7).packet).toBe(packet);
    expect(call(store.del.bind(store), 7).packet).toBe(packet);
    expect(call(store.get.bind(store), 7).error?.message).toBe('missing packet');
    expect(call(store.del.bind(store), 7).error?.message).toBe('missing packet');
    expect(call(store.get.bind(store), 65_535).error?.message).toBe('missing packet');
  });

  it('refuses a packet whose message id is not a 16-bit id above 0', () => {
    const store = new OutgoingPackets();
    for (const id of [0, 65_536, -1, 1.5]) {
      let error: Error | undefined;
      store.put(publish(id), (e) => {
        error = e;
      });
      expect(error?.message).toMatch(/without a message id/);
    }
  });

  it('streams the stored packets in the order they were put, across the wrap of message ids', async () => {
    const store = new OutgoingPackets();
    for (const id of [65_534, 65_535, 1, 2]) store.put(publish(id));
    call(store.del.bind(store), 1);
    store.put(publish(1)); // put again: now the newest
    expect(await streamed(store)).toEqual([65_534, 65_535, 2, 1]);
    let closed = false;
    store.close(() => {
      closed = true;
    });
    expect(closed).toBe(true);
    expect(await streamed(store)).toEqual([]);
  });

  it('puts and deletes without making garbage in the old generation (the live hub does this per batch)', () => {
    // mqtt.js's own store is a Map, whose hash table V8 reallocates in the old generation as ids come and go.
    const packets = Array.from({ length: 8 }, (_, i) => publish(i + 1));
    const perPublish = oldSpaceBytesPerOperation(
      () => new OutgoingPackets(),
      (store, i) => {
        const id = (i % 65_535) + 1;
        const packet = packets[i % 8] as Packet & { messageId: number };
        packet.messageId = id;
        store.put(packet);
        if (i >= 4) store.del({ messageId: ((i - 4) % 65_535) + 1 }, () => undefined);
      },
      20_000,
    );
    expect(perPublish).toBeLessThan(2);
  });
});
