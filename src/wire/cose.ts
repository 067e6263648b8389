import { createHash, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { type CborInput, type CborMap, CborTag, type CborValue, decodeCbor, encodeCbor } from './cbor.js';
import { WireError } from './errors.js';

/**
 * COSE_Sign1 (RFC 9052 section 4.2) with ES256 (RFC 9053 section 2.1), the envelope of every wire message.
 *
 *   COSE_Sign1 = #6.18([ protected: bstr .cbor {1: -7}, unprotected: {4: kid}, payload: bstr, signature: bstr ])
 *
 * The signature covers Sig_structure = ["Signature1", protected, external_aad = h'', payload] (RFC 9052
 * section 4.4), hashed with SHA-256 and signed with the P-256 key of the signer's certificate; it is r || s,
 * 32 bytes each (RFC 9053 section 2.1), which is node:crypto's 'ieee-p1363' encoding.
 */

/** COSE header labels (RFC 9052 section 3.1) and the one algorithm (RFC 9053 section 2.1, IANA COSE registry). */
export const HEADER_ALG = 1;
export const HEADER_CRIT = 2;
export const HEADER_KID = 4;
export const ALG_ES256 = -7;
/** CBOR tag of COSE_Sign1 (RFC 9052 section 2). */
export const COSE_SIGN1_TAG = 18;

/** The default receiver limit for one envelope (docs/wire-format.md, "Size limits"). */
export const MAX_ENVELOPE_BYTES = 256 * 1024;
/** Limit a gateway applies to a command envelope: commands are small, anything larger is hostile. */
export const MAX_COMMAND_BYTES = 16 * 1024;

/** The protected header as sent: the map {1: -7} serialized as a byte string (RFC 9052 section 3). */
const PROTECTED_ES256 = encodeCbor(new Map([[HEADER_ALG, ALG_ES256]]));
const SIGNATURE_BYTES = 64;
const KID_BYTES = 32;

/** kid = SHA-256 over the DER of the signer's certificate (docs/wire-format.md, "Keys and kid"). */
export function kidForCertificate(der: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(der).digest());
}

/**
 * Bytes a COSE_Sign1 adds around a payload of `payloadLength` bytes in this profile (tag, array, headers with a
 * 32-byte kid, payload head, 64-byte signature), so a batcher can keep the whole envelope under a limit.
 */
export function envelopeSize(payloadLength: number): number {
  const head = payloadLength < 24 ? 1 : payloadLength <= 0xff ? 2 : payloadLength <= 0xffff ? 3 : 5;
  // tag 18 (1) + array(4) (1) + protected bstr (1 + 3) + {4: bstr(32)} (1 + 1 + 2 + 32) + signature (2 + 64)
  return 1 + 1 + 4 + 36 + head + payloadLength + 66;
}

/** Signs `payload` into a tagged COSE_Sign1 envelope. `key` is a P-256 private key; `kid` is 32 bytes. */
export function signEnvelope(payload: Uint8Array, key: KeyObject, kid: Uint8Array): Uint8Array {
  if (key.type !== 'private' || !isP256(key)) {
    throw new WireError('WIRE_UNSUPPORTED_ALG', 'ES256 signing needs a P-256 (prime256v1) private key');
  }
  if (kid.length !== KID_BYTES) {
    throw new WireError('WIRE_INVALID_FIELD', 'kid: expected 32 bytes (SHA-256 of the certificate DER)');
  }
  const signature = sign('sha256', sigStructure(PROTECTED_ES256, payload), {
    key,
    dsaEncoding: 'ieee-p1363',
  });
  return encodeSign1({ payload, kid, signature: new Uint8Array(signature) });
}

/**
 * Assembles a COSE_Sign1 from its parts without signing: for documented examples whose signature is pinned
 * (ECDSA signatures are randomized) and for tests that build altered envelopes. Defaults are this profile's
 * headers: protected {1: -7}, unprotected {4: kid}, tag 18.
 */
export function encodeSign1(parts: {
  readonly payload: Uint8Array | null;
  readonly signature: Uint8Array;
  readonly kid?: Uint8Array;
  readonly protectedHeader?: Uint8Array;
  readonly unprotectedHeader?: ReadonlyMap<number | string, CborInput>;
  readonly tagged?: boolean;
}): Uint8Array {
  const unprotected = parts.unprotectedHeader ?? new Map(parts.kid ? [[HEADER_KID, parts.kid]] : []);
  const array: CborInput = [
    parts.protectedHeader ?? PROTECTED_ES256,
    unprotected,
    parts.payload,
    parts.signature,
  ];
  return encodeCbor(parts.tagged === false ? array : new CborTag(COSE_SIGN1_TAG, array));
}

/** The protected header this profile sends: {1: -7} as CBOR (RFC 9052 section 3). */
export function protectedHeaderEs256(): Uint8Array {
  return PROTECTED_ES256.slice();
}

/** The bytes that are signed: Sig_structure for COSE_Sign1 with empty external_aad (RFC 9052 section 4.4). */
export function sigStructure(protectedHeader: Uint8Array, payload: Uint8Array): Uint8Array {
  return encodeCbor(['Signature1', protectedHeader, new Uint8Array(0), payload]);
}

export interface VerifiedEnvelope {
  readonly payload: Uint8Array;
  readonly kid: Uint8Array;
}

export type KeyResolver = (kid: Uint8Array) => KeyObject | undefined;

/**
 * Verifies a COSE_Sign1 envelope and returns its payload and kid, or throws WireError:
 *
 * 1. longer than `maxBytes`: WIRE_TOO_LARGE, before a byte is parsed;
 * 2. not one well-formed CBOR item, not tag 18 (or untagged) around [bstr, map, bstr, bstr], a protected header
 *    that is not a map, a label in both header maps (RFC 9052 section 3), a `crit` header (we understand no
 *    critical parameter), no kid, detached payload: WIRE_MALFORMED;
 * 3. the protected header's alg is not ES256 (-7), or is missing: WIRE_UNSUPPORTED_ALG. An alg in the
 *    unprotected header is never read: it is not covered by the signature;
 * 4. resolveKey(kid) has no key: WIRE_UNKNOWN_KID; the key is not P-256: WIRE_UNSUPPORTED_ALG;
 * 5. the signature is not 64 bytes or does not verify: WIRE_BAD_SIGNATURE.
 */
export function verifyEnvelope(
  bytes: Uint8Array,
  resolveKey: KeyResolver,
  limits: { readonly maxBytes: number } = { maxBytes: MAX_ENVELOPE_BYTES },
): VerifiedEnvelope {
  const opened = openEnvelope(bytes, resolveKey, limits);
  let ok: boolean;
  try {
    ok = verify(
      'sha256',
      opened.toBeSigned,
      { key: opened.key, dsaEncoding: 'ieee-p1363' },
      opened.signature,
    );
  } catch (error) {
    throw new WireError('WIRE_BAD_SIGNATURE', 'the signature could not be checked', { cause: error });
  }
  if (!ok) throw new WireError('WIRE_BAD_SIGNATURE', 'the signature does not verify');
  return { payload: opened.payload, kid: opened.kid };
}

/**
 * verifyEnvelope with the ECDSA check run on libuv's thread pool (node:crypto `verify` with a callback, Node.js
 * docs "crypto.verify(algorithm, data, key, signature[, callback])"): the same checks in the same order, the same
 * errors (as a rejection). The signature check is most of a small message's cost at a receiver (about 70 us of
 * CPU for P-256 here, half or more of the intake's time per live message); off the event loop it runs on another
 * core while the loop reads, decodes and commits the next messages.
 */
export function verifyEnvelopeAsync(
  bytes: Uint8Array,
  resolveKey: KeyResolver,
  limits: { readonly maxBytes: number } = { maxBytes: MAX_ENVELOPE_BYTES },
): Promise<VerifiedEnvelope> {
  let opened: OpenedEnvelope;
  try {
    opened = openEnvelope(bytes, resolveKey, limits);
  } catch (error) {
    return Promise.reject(error);
  }
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, ok: boolean) => {
      if (error)
        reject(new WireError('WIRE_BAD_SIGNATURE', 'the signature could not be checked', { cause: error }));
      else if (!ok) reject(new WireError('WIRE_BAD_SIGNATURE', 'the signature does not verify'));
      else resolve({ payload: opened.payload, kid: opened.kid });
    };
    try {
      verify(
        'sha256',
        opened.toBeSigned,
        { key: opened.key, dsaEncoding: 'ieee-p1363' },
        opened.signature,
        done,
      );
    } catch (error) {
      // Argument errors are thrown before the job is queued.
      done(error as Error, false);
    }
  });
}

/** An envelope whose structure, headers and key were checked (steps 1-4 and the signature's length), not yet its signature. */
interface OpenedEnvelope {
  readonly payload: Uint8Array;
  readonly kid: Uint8Array;
  /** The signer's public key. */
  readonly key: KeyObject;
  /** Sig_structure (RFC 9052 section 4.4): what the signature must cover. */
  readonly toBeSigned: Uint8Array;
  readonly signature: Uint8Array;
}

function openEnvelope(
  bytes: Uint8Array,
  resolveKey: KeyResolver,
  limits: { readonly maxBytes: number },
): OpenedEnvelope {
  if (bytes.length > limits.maxBytes) {
    throw new WireError(
      'WIRE_TOO_LARGE',
      `envelope of ${bytes.length} bytes exceeds the limit of ${limits.maxBytes}`,
    );
  }
  let top = decodeCbor(bytes, { maxDepth: 8 });
  if (top instanceof CborTag) {
    // The tag may be left out where the context says it is a COSE_Sign1 (RFC 9052 section 2); any other tag
    // says it is something else.
    if (top.tag !== COSE_SIGN1_TAG) throw malformed(`tag ${top.tag} is not COSE_Sign1 (18)`);
    top = top.value;
  }
  if (!Array.isArray(top) || top.length !== 4) throw malformed('not a COSE_Sign1 array of four items');
  const [protectedBytes, unprotected, payload, signature] = top;
  if (!(protectedBytes instanceof Uint8Array)) throw malformed('the protected header is not a byte string');
  if (!(unprotected instanceof Map)) throw malformed('the unprotected header is not a map');
  if (payload === null) throw malformed('detached payloads are not used by this format');
  if (!(payload instanceof Uint8Array)) throw malformed('the payload is not a byte string');
  if (!(signature instanceof Uint8Array)) throw malformed('the signature is not a byte string');

  // An empty protected header is a zero-length bstr, or (accepted from others) an encoded empty map.
  const protectedHeader: CborMap = protectedBytes.length === 0 ? new Map() : headerMap(protectedBytes);
  for (const label of protectedHeader.keys()) {
    if (unprotected.has(label)) throw malformed('a header label appears in both header maps');
  }
  if (protectedHeader.has(HEADER_CRIT)) throw malformed('critical header parameters are not supported');
  const alg = protectedHeader.get(HEADER_ALG);
  if (alg !== ALG_ES256) {
    throw new WireError(
      'WIRE_UNSUPPORTED_ALG',
      alg === undefined
        ? 'the protected header names no algorithm (an unprotected alg is not trusted)'
        : 'the protected header names an algorithm other than ES256 (-7)',
    );
  }
  const kid: CborValue = protectedHeader.get(HEADER_KID) ?? unprotected.get(HEADER_KID);
  if (!(kid instanceof Uint8Array) || kid.length === 0 || kid.length > 64) {
    throw malformed('no kid (a byte string of 1-64 bytes) in the headers');
  }

  const key = resolveKey(kid);
  if (key === undefined) throw new WireError('WIRE_UNKNOWN_KID', `no key is known for kid ${hexPrefix(kid)}`);
  if (!isP256(key)) throw new WireError('WIRE_UNSUPPORTED_ALG', 'the key for this kid is not a P-256 key');
  if (signature.length !== SIGNATURE_BYTES) {
    throw new WireError('WIRE_BAD_SIGNATURE', 'an ES256 signature is 64 bytes (r || s)');
  }
  let publicKey: KeyObject;
  try {
    publicKey = key.type === 'private' ? createPublicKey(key) : key;
  } catch (error) {
    throw new WireError('WIRE_BAD_SIGNATURE', 'the signature could not be checked', { cause: error });
  }
  return {
    payload: payload.slice(),
    kid: kid.slice(),
    key: publicKey,
    toBeSigned: sigStructure(protectedBytes, payload),
    signature,
  };
}

function headerMap(bytes: Uint8Array): CborMap {
  const header = decodeCbor(bytes, { maxDepth: 4 });
  if (!(header instanceof Map)) throw malformed('the protected header is not a CBOR map');
  return header;
}

/** Answers per key object, remembered: `asymmetricKeyDetails` builds a new object at every read. */
const p256Keys = new WeakMap<KeyObject, boolean>();

function isP256(key: KeyObject): boolean {
  let answer = p256Keys.get(key);
  if (answer === undefined) {
    answer = key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
    p256Keys.set(key, answer);
  }
  return answer;
}

function malformed(message: string): WireError {
  return new WireError('WIRE_MALFORMED', `COSE_Sign1: ${message}`);
}

function hexPrefix(kid: Uint8Array): string {
  const hex = Buffer.from(kid).toString('hex');
  return hex.length > 16 ? `${hex.slice(0, 16)}...` : hex;
}
