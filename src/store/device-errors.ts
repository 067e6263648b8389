import { GatewayError } from '../errors.js';

/**
 * Stable codes for device enrolment (docs/errors.md): the registry of enrolled devices and the `pair`,
 * `devices` and `forget` commands. Messages name device ids, drivers and profiles, never an address.
 */
export type DeviceErrorCode =
  /** No enrolled device has this id (never enrolled, or forgotten). */
  | 'DEVICE_NOT_ENROLLED'
  /** A value for the registry is not acceptable (a label too long or with control characters, an empty address). */
  | 'DEVICE_INVALID'
  /** `pair` found no supported health device nearby. */
  | 'DEVICE_NONE_NEARBY'
  /** No device was chosen, a question went unanswered, or the user declined: nothing was changed. */
  | 'DEVICE_NOT_CHOSEN'
  /** The device connected but does not look like what its driver expects (a required characteristic is missing). */
  | 'DEVICE_CHECK_FAILED'
  /** Another enrolment holds the radio's pairing agent (one device is paired at a time). */
  | 'DEVICE_PAIRING_BUSY';

export class DeviceError extends GatewayError {
  declare readonly code: DeviceErrorCode;

  constructor(code: DeviceErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
