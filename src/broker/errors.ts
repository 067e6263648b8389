import { GatewayError } from '../errors.js';

/** Stable codes of the embedded clinical broker (docs/errors.md, "Clinical broker"). */
export type BrokerErrorCode =
  /** A durable subscriber is not a clinic client id, or one of its subscriptions is not one a clinic may hold. */
  | 'BROKER_BAD_DURABLE_SUBSCRIBER'
  /** The broker's LevelDB store could not be opened or written (another broker holds its lock, disk full...). */
  | 'BROKER_PERSISTENCE';

export class BrokerError extends GatewayError {
  declare readonly code: BrokerErrorCode;

  constructor(code: BrokerErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
