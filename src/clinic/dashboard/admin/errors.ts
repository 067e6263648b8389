import { GatewayError } from '../../../errors.js';

/**
 * Stable codes of the dashboard's staff administration pages (/admin/staff; docs/errors.md, "Dashboard
 * administration"), for what only the web pages check. A bad username, role or unknown user is the staff
 * records' own StaffStoreError (STAFF_USERNAME_INVALID, STAFF_FIELD_INVALID, STAFF_USER_UNKNOWN,
 * STAFF_USER_EXISTS), the same code `rpm-gateway clinic user` reports. Each is answered 400 with a page that
 * shows the message and the code.
 */
export type AdminPageErrorCode =
  /** An admin tried to disable their own account or reset their own second factor from their session. */
  | 'ADMIN_SELF_CHANGE'
  /** A care-team addition names an MRN no hub assignment of the clinic database has ever named. */
  | 'ADMIN_PATIENT_UNKNOWN';

export class AdminPageError extends GatewayError {
  declare readonly code: AdminPageErrorCode;

  constructor(code: AdminPageErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
