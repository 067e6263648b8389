/**
 * Who may do what on the clinical broker. Identity comes only from the verified client certificate (never
 * from an MQTT username or password). Least privilege:
 *   gateway G  publishes  rpm/v1/G/obs, rpm/v1/G/alert, rpm/v1/G/status (retained), rpm/v1/G/cmd/res
 *              subscribes rpm/v1/G/cmd
 *   clinic     publishes  rpm/v1/<any gateway>/cmd
 *              subscribes anything under rpm/v1/ (all gateways' obs, alert, status, cmd/res)
 * Everything else is refused. A gateway can therefore neither read another hub's data nor impersonate it, and
 * a compromised clinic receiver still cannot forge readings (they are also signed by the gateway's key).
 */
export interface ClientIdentity {
  readonly role: 'gateway' | 'clinic' | 'server' | 'unknown';
  /** The gateway id or the clinic's name. */
  readonly id: string;
}

const GATEWAY_ID = /^[a-z0-9][a-z0-9-]{2,62}$/;
const PREFIX = 'rpm/v1/';

export type Decision = { readonly allowed: true } | { readonly allowed: false; readonly reason: string };

const ALLOW: Decision = { allowed: true };
const deny = (reason: string): Decision => ({ allowed: false, reason });

/** Checks a CONNECT: only gateways and clinics, and a gateway's client id must be its certificate's id. */
export function mayConnect(identity: ClientIdentity | undefined, clientId: string): Decision {
  if (!identity) return deny('no usable identity in the client certificate');
  if (identity.role === 'gateway') {
    if (!GATEWAY_ID.test(identity.id)) return deny('gateway id in the certificate is not valid');
    return clientId === identity.id
      ? ALLOW
      : deny(`client id ${clientId} is not the certificate's gateway id`);
  }
  if (identity.role === 'clinic') return ALLOW;
  return deny(`certificate role ${identity.role} may not connect`);
}

export function mayPublish(identity: ClientIdentity, topic: string, retain: boolean): Decision {
  if (!topic.startsWith(PREFIX)) return deny('topic outside rpm/v1/');
  const [gateway, ...rest] = topic.slice(PREFIX.length).split('/');
  const leaf = rest.join('/');
  if (identity.role === 'gateway') {
    if (gateway !== identity.id) return deny('a gateway may publish only under its own topics');
    if (leaf === 'status') return ALLOW;
    if (retain) return deny('only the status topic is retained');
    return leaf === 'obs' || leaf === 'alert' || leaf === 'cmd/res'
      ? ALLOW
      : deny(`gateways do not publish to ${leaf}`);
  }
  if (identity.role === 'clinic') {
    if (retain) return deny('clinic commands are not retained');
    return gateway !== undefined && GATEWAY_ID.test(gateway) && leaf === 'cmd'
      ? ALLOW
      : deny('a clinic publishes only commands to one gateway');
  }
  return deny('unknown role');
}

export function maySubscribe(identity: ClientIdentity, filter: string): Decision {
  if (identity.role === 'gateway') {
    return filter === `${PREFIX}${identity.id}/cmd`
      ? ALLOW
      : deny('a gateway subscribes only to its own command topic');
  }
  if (identity.role === 'clinic') {
    return filter === 'rpm/v1/#' || filter.startsWith(PREFIX)
      ? ALLOW
      : deny('clinic subscriptions stay under rpm/v1/');
  }
  return deny('unknown role');
}
