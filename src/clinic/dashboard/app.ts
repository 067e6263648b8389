import cookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import QRCode from 'qrcode';
import type { AuditLog } from '../../audit/audit-log.js';
import { hostAllowed } from '../../patient-page/server.js';
import type { Clock } from '../../util/clock.js';
import type { Scheduler } from '../../util/scheduler.js';
import type { MappingOptions } from '../fhir/mapping.js';
import { offsetAt } from '../intake/local-time.js';
import type { StaffStore } from '../staff/staff-store.js';
import type { ClinicStore } from '../storage/clinic-store.js';
import { mayView, patientsVisibleTo } from './access.js';
import { registerAdminRoutes } from './admin/routes.js';
import { type DashboardAlarms, registerAlarmRoutes } from './alarms/routes.js';
import { loadAssets } from './assets.js';
import { type LiveSession, StaffAuth } from './auth/staff-auth.js';
import { csrfTokenFor, newCsrfSecret, sameToken } from './auth/tokens.js';
import { MAX_FHIR_MEASUREMENTS } from './exports/fhir.js';
import { registerExportRoutes } from './exports/routes.js';
import { LiveHub } from './live/live-hub.js';
import type { FormRoutesContext, PageRoutesContext } from './pages/page-routes.js';
import {
  CODE_FAILED,
  codePage,
  enrolPage,
  LOGIN_FAILED,
  loginPage,
  messagePage,
  notFoundPage,
  type PageChrome,
  patientListPage,
  patientPage,
} from './pages/pages.js';
import { DASHBOARD_CSS } from './pages/style.js';
import { registerViewRoutes } from './views/routes.js';

/**
 * The session cookie. The `__Host-` prefix (RFC 6265bis section 4.1.3.2) makes a browser accept it only with
 * Secure, Path=/ and no Domain, from a secure origin, so neither a sibling subdomain nor a plain-http page can
 * set or overwrite it (cookie tossing, session fixation). HttpOnly keeps it from scripts; SameSite=Strict
 * keeps it off every request another site starts. No Max-Age: it ends with the browser, and the server ends it
 * sooner (idle and absolute timeouts).
 */
export const SESSION_COOKIE = '__Host-rpm_session';

/**
 * The login form's CSRF token, before there is a session to bind one to: a double-submit cookie (OWASP
 * Cross-Site Request Forgery Prevention Cheat Sheet, "Double Submit Cookie", and "Login CSRF"). Its known
 * weakness, an attacker who can write cookies for the domain, is what the `__Host-` prefix removes; the
 * Origin check comes on top.
 */
export const LOGIN_COOKIE = '__Host-rpm_login';

const COOKIE_ATTRIBUTES = { path: '/', secure: true, httpOnly: true, sameSite: 'strict' } as const;

export interface DashboardAppOptions {
  readonly staff: StaffStore;
  readonly clinic: ClinicStore;
  readonly audit: AuditLog;
  readonly clock: Clock;
  /** The https origin browsers use; the Origin of every POST must be this. */
  readonly publicOrigin: string;
  readonly session: { readonly idleMs: number; readonly absoluteMs: number };
  readonly lockout: { readonly maxFailures: number; readonly lockForMs: number };
  /** Login requests (password and code) per IP address per minute. */
  readonly loginsPerMinute: number;
  /** The clinic's name: the issuer authenticator apps show. */
  readonly clinicName: string;
  /** IANA time zone the pages show times in. */
  readonly timeZone: string;
  /**
   * A page that has heard nothing from the live feed (no reading, no heartbeat) for this long shows itself,
   * and every tile, as stale (dashboard.staleAfter).
   */
  readonly staleAfterMs: number;
  /** The live feed's heartbeat timer; the real timers by default. */
  readonly scheduler?: Scheduler;
  /** Told when a commit could not be turned into live events (no PHI in the error). */
  readonly onLiveError?: (error: unknown) => void;
  /** The alarm pages' stores and engine (src/clinic/dashboard/alarms/routes.ts); absent: no alarm pages. */
  readonly alarms?: DashboardAlarms;
  /**
   * The identifier systems of the FHIR export (fhir.patientIdentifierSystem, fhir.systemBase): with them the
   * patient page offers a FHIR download beside the CSV, with the identifiers the EHR holds.
   */
  readonly fhirExport?: MappingOptions;
  /** TLS for a listening server; absent for fastify.inject tests. */
  readonly https?: { readonly cert: string; readonly key: string };
}

type Form = Readonly<Record<string, string>>;

/**
 * The dashboard's HTTP side: routes, headers, CSRF and Origin checks. The login rules are StaffAuth's; which
 * patients a user may see is access.ts's.
 *
 * Headers on every answer (@fastify/helmet, plus Cache-Control):
 *  - Content-Security-Policy (W3C CSP Level 3): `default-src 'self'`, scripts and styles from this origin
 *    only and never inline, images from here or `data:` (the enrolment QR code), `frame-ancestors 'none'`
 *    (no framing: clickjacking), `form-action 'self'`, `base-uri 'none'`, `object-src 'none'`;
 *  - Strict-Transport-Security max-age one year with includeSubDomains (RFC 6797 section 6.1);
 *  - X-Content-Type-Options nosniff, X-Frame-Options DENY;
 *  - Referrer-Policy same-origin: a patient's URL never leaves this origin in a Referer. Not no-referrer:
 *    under no-referrer a browser sends `Origin: null` on its own form posts (Fetch Standard, "append a request
 *    `Origin` header", step 4), and the Origin check below could then no longer tell this dashboard's forms
 *    from a forged one;
 *  - Cache-Control no-store (RFC 9111 section 5.2.2.5): no patient data, and no page of a logged-in user,
 *    stays in a browser's or proxy's cache after logout.
 */
export async function buildDashboardApp(options: DashboardAppOptions): Promise<FastifyInstance> {
  const { staff, clinic, audit, clock } = options;
  const auth = new StaffAuth(
    { staff, audit, clock },
    {
      idleMs: options.session.idleMs,
      absoluteMs: options.session.absoluteMs,
      maxFailures: options.lockout.maxFailures,
      lockForMs: options.lockout.lockForMs,
      issuer: options.clinicName,
    },
  );
  const publicHost = new URL(options.publicOrigin).hostname.toLowerCase();
  const names = new Set([publicHost]);
  const app = Fastify({
    logger: false,
    requestTimeout: 10_000,
    return503OnClosing: true,
    bodyLimit: 16 * 1024,
    // A URL fastify cannot decode (not UTF-8) or route: the same plain answer as every other error.
    frameworkErrors: (error, _request, reply) => {
      // The option's reply type is generic over route schemas this hook never has.
      void (reply as unknown as FastifyReply)
        .code(error.statusCode !== undefined && error.statusCode < 500 ? error.statusCode : 400)
        .type('text/plain; charset=utf-8')
        .send('The request could not be answered.\n');
    },
    ...(options.https ? { https: { cert: options.https.cert, key: options.https.key } } : {}),
  });

  await app.register(cookie);
  await app.register(helmet, {
    global: true,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
    referrerPolicy: { policy: 'same-origin' },
    frameguard: { action: 'deny' },
  });
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_request, context) => ({
      statusCode: 429,
      message: `Too many login attempts from this address; wait ${Math.ceil(context.ttl / 1000)} seconds.`,
    }),
  });
  const limited = { rateLimit: { max: options.loginsPerMinute, timeWindow: 60_000 } };

  // The live feed: one subscription to the store for all connections; closed with the app.
  const alarms = options.alarms;
  const hub = new LiveHub({
    clinic,
    timeZone: options.timeZone,
    heartbeatMs: heartbeatInterval(options.staleAfterMs),
    ...(options.scheduler ? { scheduler: options.scheduler } : {}),
    ...(options.onLiveError ? { onError: options.onLiveError } : {}),
    ...(alarms
      ? {
          alarms: {
            subscribe: (listener) => alarms.store.subscribe(listener),
            openOf: (mrn) => alarms.store.alarmsOf(mrn, { openOnly: true }),
          },
        }
      : {}),
  });
  await hub.start();
  app.addHook('onClose', async () => hub.close());
  const assets = loadAssets();

  // HTML forms post application/x-www-form-urlencoded (HTML Standard section 4.10.21.8), and that is the only
  // body this dashboard reads: JSON and text are refused (415) rather than parsed into something a handler
  // might take for a form. The first value of each name counts.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_request, body, done) => {
      const form: Record<string, string> = {};
      for (const [name, value] of new URLSearchParams(body as string)) {
        if (!Object.hasOwn(form, name)) form[name] = value;
      }
      done(null, form);
    },
  );

  app.addHook('onRequest', async (request, reply) => {
    if (!hostAllowed(request.hostname, names)) {
      return reply
        .code(403)
        .type('text/plain; charset=utf-8')
        .send('This dashboard answers under its own address only.\n');
    }
    if (request.method !== 'GET' && request.method !== 'HEAD' && request.method !== 'POST') {
      return reply.code(405).header('Allow', 'GET, HEAD, POST').type('text/plain; charset=utf-8').send();
    }
    // Every state change must come from a page of this dashboard (OWASP CSRF Prevention Cheat Sheet,
    // "Verifying Origin With Standard Headers"): the Origin header, else the Referer's origin, must be the
    // public origin; a request with neither is refused.
    if (request.method === 'POST' && !fromPublicOrigin(request, options.publicOrigin)) {
      return refuseForgery(reply);
    }
    return undefined;
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('Cache-Control', 'no-store');
    return payload;
  });

  const meta = (request: FastifyRequest) => ({ ip: request.ip });
  const live = (request: FastifyRequest) => auth.resolve(request.cookies[SESSION_COOKIE]);
  const html = (reply: FastifyReply, body: string, code = 200) =>
    reply.code(code).type('text/html; charset=utf-8').send(body);
  const setSession = (reply: FastifyReply, id: string) =>
    reply.setCookie(SESSION_COOKIE, id, COOKIE_ATTRIBUTES);
  const endSession = (reply: FastifyReply) => reply.clearCookie(SESSION_COOKIE, COOKIE_ATTRIBUTES);
  /** Where a session that is not (yet) complete belongs. */
  const nextStep = (session: LiveSession | undefined) =>
    session === undefined
      ? '/login'
      : session.session.stage === 'complete'
        ? '/'
        : session.user.totpConfirmedAt === undefined
          ? '/mfa/enrol'
          : '/mfa';
  const chrome = (session: LiveSession, title: string): PageChrome => ({
    title,
    user: {
      username: session.user.username,
      role: session.user.role,
      csrfToken: csrfTokenFor(session.session.csrfSecret),
    },
  });
  const sessionTokenOk = (session: LiveSession, form: Form) =>
    sameToken(csrfTokenFor(session.session.csrfSecret), form._csrf);

  const showLogin = (reply: FastifyReply, error?: string, code = 200) => {
    const formToken = newCsrfSecret();
    reply.setCookie(LOGIN_COOKIE, formToken, COOKIE_ATTRIBUTES);
    return html(reply, loginPage({ formToken, ...(error ? { error } : {}) }), code);
  };

  app.get('/login', async (request, reply) => {
    const session = await live(request);
    if (session?.session.stage === 'complete') return reply.redirect('/', 303);
    return showLogin(reply);
  });

  app.post('/login', { config: limited }, async (request, reply) => {
    const form = formOf(request);
    const expected = request.cookies[LOGIN_COOKIE];
    if (expected === undefined || !sameToken(expected, form._csrf)) return refuseForgery(reply);
    const earlier = await live(request);
    if (earlier) await staff.revokeSession(earlier.session.idHash, clock.now());
    const outcome = await auth.passwordLogin(form.username ?? '', form.password ?? '', meta(request));
    if (!outcome.ok) return showLogin(reply, LOGIN_FAILED, 401);
    reply.clearCookie(LOGIN_COOKIE, COOKIE_ATTRIBUTES);
    setSession(reply, outcome.sessionId);
    return reply.redirect(outcome.next === 'enrol' ? '/mfa/enrol' : '/mfa', 303);
  });

  const enrolment = async (session: LiveSession, reply: FastifyReply, error?: string, code = 200) => {
    const { secret, uri } = await auth.enrolment(session);
    const qrDataUrl = await QRCode.toDataURL(uri, { errorCorrectionLevel: 'M', margin: 2, width: 240 });
    const csrfToken = csrfTokenFor(session.session.csrfSecret);
    return html(reply, enrolPage({ qrDataUrl, secret, csrfToken, ...(error ? { error } : {}) }), code);
  };

  app.get('/mfa/enrol', async (request, reply) => {
    const session = await live(request);
    if (nextStep(session) !== '/mfa/enrol' || !session) return reply.redirect(nextStep(session), 303);
    return enrolment(session, reply);
  });

  app.get('/mfa', async (request, reply) => {
    const session = await live(request);
    if (nextStep(session) !== '/mfa' || !session) return reply.redirect(nextStep(session), 303);
    return html(reply, codePage({ csrfToken: csrfTokenFor(session.session.csrfSecret) }));
  });

  for (const path of ['/mfa/enrol', '/mfa'] as const) {
    app.post(path, { config: limited }, async (request, reply) => {
      const session = await live(request);
      if (!session) return html(reply, messagePage('Log in again', 'Your login has ended.'), 401);
      const form = formOf(request);
      if (!sessionTokenOk(session, form)) return refuseForgery(reply);
      if (nextStep(session) !== path) return reply.redirect(nextStep(session), 303);
      const outcome =
        path === '/mfa/enrol'
          ? await auth.confirmEnrolment(session, form.code ?? '', meta(request))
          : await auth.verifyCode(session, form.code ?? '', meta(request));
      if (outcome.ok) {
        setSession(reply, outcome.sessionId);
        return reply.redirect('/', 303);
      }
      if (outcome.ended) {
        endSession(reply);
        return showLogin(reply, LOGIN_FAILED, 401);
      }
      if (path === '/mfa/enrol') return enrolment(session, reply, CODE_FAILED, 401);
      return html(
        reply,
        codePage({ csrfToken: csrfTokenFor(session.session.csrfSecret), error: CODE_FAILED }),
        401,
      );
    });
  }

  app.post('/logout', async (request, reply) => {
    const session = await live(request);
    if (session) {
      if (!sessionTokenOk(session, formOf(request))) return refuseForgery(reply);
      await auth.logout(session, meta(request));
    }
    endSession(reply);
    return reply.redirect('/login', 303);
  });

  /** The complete session of a page that needs one, or a redirect to the step the login is at. */
  const signedIn = async (request: FastifyRequest, reply: FastifyReply) => {
    const session = await live(request);
    if (session?.session.stage === 'complete') return session;
    void reply.redirect(nextStep(session), 303);
    return undefined;
  };

  const liveChrome = { live: { staleAfterMs: options.staleAfterMs } };

  app.get('/', async (request, reply) => {
    const session = await signedIn(request, reply);
    if (!session) return reply;
    const patients = await patientsVisibleTo(session.user, staff, clinic);
    return html(
      reply,
      patientListPage(
        {
          ...chrome(session, 'Patients'),
          ...liveChrome,
          scripts: [{ src: '/assets/tiles.js', module: true }],
        },
        patients,
      ),
    );
  });

  app.get<{ Params: { mrn: string } }>('/patients/:mrn', async (request, reply) => {
    const session = await signedIn(request, reply);
    if (!session) return reply;
    const { mrn } = request.params;
    if (!(await mayView(session.user, mrn, staff, clinic))) {
      return html(reply, notFoundPage(chrome(session, 'Not found')), 404);
    }
    const now = clock.now();
    const latest = await clinic.latest(mrn);
    audit.record('patient.viewed', session.user.username, { mrn, ip: request.ip });
    const pageChrome: PageChrome = {
      ...chrome(session, `Patient ${mrn}`),
      ...liveChrome,
      styles: ['/assets/uplot.css'],
      scripts: [{ src: '/assets/uplot.js' }, { src: '/assets/patient.js', module: true }],
    };
    return html(
      reply,
      patientPage(pageChrome, {
        mrn,
        latest,
        now,
        timeZone: options.timeZone,
        alarms: alarms !== undefined,
        exports: {
          fhir: options.fhirExport !== undefined,
          // The last 24 hours, to the next whole minute so that a reading of this minute is in.
          from: localMinute(now - 24 * 3_600_000, options.timeZone, 'floor'),
          to: localMinute(now, options.timeZone, 'ceil'),
          maxFhirMeasurements: MAX_FHIR_MEASUREMENTS,
        },
      }),
    );
  });

  // What the page modules below share: one session check, one audit log, one page chrome, one CSRF check.
  const pages: PageRoutesContext = {
    staff,
    clinic,
    audit,
    clock,
    timeZone: options.timeZone,
    signedIn,
    chrome,
  };
  const forms: FormRoutesContext = {
    ...pages,
    csrfToken: (session) => csrfTokenFor(session.session.csrfSecret),
    sessionTokenOk,
    refuseForgery,
  };

  registerExportRoutes(app, { ...pages, ...(options.fhirExport ? { fhir: options.fhirExport } : {}) });

  registerViewRoutes(app, {
    staff,
    clinic,
    publicOrigin: options.publicOrigin,
    timeZone: options.timeZone,
    hub,
    signedIn: async (request) => {
      const session = await live(request);
      return session?.session.stage === 'complete' ? session : undefined;
    },
    recheck: (sessionId) => auth.resolve(sessionId, { touch: false }),
    sessionCookie: SESSION_COOKIE,
    ...(options.alarms
      ? { openAlarms: () => options.alarms?.store.openAlarms() ?? Promise.resolve([]) }
      : {}),
  });

  registerAdminRoutes(app, forms);

  if (options.alarms) {
    registerAlarmRoutes(app, {
      ...forms,
      alarms: options.alarms,
      peek: async (request) => {
        const session = await auth.resolve(request.cookies[SESSION_COOKIE], { touch: false });
        return session?.session.stage === 'complete' ? session : undefined;
      },
      staleAfterMs: options.staleAfterMs,
    });
  }

  app.get('/assets/dashboard.css', async (_request, reply) =>
    reply.type('text/css; charset=utf-8').send(DASHBOARD_CSS),
  );
  app.get<{ Params: { name: string } }>('/assets/:name', async (request, reply) => {
    const asset = assets.get(`/assets/${request.params.name}`);
    if (asset === undefined) return reply.callNotFound();
    return reply.type(asset.type).send(asset.body);
  });

  app.setNotFoundHandler(async (request, reply) => {
    const session = await live(request);
    const body =
      session?.session.stage === 'complete'
        ? notFoundPage(chrome(session, 'Not found'))
        : notFoundPage({ title: 'Not found' });
    return html(reply, body, 404);
  });
  // Never a stack trace or an internal message on a page.
  app.setErrorHandler(async (error: { statusCode?: number; message?: string }, _request, reply) => {
    const status = error.statusCode !== undefined && error.statusCode < 500 ? error.statusCode : 500;
    const text =
      status === 429 ? (error.message ?? 'Too many requests.') : 'The request could not be answered.';
    return reply.code(status).type('text/plain; charset=utf-8').send(`${text}\n`);
  });
  return app;
}

/**
 * The live feed's heartbeat: three within `staleAfter`, so one lost or late heartbeat does not turn a page
 * stale, and at most every 5 s (a connection through an idle-closing proxy stays busy).
 */
export function heartbeatInterval(staleAfterMs: number): number {
  return Math.max(100, Math.min(5_000, Math.floor(staleAfterMs / 3)));
}

/** `at` as an HTML datetime-local value (YYYY-MM-DDTHH:MM) in `timeZone`, rounded to a whole minute. */
function localMinute(at: number, timeZone: string, round: 'floor' | 'ceil'): string {
  const minute = (round === 'floor' ? Math.floor : Math.ceil)(at / 60_000) * 60_000;
  return new Date(minute + offsetAt(minute, timeZone)).toISOString().slice(0, 16);
}

function formOf(request: FastifyRequest): Form {
  const body = request.body;
  return body !== null && typeof body === 'object' ? (body as Form) : {};
}

function fromPublicOrigin(request: FastifyRequest, publicOrigin: string): boolean {
  const origin = request.headers.origin;
  if (origin !== undefined) return origin === publicOrigin;
  const referer = request.headers.referer;
  if (referer === undefined) return false;
  try {
    return new URL(referer).origin === publicOrigin;
  } catch {
    return false;
  }
}

function refuseForgery(reply: FastifyReply): FastifyReply {
  return reply
    .code(403)
    .type('text/plain; charset=utf-8')
    .send(
      'This request did not come from a current page of this dashboard. Go back, reload the page and try again.\n',
    );
}
