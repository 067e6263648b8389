import { GatewayError } from '../errors.js';

/** Stable codes of `rpm-gateway demo` (docs/errors.md, "Demo"). */
export type DemoErrorCode =
  /** --data-dir names a folder that holds something other than a demo's state (a real hub's store, say). */
  | 'DEMO_DATA_DIR_IN_USE'
  /** The port the demo's broker listens on (from the demo's gateway.yaml) is taken by another program. */
  | 'DEMO_PORT_IN_USE';

export class DemoError extends GatewayError {
  declare readonly code: DemoErrorCode;

  constructor(code: DemoErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
