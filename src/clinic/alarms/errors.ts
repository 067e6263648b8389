import { GatewayError } from '../../errors.js';

/**
 * Stable codes of the clinic's alarms (src/clinic/alarms/; docs/errors.md, "Clinic alarms"). A failure of the
 * database itself (wrong key, disk full, server unreachable, used after close) is the clinic database's
 * ClinicStoreError with its CLINIC_STORE_* code, since alarms live in the same database. Messages never hold a
 * measurement value or an MRN.
 */
export type AlarmErrorCode =
  /** acknowledge: the id names no alarm. */
  | 'ALARM_UNKNOWN'
  /** A patient's limits are not acceptable: not a rule the hub could hold, a priority, a code given twice. */
  | 'ALARM_LIMITS_INVALID'
  /** Another field is not acceptable: an MRN, who acted, a time, an alarm's fields. */
  | 'ALARM_FIELD_INVALID'
  /** The alarm tables were written by a newer version of this software. */
  | 'ALARM_SCHEMA_TOO_NEW'
  /** The engine was used after stop(), or started twice. */
  | 'ALARM_ENGINE_STOPPED'
  /** Limits were to go to the patient's hub, but the patient has no hub assigned now. */
  | 'ALARM_NO_GATEWAY'
  /** The hub answered the limits command with an error (its code and message are in this message). */
  | 'ALARM_HUB_REFUSED'
  /** No answer from the hub within the command's lifetime (offline, or it refused without answering). */
  | 'ALARM_HUB_NO_ANSWER';

export class AlarmError extends GatewayError {
  declare readonly code: AlarmErrorCode;

  constructor(code: AlarmErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
