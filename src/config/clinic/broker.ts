import { z } from 'zod';
import { mayConnect } from '../../broker/acl.js';
import { topicFilter } from '../../wire/topics.js';
import { isLoopback, listenHost, pathSetting, port, secretRef, size } from '../fields.js';

/**
 * `broker:` the embedded clinical broker (`rpm-gateway broker`, src/broker/clinical-broker.ts). Absent when
 * the clinic uses another broker (EMQX, Mosquitto, docs/brokers.md).
 */

/** What the intake subscribes to by default: every gateway's observations, alerts and statuses. */
export const DEFAULT_SUBSCRIBER_TOPICS: readonly string[] = [
  topicFilter('obs'),
  topicFilter('alert'),
  topicFilter('status'),
];

/**
 * An MQTT topic filter (MQTT 3.1.1 section 4.7.1: '+' a whole level, '#' only as the last level) under
 * rpm/v1/, the only topics a clinic may subscribe to (src/broker/acl.ts, maySubscribe).
 */
export const topicFilterSetting = () =>
  z
    .string()
    .refine(
      (filter) =>
        filter.startsWith('rpm/v1/') &&
        filter.split('/').every((level, i, all) => {
          if (level.includes('#')) return level === '#' && i === all.length - 1;
          return !level.includes('+') || level === '+';
        }),
    )
    .describe('an MQTT topic filter under rpm/v1/, e.g. rpm/v1/+/obs');

/**
 * The longest client id every MQTT 3.1.1 server must accept (section 3.1.3.1: 1 to 23 bytes; longer ones a
 * server may refuse). The embedded broker provisions durable sessions only for such ids
 * (src/broker/durable-subscribers.ts), so a longer intake id would make the broker refuse to start.
 */
export const MAX_PORTABLE_CLIENT_ID = 23;

/**
 * Client ids a clinic's certificate may connect with: clinic-<name> or clinic-<name>-<suffix>, at most 23
 * characters in all.
 */
export function clinicClientIdProblem(clinicName: string, clientId: string): string | undefined {
  const decision = mayConnect({ role: 'clinic', id: clinicName }, clientId);
  if (!decision.allowed) {
    return `the broker lets clinic ${clinicName} connect only as clinic-${clinicName} or clinic-${clinicName}-<suffix> (suffix: 1 to 23 of a-z, 0-9, '-')`;
  }
  if (clientId.length > MAX_PORTABLE_CLIENT_ID) {
    return `${clientId} is ${clientId.length} characters; a client id with a durable session is at most ${MAX_PORTABLE_CLIENT_ID} (MQTT 3.1.1 section 3.1.3.1), so the broker would refuse it`;
  }
  return undefined;
}

const durableSubscriber = z
  .strictObject({
    clientId: z
      .string()
      .min(1)
      .describe('the client id: clinic-<clinic.name> or clinic-<clinic.name>-<suffix>'),
    topics: z
      .array(topicFilterSetting())
      .min(1)
      .optional()
      .describe('a list of MQTT topic filters (default rpm/v1/+/obs, rpm/v1/+/alert, rpm/v1/+/status)'),
  })
  .transform((s) => ({ clientId: s.clientId, topics: s.topics ?? [...DEFAULT_SUBSCRIBER_TOPICS] }));

export const brokerSection = z
  .strictObject({
    host: listenHost(),
    port: port(),
    allowNetwork: z
      .boolean()
      .describe(
        'true or false: listen on an address other than loopback (the hubs reach the broker over the network)',
      ),
    cert: pathSetting("the broker's server certificate (PEM)"),
    key: secretRef("the broker's private key", ['file', 'credential']),
    maxPayload: size({ min: 1024, minText: '1KiB' }),
    persistence: z.strictObject({
      dir: pathSetting('the folder of the persistent sessions and QoS 1 queues'),
      key: secretRef('the key the queued messages are encrypted with', ['file', 'credential']),
      sync: z
        .boolean()
        .describe(
          'true or false: flush each queued message to disk before the PUBACK (survives a power cut)',
        ),
    }),
    durableSubscribers: z
      .array(durableSubscriber)
      .describe('a list of { clientId, topics }: sessions provisioned before any hub connects'),
  })
  .superRefine((b, ctx) => {
    if (!isLoopback(b.host) && !b.allowNetwork) {
      ctx.addIssue({
        code: 'custom',
        path: ['host'],
        message: `${b.host} is not a loopback address, so the broker would be reachable from the network; set broker.allowNetwork: true if that is meant`,
      });
    }
    const seen = new Set<string>();
    b.durableSubscribers.forEach((s, i) => {
      if (seen.has(s.clientId)) {
        ctx.addIssue({
          code: 'custom',
          path: ['durableSubscribers', i, 'clientId'],
          message: 'listed twice',
        });
      }
      seen.add(s.clientId);
    });
  })
  .transform((b) => ({
    host: b.host,
    port: b.port,
    allowNetwork: b.allowNetwork,
    cert: b.cert,
    key: b.key,
    maxPayloadBytes: b.maxPayload,
    persistence: b.persistence,
    durableSubscribers: b.durableSubscribers,
  }));
