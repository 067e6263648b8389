import type { IPublishPacket, MqttClient, Packet } from 'mqtt';

/**
 * PUBACK only after commit, on mqtt.js 5.16 (pinned exactly in package.json because this relies on how it
 * works inside).
 *
 * mqtt.js reads incoming packets strictly one at a time (MqttClient.connect's `work` loop): for a QoS 1
 * PUBLISH it calls `client.handleMessage(packet, cb)`, and when `cb` is called it sends the PUBACK itself
 * (`client._sendPacket({cmd: 'puback', ...}, done)`, lib/handlers/publish.js) and only then takes the next
 * packet. Holding `cb` until the commit would therefore mean one commit per message. Instead:
 *
 * - `handleMessage` hands the message on and calls `cb` as soon as the group committer has room for it
 *   (backpressure: with no room the loop waits, TCP fills, and the broker keeps the rest);
 * - every PUBACK mqtt.js tries to send is swallowed here (its `done` is still called, so the loop goes on),
 *   by wrapping the instance's `_sendPacket`; only PUBACKs made by `ack()` below pass, and `ack()` is called
 *   once the commit holding the message has resolved;
 * - PUBACKs are tied to the connection the PUBLISH came on. After that connection closes they are dropped,
 *   never sent: mqtt.js would queue them while offline and send them on the next connection, where the same
 *   packet identifier may name another message (MQTT 3.1.1 section 2.3.1). The broker delivers every message
 *   it had no PUBACK for again when the session resumes (section 4.4), and the measurement id's unique key in
 *   the database makes that second copy harmless.
 *
 * `_sendPacket` is not public API; test/clinic/intake/intake-acks.test.ts fails if a later mqtt.js sends a
 * PUBACK some other way, or before the commit.
 */

/** Sends the held PUBACK; false when it was dropped because its connection is gone. */
export type Ack = () => boolean;

/** What this module touches inside mqtt.js (see the file comment). */
interface MqttInternals {
  handleMessage(packet: IPublishPacket, callback: (error?: Error) => void): void;
  _sendPacket(packet: Packet, cb?: (error?: Error) => void, cbStorePut?: () => void, noStore?: boolean): void;
}

export function holdPubacks(
  client: MqttClient,
  receive: (packet: IPublishPacket, ack: Ack | undefined) => Promise<void>,
): void {
  const internals = client as unknown as MqttInternals;
  const send = internals._sendPacket.bind(client);
  const ours = new WeakSet<Packet>();
  let connection = 0;
  client.on('close', () => {
    connection++;
  });

  internals._sendPacket = (packet, cb, cbStorePut, noStore) => {
    if (packet.cmd === 'puback' && !ours.has(packet)) {
      cb?.(); // mqtt.js's own PUBACK: let its input loop go on; ack() sends the real one after the commit
      return;
    }
    send(packet, cb, cbStorePut, noStore);
  };

  internals.handleMessage = (packet, callback) => {
    let ack: Ack | undefined;
    const messageId = packet.messageId;
    if (packet.qos === 1 && messageId !== undefined) {
      const on = connection;
      ack = () => {
        if (on !== connection || !client.connected) return false;
        const puback: Packet = { cmd: 'puback', messageId };
        ours.add(puback);
        send(puback);
        return true;
      };
    }
    receive(packet, ack).then(
      () => callback(),
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
    );
  };
}
