import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { html } from '../../../patient-page/html.js';
import {
  addStaffUser,
  changeCareTeam,
  disableStaffUser,
  mfaState,
  resetStaffMfa,
  type StaffAdminContext,
  userNamed,
} from '../../staff/admin.js';
import { StaffStoreError, type StaffStoreErrorCode } from '../../staff/errors.js';
import { checkMrn, checkUsername } from '../../staff/rules.js';
import type { StaffRole, StaffStore, StaffUser } from '../../staff/staff-store.js';
import type { ClinicStore } from '../../storage/clinic-store.js';
import type { LiveSession } from '../auth/staff-auth.js';
import type { FormRoutesContext } from '../pages/page-routes.js';
import { messagePageFor, notFoundPage, type PageChrome, page } from '../pages/pages.js';
import { AdminPageError } from './errors.js';
import { ADMIN_CSS, type AdminNotice, careTeamBody, type StaffRow, staffListBody } from './render.js';

/** What the admin routes need from the app (src/clinic/dashboard/app.ts registers them). */
export type AdminRoutesContext = FormRoutesContext;

/** The staff records' codes that mean bad input from the form or URL: a 400 page, never a 500. */
const INPUT_CODES: ReadonlySet<StaffStoreErrorCode> = new Set([
  'STAFF_USERNAME_INVALID',
  'STAFF_FIELD_INVALID',
  'STAFF_USER_UNKNOWN',
  'STAFF_USER_EXISTS',
]);

type Form = Readonly<Record<string, string>>;
type Params = { Params: { username: string } };

/**
 * The staff administration pages (docs/dashboard.md, "Administration"), what `rpm-gateway clinic user` does,
 * through the same functions (src/clinic/staff/admin.ts), so a change made here is stored, checked and audited
 * exactly as the command's, with the signed-in admin as the actor:
 *  - GET /admin/staff: the staff list and the add form;
 *  - POST /admin/staff: adds a user; the answer shows their random initial password, once;
 *  - POST /admin/staff/:username/disable, /reset-mfa: as the command's (both end the user's sessions);
 *  - GET /admin/staff/:username: a clinician's care team; POST .../care (action add|remove, mrn) changes it.
 *
 * Only admins: for anyone else every one of these answers exactly as a page that does not exist (the app's
 * 404), before the CSRF token is looked at, as an unknown route's answer does not look at it either. Every
 * POST carries the session's CSRF token (and passed the app's Origin check). Bad input is a 400 page with
 * the error's message and code; an admin's own account cannot be disabled or have its second factor reset
 * here: a session left open at a desk must not lock the clinic's admin out, or let someone replace their
 * second factor. Another admin, or the command, can.
 */
export function registerAdminRoutes(app: FastifyInstance, context: AdminRoutesContext): void {
  const { staff, clinic } = context;
  const send = (reply: FastifyReply, body: string, code = 200) =>
    reply.code(code).type('text/html; charset=utf-8').send(body);
  const adminChrome = (session: LiveSession, title: string): PageChrome => ({
    ...context.chrome(session, title),
    styles: ['/assets/admin.css'],
  });
  const adminContext = (session: LiveSession): StaffAdminContext => ({
    store: staff,
    audit: context.audit,
    actor: session.user.username,
    clock: context.clock,
  });

  app.get('/assets/admin.css', async (_request, reply) =>
    reply.type('text/css; charset=utf-8').send(ADMIN_CSS),
  );

  /** The admin's complete session; otherwise the login redirect, or the 404 of a page that does not exist. */
  const admin = async (request: FastifyRequest, reply: FastifyReply) => {
    const session = await context.signedIn(request, reply);
    if (!session) return undefined;
    if (session.user.role === 'admin') return session;
    void send(reply, notFoundPage(context.chrome(session, 'Not found')), 404);
    return undefined;
  };

  /** A POST of an admin with the session's CSRF token, and its form; otherwise answered already. */
  const adminPost = async (request: FastifyRequest, reply: FastifyReply) => {
    const session = await admin(request, reply);
    if (!session) return undefined;
    const form = formOf(request);
    if (!context.sessionTokenOk(session, form)) {
      void context.refuseForgery(reply);
      return undefined;
    }
    return { session, form };
  };

  /** Runs `work`; bad input becomes a 400 page with the code, anything else goes to the app's error handler. */
  const answering = async (
    reply: FastifyReply,
    session: LiveSession,
    back: { readonly href: string; readonly text: string },
    work: () => Promise<FastifyReply>,
  ): Promise<FastifyReply> => {
    try {
      return await work();
    } catch (error) {
      const input =
        error instanceof AdminPageError || (error instanceof StaffStoreError && INPUT_CODES.has(error.code));
      if (!input) throw error;
      return send(
        reply,
        messagePageFor(adminChrome(session, 'Not done'), {
          heading: 'Not done',
          text: (error as AdminPageError | StaffStoreError).message,
          code: (error as AdminPageError | StaffStoreError).code,
          back,
        }),
        400,
      );
    }
  };
  const toList = { href: '/admin/staff', text: 'Back to the staff list' };

  const showList = async (reply: FastifyReply, session: LiveSession, notice?: AdminNotice) => {
    const users = await staff.listUsers();
    const rows = await Promise.all(users.map(async (user) => staffRow(user, staff, context.clock.now())));
    return send(
      reply,
      page(
        adminChrome(session, 'Staff'),
        staffListBody({
          rows,
          self: session.user.username,
          csrfToken: context.csrfToken(session),
          timeZone: context.timeZone,
          ...(notice ? { notice } : {}),
        }),
      ),
    );
  };

  app.get('/admin/staff', async (request, reply) => {
    const session = await admin(request, reply);
    if (!session) return reply;
    return showList(reply, session);
  });

  app.post('/admin/staff', async (request, reply) => {
    const posted = await adminPost(request, reply);
    if (!posted) return reply;
    const { session, form } = posted;
    return answering(reply, session, toList, async () => {
      const username = form.username ?? '';
      checkUsername(username);
      const role = roleOf(form.role);
      const { user, password } = await addStaffUser(adminContext(session), { username, role });
      return showList(reply, session, { kind: 'added', username: user.username, role: user.role, password });
    });
  });

  app.post<Params>('/admin/staff/:username/disable', async (request, reply) => {
    const posted = await adminPost(request, reply);
    if (!posted) return reply;
    const { session } = posted;
    return answering(reply, session, toList, async () => {
      const username = notSelf(session, named(request.params.username));
      const done = await disableStaffUser(adminContext(session), username);
      const text = done.changed
        ? `User ${username} disabled; ${sessions(done.sessionsRevoked)} ended.`
        : `User ${username} was already disabled; no sessions were live.`;
      return showList(reply, session, { kind: 'done', text });
    });
  });

  app.post<Params>('/admin/staff/:username/reset-mfa', async (request, reply) => {
    const posted = await adminPost(request, reply);
    if (!posted) return reply;
    const { session } = posted;
    return answering(reply, session, toList, async () => {
      const username = notSelf(session, named(request.params.username));
      const done = await resetStaffMfa(adminContext(session), username);
      const text = done.changed
        ? `User ${username}: second factor removed, ${sessions(done.sessionsRevoked)} ended; their next login sets up a new one.`
        : `User ${username} has no second factor yet; nothing to reset.`;
      return showList(reply, session, { kind: 'done', text });
    });
  });

  const showCare = async (reply: FastifyReply, session: LiveSession, user: StaffUser, notice?: string) => {
    if (user.role === 'admin') {
      return send(
        reply,
        page(adminChrome(session, `Care team of ${user.username}`), careTeamOfAdmin(user.username)),
      );
    }
    const patients = [...(await staff.patientsOf(user.id))].sort();
    const others = (await knownPatients(clinic)).filter((mrn) => !patients.includes(mrn));
    return send(
      reply,
      page(
        adminChrome(session, `Care team of ${user.username}`),
        careTeamBody({
          username: user.username,
          disabled: user.disabled,
          patients,
          others,
          csrfToken: context.csrfToken(session),
          ...(notice ? { notice } : {}),
        }),
      ),
    );
  };

  app.get<Params>('/admin/staff/:username', async (request, reply) => {
    const session = await admin(request, reply);
    if (!session) return reply;
    return answering(reply, session, toList, async () =>
      showCare(reply, session, await userNamed(staff, named(request.params.username))),
    );
  });

  app.post<Params>('/admin/staff/:username/care', async (request, reply) => {
    const posted = await adminPost(request, reply);
    if (!posted) return reply;
    const { session, form } = posted;
    const username = request.params.username;
    const back = { href: `/admin/staff/${encodeURIComponent(username)}`, text: 'Back to the care team' };
    return answering(reply, session, back, async () => {
      named(username);
      const action = form.action;
      if (action !== 'add' && action !== 'remove') {
        throw new StaffStoreError(
          'STAFF_FIELD_INVALID',
          'the form is not complete (add or remove); reload it',
        );
      }
      const mrn = form.mrn ?? '';
      checkMrn(mrn);
      // The command takes any well-formed MRN (a care team may be set up before the hub is assigned); here a
      // typing slip would otherwise file a patient nobody can see, so an addition must name a known patient.
      if (action === 'add' && !(await knownPatients(clinic)).includes(mrn)) {
        throw new AdminPageError(
          'ADMIN_PATIENT_UNKNOWN',
          `the clinic database knows no patient with MRN ${JSON.stringify(mrn)}: no hub is or was assigned to it (rpm-gateway clinic assign). Check the MRN.`,
        );
      }
      const done = await changeCareTeam(adminContext(session), { username, mrn, action });
      const verb = action === 'add' ? 'added to' : 'removed from';
      const notice = done.changed
        ? `${username} ${verb} the care team of ${mrn}.`
        : `${username} was already ${action === 'add' ? 'in' : 'not in'} the care team of ${mrn}; nothing changed.`;
      return showCare(reply, session, done.user, notice);
    });
  });
}

/** The username of a URL, checked as the store checks it (STAFF_USERNAME_INVALID). */
function named(username: string): string {
  checkUsername(username);
  return username;
}

function notSelf(session: LiveSession, username: string): string {
  if (username === session.user.username) {
    throw new AdminPageError(
      'ADMIN_SELF_CHANGE',
      'you cannot disable your own account or reset your own second factor from your session; another admin can (or rpm-gateway clinic user on the server)',
    );
  }
  return username;
}

function roleOf(value: string | undefined): StaffRole {
  if (value === 'admin' || value === 'clinician') return value;
  throw new StaffStoreError('STAFF_FIELD_INVALID', 'role must be admin or clinician');
}

/** The patients the clinic knows: every MRN of a hub assignment, past or present (what an admin sees). */
async function knownPatients(clinic: ClinicStore): Promise<string[]> {
  return [...new Set((await clinic.assignments()).map((a) => a.mrn))].sort();
}

async function staffRow(user: StaffUser, staff: StaffStore, now: number): Promise<StaffRow> {
  return {
    username: user.username,
    role: user.role,
    disabled: user.disabled,
    mfa: mfaState(user),
    failedLogins: user.failedLogins,
    ...(user.lockedUntil !== undefined && user.lockedUntil > now ? { lockedUntil: user.lockedUntil } : {}),
    patients: user.role === 'clinician' ? (await staff.patientsOf(user.id)).length : 0,
    createdAt: user.createdAt,
    createdBy: user.createdBy,
  };
}

function careTeamOfAdmin(username: string) {
  return messageBody(
    `Care team of ${username}`,
    `${username} is an admin and sees every patient: care teams are for clinicians.`,
  );
}

function messageBody(heading: string, text: string) {
  return html`<p><a href="/admin/staff">Staff</a></p><h1>${heading}</h1><p>${text}</p>`;
}

const sessions = (n: number) => (n === 1 ? '1 session' : `${n} sessions`);

function formOf(request: FastifyRequest): Form {
  const body = request.body;
  return body !== null && typeof body === 'object' ? (body as Form) : {};
}
