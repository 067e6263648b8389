import { encodeCbor } from './cbor.js';
import { WireError } from './errors.js';
import { decodePayload, GATEWAY_ID, WIRE_VERSION } from './fields.js';

/**
 * The gateway status payload, published retained on `rpm/v1/<gw>/status` (docs/wire-format.md, "Status").
 * The same payload with state "offline" is the MQTT Last Will (MQTT 3.1.1 section 3.1.2.5). A will is handed to
 * the broker in CONNECT and published by the broker later, so it is built and signed at connect time: its
 * `sent` is the connect time, and its backlog counts are those of that moment.
 */
export interface GatewayStatus {
  readonly gatewayId: string;
  readonly state: 'online' | 'offline';
  /** The gateway software version. */
  readonly version: string;
  /** When the payload was built (epoch ms); for the Last Will, the connect time. */
  readonly sentAt: number;
  /** Records waiting in the outbox, per lane. */
  readonly backlog: { readonly alert: number; readonly live: number; readonly backlog: number };
  /** notAfter of the gateway's client certificate (epoch ms), so the clinic sees renewals due. */
  readonly certExpiresAt?: number;
  /** The head hash of the gateway's audit log (64 lowercase hex), which the clinic anchors off the device. */
  readonly auditHead?: string;
}

const AUDIT_HEAD = /^[0-9a-f]{64}$/;
const VERSION_TEXT = /^[!-~]{1,64}$/;

export function encodeStatus(status: GatewayStatus): Uint8Array {
  const bytes = encodeCbor({
    v: WIRE_VERSION,
    gw: status.gatewayId,
    state: status.state,
    ver: status.version,
    sent: status.sentAt,
    backlog: { alert: status.backlog.alert, live: status.backlog.live, backlog: status.backlog.backlog },
    certExp: status.certExpiresAt,
    audit: status.auditHead,
  });
  decodeStatus(bytes); // never publish what a receiver would refuse
  return bytes;
}

/** The Last Will for a connection: the status at connect time, saying "offline". */
export function lastWillStatus(online: GatewayStatus): GatewayStatus {
  return { ...online, state: 'offline' };
}

export function decodeStatus(
  payload: Uint8Array,
  expect: { readonly gatewayId?: string } = {},
): GatewayStatus {
  const f = decodePayload(payload, 'status');
  const gatewayId = f.text('gw', { pattern: GATEWAY_ID, describe: 'a gateway id' });
  if (expect.gatewayId !== undefined && gatewayId !== expect.gatewayId) {
    throw new WireError('WIRE_GATEWAY_MISMATCH', 'status.gw is not the gateway the topic and signer name');
  }
  const state = f.text('state', { oneOf: ['online', 'offline'] }) as GatewayStatus['state'];
  const version = f.text('ver', { pattern: VERSION_TEXT, describe: 'a version (1-64 printable ASCII)' });
  const sentAt = f.uint('sent', 'epoch milliseconds (uint)');
  const lanes = f.fields('backlog');
  const backlog = { alert: lanes.uint('alert'), live: lanes.uint('live'), backlog: lanes.uint('backlog') };
  const certExpiresAt = f.optionalUint('certExp', 'epoch milliseconds (uint)');
  const auditHead = f.optionalText('audit', { pattern: AUDIT_HEAD, describe: '64 lowercase hex digits' });
  if (certExpiresAt !== undefined && auditHead !== undefined) {
    return { gatewayId, state, version, sentAt, backlog, certExpiresAt, auditHead };
  }
  if (certExpiresAt !== undefined) return { gatewayId, state, version, sentAt, backlog, certExpiresAt };
  if (auditHead !== undefined) return { gatewayId, state, version, sentAt, backlog, auditHead };
  return { gatewayId, state, version, sentAt, backlog };
}
