import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuditLog } from '../../../audit/audit-log.js';
import type { Clock } from '../../../util/clock.js';
import type { StaffStore } from '../../staff/staff-store.js';
import type { ClinicStore } from '../../storage/clinic-store.js';
import type { LiveSession } from '../auth/staff-auth.js';
import type { PageChrome } from './pages.js';

/**
 * What a module of signed-in pages needs from the app (src/clinic/dashboard/app.ts builds it once and gives
 * the same to the export, staff administration and alarm routes), so every one of them checks the session,
 * audits and draws its pages the same way.
 */
export interface PageRoutesContext {
  readonly staff: StaffStore;
  readonly clinic: ClinicStore;
  readonly audit: AuditLog;
  readonly clock: Clock;
  /** The clinic's IANA time zone: times are shown in it, and a form's time without an offset is read in it. */
  readonly timeZone: string;
  /** The complete session of a page, or undefined after redirecting to the login step. */
  readonly signedIn: (request: FastifyRequest, reply: FastifyReply) => Promise<LiveSession | undefined>;
  readonly chrome: (session: LiveSession, title: string) => PageChrome;
}

/** The same, for pages whose forms POST: each form carries the session's CSRF token, checked on its way in. */
export interface FormRoutesContext extends PageRoutesContext {
  readonly csrfToken: (session: LiveSession) => string;
  readonly sessionTokenOk: (session: LiveSession, form: Readonly<Record<string, string>>) => boolean;
  readonly refuseForgery: (reply: FastifyReply) => FastifyReply;
}
