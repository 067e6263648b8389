import type { Aedes, Client, PublishPacket } from 'aedes';

type Done = (error?: Error | null) => void;

/** aedes' publish as it runs (aedes.js `publish (packet, client, done)`); its typings declare only (packet, done). */
type RuntimePublish = (packet: PublishPacket, client: Client | null | Done, done?: Done) => void;

/** A packet as aedes numbers it (aedes-packet: `brokerId`, `brokerCounter`). */
type Numbered = PublishPacket & { brokerCounter?: number };

/** The parts of aedes' message bus (mqemitter, `aedes.mq`) that deliver a packet to the subscribers. */
interface Bus {
  emit(packet: Numbered, done?: Done): unknown;
}

/** What aedes keeps inside that this module reads or replaces (aedes.js, class Aedes). */
interface AedesInternals {
  publish: RuntimePublish;
  mq: Bus;
  counter: number;
}

export interface OrderedDelivery {
  /**
   * Lets every held packet go, in order, and forgets publishes that have not reached the bus yet: for when
   * aedes reports a store failure (its 'error' event), after which a publish may never complete and would
   * otherwise hold back every later one.
   */
  release(): void;
}

/**
 * Makes aedes hand published packets to its subscribers in the order it numbered them, so that no subscriber
 * drops one as a duplicate.
 *
 * The defect (aedes 1.2, lib/client.js): before forwarding a packet to a client, `deliverQoS` and `deliver0`
 * call `dedupe(client, packet)`, which forwards it only if its `brokerCounter` is greater than the highest
 * counter already forwarded to that client (`client.duplicates[brokerId]`) and otherwise drops it silently. It
 * is meant for copies of one packet arriving twice (overlapping subscriptions, brokers sharing one bus), and
 * assumes packets reach the bus in counter order. They do not: aedes.js `publish` numbers the packet first
 * (`new Packet(packet, this)` takes `++broker.counter`) and then runs `storeRetained` and `enqueueOffline`
 * (`persistence.outgoingEnqueueCombi`) before `emitPacket`. With aedes-persistence-level those are LevelDB
 * writes run on libuv's thread pool (fsynced with `sync: true`), and concurrent writes complete in any order;
 * a retained message (a hub's status) waits for one more write. So a later packet reaches the bus first and
 * the earlier one is dropped for every connected client. For a persistent session (the intake, CleanSession 0)
 * the dropped packet stays in its queue, since enqueueOffline wrote it there, and is delivered only when the
 * session reconnects (handlers/connect.js `emptyQueue`): nothing is lost, but readings the hubs saw PUBACKed
 * sit undelivered for as long as the intake stays connected. Reported upstream as moscajs/aedes#955 ("Not all
 * messages are consumed when dedupe is enabled") and moscajs/aedes#994 (a QoS 2 packet dropped behind a later
 * QoS 0 one), both open; moscajs/aedes-persistence-mongodb#27 is the same with another store.
 *
 * The workaround keeps the stores' writes concurrent (so concurrent publishes still share fsyncs) and orders
 * only the step after them: every publish is numbered here, when it starts, with aedes' own counter (aedes-packet
 * keeps a `brokerCounter` it is given), and a packet reaching the bus (`aedes.mq.emit`) waits there until every
 * publish numbered before it has reached the bus too or has ended without reaching it (a refused topic, a
 * failed store write). The wait is at most the slowest store write in flight.
 *
 * Install before anything that captures `aedes.publish` (publish-before-ack.ts), so that it publishes through
 * this one. Packets that arrive already numbered (none on this broker: only clustered brokers forward them)
 * pass unchanged.
 */
export function deliverInCounterOrder(aedes: Aedes): OrderedDelivery {
  const internals = aedes as unknown as AedesInternals;
  const publish = internals.publish.bind(aedes);
  const bus = internals.mq;
  const emit = bus.emit.bind(bus);
  /**
   * Publishes started and not yet on the bus, by counter. Counters are taken in increasing order and a Map
   * iterates in insertion order, so the first entry is the oldest. Its value is the emit that waits for its
   * turn, or undefined while the publish is still writing to the store.
   */
  const pending = new Map<number, (() => void) | undefined>();
  let flushing = false;

  /**
   * Emits waiting packets from the oldest on, up to the first publish still writing. Not re-entered: aedes
   * calls the subscribers of one packet synchronously inside emit (mqemitter `_do`), and one of them may
   * publish; that packet must wait until every subscriber has seen the current one, or a subscriber later in
   * the list would see the newer packet first and drop the current one as a duplicate.
   */
  const flush = () => {
    if (flushing) return;
    flushing = true;
    try {
      for (;;) {
        const oldest = pending.entries().next();
        if (oldest.done || oldest.value[1] === undefined) return;
        pending.delete(oldest.value[0]);
        oldest.value[1]();
      }
    } finally {
      flushing = false;
    }
  };

  internals.publish = (packet, client, done) => {
    const callback = typeof client === 'function' ? client : done;
    const from = typeof client === 'function' ? null : client;
    if ((packet as Numbered).brokerCounter) {
      publish(packet, from, callback);
      return;
    }
    const counter = ++internals.counter;
    pending.set(counter, undefined);
    // A copy: the caller's packet object is left as it was (aedes may publish one object once more, e.g. a will).
    const numbered: Numbered = { ...packet, brokerCounter: counter };
    publish(numbered, from, (error) => {
      // Ended without reaching the bus (refused, or a store write failed): later packets need not wait for it.
      if (pending.has(counter) && pending.get(counter) === undefined) {
        pending.delete(counter);
        flush();
      }
      callback?.(error);
    });
  };

  bus.emit = (packet, done) => {
    const counter = packet.brokerCounter;
    if (counter === undefined || !pending.has(counter) || pending.get(counter) !== undefined) {
      return emit(packet, done);
    }
    pending.set(counter, () => emit(packet, done));
    flush();
    return bus;
  };

  return {
    release() {
      const waiting = [...pending.values()];
      pending.clear();
      for (const send of waiting) send?.();
    },
  };
}
