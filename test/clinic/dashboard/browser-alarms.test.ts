import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../../scripts/support/measurements.js';
import type { AlarmLimit } from '../../../src/clinic/alarms/model.js';
import { SqliteAlarmStore } from '../../../src/clinic/alarms/sqlite/sqlite-alarm-store.js';
import { DashboardServer } from '../../../src/clinic/dashboard/server.js';
import { AlarmService } from '../../../src/clinic/service/alarm-service.js';
import type { IncomingMeasurement } from '../../../src/clinic/storage/clinic-store.js';
import { issueServerCertificate } from '../../../src/pki/ca.js';
import { createDevelopmentPki } from '../../../src/pki/dev-pki.js';
import { createLog } from '../../../src/runtime/log.js';
import { systemClock } from '../../../src/util/clock.js';
import { realScheduler } from '../../../src/util/scheduler.js';
import { ARTIFACTS, freePort, haveBrowser, launchTrusting, logIn, watchConsole } from './chromium.js';
import { MRN_CARED, makeStores, type Stores, TEST_SETTINGS } from './rig.js';

/**
 * A high alarm from the reading to its acknowledgement, in a real browser (headless Debian Chromium trusting
 * the development CA, chromium.ts): a clinician of the patient's care team has the tile wall, the clinic's
 * alarm list and the patient's alarm list open; a reading over the patient's high pulse limit is committed
 * through the clinic store, the alarm engine (as `clinic serve` runs it) raises the alarm, and every page
 * shows it from the live feed without a reload; the clinician acknowledges it with the list's form (a real
 * POST with the session's CSRF token); the pages show it acknowledged and the audit log has the entry. A
 * back-filled reading over the limit then arrives as a late alarm, shown with its own measurement time.
 */
const MINUTE = 60_000;
const PULSE = 'MDC_PULS_OXIM_PULS_RATE';
/** makeStores' database key. */
const DB_KEY = Uint8Array.from(Buffer.from('5a'.repeat(32), 'hex'));
const PULSE_HIGH: AlarmLimit = {
  code: PULSE,
  unit: '/min',
  above: 120,
  forMs: 0,
  hysteresis: 5,
  priority: 'high',
};

let serial = 70_000;
/** A pulse oximeter reading of gw-a (MRN-1001's hub) measured at `at`, received now. */
function pulseReading(pulse: number, at: number, stored = false): IncomingMeasurement {
  serial++;
  const now = Date.now();
  const measurement = spo2Measurement(serial, {
    time: new Date(at).toISOString(),
    receivedAt: new Date(now).toISOString(),
    observations: [
      { code: 'MDC_PULS_OXIM_SAT_O2', value: 96, unit: '%' },
      { code: PULSE, value: pulse, unit: '/min' },
    ],
    ...(stored ? { stored: true as const } : {}),
  });
  return {
    measurement,
    measuredAt: at,
    receipt: {
      gatewayId: 'gw-a',
      topic: 'obs',
      batchSeq: serial,
      sentAt: now,
      signerSerial: '01',
      receivedAt: now,
    },
  };
}

describe.skipIf(!haveBrowser)(
  `alarms live in headless Chromium${haveBrowser ? '' : ' (skipped: /usr/bin/chromium or certutil is not installed)'}`,
  () => {
    let dir: string;
    let stores: Stores;
    let alarmStore: SqliteAlarmStore;
    let engine: AlarmService;
    let server: DashboardServer;
    let browser: Browser;
    let context: BrowserContext;
    let origin: string;
    const problems: string[] = [];

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'rpm-dashboard-alarm-live-'));
      const pki = await createDevelopmentPki(join(dir, 'pki'));
      const tls = await issueServerCertificate(pki.ca);
      stores = await makeStores(dir, systemClock);
      // As `clinic serve` on SQLite: the engine follows the clinic store's feed in this process, and the
      // dashboard hears the alarm store's changes.
      alarmStore = await SqliteAlarmStore.open({ path: join(dir, 'clinic.db'), key: DB_KEY });
      engine = new AlarmService({
        clinic: stores.clinic,
        alarms: alarmStore,
        scheduler: realScheduler,
        log: createLog({ level: 'silent', redact: true, base: { service: 'dashboard' } }),
      });
      await engine.start();
      await engine.setLimits(MRN_CARED, [PULSE_HIGH], 'alice');
      const port = await freePort();
      origin = `https://localhost:${port}`;
      server = new DashboardServer({
        ...stores,
        ...TEST_SETTINGS,
        clock: systemClock,
        host: '127.0.0.1',
        port,
        allowNetwork: false,
        publicOrigin: origin,
        https: { cert: tls.certificatePem, key: tls.privateKeyPem },
        alarms: { store: alarmStore, control: engine },
      });
      await server.start();
      browser = await launchTrusting(dir, pki.files.ca);
      context = await browser.newContext({ viewport: { width: 1280, height: 820 } });
      const login = await context.newPage();
      await logIn(login, origin, 'carl', stores.secret);
      await login.close();
    }, 60_000);

    afterAll(async () => {
      await context?.close();
      await browser?.close();
      await server?.stop();
      await engine?.stop();
      await alarmStore?.close();
      await stores?.staff.close();
      await stores?.clinic.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    /** A page of this context, watched for CSP refusals and script errors, once its live feed is connected. */
    async function open(path: string): Promise<Page> {
      const page = await context.newPage();
      watchConsole(page, problems);
      await page.goto(`${origin}${path}`);
      await page.waitForSelector('body[data-live="live"]');
      return page;
    }

    it('shows a high alarm on the tile and the lists from the live feed, and its acknowledgement everywhere', async () => {
      const tiles = await open('/');
      await tiles.waitForSelector('body[data-tiles-loaded]', { state: 'attached' });
      const tileAlarms = tiles.locator(`li.tile[data-mrn="${MRN_CARED}"] .tile-alarms`);
      expect(await tileAlarms.textContent()).toBe('No open alarms');
      const clinicList = await open('/alarms');
      const patientList = await open(`/patients/${MRN_CARED}/alarms`);
      for (const list of [clinicList, patientList]) {
        await list.waitForSelector('body[data-alarm-list-loaded]', { state: 'attached' });
        expect(await list.locator('[data-alarm-list]').textContent()).toBe('No alarms.');
      }

      // The real path of `clinic serve`: a commit to the clinic store, the engine's evaluation, the alarm.
      await stores.clinic.commit({
        measurements: [pulseReading(134, Date.now())],
        gaps: [],
        statuses: [],
        rejections: [],
      });
      // Each page changes its DOM from the live event (no reload: the pages were opened before the alarm).
      await tiles.waitForSelector(
        `li.tile[data-mrn="${MRN_CARED}"] .tile-alarms.alarm-high.alarm-unacknowledged`,
      );
      expect(await tileAlarms.textContent()).toBe('1 open alarm: 1 high; 1 not acknowledged');
      const [alarm] = await alarmStore.alarmsOf(MRN_CARED);
      expect(alarm).toMatchObject({ priority: 'high', state: 'active', value: 134, late: false });
      const row = `tr#alarm-${alarm?.id}`;
      for (const list of [clinicList, patientList]) {
        await list.waitForSelector(`${row}.alarm-high.alarm-active`);
        expect(await list.locator(row).textContent()).toContain('Pulse: 134 beats/min (above 120 beats/min)');
        expect(await list.locator(`${row} button`).textContent()).toBe('Acknowledge');
      }
      await tiles.screenshot({ path: join(ARTIFACTS, 'dashboard-alarm-tiles.png'), fullPage: true });

      // Acknowledged with the clinic list's form: a POST with the session's CSRF token, back to the list.
      await clinicList.click(`${row} button`);
      await clinicList.waitForURL(`${origin}/alarms`);
      await clinicList.waitForSelector(`${row} >> text=Acknowledged by carl`);
      // Still active (the pulse is still high), acknowledged: the tile and the other list say so, live.
      await tiles.waitForSelector(`li.tile[data-mrn="${MRN_CARED}"] .tile-alarms.alarm-acknowledged`);
      expect(await tileAlarms.textContent()).toBe('1 open alarm: 1 high; all acknowledged');
      await patientList.waitForSelector(`${row} >> text=Acknowledged by carl`);
      expect(await patientList.locator(`${row} button`).count()).toBe(0);
      expect(await alarmStore.alarm(alarm?.id as number)).toMatchObject({ acknowledgedBy: 'carl' });

      const audit = (await readFile(join(dir, 'clinic-audit.log'), 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { type: string; actor: string; details: Record<string, unknown> });
      expect(audit.filter((e) => e.type === 'alarm.acknowledged')).toEqual([
        expect.objectContaining({
          actor: 'carl',
          details: expect.objectContaining({
            alarmId: alarm?.id,
            mrn: MRN_CARED,
            priority: 'high',
            first: true,
          }),
        }),
      ]);

      // A back-filled reading over the limit, measured two hours ago: a late alarm, shown with that time.
      const measuredAt = Date.now() - 2 * 60 * MINUTE;
      await stores.clinic.commit({
        measurements: [pulseReading(141, measuredAt, true)],
        gaps: [],
        statuses: [],
        rejections: [],
      });
      await tiles.waitForSelector(`li.tile[data-mrn="${MRN_CARED}"] .tile-alarms.alarm-unacknowledged`);
      expect(await tileAlarms.textContent()).toBe('2 open alarms: 2 high; 1 not acknowledged');
      const late = (await alarmStore.alarmsOf(MRN_CARED)).find((a) => a.late);
      expect(late).toMatchObject({ state: 'latched', measuredAt, value: 141 });
      const when = new Intl.DateTimeFormat('en-GB', {
        dateStyle: 'medium',
        timeStyle: 'medium',
        timeZone: TEST_SETTINGS.timeZone,
      }).format(measuredAt);
      for (const list of [clinicList, patientList]) {
        await list.waitForSelector(`tr#alarm-${late?.id}.alarm-late.alarm-latched`);
        expect(await list.locator(`tr#alarm-${late?.id}`).textContent()).toContain(
          `Late measured ${when} (2 hours ago)`,
        );
      }
      await clinicList.screenshot({ path: join(ARTIFACTS, 'dashboard-alarm-list.png'), fullPage: true });
      for (const page of [tiles, clinicList, patientList]) await page.close();
      expect(problems).toEqual([]);
    });
  },
);
