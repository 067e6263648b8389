import { WireError } from './errors.js';
import { GATEWAY_ID } from './fields.js';

/**
 * MQTT topics of the wire format (docs/wire-format.md, "Topics"). Everything a gateway says or is told lives
 * under `rpm/v1/<gatewayId>/`, so a broker ACL keyed on the gateway id from the client certificate can give
 * each gateway its own subtree and nothing else (MQTT 3.1.1 section 4.7 topic names; no wildcards in names).
 *
 * - obs      gateway -> clinic  batches of readings and gap records (live and backlog lanes)
 * - alert    gateway -> clinic  batches of the alert lane
 * - status   gateway -> clinic  retained gateway status; also the Last Will ("offline")
 * - cmd      clinic -> gateway  signed commands
 * - cmd/res  gateway -> clinic  signed command results
 */
export const TOPIC_PREFIX = 'rpm/v1';

export type TopicKind = 'obs' | 'alert' | 'status' | 'cmd' | 'cmd/res';
export const TOPIC_KINDS: readonly TopicKind[] = ['obs', 'alert', 'status', 'cmd', 'cmd/res'];

/** Named like the uplink's UplinkTopics, so `gatewayTopics(id)` can be passed to it as is. */
export interface GatewayTopics {
  readonly obs: string;
  readonly alert: string;
  readonly status: string;
  readonly cmd: string;
  readonly cmdResult: string;
}

export function isGatewayId(value: string): boolean {
  return GATEWAY_ID.test(value);
}

export function assertGatewayId(value: string): void {
  if (!isGatewayId(value)) {
    throw new WireError(
      'WIRE_INVALID_FIELD',
      'gateway id: expected 3-63 characters of a-z, 0-9 and "-", not starting with "-"',
    );
  }
}

export function topicFor(gatewayId: string, kind: TopicKind): string {
  assertGatewayId(gatewayId);
  return `${TOPIC_PREFIX}/${gatewayId}/${kind}`;
}

export function gatewayTopics(gatewayId: string): GatewayTopics {
  return {
    obs: topicFor(gatewayId, 'obs'),
    alert: topicFor(gatewayId, 'alert'),
    status: topicFor(gatewayId, 'status'),
    cmd: topicFor(gatewayId, 'cmd'),
    cmdResult: topicFor(gatewayId, 'cmd/res'),
  };
}

/**
 * A subscription filter for one kind of topic: one gateway's, or every gateway's with the single-level
 * wildcard `+` (MQTT 3.1.1 section 4.7.1.3), as a clinic receiver subscribes to `rpm/v1/+/obs`.
 */
export function topicFilter(kind: TopicKind, gatewayId?: string): string {
  return gatewayId === undefined ? `${TOPIC_PREFIX}/+/${kind}` : topicFor(gatewayId, kind);
}

/** Splits a topic name into gateway id and kind; anything else is WIRE_BAD_TOPIC. */
export function parseTopic(topic: string): { readonly gatewayId: string; readonly kind: TopicKind } {
  const prefix = `${TOPIC_PREFIX}/`;
  if (topic.startsWith(prefix)) {
    const rest = topic.slice(prefix.length);
    const slash = rest.indexOf('/');
    if (slash > 0) {
      const gatewayId = rest.slice(0, slash);
      const kind = rest.slice(slash + 1);
      if (isGatewayId(gatewayId) && (TOPIC_KINDS as readonly string[]).includes(kind)) {
        return { gatewayId, kind: kind as TopicKind };
      }
    }
  }
  throw new WireError('WIRE_BAD_TOPIC', 'not an rpm/v1/<gatewayId>/{obs,alert,status,cmd,cmd/res} topic');
}
