import { CLINIC_CLIENT_ID_PREFIX, maySubscribe } from './acl.js';
import { BrokerError } from './errors.js';
import type { BrokerPersistence } from './persistence.js';

/**
 * A clinic receiver whose persistent session the broker creates itself, before any hub can connect.
 *
 * Why: a QoS 1 PUBLISH is queued only for sessions that exist when it arrives (MQTT 3.1.1 section 3.1.2.4:
 * the server stores QoS 1 messages for a session's existing subscriptions). If the intake has never connected
 * with CleanSession 0, a hub's reading matches no session, the broker PUBACKs it, the hub deletes it, and
 * nobody ever receives it. Provisioning writes the intake's session (its subscriptions) into the persistence at
 * every start, so from the first hub connection on every reading is queued for the intake, connected or not.
 */
export interface DurableSubscriber {
  /** The receiver's MQTT client id: `clinic-<name>` or `clinic-<name>-<suffix>` (acl.ts, mayConnect). */
  readonly clientId: string;
  /** Its subscriptions, e.g. `rpm/v1/+/obs` at QoS 1. QoS 0 would queue nothing, so only 1 and 2 are taken. */
  readonly subscriptions: readonly { readonly topic: string; readonly qos: 1 | 2 }[];
}

/** The subscriptions a clinic intake holds (docs/wire-format.md topics), at QoS 1. */
export function intakeSubscriptions(): DurableSubscriber['subscriptions'] {
  return [
    { topic: 'rpm/v1/+/obs', qos: 1 },
    { topic: 'rpm/v1/+/alert', qos: 1 },
    { topic: 'rpm/v1/+/status', qos: 1 },
  ];
}

/**
 * `clinic-<name>[-<suffix>]`, in the characters certificate names and suffixes use. The certificate's clinic
 * name is not known here (the intake's certificate is checked when it connects), so this is the shape only:
 * a provisioned id the intake's certificate cannot claim simply never gets connected to (and is refused).
 */
const CLINIC_CLIENT_ID = new RegExp(`^${CLINIC_CLIENT_ID_PREFIX}[a-z0-9][a-z0-9-]*$`);

/**
 * MQTT 3.1.1 section 3.1.3.1: servers must accept client ids of 1-23 bytes; longer ones are allowed but not
 * portable (aedes' own maxClientsIdLength default is 23), so a durable session that another broker might
 * refuse to hand over is not provisioned.
 */
const MAX_CLIENT_ID = 23;

/** Refuses, with one message per problem, any subscriber the ACL would never let connect or subscribe. */
export function checkDurableSubscribers(subscribers: readonly DurableSubscriber[]): void {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const subscriber of subscribers) {
    const id = subscriber.clientId;
    if (!CLINIC_CLIENT_ID.test(id) || id.length > MAX_CLIENT_ID) {
      problems.push(
        `${JSON.stringify(id.slice(0, 64))} is not a clinic client id (clinic-<name>[-<suffix>], a-z 0-9 -, at most ${MAX_CLIENT_ID} characters)`,
      );
      continue;
    }
    if (seen.has(id)) problems.push(`${id} is listed twice`);
    seen.add(id);
    if (subscriber.subscriptions.length === 0) problems.push(`${id} has no subscriptions`);
    for (const { topic, qos } of subscriber.subscriptions) {
      const decision = maySubscribe({ role: 'clinic', id }, topic);
      if (!decision.allowed) problems.push(`${id}: ${JSON.stringify(topic)}: ${decision.reason}`);
      if (qos !== 1 && qos !== 2) problems.push(`${id}: ${JSON.stringify(topic)}: QoS must be 1 or 2`);
    }
  }
  if (problems.length > 0) {
    throw new BrokerError('BROKER_BAD_DURABLE_SUBSCRIBER', `durable subscribers: ${problems.join('; ')}`);
  }
}

/**
 * Writes every subscriber's session into the persistence (idempotent: a subscription already there is
 * replaced by the same one). Subscriptions the subscriber added itself stay; provisioned ones it removed
 * (UNSUBSCRIBE) come back at the next start.
 */
export async function provisionDurableSubscribers(
  persistence: Pick<BrokerPersistence, 'addSubscriptions'>,
  subscribers: readonly DurableSubscriber[],
): Promise<void> {
  checkDurableSubscribers(subscribers);
  for (const subscriber of subscribers) {
    try {
      await persistence.addSubscriptions({ id: subscriber.clientId }, subscriber.subscriptions);
    } catch (error) {
      throw new BrokerError('BROKER_PERSISTENCE', `cannot store the session of ${subscriber.clientId}`, {
        cause: error,
      });
    }
  }
}
