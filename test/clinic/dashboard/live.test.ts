import { type IncomingMessage, request } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../../scripts/support/measurements.js';
import type { PatientEvent } from '../../../src/clinic/dashboard/live/live-hub.js';
import type { IncomingMeasurement } from '../../../src/clinic/storage/clinic-store.js';
import { until } from '../../support/until.js';
import { Browser, HOST, MRN_CARED, MRN_OTHER, ORIGIN, type Rig, startRig } from './rig.js';

/**
 * The views' JSON API and the live feed over a real socket (fastify.inject cannot hold an event stream open):
 * the rig's app listening on loopback over plain HTTP, spoken to with the headers a browser on the public
 * origin sends. Readings are committed through the store, as the intake commits them.
 */
let rig: Rig;
let port: number;
beforeEach(async () => {
  // A small staleAfter: heartbeats (and the session re-checks before them) every 200 ms.
  rig = await startRig({ staleAfterMs: 600 });
  await rig.app.listen({ host: '127.0.0.1', port: 0 });
  port = (rig.app.server.address() as { port: number }).port;
});
afterEach(async () => {
  rig.app.server.closeAllConnections();
  await rig.close();
});

let n = 1000;
/** A new reading from a hub, measured now by the rig's clock. */
function reading(gatewayId: string, overrides: { stored?: true } = {}): IncomingMeasurement {
  const at = rig.clock.now();
  n++;
  const measurement = spo2Measurement(n, { time: new Date(at).toISOString(), ...overrides });
  return {
    measurement: { ...measurement, id: `${measurement.id}-${gatewayId}` },
    measuredAt: at,
    receipt: { gatewayId, topic: 'obs', batchSeq: n, sentAt: at, signerSerial: '01', receivedAt: at },
  };
}
const commit = (...measurements: IncomingMeasurement[]) =>
  rig.clinic.commit({ measurements, gaps: [], statuses: [], rejections: [] });

interface Stream {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly events: { event: string; data: string }[];
  readonly readings: () => PatientEvent[];
  ended: boolean;
  close(): void;
}

/** Opens /api/live with a browser's cookies and the given request headers; collects the events. */
function openLive(browser: Browser | undefined, headers: Record<string, string>): Promise<Stream> {
  const cookie = browser ? [...browser.cookies].map(([k, v]) => `${k}=${v}`).join('; ') : '';
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/api/live',
        headers: { host: HOST, accept: 'text/event-stream', ...(cookie ? { cookie } : {}), ...headers },
      },
      (res) => {
        const stream: Stream = {
          status: res.statusCode ?? 0,
          headers: res.headers,
          events: [],
          readings: () =>
            stream.events.filter((e) => e.event === 'reading').map((e) => JSON.parse(e.data) as PatientEvent),
          ended: false,
          close: () => req.destroy(),
        };
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let at = buffer.indexOf('\n\n');
          while (at >= 0) {
            const block = buffer.slice(0, at);
            buffer = buffer.slice(at + 2);
            const fields = Object.fromEntries(
              block
                .split('\n')
                .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
            );
            if (fields.event !== undefined)
              stream.events.push({ event: fields.event, data: fields.data ?? '' });
            at = buffer.indexOf('\n\n');
          }
        });
        res.on('end', () => {
          stream.ended = true;
        });
        res.on('error', () => {
          stream.ended = true;
        });
        resolve(stream);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const SAME_ORIGIN = { 'sec-fetch-site': 'same-origin' };

async function signedIn(username: 'alice' | 'carl'): Promise<Browser> {
  const browser = new Browser(rig.app);
  rig.clock.advance(30_000); // a new TOTP step for each login
  await browser.login(username, rig.secret, rig.clock.now());
  return browser;
}

describe('the live feed', () => {
  it("carries a clinician only their patients' readings; an admin gets every patient's", async () => {
    const clinician = await openLive(await signedIn('carl'), SAME_ORIGIN);
    const admin = await openLive(await signedIn('alice'), SAME_ORIGIN);
    expect(clinician.status).toBe(200);
    expect(clinician.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(clinician.headers['cache-control']).toBe('no-store');
    await until('both connected', () => clinician.events.length > 0 && admin.events.length > 0);

    const other = reading('gw-b');
    const mine = reading('gw-a', { stored: true });
    await commit(other);
    await commit(mine);
    // Events go out in commit order: once the clinician has the later one, the earlier one would be there.
    await until("the clinician's patient's reading", () =>
      clinician.readings().some((e) => e.mrn === MRN_CARED),
    );
    expect(clinician.readings().map((e) => e.mrn)).toEqual([MRN_CARED]);
    expect(JSON.stringify(clinician.events)).not.toContain(MRN_OTHER);
    expect(JSON.stringify(clinician.events)).not.toContain('gw-b');
    const [event] = clinician.readings();
    expect(event?.points.map((p) => [p.id, p.code, p.v, p.unit, p.stored, p.device, p.hub])).toEqual([
      [
        mine.measurement.id,
        'MDC_PULS_OXIM_SAT_O2',
        mine.measurement.observations[0]?.value,
        '%',
        true,
        'dev-ox-1',
        'gw-a',
      ],
      [
        mine.measurement.id,
        'MDC_PULS_OXIM_PULS_RATE',
        mine.measurement.observations[1]?.value,
        'beats/min',
        true,
        'dev-ox-1',
        'gw-a',
      ],
    ]);
    await until('both readings at the admin', () => admin.readings().length === 2);
    expect(admin.readings().map((e) => e.mrn)).toEqual([MRN_OTHER, MRN_CARED]);
    clinician.close();
    admin.close();
  });

  it('sends heartbeats, and ends the stream at the heartbeat after the session ended', async () => {
    const browser = await signedIn('carl');
    const stream = await openLive(browser, SAME_ORIGIN);
    await until('three heartbeats', () => stream.events.filter((e) => e.event === 'heartbeat').length >= 3);
    const page = await browser.get('/');
    await browser.post('/logout', { _csrf: Browser.csrfOf(page) });
    await until('the stream to end', () => stream.ended);
    expect(stream.events.every((e) => e.event === 'heartbeat')).toBe(true);
  });

  it('refuses a request another origin started, one without origin information, and one without a login', async () => {
    const browser = await signedIn('carl');
    const foreign = await openLive(browser, { origin: 'https://attacker.example' });
    const crossSite = await openLive(browser, { 'sec-fetch-site': 'cross-site' });
    const neither = await openLive(browser, {});
    const anonymous = await openLive(undefined, SAME_ORIGIN);
    const withOrigin = await openLive(browser, { origin: ORIGIN });
    expect([foreign.status, crossSite.status, neither.status, anonymous.status, withOrigin.status]).toEqual([
      403, 403, 403, 401, 200,
    ]);
    withOrigin.close();
  });
});

describe('the views API', () => {
  it('gives a clinician tiles of their patients only', async () => {
    const browser = await signedIn('carl');
    const response = await browser.get('/api/tiles');
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const { tiles } = response.json() as { tiles: { mrn: string; points: { code: string; v: number }[] }[] };
    expect(tiles.map((t) => t.mrn)).toEqual([MRN_CARED]);
    expect(tiles[0]?.points.map((p) => [p.code, p.v])).toEqual([
      ['MDC_PULS_OXIM_PULS_RATE', 63],
      ['MDC_PULS_OXIM_SAT_O2', 93],
    ]);
  });

  it('answers a series, and a patient the user may not see exactly as one that does not exist', async () => {
    const browser = await signedIn('carl');
    const now = rig.clock.now();
    const query = `code=MDC_PULS_OXIM_SAT_O2&from=${now - 6 * 3_600_000}&to=${now}`;
    const mine = await browser.get(`/api/patients/${MRN_CARED}/series?${query}`);
    expect(mine.statusCode).toBe(200);
    expect(mine.headers['cache-control']).toBe('no-store');
    const body = mine.json() as { points: { v: number; stored: boolean }[]; truncated: boolean };
    expect(body.points.map((p) => p.v)).toEqual([91, 92, 93]);
    expect(body.truncated).toBe(false);

    const other = await browser.get(`/api/patients/${MRN_OTHER}/series?${query}`);
    const missing = await browser.get(`/api/patients/MRN-9999/series?${query}`);
    expect([other.statusCode, missing.statusCode]).toEqual([404, 404]);
    expect(other.body).toBe(missing.body);
    expect(other.body).not.toContain(MRN_OTHER);

    const anonymous = new Browser(rig.app);
    expect((await anonymous.get(`/api/patients/${MRN_CARED}/series?${query}`)).statusCode).toBe(401);
    expect((await anonymous.get('/api/tiles')).statusCode).toBe(401);
    for (const bad of [
      'code=x;drop&from=1&to=2',
      'code=A&from=2&to=1',
      'code=A&from=-1&to=5',
      `code=A&from=0&to=${9 * 86_400_000}`,
    ]) {
      expect((await browser.get(`/api/patients/${MRN_CARED}/series?${bad}`)).statusCode).toBe(400);
    }
  });

  it('serves uPlot and the page scripts from this origin, and nothing else under /assets', async () => {
    const browser = new Browser(rig.app);
    for (const name of ['uplot.js', 'uplot.css', 'live.js', 'tiles.js', 'patient.js', 'format.js']) {
      const response = await browser.get(`/assets/${name}`);
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toMatch(/^text\/(javascript|css); charset=utf-8$/);
    }
    expect((await browser.get('/assets/..%2Fpackage.json')).statusCode).toBe(404);
    expect((await browser.get('/assets/app.js')).statusCode).toBe(404);
  });
});
