import { CLOCK_SKEW_MS } from '../../pki/index.js';
import {
  type Batch,
  decodeBatch,
  decodeStatus,
  type GatewayStatus,
  parseTopic,
  verifyEnvelope,
  verifyEnvelopeAsync,
  WireError,
} from '../../wire/index.js';
import { IntakeError } from './errors.js';
import type { GatewayInventory, InventoryEntry, SignerLookup } from './gateway-inventory.js';

/**
 * One message from the broker, judged: the wire checks of docs/wire-format.md section 3.1 (src/wire) and the
 * signer rules of section 4 as this receiver applies them, all at the time of receipt:
 *
 * 1. size, envelope, algorithm, kid, signature: WIRE_* from verifyEnvelope; a kid the inventory does not know
 *    is WIRE_UNKNOWN_KID and the message is quarantined (`quarantine: true`) for a retry when it changes;
 * 2. the signer is the gateway the topic names: WIRE_GATEWAY_MISMATCH;
 * 3. the signer's certificate is on the CRL: INTAKE_SIGNER_REVOKED, always, whatever the times say;
 * 4. receipt before notBefore - 5 min (the CA's own back-dating for skew): INTAKE_SIGNER_NOT_YET_VALID;
 * 5. receipt after notAfter + grace: INTAKE_SIGNER_EXPIRED. The grace lets a backlog batch that was signed
 *    before the expiry and then waited in the broker's queue through, for a bounded time;
 * 6. the payload decodes (WIRE_*), names the same gateway, and its `sent` is not after notAfter:
 *    INTAKE_SIGNED_AFTER_EXPIRY. `sent` is the signer's own claim, so it can only ever refuse: a message is
 *    admitted by the receipt time (5), never because `sent` says it is old.
 *
 * The signature is checked before the certificate's status (3-6), so a refusal for revocation or expiry is
 * only ever given to a message that the certificate's key really signed.
 */
export type Verified =
  | {
      readonly kind: 'obs' | 'alert';
      readonly gatewayId: string;
      readonly batch: Batch;
      readonly signer: InventoryEntry;
    }
  | {
      readonly kind: 'status';
      readonly gatewayId: string;
      readonly status: GatewayStatus;
      readonly signer: InventoryEntry;
    };

export interface Refused {
  readonly refused: WireError | IntakeError;
  /** The gateway the topic named, when it parsed. */
  readonly gatewayId?: string;
  /** Keep the bytes for a retry: the kid was unknown, the inventory may be late. */
  readonly quarantine: boolean;
}

export interface SignerPolicy {
  /** Largest envelope accepted, bytes. */
  readonly maxEnvelopeBytes: number;
  /** How long after a certificate's notAfter a message signed before it is still accepted, ms. */
  readonly graceMs: number;
}

export function judge(
  topic: string,
  bytes: Uint8Array,
  receivedAt: number,
  inventory: GatewayInventory,
  policy: SignerPolicy,
): Verified | Refused {
  const signer = new SignerOf(inventory);
  let gatewayId: string | undefined;
  try {
    const { gatewayId: id, kind } = readTopic(topic);
    gatewayId = id;
    const { payload } = verifyEnvelope(bytes, signer.resolve, { maxBytes: policy.maxEnvelopeBytes });
    return admit(kind, id, payload, signer.found, receivedAt, policy);
  } catch (caught) {
    return refusal(caught, gatewayId);
  }
}

/**
 * `judge` with the signature checked on libuv's thread pool (verifyEnvelopeAsync): the same checks in the same
 * order and the same verdicts. Never rejects.
 */
export async function judgeAsync(
  topic: string,
  bytes: Uint8Array,
  receivedAt: number,
  inventory: GatewayInventory,
  policy: SignerPolicy,
): Promise<Verified | Refused> {
  const signer = new SignerOf(inventory);
  let gatewayId: string | undefined;
  try {
    const { gatewayId: id, kind } = readTopic(topic);
    gatewayId = id;
    const { payload } = await verifyEnvelopeAsync(bytes, signer.resolve, {
      maxBytes: policy.maxEnvelopeBytes,
    });
    return admit(kind, id, payload, signer.found, receivedAt, policy);
  } catch (caught) {
    return refusal(caught, gatewayId);
  }
}

type Found = Exclude<SignerLookup, { status: 'unknown' }>;

/** The key resolver handed to the envelope check; remembers which inventory entry it gave. */
class SignerOf {
  found: Found | undefined;
  constructor(private readonly inventory: GatewayInventory) {}
  readonly resolve = (kid: Uint8Array) => {
    const lookup = this.inventory.lookup(kid);
    if (lookup.status === 'unknown') return undefined;
    this.found = lookup;
    return lookup.entry.key;
  };
}

function readTopic(topic: string): { gatewayId: string; kind: 'obs' | 'alert' | 'status' } {
  const { gatewayId, kind } = parseTopic(topic);
  if (kind !== 'obs' && kind !== 'alert' && kind !== 'status') {
    throw new IntakeError('INTAKE_UNEXPECTED_TOPIC', `the intake does not read ${kind} topics`);
  }
  return { gatewayId, kind };
}

/** Rules 2-6, for a payload whose signature verified with the key of `found`. */
function admit(
  kind: 'obs' | 'alert' | 'status',
  gatewayId: string,
  payload: Uint8Array,
  found: Found | undefined,
  receivedAt: number,
  policy: SignerPolicy,
): Verified {
  // The envelope verified, so the resolver found a key and `found` names the signer.
  if (found === undefined) throw new WireError('WIRE_UNKNOWN_KID', 'no key is known for the kid');
  const signer = found.entry;
  if (signer.gatewayId !== gatewayId) {
    throw new WireError(
      'WIRE_GATEWAY_MISMATCH',
      `signed by gateway ${signer.gatewayId}, published under ${gatewayId}`,
    );
  }
  if (found.status === 'revoked') {
    throw new IntakeError(
      'INTAKE_SIGNER_REVOKED',
      `the signer certificate ${signer.serialNumber} is on the clinic CA's revocation list`,
    );
  }
  if (receivedAt < signer.notBefore - CLOCK_SKEW_MS) {
    throw new IntakeError(
      'INTAKE_SIGNER_NOT_YET_VALID',
      `the signer certificate ${signer.serialNumber} is valid from ${iso(signer.notBefore)} only`,
    );
  }
  if (receivedAt > signer.notAfter + policy.graceMs) {
    throw new IntakeError(
      'INTAKE_SIGNER_EXPIRED',
      `the signer certificate ${signer.serialNumber} expired at ${iso(signer.notAfter)}, beyond the grace of ${policy.graceMs} ms`,
    );
  }
  const verified: Verified =
    kind === 'status'
      ? { kind, gatewayId, status: decodeStatus(payload, { gatewayId }), signer }
      : { kind, gatewayId, batch: decodeBatch(payload, { gatewayId }), signer };
  const sentAt = verified.kind === 'status' ? verified.status.sentAt : verified.batch.sentAt;
  if (sentAt > signer.notAfter) {
    throw new IntakeError(
      'INTAKE_SIGNED_AFTER_EXPIRY',
      `the payload says it was signed after the signer certificate ${signer.serialNumber} expired`,
    );
  }
  return verified;
}

function refusal(caught: unknown, gatewayId: string | undefined): Refused {
  // Never fatal: anything the decoders did not foresee is a malformed message, not a crash.
  const error =
    caught instanceof WireError || caught instanceof IntakeError
      ? caught
      : new WireError('WIRE_MALFORMED', 'the message could not be read', { cause: caught });
  return {
    refused: error,
    ...(gatewayId === undefined ? {} : { gatewayId }),
    quarantine: error.code === 'WIRE_UNKNOWN_KID',
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
