import { GatewayError } from '../errors.js';

/** Stable codes of the control socket (docs/control-socket.md, docs/errors.md). */
export type ControlErrorCode =
  /** The runtime directory or its socket cannot be entered by this user (EACCES): not the service user. */
  | 'CONTROL_NO_ACCESS'
  /** The runtime directory is not safe to hold the socket: looser than 0700, another owner, not a folder. */
  | 'CONTROL_DIR_UNSAFE'
  /** Another hub answers on the socket already: this one must not take it over. */
  | 'CONTROL_IN_USE'
  /** A message on the socket is not valid (not JSON, wrong shape, unknown method, too long). */
  | 'CONTROL_BAD_MESSAGE'
  /** The peer speaks another protocol version. */
  | 'CONTROL_VERSION'
  /** The connection ended (or failed) before the reply came. */
  | 'CONTROL_CLOSED'
  /** The socket could not be created or reached for another reason (the message says which). */
  | 'CONTROL_IO'
  /** The hub failed to answer a request because of a fault of its own; its log has the detail. */
  | 'CONTROL_INTERNAL';

export class ControlError extends GatewayError {
  declare readonly code: ControlErrorCode;

  constructor(code: ControlErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
