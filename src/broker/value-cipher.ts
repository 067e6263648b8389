import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';

/**
 * Authenticated encryption of the values the broker keeps in LevelDB (queued messages, sessions, retained
 * messages, wills), bound to the LevelDB key each value is stored under.
 *
 * AES-256-GCM (NIST SP 800-38D) from node:crypto. Every value is sealed as
 *
 *   version (1 byte, 1) | key id (4) | run salt (16) | nonce (12) | ciphertext | tag (16)
 *
 * - key id: the first 4 bytes of HKDF-SHA256(key, info "rpm-gateway broker store key id") (RFC 5869): names
 *   which key sealed a value without revealing anything about the key, so a value sealed under another key
 *   is reported as such instead of as damage.
 * - run salt: 16 random bytes chosen each time the store is opened. The value is sealed under the subkey
 *   HKDF-SHA256(key, salt = run salt, info "rpm-gateway broker store values"), not under the key itself: with
 *   random 96-bit nonces, one GCM key may seal at most 2^32 values (SP 800-38D section 8.3), and a broker
 *   queueing for years could pass that; a fresh subkey per run keeps every subkey far below it.
 * - nonce: 12 random bytes per value (the 96-bit IV SP 800-38D section 8.2.2 describes).
 * - additional authenticated data: version, key id and run salt, then the LevelDB key (UTF-8). A value moved
 *   under another LevelDB key (another client's queue, another message id) fails authentication like a
 *   changed byte does.
 *
 * The LevelDB keys themselves stay in the clear: aedes-persistence-level finds sessions and queues by range
 * scans over them, which need them ordered. They hold MQTT client ids, topics (rpm/v1/<gateway id>/...), broker
 * ids and message counters: pseudonymous device ids and counters, never a measurement.
 */

const VERSION = 1;
const KEY_ID_BYTES = 4;
const SALT_BYTES = 16;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + KEY_ID_BYTES + SALT_BYTES;
/** Bytes a sealed value has beyond its plaintext. */
export const SEAL_OVERHEAD = HEADER_BYTES + NONCE_BYTES + TAG_BYTES;

const KEY_ID_INFO = 'rpm-gateway broker store key id';
const SUBKEY_INFO = 'rpm-gateway broker store values';

/** Why a stored value could not be opened: what the store reports, never the value itself. */
export type UnsealProblem =
  /** Too short, or a format version this code does not know. */
  | 'malformed'
  /** Sealed under another key (its key id differs from this key's). */
  | 'other-key'
  /** The tag does not match: a changed byte, or a value moved from another LevelDB key. */
  | 'authentication';

export class UnsealError extends Error {
  constructor(readonly problem: UnsealProblem) {
    super(
      problem === 'malformed'
        ? 'not a sealed value of a known format'
        : problem === 'other-key'
          ? 'sealed under another key'
          : 'failed authentication (changed on disk, or moved from another entry)',
    );
    this.name = 'UnsealError';
  }
}

export class ValueCipher {
  readonly keyId: Buffer;
  private readonly master: KeyObject;
  private readonly header: Buffer;
  private readonly sealing: KeyObject;
  /** Subkeys of the runs whose values have been read, by run salt (hex): one HKDF per run, not per value. */
  private readonly opening = new Map<string, KeyObject>();

  /** `key`: 32 bytes. The caller may zero its copy afterwards; the cipher keeps its own in a KeyObject. */
  constructor(key: Uint8Array) {
    if (key.byteLength !== 32) throw new RangeError('the broker store key must be 32 bytes (256 bits)');
    this.master = createSecretKey(Buffer.from(key));
    this.keyId = Buffer.from(hkdfSync('sha256', this.master, Buffer.alloc(0), KEY_ID_INFO, KEY_ID_BYTES));
    const salt = randomBytes(SALT_BYTES);
    this.header = Buffer.concat([Buffer.of(VERSION), this.keyId, salt]);
    this.sealing = this.subkey(salt);
    this.opening.set(salt.toString('hex'), this.sealing);
  }

  seal(levelKey: string, plaintext: Uint8Array): Buffer {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.sealing, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.concat([this.header, Buffer.from(levelKey, 'utf8')]));
    const body = cipher.update(plaintext);
    const final = cipher.final();
    return Buffer.concat([this.header, nonce, body, final, cipher.getAuthTag()]);
  }

  /** The plaintext of a value sealed under `levelKey`; UnsealError when it is not exactly what was sealed. */
  unseal(levelKey: string, sealed: Uint8Array): Buffer {
    const value = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    if (value.length < SEAL_OVERHEAD || value[0] !== VERSION) throw new UnsealError('malformed');
    if (!value.subarray(1, 1 + KEY_ID_BYTES).equals(this.keyId)) throw new UnsealError('other-key');
    const header = value.subarray(0, HEADER_BYTES);
    const salt = value.subarray(1 + KEY_ID_BYTES, HEADER_BYTES);
    const nonce = value.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES);
    const tag = value.subarray(value.length - TAG_BYTES);
    const saltHex = salt.toString('hex');
    let key = this.opening.get(saltHex);
    if (key === undefined) {
      key = this.subkey(salt);
      this.opening.set(saltHex, key);
    }
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.concat([header, Buffer.from(levelKey, 'utf8')]));
    decipher.setAuthTag(tag);
    const body = decipher.update(value.subarray(HEADER_BYTES + NONCE_BYTES, value.length - TAG_BYTES));
    try {
      return Buffer.concat([body, decipher.final()]);
    } catch {
      body.fill(0); // unauthenticated plaintext is never handed out
      throw new UnsealError('authentication');
    }
  }

  private subkey(salt: Buffer): KeyObject {
    return createSecretKey(Buffer.from(hkdfSync('sha256', this.master, salt, SUBKEY_INFO, 32)));
  }
}
