import { GatewayError } from '../errors.js';

/** Stable codes for the gateway's own configuration and state folder (docs/errors.md, "Configuration"). */
export type ConfigErrorCode =
  /** The data directory is a file, or a part of its path is. */
  | 'CONFIG_NOT_A_DIRECTORY'
  /** The data directory cannot be created or entered: no permission, or a read-only file system. */
  | 'CONFIG_NO_ACCESS';

export class ConfigError extends GatewayError {
  declare readonly code: ConfigErrorCode;

  constructor(code: ConfigErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
