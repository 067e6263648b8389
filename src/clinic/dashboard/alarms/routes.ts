import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { JsonValue } from '../../../model/observation.js';
import { html } from '../../../patient-page/html.js';
import { realScheduler, type Scheduler } from '../../../util/scheduler.js';
import type { AlarmStore } from '../../alarms/alarm-store.js';
import { AlarmError } from '../../alarms/errors.js';
import { patientGateway } from '../../alarms/hub-limits.js';
import { checkLimits, DEFAULT_LIMITS } from '../../alarms/limits.js';
import { type AlarmLimit, type AlarmPriority, PRIORITIES } from '../../alarms/model.js';
import type { AlarmControl } from '../../service/alarm-service.js';
import type { HubLimitsSender } from '../../service/hub-commands.js';
import { mayView, patientsVisibleTo } from '../access.js';
import type { LiveSession } from '../auth/staff-auth.js';
import type { FormRoutesContext } from '../pages/page-routes.js';
import { notFoundPage, type PageChrome, page } from '../pages/pages.js';
import {
  ALARMS_CSS,
  alarmTable,
  escalationBanner,
  type LimitRow,
  type LimitsOutcome,
  limitsForm,
  patientAlarmsSection,
} from './render.js';

/** What the dashboard is given to show and act on alarms (`clinic serve` builds it; absent: no alarm pages). */
export interface DashboardAlarms {
  /** The alarm lists (the database: every process sees the same alarms). */
  readonly store: AlarmStore;
  /** Acknowledgements and limits go through the engine, which tells its listeners. */
  readonly control: AlarmControl;
  /** Sends limits to the patient's hub; absent: dashboard.hubCommands is not configured. */
  readonly hubCommands?: HubLimitsSender;
  /** How long the limits page waits for the hub's answer before it says there was none (default 8 s). */
  readonly answerWaitMs?: number;
  /** The timer of that wait; the real timers by default. */
  readonly scheduler?: Scheduler;
}

/** What the alarm routes need from the app (src/clinic/dashboard/app.ts registers them). */
export interface AlarmRoutesContext extends FormRoutesContext {
  readonly alarms: DashboardAlarms;
  /**
   * The complete session of a request a page's script makes on its own (a list refreshed after a live
   * event), checked WITHOUT counting as activity, so a page left open still ends at the idle timeout.
   */
  readonly peek: (request: FastifyRequest) => Promise<LiveSession | undefined>;
  /** How long a page may hear nothing from the live feed before it shows itself stale (dashboard.staleAfter). */
  readonly staleAfterMs: number;
}

/** At most this many alarms on one list (the store's order puts the open ones first). */
export const ALARM_LIST_LIMIT = 500;
const ANSWER_WAIT_MS = 8_000;

/**
 * The alarm pages (docs/dashboard.md, "Alarms"):
 *  - GET /alarms: the clinic's alarms the user may see (a clinician: their care team's patients only);
 *  - GET /patients/:mrn/alarms: one patient's alarms (patientAlarmsSection, which the patient page can show);
 *  - GET /alarms/list and /patients/:mrn/alarms/list: the same lists alone, which the pages' script
 *    (assets/alarms.js) fetches after each `alarm` event of the live feed and after each (re)connection;
 *  - POST /alarms/:id/ack: acknowledges (CSRF token; who and when recorded; `alarm.acknowledged` audited);
 *  - GET/POST /patients/:mrn/limits: an admin's limits editor (validated with the hub's rule schema; audited;
 *    sent to the patient's hub as a signed command when dashboard.hubCommands is configured).
 * A patient, or an alarm of a patient, the user may not see is the same 404 as one that does not exist.
 */
export function registerAlarmRoutes(app: FastifyInstance, context: AlarmRoutesContext): void {
  const { alarms, staff, clinic, audit, clock } = context;
  const scheduler = alarms.scheduler ?? realScheduler;
  const send = (reply: FastifyReply, body: string, code = 200) =>
    reply.code(code).type('text/html; charset=utf-8').send(body);
  /** The alarm pages' chrome: the page's own stylesheet after the dashboard's. */
  const alarmPage = (chrome: PageChrome, body: ReturnType<typeof html>) =>
    page(chrome, body).replace(
      '<link rel="stylesheet" href="/assets/dashboard.css">',
      '<link rel="stylesheet" href="/assets/dashboard.css">\n<link rel="stylesheet" href="/assets/alarms.css">',
    );
  const notFound = (reply: FastifyReply, session: LiveSession) =>
    send(reply, notFoundPage(context.chrome(session, 'Not found')), 404);

  app.get('/assets/alarms.css', async (_request, reply) =>
    reply.type('text/css; charset=utf-8').send(ALARMS_CSS),
  );

  /** A live page of the alarm lists: the connection banner, and the script that keeps the list current. */
  const liveChrome = (session: LiveSession, title: string): PageChrome => ({
    ...context.chrome(session, title),
    live: { staleAfterMs: context.staleAfterMs },
    scripts: [{ src: '/assets/alarms.js', module: true }],
  });

  /** The clinic's list as `session`'s user may see it. */
  const clinicList = async (session: LiveSession) => {
    const visible = new Set(await patientsVisibleTo(session.user, staff, clinic));
    // Filtered here rather than per patient in SQL: the list is bounded, and the rule is access.ts's.
    const list = (await alarms.store.alarms({ limit: ALARM_LIST_LIMIT })).filter((a) => visible.has(a.mrn));
    return {
      alarms: list,
      now: clock.now(),
      timeZone: context.timeZone,
      csrfToken: context.csrfToken(session),
      returnTo: '/alarms',
      showPatient: true,
      liveSource: '/alarms/list',
    };
  };

  /** One patient's list (the caller checked the user may see the patient). */
  const patientList = async (session: LiveSession, mrn: string) => ({
    mrn,
    alarms: await alarms.store.alarmsOf(mrn, { limit: ALARM_LIST_LIMIT }),
    now: clock.now(),
    timeZone: context.timeZone,
    csrfToken: context.csrfToken(session),
    returnTo: `/patients/${encodeURIComponent(mrn)}/alarms`,
    liveSource: `/patients/${encodeURIComponent(mrn)}/alarms/list`,
  });

  app.get('/alarms', async (request, reply) => {
    const session = await context.signedIn(request, reply);
    if (!session) return reply;
    return send(
      reply,
      alarmPage(
        liveChrome(session, 'Alarms'),
        html`<p><a href="/">All patients</a></p>
<h1>Alarms</h1>
${escalationBanner()}
${alarmTable(await clinicList(session))}`,
      ),
    );
  });

  app.get<{ Params: { mrn: string } }>('/patients/:mrn/alarms', async (request, reply) => {
    const session = await context.signedIn(request, reply);
    if (!session) return reply;
    const { mrn } = request.params;
    if (!(await mayView(session.user, mrn, staff, clinic))) return notFound(reply, session);
    const limitsLink =
      session.user.role === 'admin'
        ? html` · <a href="/patients/${encodeURIComponent(mrn)}/limits">Alarm limits</a>`
        : '';
    return send(
      reply,
      alarmPage(
        liveChrome(session, `Alarms of ${mrn}`),
        html`<p><a href="/patients/${encodeURIComponent(mrn)}">Patient ${mrn}</a> · <a href="/alarms">All alarms</a>${limitsLink}</p>
<h1>Patient ${mrn}</h1>
${patientAlarmsSection(await patientList(session, mrn))}`,
      ),
    );
  });

  // The lists alone, for the pages' script: 401 without a complete login (the script then goes to the login
  // page), a patient the user may not see the same 404 as one that does not exist.
  const fragment = (reply: FastifyReply, body: ReturnType<typeof html>) =>
    reply.code(200).type('text/html; charset=utf-8').send(body.text);
  const apiRefusal = (reply: FastifyReply, code: 401 | 404) =>
    reply
      .code(code)
      .type('text/plain; charset=utf-8')
      .send(code === 401 ? 'Log in again.\n' : 'Not found.\n');

  app.get('/alarms/list', async (request, reply) => {
    const session = await context.peek(request);
    if (!session) return apiRefusal(reply, 401);
    return fragment(reply, alarmTable(await clinicList(session)));
  });

  app.get<{ Params: { mrn: string } }>('/patients/:mrn/alarms/list', async (request, reply) => {
    const session = await context.peek(request);
    if (!session) return apiRefusal(reply, 401);
    const { mrn } = request.params;
    if (!(await mayView(session.user, mrn, staff, clinic))) return apiRefusal(reply, 404);
    const list = await patientList(session, mrn);
    return fragment(reply, alarmTable({ ...list, showPatient: false, patient: mrn }));
  });

  app.post<{ Params: { id: string } }>('/alarms/:id/ack', async (request, reply) => {
    const session = await context.signedIn(request, reply);
    if (!session) return reply;
    const form = formOf(request);
    if (!context.sessionTokenOk(session, form)) return context.refuseForgery(reply);
    const id = /^[1-9][0-9]{0,15}$/.test(request.params.id) ? Number(request.params.id) : undefined;
    const alarm = id === undefined ? undefined : await alarms.store.alarm(id);
    if (alarm === undefined || !(await mayView(session.user, alarm.mrn, staff, clinic))) {
      return notFound(reply, session);
    }
    const acknowledged = await alarms.control.acknowledge(alarm.id, session.user.username);
    // The first acknowledgement stands (who and when); a repeated one is audited as what it was.
    audit.record('alarm.acknowledged', session.user.username, {
      alarmId: alarm.id,
      mrn: alarm.mrn,
      priority: alarm.priority,
      kind: alarm.kind,
      first: acknowledged.acknowledgedBy === session.user.username && alarm.acknowledgedBy === undefined,
      ip: request.ip,
    });
    return reply.redirect(returnPath(form.return), 303);
  });

  app.get<{ Params: { mrn: string } }>('/patients/:mrn/limits', async (request, reply) => {
    const session = await context.signedIn(request, reply);
    if (!session) return reply;
    const { mrn } = request.params;
    const allowed = await adminFor(session, mrn);
    if (allowed !== true)
      return allowed === 'not-found' ? notFound(reply, session) : adminOnly(reply, session);
    return showLimits(reply, session, mrn, {});
  });

  app.post<{ Params: { mrn: string } }>('/patients/:mrn/limits', async (request, reply) => {
    const session = await context.signedIn(request, reply);
    if (!session) return reply;
    const form = formOf(request);
    if (!context.sessionTokenOk(session, form)) return context.refuseForgery(reply);
    const { mrn } = request.params;
    const allowed = await adminFor(session, mrn);
    if (allowed !== true)
      return allowed === 'not-found' ? notFound(reply, session) : adminOnly(reply, session);
    const parsed = limitsFromForm(form);
    if (typeof parsed === 'string')
      return showLimits(reply, session, mrn, { error: parsed, rows: form }, 400);
    try {
      checkLimits(parsed);
    } catch (error) {
      if (error instanceof AlarmError) {
        return showLimits(reply, session, mrn, { error: error.message, rows: form }, 400);
      }
      throw error;
    }
    const previous = await alarms.control.limitsOf(mrn);
    const by = session.user.username;
    await alarms.control.setLimits(mrn, parsed, by);
    audit.record('alarm.limits-set', by, {
      mrn,
      limits: parsed.map((l) => limitJson(l)),
      ip: request.ip,
    });
    const outcome = await sendToHub(mrn, parsed, previous, by);
    return showLimits(reply, session, mrn, { outcome });
  });

  /** true, 'not-found' (the user may not see the patient) or 'forbidden' (a clinician who may). */
  const adminFor = async (session: LiveSession, mrn: string): Promise<true | 'not-found' | 'forbidden'> => {
    if (!(await mayView(session.user, mrn, staff, clinic))) return 'not-found';
    return session.user.role === 'admin' ? true : 'forbidden';
  };

  const adminOnly = (reply: FastifyReply, session: LiveSession) =>
    send(
      reply,
      page(
        context.chrome(session, 'Administrators only'),
        html`<h1>Administrators only</h1><p>Only an administrator can change a patient's alarm limits.</p><p><a href="/alarms">Alarms</a></p>`,
      ),
      403,
    );

  const showLimits = async (
    reply: FastifyReply,
    session: LiveSession,
    mrn: string,
    state: { error?: string; rows?: Readonly<Record<string, string>>; outcome?: LimitsOutcome },
    code = 200,
  ) => {
    const set = await alarms.store.limitsOf(mrn);
    const limits = set?.limits ?? DEFAULT_LIMITS;
    const rows = state.rows ? rowsFromForm(state.rows) : limitRows(limits);
    return send(
      reply,
      alarmPage(
        context.chrome(session, `Alarm limits of ${mrn}`),
        limitsForm({
          mrn,
          rows,
          defaults: set === undefined,
          csrfToken: context.csrfToken(session),
          ...(state.error ? { error: state.error } : {}),
          ...(state.outcome ? { outcome: state.outcome } : {}),
          ...(set ? { setBy: set.setBy } : {}),
        }),
      ),
      code,
    );
  };

  /**
   * Sends the new limits to the patient's hub and waits a few seconds for its answer. The command lives
   * longer than the page waits (LimitsPublisher's lifetime); an answer that comes later is still audited.
   */
  const sendToHub = async (
    mrn: string,
    limits: readonly AlarmLimit[],
    previous: readonly AlarmLimit[],
    by: string,
  ): Promise<LimitsOutcome> => {
    const sender = alarms.hubCommands;
    if (sender === undefined) return { kind: 'not-configured' };
    let gatewayId: string;
    try {
      gatewayId = await patientGateway(clinic, mrn, clock.now());
    } catch (error) {
      if (error instanceof AlarmError && error.code === 'ALARM_NO_GATEWAY') return { kind: 'no-hub' };
      throw error;
    }
    const outcome = sender.send(gatewayId, limits, previous).then(
      (): LimitsOutcome => ({ kind: 'applied', gatewayId }),
      (error: unknown): LimitsOutcome => {
        if (error instanceof AlarmError && error.code === 'ALARM_HUB_REFUSED') {
          return { kind: 'refused', gatewayId, message: error.message };
        }
        return {
          kind: 'no-answer',
          gatewayId,
          message: error instanceof AlarmError ? `${error.message}.` : 'the command was not sent.',
        };
      },
    );
    void outcome.then((result) =>
      audit.record('alarm.limits-sent', by, {
        mrn,
        gatewayId,
        outcome: result.kind,
        ...(result.kind === 'refused' || result.kind === 'no-answer' ? { detail: result.message } : {}),
      }),
    );
    let timer: ReturnType<Scheduler['setTimeout']> | undefined;
    const waited = new Promise<LimitsOutcome>((resolve) => {
      timer = scheduler.setTimeout(
        () =>
          resolve({
            kind: 'no-answer',
            gatewayId,
            message: `no answer within ${Math.round((alarms.answerWaitMs ?? ANSWER_WAIT_MS) / 1000)} seconds (the hub may be offline; its answer, if it comes, goes to the audit log).`,
          }),
        alarms.answerWaitMs ?? ANSWER_WAIT_MS,
      );
    });
    try {
      return await Promise.race([outcome, waited]);
    } finally {
      if (timer !== undefined) scheduler.clearTimeout(timer);
    }
  };
}

function formOf(request: FastifyRequest): Readonly<Record<string, string>> {
  const body = request.body;
  return body !== null && typeof body === 'object' ? (body as Record<string, string>) : {};
}

/** Only this dashboard's own alarm pages are a place to return to (never an open redirect). */
function returnPath(value: string | undefined): string {
  if (value === '/alarms') return value;
  if (value !== undefined && /^\/patients\/[^/?#\\]+\/alarms$/.test(value)) return value;
  return '/alarms';
}

function limitJson(limit: AlarmLimit): { readonly [key: string]: JsonValue } {
  return {
    code: limit.code,
    unit: limit.unit,
    ...(limit.below === undefined ? {} : { below: limit.below }),
    ...(limit.above === undefined ? {} : { above: limit.above }),
    forMs: limit.forMs,
    hysteresis: limit.hysteresis,
    priority: limit.priority,
  };
}

/** The form's rows: the patient's limits, then every default code they leave out (off). */
function limitRows(limits: readonly AlarmLimit[]): LimitRow[] {
  const rows: LimitRow[] = limits.map((l) => ({ ...l, on: true }));
  for (const d of DEFAULT_LIMITS) {
    if (!limits.some((l) => l.code === d.code)) rows.push({ ...d, on: false });
  }
  return rows;
}

const MAX_ROWS = 64;

/** The rows as posted, to show a refused form again as it was typed. */
function rowsFromForm(form: Readonly<Record<string, string>>): LimitRow[] {
  const count = Math.min(Number.parseInt(form.rows ?? '0', 10) || 0, MAX_ROWS);
  const rows: LimitRow[] = [];
  for (let i = 0; i < count; i++) {
    const code = form[`code.${i}`];
    const unit = form[`unit.${i}`];
    if (code === undefined || unit === undefined) continue;
    const priority = form[`priority.${i}`] as AlarmPriority;
    rows.push({
      code,
      unit,
      on: form[`on.${i}`] === 'on',
      below: loose(form[`below.${i}`]),
      above: loose(form[`above.${i}`]),
      forMs: (loose(form[`for.${i}`]) ?? 0) * 1000,
      hysteresis: loose(form[`hysteresis.${i}`]) ?? 0,
      priority: PRIORITIES.includes(priority) ? priority : 'medium',
    });
  }
  return rows;
}

function loose(text: string | undefined): number | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

/** The limits as posted, or what is wrong with the form (names the measurement and field, never a value). */
export function limitsFromForm(form: Readonly<Record<string, string>>): AlarmLimit[] | string {
  const count = Number.parseInt(form.rows ?? '', 10);
  if (!Number.isInteger(count) || count < 0 || count > MAX_ROWS)
    return 'The form is not complete; reload it.';
  const limits: AlarmLimit[] = [];
  const problems: string[] = [];
  for (let i = 0; i < count; i++) {
    if (form[`on.${i}`] !== 'on') continue;
    const code = form[`code.${i}`];
    const unit = form[`unit.${i}`];
    if (code === undefined || unit === undefined) return 'The form is not complete; reload it.';
    const number = (field: string, required: boolean): number | undefined => {
      const text = (form[`${field}.${i}`] ?? '').trim();
      if (text === '') {
        if (required) problems.push(`${code} ${field}: required`);
        return undefined;
      }
      // Plain decimal numbers only: Number() would take "0x10", "1e3" or "Infinity".
      if (!/^-?[0-9]+(\.[0-9]+)?$/.test(text)) {
        problems.push(`${code} ${field}: not a number`);
        return undefined;
      }
      return Number(text);
    };
    const below = number('below', false);
    const above = number('above', false);
    const forSeconds = number('for', true);
    const hysteresis = number('hysteresis', true);
    const priority = form[`priority.${i}`] as AlarmPriority;
    if (!PRIORITIES.includes(priority)) problems.push(`${code} priority: high, medium or low`);
    if (below === undefined && above === undefined) {
      problems.push(`${code}: give a limit below or above, or untick it`);
    }
    if (forSeconds !== undefined && !Number.isInteger(forSeconds)) {
      problems.push(`${code} for: whole seconds`);
    }
    limits.push({
      code,
      unit,
      ...(below === undefined ? {} : { below }),
      ...(above === undefined ? {} : { above }),
      forMs: (forSeconds ?? 0) * 1000,
      hysteresis: hysteresis ?? 0,
      priority,
    });
  }
  return problems.length > 0 ? `Not saved: ${problems.join('; ')}.` : limits;
}
