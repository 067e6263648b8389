import type { Aedes, Client, PublishPacket } from 'aedes';

/** aedes' publish as it runs (aedes.js `publish (packet, client, done)`); its typings declare only (packet, done). */
type RuntimePublish = (
  packet: PublishPacket,
  client: Client | null | ((error?: Error | null) => void),
  done?: (error?: Error | null) => void,
) => void;

type Authorize = (client: Client | null, packet: PublishPacket, done: (error?: Error | null) => void) => void;

/**
 * Makes aedes acknowledge a QoS 1 PUBLISH only after it has been published, offline queues included.
 *
 * aedes 1.2 writes the PUBACK first and publishes afterwards: lib/handlers/publish.js, `enqueuePublish`,
 * `case 1: write(client, new PubAck(packet), function (err) { ... client.broker.publish(packet, client, done) })`.
 * The publish is what queues the message for sessions that are not connected (aedes.js `publishFuncsQoS`:
 * storeRetained, enqueueOffline -> `persistence.outgoingEnqueueCombi`, emitPacket, callPublished). So a broker
 * that dies between the two has told the hub "delivered" (MQTT 3.1.1 section 4.3.2: the sender may discard the
 * message on PUBACK) for a message no queue holds. QoS 2 is not affected: there aedes publishes before PUBREC.
 *
 * aedes runs `authorizePublish` before `enqueuePublish` on the same packet object (publishActions in
 * lib/handlers/publish.js; the will paths in lib/client.js and aedes.js likewise authorize, then publish the
 * same object). The returned handler therefore authorizes (`authorize`), then runs the real publish of a QoS 1
 * packet and reports success only when it completed; the publish aedes starts after that for the same object
 * completes at once without publishing twice. A publish that fails (the store cannot be written: the only
 * way aedes' publish reports an error once the topic passed its checks) never reaches the PUBACK: it goes to
 * `failed`, aedes closes that client's connection, and the hub sends the message again after reconnecting.
 */
export function publishBeforeAck(
  aedes: Aedes,
  authorize: Authorize,
  failed: (error: Error) => void,
): Authorize {
  const published = new WeakSet<PublishPacket>();
  const publish = (aedes.publish as unknown as RuntimePublish).bind(aedes);
  const publishOnce: RuntimePublish = (packet, client, done) => {
    const callback = typeof client === 'function' ? client : done;
    if (published.delete(packet)) {
      callback?.(null);
      return;
    }
    publish(packet, client, done);
  };
  (aedes as unknown as { publish: RuntimePublish }).publish = publishOnce;
  return (client, packet, done) => {
    authorize(client, packet, (error) => {
      if (error || packet.qos !== 1) return done(error ?? null);
      publish(packet, client, (publishError) => {
        if (publishError) {
          failed(publishError);
          return done(publishError);
        }
        published.add(packet);
        done(null);
      });
    });
  };
}
