import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Alarm } from '../../alarms/model.js';
import type { StaffStore } from '../../staff/staff-store.js';
import type { ClinicStore } from '../../storage/clinic-store.js';
import { mayView, patientsVisibleTo } from '../access.js';
import type { LiveSession } from '../auth/staff-auth.js';
import type { LiveClient, LiveHub } from '../live/live-hub.js';
import { alarmCounts, type GapJson, gapJson, hubJson, NO_ALARMS, pointJson } from './points.js';

/** At most this many points in one series answer: 24 hours of a reading a second. */
export const MAX_SERIES_POINTS = 100_000;
/** The longest range one series request may ask for. */
export const MAX_SERIES_SPAN_MS = 8 * 24 * 3_600_000;
/** A connection whose unsent events pass this is closed (a stalled browser); it reconnects and reloads. */
const MAX_BUFFERED_BYTES = 1024 * 1024;
/** How long a browser waits before reconnecting a dropped live feed (the SSE `retry` field). */
export const LIVE_RETRY_MS = 2_000;

export interface ViewRoutesOptions {
  readonly staff: StaffStore;
  readonly clinic: ClinicStore;
  readonly publicOrigin: string;
  /** The clinic's IANA time zone: resolves a gap record's local times when the assignment names none. */
  readonly timeZone: string;
  readonly hub: LiveHub;
  /** The complete session of the request (touching it), or undefined. */
  readonly signedIn: (request: FastifyRequest) => Promise<LiveSession | undefined>;
  /** The session named by this cookie value, checked WITHOUT counting as activity. */
  readonly recheck: (sessionId: string) => Promise<LiveSession | undefined>;
  readonly sessionCookie: string;
  /** The alarm engine's open alarms, when this dashboard has one: tiles then show each patient's count. */
  readonly openAlarms?: () => Promise<Alarm[]>;
}

/**
 * The dashboard's JSON and live routes (the pages that read them are in pages/views.ts and the assets):
 *  - GET /api/tiles: the latest readings, hub state and (with an alarm engine) open alarm counts of every
 *    patient the user may see;
 *  - GET /api/patients/:mrn/series?code=&from=&to=: one code's readings over [from, to) and the gap records
 *    of the patient's hubs that overlap it;
 *  - GET /api/live: Server-Sent Events (HTML Standard section 9.2) from the intake's live feed.
 * Each answers 401 without a complete login, and a patient the user may not see exactly as one that does not
 * exist (404). Cache-Control no-store comes from the app's onSend hook, as on every answer.
 */
export function registerViewRoutes(app: FastifyInstance, options: ViewRoutesOptions): void {
  const { staff, clinic, hub } = options;

  app.get('/api/tiles', async (request, reply) => {
    const session = await options.signedIn(request);
    if (!session) return apiError(reply, 401, 'Log in again.');
    const mrns = await patientsVisibleTo(session.user, staff, clinic);
    const counts = options.openAlarms ? alarmCounts(await options.openAlarms()) : undefined;
    const tiles = [];
    for (const mrn of mrns) {
      const latest = await clinic.latest(mrn);
      tiles.push({
        mrn,
        points: latest.observations.map(pointJson),
        hubs: latest.hubs.map(hubJson),
        // Only with an alarm engine: without one there is no alarm state to show, not "no alarms".
        ...(counts ? { alarms: counts.get(mrn) ?? NO_ALARMS } : {}),
      });
    }
    return reply.type('application/json; charset=utf-8').send({ tiles });
  });

  app.get<{ Params: { mrn: string }; Querystring: Record<string, string | undefined> }>(
    '/api/patients/:mrn/series',
    async (request, reply) => {
      const session = await options.signedIn(request);
      if (!session) return apiError(reply, 401, 'Log in again.');
      const { mrn } = request.params;
      if (!(await mayView(session.user, mrn, staff, clinic))) return apiError(reply, 404, 'Not found.');
      const query = seriesQuery(request.query);
      if (typeof query === 'string') return apiError(reply, 400, query);
      const points = await clinic.series({ mrn, ...query, limit: MAX_SERIES_POINTS + 1 });
      const truncated = points.length > MAX_SERIES_POINTS;
      const gaps = await gapsOf(clinic, mrn, query.from, query.to, options.timeZone);
      return reply.type('application/json; charset=utf-8').send({
        code: query.code,
        from: query.from,
        to: query.to,
        truncated,
        points: points.slice(0, MAX_SERIES_POINTS).map(pointJson),
        gaps,
      });
    },
  );

  app.get('/api/live', async (request, reply) => {
    if (!sameOriginRequest(request, options.publicOrigin)) {
      return apiError(reply, 403, 'This feed answers pages of this dashboard only.');
    }
    const session = await options.signedIn(request);
    if (!session) return apiError(reply, 401, 'Log in again.');
    const sessionId = request.cookies[options.sessionCookie] ?? '';
    let visible = new Set(await patientsVisibleTo(session.user, staff, clinic));
    const stream = new PassThrough();
    let remove = () => {};
    const end = () => {
      remove();
      if (!stream.writableEnded) stream.end();
    };
    const client: LiveClient = {
      mayView: (mrn) => visible.has(mrn),
      send: (event, data) => {
        if (stream.writableEnded) return;
        if (stream.writableLength > MAX_BUFFERED_BYTES) return end();
        stream.write(`event: ${event}\ndata: ${data}\n\n`);
      },
      refresh: async () => {
        const current = await options.recheck(sessionId);
        if (current?.session.stage !== 'complete') return end();
        visible = new Set(await patientsVisibleTo(current.user, staff, clinic));
      },
    };
    remove = hub.add(client);
    request.raw.on('close', end);
    // `retry` sets the browser's reconnection delay; the first event tells the page it is connected.
    stream.write(`retry: ${LIVE_RETRY_MS}\n\n`);
    client.send('heartbeat', JSON.stringify({ at: Date.now() }));
    return (
      reply
        .type('text/event-stream; charset=utf-8')
        // Proxies that buffer (nginx) would hold events back; this asks them not to.
        .header('X-Accel-Buffering', 'no')
        .send(stream)
    );
  });
}

/**
 * Whether a request for the live feed comes from a page of this dashboard. A browser's EventSource sends
 * `Origin` when the request is cross-origin (Fetch Standard, "append a request `Origin` header": a CORS
 * request), which must then be the public origin; a same-origin GET may carry none, and then the Fetch
 * Metadata header `Sec-Fetch-Site` (W3C Fetch Metadata Request Headers section 2.4) must say `same-origin`.
 * A request with neither is refused. The `SameSite=Strict` session cookie already stays off requests other
 * sites start; this refuses what a browser would send on another origin's behalf anyway.
 */
export function sameOriginRequest(request: FastifyRequest, publicOrigin: string): boolean {
  const origin = request.headers.origin;
  if (origin !== undefined) return origin === publicOrigin;
  return request.headers['sec-fetch-site'] === 'same-origin';
}

const CODE = /^[A-Za-z0-9_]{1,64}$/;
const MILLIS = /^[0-9]{1,15}$/;

function seriesQuery(
  query: Record<string, string | undefined>,
): { code: string; from: number; to: number } | string {
  const { code, from, to } = query;
  if (code === undefined || !CODE.test(code)) return 'code must name one measurement code (MDC_...).';
  if (from === undefined || to === undefined || !MILLIS.test(from) || !MILLIS.test(to)) {
    return 'from and to must be times in epoch milliseconds.';
  }
  const range = { code, from: Number(from), to: Number(to) };
  if (range.to <= range.from) return 'to must be after from.';
  if (range.to - range.from > MAX_SERIES_SPAN_MS) return 'the range may span 8 days at most.';
  return range;
}

/** Gap records of the patient's hubs whose dropped readings overlap [from, to) inside the assignment. */
async function gapsOf(
  clinic: ClinicStore,
  mrn: string,
  from: number,
  to: number,
  clinicZone: string,
): Promise<GapJson[]> {
  const assignments = (await clinic.assignments()).filter(
    (a) => a.mrn === mrn && a.from < to && (a.to === undefined || a.to > from),
  );
  const out: GapJson[] = [];
  for (const a of assignments) {
    for (const { gap } of await clinic.gaps(a.gatewayId)) {
      const json = gapJson(gap, a.gatewayId, a.timeZone ?? clinicZone);
      if (json.from === undefined || json.to === undefined) continue;
      const start = Math.max(json.from, a.from, from);
      const end = Math.min(json.to, a.to ?? Number.MAX_SAFE_INTEGER, to);
      if (start <= end) out.push(json);
    }
  }
  return out.sort((x, y) => (x.from ?? 0) - (y.from ?? 0));
}

function apiError(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send({ error: message });
}
