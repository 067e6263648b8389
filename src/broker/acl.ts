/**
 * Who may do what on the clinical broker. Identity comes only from the verified client certificate (never
 * from an MQTT username or password). Least privilege:
 *   gateway G  connects   with client id G only
 *              publishes  rpm/v1/G/obs, rpm/v1/G/alert, rpm/v1/G/status (retained), rpm/v1/G/cmd/res
 *              subscribes rpm/v1/G/cmd
 *   clinic C   connects   with client id clinic-C or clinic-C-<suffix> only (never a gateway's session)
 *              publishes  rpm/v1/<any gateway>/cmd
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

/**
 * The MQTT client id names the session (MQTT 3.1.1 section 3.1.3.1): a CONNECT with a client id that is already
 * connected makes the broker disconnect the existing client (section 3.1.4, step 2) and, with CleanSession 0,
 * hand it that client's stored session. So the client id is part of the identity and comes from the
 * certificate too, in two disjoint name spaces:
 *   gateway G         exactly `G` (gateway ids never start with `clinic-`, so no clinic id can be one);
 *   clinic <name>     `clinic-<name>` or `clinic-<name>-<suffix>` (one per receiver process), where a name
 *                     that already starts with `clinic-` is not prefixed twice (`clinic-demo` -> `clinic-demo`).
 */
export const CLINIC_CLIENT_ID_PREFIX = 'clinic-';

/** The client id a clinic certificate's receivers use: `clinic-<name>`, or `<name>` when it starts with `clinic-`. */
export function clinicClientId(clinicName: string, suffix?: string): string {
  const base = clinicName.startsWith(CLINIC_CLIENT_ID_PREFIX)
    ? clinicName
    : `${CLINIC_CLIENT_ID_PREFIX}${clinicName}`;
  return suffix === undefined ? base : `${base}-${suffix}`;
}

/** A suffix is what tells two receivers of one clinic apart: 1-23 characters a-z 0-9 '-'. */
const CLIENT_ID_SUFFIX = /^[a-z0-9][a-z0-9-]{0,22}$/;

/** Checks a CONNECT: only gateways and clinics, each under a client id derived from its certificate. */
export function mayConnect(identity: ClientIdentity | undefined, clientId: string): Decision {
  if (!identity) return deny('no usable identity in the client certificate');
  if (identity.role === 'gateway') {
    if (!GATEWAY_ID.test(identity.id)) return deny('gateway id in the certificate is not valid');
    if (identity.id.startsWith(CLINIC_CLIENT_ID_PREFIX)) {
      return deny(`gateway id ${identity.id} lies in the clinic client id name space`);
    }
    return clientId === identity.id
      ? ALLOW
      : deny(`client id ${shown(clientId)} is not the certificate's gateway id`);
  }
  if (identity.role === 'clinic') {
    const base = clinicClientId(identity.id);
    if (clientId === base) return ALLOW;
    const suffix = clientId.startsWith(`${base}-`) ? clientId.slice(base.length + 1) : undefined;
    return suffix !== undefined && CLIENT_ID_SUFFIX.test(suffix)
      ? ALLOW
      : deny(`client id ${shown(clientId)} is not ${base} or ${base}-<suffix>`);
  }
  return deny(`certificate role ${identity.role} may not connect`);
}

/** A client id as the audit shows it: JSON-quoted, at most 64 characters (MQTT allows 65,535 bytes). */
function shown(clientId: string): string {
  return JSON.stringify(clientId.length > 64 ? `${clientId.slice(0, 64)}...` : clientId);
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
