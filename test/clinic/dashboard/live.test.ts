import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../../scripts/support/measurements.js';
import type { AlarmLimit } from '../../../src/clinic/alarms/model.js';
import { SqliteAlarmStore } from '../../../src/clinic/alarms/sqlite/sqlite-alarm-store.js';
import { buildDashboardApp } from '../../../src/clinic/dashboard/app.js';
import type { AlarmEventJson, PatientEvent } from '../../../src/clinic/dashboard/live/live-hub.js';
import { AlarmService } from '../../../src/clinic/service/alarm-service.js';
import type { IncomingMeasurement } from '../../../src/clinic/storage/clinic-store.js';
import type { Measurement } from '../../../src/model/measurement.js';
import { createLog } from '../../../src/runtime/log.js';
import { VirtualScheduler } from '../../../src/util/scheduler.js';
import { until } from '../../support/until.js';
import {
  Browser,
  MRN_CARED,
  MRN_OTHER,
  makeStores,
  ORIGIN,
  type Rig,
  type Stores,
  startRig,
  TEST_SETTINGS,
} from './rig.js';
import { type LiveStream, openLiveStream } from './sse.js';

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

/** Opens /api/live on the rig's socket with a browser's cookies (none: anonymous) and the given headers. */
const openLive = (browser: Browser | undefined, headers: Record<string, string>): Promise<LiveStream> =>
  openLiveStream(port, browser?.cookies, headers);
const readingsOf = (stream: LiveStream) => stream.of<PatientEvent>('reading');

const SAME_ORIGIN = { 'sec-fetch-site': 'same-origin' };

async function signedIn(username: 'alice' | 'carl', app = rig.app): Promise<Browser> {
  const browser = new Browser(app);
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
      readingsOf(clinician).some((e) => e.mrn === MRN_CARED),
    );
    expect(readingsOf(clinician).map((e) => e.mrn)).toEqual([MRN_CARED]);
    expect(JSON.stringify(clinician.events)).not.toContain(MRN_OTHER);
    expect(JSON.stringify(clinician.events)).not.toContain('gw-b');
    const [event] = readingsOf(clinician);
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
    await until('both readings at the admin', () => readingsOf(admin).length === 2);
    expect(readingsOf(admin).map((e) => e.mrn)).toEqual([MRN_OTHER, MRN_CARED]);
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
  it('gives a clinician tiles of their patients only, without an alarm field when there is no alarm engine', async () => {
    const browser = await signedIn('carl');
    const response = await browser.get('/api/tiles');
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const { tiles } = response.json() as { tiles: { mrn: string; points: { code: string; v: number }[] }[] };
    expect(tiles.map((t) => t.mrn)).toEqual([MRN_CARED]);
    expect(Object.keys(tiles[0] ?? {})).toEqual(['mrn', 'points', 'hubs']);
    expect((await browser.get(`/patients/${MRN_CARED}`)).body).not.toContain('/alarms"');
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
    for (const name of [
      'uplot.js',
      'uplot.css',
      'live.js',
      'tiles.js',
      'patient.js',
      'format.js',
      'alarms.js',
    ]) {
      const response = await browser.get(`/assets/${name}`);
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toMatch(/^text\/(javascript|css); charset=utf-8$/);
    }
    expect((await browser.get('/assets/..%2Fpackage.json')).statusCode).toBe(404);
    expect((await browser.get('/assets/app.js')).statusCode).toBe(404);
  });
});

describe('alarm counts, with an alarm engine', () => {
  const KEY = Uint8Array.from(Buffer.from('5a'.repeat(32), 'hex'));
  const LOW_SPO2: AlarmLimit = {
    code: 'MDC_PULS_OXIM_SAT_O2',
    unit: '%',
    below: 90,
    forMs: 0,
    hysteresis: 1,
    priority: 'high',
  };
  let dir: string;
  let stores: Stores;
  let alarmStore: SqliteAlarmStore;
  let engine: AlarmService;
  let app: FastifyInstance;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rpm-dashboard-live-alarms-'));
    stores = await makeStores(dir, rig.clock);
    alarmStore = await SqliteAlarmStore.open({ path: join(dir, 'clinic.db'), key: KEY });
    const log = createLog({ level: 'silent', redact: true, base: { service: 'dashboard' } });
    const scheduler = new VirtualScheduler(rig.clock.now());
    engine = new AlarmService({ clinic: stores.clinic, alarms: alarmStore, scheduler, log });
    await engine.start();
    await engine.setLimits(MRN_CARED, [LOW_SPO2], 'test');
    await engine.setLimits(MRN_OTHER, [LOW_SPO2], 'test');
    app = await buildDashboardApp({
      ...stores,
      clock: rig.clock,
      publicOrigin: ORIGIN,
      ...TEST_SETTINGS,
      staleAfterMs: 600,
      alarms: { store: alarmStore, control: engine },
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as { port: number }).port;
  });
  afterEach(async () => {
    app.server.closeAllConnections();
    await app.close();
    await engine.stop();
    await alarmStore.close();
    await stores.staff.close();
    await stores.clinic.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Commits a low SpO2 on the hub and waits for the engine to raise its alarm. */
  async function low(gatewayId: string): Promise<void> {
    const raised = new Promise<void>((resolve) => {
      const stop = engine.subscribe((event) => {
        if (event.alarm.gatewayId !== gatewayId) return;
        stop();
        resolve();
      });
    });
    const r = reading(gatewayId);
    const measurement: Measurement = {
      ...r.measurement,
      observations: [{ code: 'MDC_PULS_OXIM_SAT_O2', value: 84, unit: '%' }],
    };
    await stores.clinic.commit({
      measurements: [{ ...r, measurement }],
      gaps: [],
      statuses: [],
      rejections: [],
    });
    await raised;
  }

  it("counts a patient's open alarms on the tile, and tells a clinician's stream only their patients' alarm changes", async () => {
    const clinician = await signedIn('carl', app);
    const before = (await clinician.get('/api/tiles')).json() as { tiles: { alarms: unknown }[] };
    expect(before.tiles[0]?.alarms).toEqual({ open: 0, high: 0, medium: 0, low: 0, unacknowledged: 0 });

    const stream = await openLive(clinician, SAME_ORIGIN);
    await until('connected', () => stream.events.length > 0);
    await low('gw-b'); // another team's patient
    await low('gw-a');
    await until("the alarm of the clinician's patient", () => stream.events.some((e) => e.event === 'alarm'));
    const alarmEvents = () =>
      stream.events.filter((e) => e.event === 'alarm').map((e) => JSON.parse(e.data) as AlarmEventJson);
    const [raised] = await alarmStore.alarmsOf(MRN_CARED);
    expect(alarmEvents()).toEqual([
      {
        mrn: MRN_CARED,
        change: 'raised',
        alarm: {
          id: raised?.id,
          kind: 'physiological',
          priority: 'high',
          state: 'active',
          late: false,
          raisedAt: raised?.raisedAt,
          measuredAt: raised?.measuredAt,
          code: 'MDC_PULS_OXIM_SAT_O2',
          value: 84,
          unit: '%',
          hub: 'gw-a',
          device: 'dev-ox-1',
        },
        counts: { open: 1, high: 1, medium: 0, low: 0, unacknowledged: 1 },
      },
    ]);
    expect(JSON.stringify(stream.events)).not.toContain(MRN_OTHER);

    const after = (await clinician.get('/api/tiles')).json() as { tiles: { mrn: string; alarms: unknown }[] };
    expect(after.tiles).toMatchObject([
      { mrn: MRN_CARED, alarms: { open: 1, high: 1, medium: 0, low: 0, unacknowledged: 1 } },
    ]);
    // The patient page links the patient's alarm list (it has none without an engine: see the tiles test).
    expect((await clinician.get(`/patients/${MRN_CARED}`)).body).toContain(
      `href="/patients/${MRN_CARED}/alarms"`,
    );

    // Acknowledged from the alarm list (a form post with the session's token): told as a change, still open.
    const list = await clinician.get('/alarms');
    const ack = await clinician.post(`/alarms/${raised?.id}/ack`, {
      _csrf: Browser.csrfOf(list),
      return: '/alarms',
    });
    expect(ack.statusCode).toBe(303);
    await until('the acknowledgement on the stream', () => alarmEvents().length === 2);
    expect(alarmEvents()[1]).toMatchObject({
      mrn: MRN_CARED,
      change: 'acknowledged',
      alarm: { id: raised?.id, state: 'active', acknowledgedBy: 'carl' },
      counts: { open: 1, high: 1, unacknowledged: 0 },
    });
    expect(JSON.stringify(stream.events)).not.toContain(MRN_OTHER);
    stream.close();
  });
});
