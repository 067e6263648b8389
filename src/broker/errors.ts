import { GatewayError } from '../errors.js';

/** Stable codes of the embedded clinical broker (docs/errors.md, "Clinical broker"). */
export type BrokerErrorCode =
  /** A durable subscriber is not a clinic client id, or one of its subscriptions is not one a clinic may hold. */
  | 'BROKER_BAD_DURABLE_SUBSCRIBER'
  /** The broker's LevelDB store could not be opened or written (another broker holds its lock, disk full...). */
  | 'BROKER_PERSISTENCE'
  /** The store exists but the key of its values does not (a new key could never read it). */
  | 'BROKER_PERSISTENCE_KEY_MISSING'
  /** The key of the store's values cannot be read or used (permissions, not 256 bits, unsafe file...). */
  | 'BROKER_PERSISTENCE_KEY'
  /** The store was sealed under another key, or written unencrypted: its key check does not open. */
  | 'BROKER_PERSISTENCE_KEY_WRONG'
  /** A stored value failed authentication (changed on disk, moved between keys): skipped and reported. */
  | 'BROKER_PERSISTENCE_CORRUPT';

export class BrokerError extends GatewayError {
  declare readonly code: BrokerErrorCode;

  constructor(code: BrokerErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
