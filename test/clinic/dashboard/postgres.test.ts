import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../../scripts/support/measurements.js';
import { type RunningPostgres, startPostgres } from '../../../scripts/support/postgres.js';
import { AuditLog } from '../../../src/audit/audit-log.js';
import type { AlarmLimit } from '../../../src/clinic/alarms/model.js';
import { PgAlarmStore } from '../../../src/clinic/alarms/postgres/pg-alarm-store.js';
import { buildDashboardApp } from '../../../src/clinic/dashboard/app.js';
import type { AlarmEventJson, PatientEvent } from '../../../src/clinic/dashboard/live/live-hub.js';
import { AlarmService } from '../../../src/clinic/service/alarm-service.js';
import { hashPassword } from '../../../src/clinic/staff/passwords.js';
import { PgStaffStore } from '../../../src/clinic/staff/postgres/pg-staff-store.js';
import type { IncomingMeasurement } from '../../../src/clinic/storage/clinic-store.js';
import { PgClinicStore } from '../../../src/clinic/storage/postgres/pg-clinic-store.js';
import { createLog } from '../../../src/runtime/log.js';
import { systemClock } from '../../../src/util/clock.js';
import { realScheduler } from '../../../src/util/scheduler.js';
import { until } from '../../support/until.js';
import { Browser, MRN_CARED, MRN_OTHER, ORIGIN, PASSWORD, TEST_SETTINGS } from './rig.js';
import { type LiveStream, openLiveStream } from './sse.js';

/**
 * `clinic serve` on PostgreSQL, in the shape docs/dashboard.md ("Processes") gives it, each part on a pool of
 * its own as separate processes would have: an intake process commits readings through ITS clinic store; one
 * `clinic serve` leads the alarm engine (the advisory lock); the dashboard under test belongs to another
 * `clinic serve`, whose engine stands by. A reading committed by the intake reaches the dashboard's SSE client
 * over NOTIFY (the clinic record's feed), the alarm the LEADING engine raises from it reaches it over NOTIFY
 * too (the alarm feed), and so does an acknowledgement made on this dashboard. A clinician's stream carries
 * only their care team's patients.
 */
const PULSE = 'MDC_PULS_OXIM_PULS_RATE';
const PULSE_HIGH: AlarmLimit = {
  code: PULSE,
  unit: '/min',
  above: 120,
  forMs: 0,
  hysteresis: 5,
  priority: 'high',
};
const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const log = createLog({ level: 'silent', redact: true, base: { service: 'dashboard' } });

let server: RunningPostgres;
let dir: string;
let database: string;
/** The intake process's store. */
let intake: PgClinicStore;
/** The leading `clinic serve`: its engine. */
let leaderClinic: PgClinicStore;
let leaderAlarms: PgAlarmStore;
let leader: AlarmService;
/** The `clinic serve` under test: its stores, its standby engine, its dashboard. */
let clinic: PgClinicStore;
let staff: PgStaffStore;
let alarms: PgAlarmStore;
let standby: AlarmService;
let app: FastifyInstance;
let port: number;

beforeAll(async () => {
  server = await startPostgres();
  database = await server.createDatabase('serve');
  dir = await mkdtemp(join(tmpdir(), 'rpm-dashboard-pg-'));
  const connection = () => ({ ...server.connection(database), max: 4 });
  intake = await PgClinicStore.open({ connection: connection() });
  const now = Date.now();
  for (const [gatewayId, mrn] of [
    ['gw-a', MRN_CARED],
    ['gw-b', MRN_OTHER],
  ] as const) {
    await intake.assign({ gatewayId, mrn, from: now - 3_600_000, createdBy: 'test', at: now });
  }

  leaderClinic = await PgClinicStore.open({ connection: connection() });
  leaderAlarms = await PgAlarmStore.open({ connection: connection() });
  leader = new AlarmService({ clinic: leaderClinic, alarms: leaderAlarms, scheduler: realScheduler, log });
  await leader.start();
  await leader.setLimits(MRN_CARED, [PULSE_HIGH], 'alice');
  await leader.setLimits(MRN_OTHER, [PULSE_HIGH], 'alice');

  clinic = await PgClinicStore.open({ connection: connection() });
  staff = await PgStaffStore.open({ connection: connection() });
  alarms = await PgAlarmStore.open({ connection: connection() });
  standby = new AlarmService({ clinic, alarms, scheduler: realScheduler, log });
  await standby.start();
  const carl = await staff.addUser({
    username: 'carl',
    role: 'clinician',
    passwordHash: await hashPassword(PASSWORD),
    createdBy: 'test',
    at: now,
  });
  await staff.setTotpSecret(carl.id, SECRET, now);
  await staff.confirmTotp(carl.id, now);
  await staff.addToCareTeam(MRN_CARED, carl.id, 'test', now);
  app = await buildDashboardApp({
    staff,
    clinic,
    audit: new AuditLog(join(dir, 'clinic-audit.log'), systemClock),
    clock: systemClock,
    publicOrigin: ORIGIN,
    ...TEST_SETTINGS,
    alarms: { store: alarms, control: standby },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
}, 120_000);

afterAll(async () => {
  app?.server.closeAllConnections();
  await app?.close();
  await standby?.stop();
  await leader?.stop();
  for (const store of [alarms, staff, clinic, leaderAlarms, leaderClinic, intake]) await store?.close();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

let serial = 90_000;
function pulseReading(gatewayId: string, pulse: number): IncomingMeasurement {
  serial++;
  const at = Date.now();
  const m = spo2Measurement(serial, {
    time: new Date(at).toISOString(),
    observations: [{ code: PULSE, value: pulse, unit: '/min' }],
  });
  return {
    measurement: { ...m, id: `${m.id}-${gatewayId}` },
    measuredAt: at,
    receipt: { gatewayId, topic: 'obs', batchSeq: serial, sentAt: at, signerSerial: '01', receivedAt: at },
  };
}
const commit = (...measurements: IncomingMeasurement[]) =>
  intake.commit({ measurements, gaps: [], statuses: [], rejections: [] });

describe('clinic serve on PostgreSQL: the live feed across processes', () => {
  it("brings the intake's reading, the leading engine's alarm and this dashboard's acknowledgement to a clinician's stream", async () => {
    expect([leader.role, standby.role]).toEqual(['leading', 'standby']);
    const browser = new Browser(app);
    const login = await browser.login('carl', SECRET, Date.now());
    expect(login.headers.location).toBe('/');
    const stream: LiveStream = await openLiveStream(port, browser.cookies, {
      'sec-fetch-site': 'same-origin',
    });
    expect(stream.status).toBe(200);
    try {
      await until('the first heartbeat', () => stream.events.length > 0);

      // Another team's patient first, then the clinician's: both over the limit, both alarms raised by the leader.
      const other = pulseReading('gw-b', 150);
      const mine = pulseReading('gw-a', 134);
      await commit(other);
      await commit(mine);
      await until('the reading over NOTIFY', () => stream.of<PatientEvent>('reading').length > 0);
      expect(
        stream.of<PatientEvent>('reading').map((e) => [e.mrn, e.points.map((p) => [p.id, p.v])]),
      ).toEqual([[MRN_CARED, [[mine.measurement.id, 134]]]]);
      await until('the alarm the leading engine raised', () => stream.of<AlarmEventJson>('alarm').length > 0);
      const [raised] = stream.of<AlarmEventJson>('alarm');
      expect(raised).toMatchObject({
        mrn: MRN_CARED,
        change: 'raised',
        alarm: {
          kind: 'physiological',
          priority: 'high',
          state: 'active',
          value: 134,
          code: PULSE,
          hub: 'gw-a',
        },
        counts: { open: 1, high: 1, unacknowledged: 1 },
      });

      // Acknowledged on this dashboard, whose engine stands by: stored, and told over NOTIFY like any change.
      const page = await browser.get('/alarms');
      expect(page.body).toContain(`id="alarm-${raised?.alarm.id}"`);
      const ack = await browser.post(`/alarms/${raised?.alarm.id}/ack`, {
        _csrf: Browser.csrfOf(page),
        return: '/alarms',
      });
      expect(ack.statusCode).toBe(303);
      await until('the acknowledgement over NOTIFY', () => stream.of<AlarmEventJson>('alarm').length === 2);
      expect(stream.of<AlarmEventJson>('alarm')[1]).toMatchObject({
        mrn: MRN_CARED,
        change: 'acknowledged',
        alarm: { id: raised?.alarm.id, state: 'active', acknowledgedBy: 'carl' },
        counts: { open: 1, unacknowledged: 0 },
      });
      // Both later events came after the other patient's reading and alarm would have: none of them is here.
      expect(JSON.stringify(stream.events)).not.toContain(MRN_OTHER);
      expect(JSON.stringify(stream.events)).not.toContain('gw-b');
      expect((await leaderAlarms.alarmsOf(MRN_OTHER)).map((a) => a.value)).toEqual([150]);
    } finally {
      stream.close();
    }
  });
});
