import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../../scripts/support/measurements.js';
import type { AlarmLimit } from '../../../src/clinic/alarms/model.js';
import { SqliteAlarmStore } from '../../../src/clinic/alarms/sqlite/sqlite-alarm-store.js';
import { DashboardServer } from '../../../src/clinic/dashboard/server.js';
import { AlarmService } from '../../../src/clinic/service/alarm-service.js';
import type { IncomingMeasurement, IntakeWrite } from '../../../src/clinic/storage/clinic-store.js';
import type { Observation } from '../../../src/model/observation.js';
import { issueServerCertificate } from '../../../src/pki/ca.js';
import { createDevelopmentPki } from '../../../src/pki/dev-pki.js';
import { createLog } from '../../../src/runtime/log.js';
import { systemClock } from '../../../src/util/clock.js';
import { realScheduler } from '../../../src/util/scheduler.js';
import { ARTIFACTS, freePort, haveBrowser, launchTrusting, logIn, watchConsole } from './chromium.js';
import { MRN_CARED, MRN_OTHER, makeStores, type Stores, TEST_SETTINGS } from './rig.js';

/**
 * The views and the live feed in a real browser (headless Debian Chromium through playwright-core, trusting
 * the development CA through its NSS database, as browser.test.ts sets up): the tile wall and a patient's
 * charts are drawn from the API, a reading committed through the store reaches the tile and the chart as a
 * Server-Sent Event (timed from the commit to the page's receipt), and the page turns stale when the live
 * feed is cut. Screenshots go to test-artifacts/.
 */
const MINUTE = 60_000;
const STALE_AFTER_MS = 1_500;
const SPO2 = 'MDC_PULS_OXIM_SAT_O2';
/** makeStores' database key. */
const DB_KEY = Uint8Array.from(Buffer.from('5a'.repeat(32), 'hex'));
const LOW_SPO2: AlarmLimit = { code: SPO2, unit: '%', below: 90, forMs: 0, hysteresis: 1, priority: 'high' };

/**
 * A TCP relay between the browser and the dashboard (TLS passes through it untouched), so a test can cut the
 * live feed as a network would: `freeze` stops forwarding the server's bytes without closing anything (a
 * stalled feed: the connection stays open and silent), `drop` closes every connection (a lost feed), `thaw`
 * forwards again.
 */
class Relay {
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
  private frozen = false;
  private readonly server = createServer((client) => {
    const upstream = connect(this.target, '127.0.0.1');
    const pair = { client, upstream };
    this.pairs.add(pair);
    client.pipe(upstream);
    if (!this.frozen) upstream.pipe(client);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });

  constructor(private readonly target: number) {}

  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
  }
  freeze(): void {
    this.frozen = true;
    for (const { client, upstream } of this.pairs) upstream.unpipe(client);
  }
  thaw(): void {
    this.frozen = false;
    for (const { client, upstream } of this.pairs) upstream.pipe(client);
  }
  drop(): void {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
  }
  async close(): Promise<void> {
    this.drop();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

let serial = 50_000;
function item(
  gatewayId: string,
  at: number,
  observations: Observation[],
  device: { id?: string; driver?: string; characteristic?: string; stored?: true } = {},
): IncomingMeasurement {
  serial++;
  const base = spo2Measurement(serial, {
    time: new Date(at).toISOString(),
    receivedAt: new Date(at).toISOString(),
    observations,
    deviceId: device.id ?? 'dev-ox-1',
    driver: device.driver ?? 'sig/pulse-oximeter@1.0.0',
    characteristic: device.characteristic ?? '2a5f',
    ...(device.stored ? { stored: true as const } : {}),
  });
  return {
    measurement: { ...base, id: `${base.id}-${gatewayId}` },
    measuredAt: at,
    receipt: { gatewayId, topic: 'obs', batchSeq: serial, sentAt: at, signerSerial: '01', receivedAt: at },
  };
}
const oximetry = (spo2: number, pulse: number): Observation[] => [
  { code: SPO2, value: spo2, unit: '%' },
  { code: 'MDC_PULS_OXIM_PULS_RATE', value: pulse, unit: '/min' },
];
const write = (parts: Partial<IntakeWrite>): IntakeWrite => ({
  measurements: [],
  gaps: [],
  statuses: [],
  rejections: [],
  ...parts,
});

/**
 * Six hours of a patient's readings: SpO2 and pulse every 2 minutes with a 40-minute hole the hub reported
 * as a gap record, the last hour's first readings stored by the device and sent later; a blood pressure,
 * temperature, weight, glucose and battery reading; the hub online.
 */
async function history(stores: Stores, gatewayId: string, now: number, seed: number): Promise<number> {
  const items: IncomingMeasurement[] = [];
  let points = 0;
  const holeFrom = now - 3 * 60 * MINUTE;
  const holeTo = holeFrom + 40 * MINUTE;
  for (let t = now - 6 * 60 * MINUTE + MINUTE; t < now - 2 * MINUTE; t += 2 * MINUTE) {
    if (t >= holeFrom && t < holeTo) continue;
    const wave = Math.sin((t / MINUTE + seed * 7) / 25);
    const spo2 = Math.round(95 + 2 * wave - (seed === 1 && t > now - 50 * MINUTE ? 3 : 0));
    const stored = t > now - 60 * MINUTE && t < now - 45 * MINUTE;
    items.push(
      item(gatewayId, t, oximetry(spo2, Math.round(72 + 8 * wave + seed)), stored ? { stored } : {}),
    );
    points++;
  }
  const cuff = { id: 'dev-bp-1', driver: 'sig/blood-pressure@1.0.0', characteristic: '2a35' };
  items.push(
    item(
      gatewayId,
      now - 95 * MINUTE,
      [
        { code: 'MDC_PRESS_BLD_NONINV_SYS', value: 128 + seed * 3, unit: 'mm[Hg]' },
        { code: 'MDC_PRESS_BLD_NONINV_DIA', value: 82 + seed, unit: 'mm[Hg]' },
        { code: 'MDC_PRESS_BLD_NONINV_MEAN', value: 97, unit: 'mm[Hg]' },
      ],
      cuff,
    ),
    item(gatewayId, now - 80 * MINUTE, [{ code: 'MDC_TEMP_BODY', value: 36.8 + seed / 10, unit: 'Cel' }], {
      id: 'dev-th-1',
      driver: 'sig/thermometer@1.0.0',
      characteristic: '2a1c',
    }),
    item(
      gatewayId,
      now - 5 * 60 * MINUTE,
      [{ code: 'MDC_MASS_BODY_ACTUAL', value: 78.4 + seed, unit: 'kg' }],
      {
        id: 'dev-sc-1',
        driver: 'sig/weight-scale@1.0.0',
        characteristic: '2a9d',
      },
    ),
    item(
      gatewayId,
      now - 4 * 60 * MINUTE,
      [{ code: 'MDC_CONC_GLU_CAPILLARY_PLASMA', value: 104 + seed * 9, unit: 'mg/dL' }],
      { id: 'dev-gl-1', driver: 'sig/glucose-meter@1.0.0', characteristic: '2a18' },
    ),
    item(
      gatewayId,
      now - 30 * MINUTE,
      [{ code: 'MDC_ATTR_VAL_BATT_CHARGE', value: 81 - seed * 30, unit: '%' }],
      {
        characteristic: '2a19',
      },
    ),
  );
  await stores.clinic.commit(
    write({
      measurements: items,
      gaps: [
        {
          gap: {
            type: 'gap',
            id: `gap-${gatewayId}`,
            deviceId: 'dev-ox-1',
            count: 20,
            firstTime: new Date(holeFrom).toISOString(),
            lastTime: new Date(holeTo - 2 * MINUTE).toISOString(),
            reason: 'evicted-full',
            recordedAt: new Date(holeTo).toISOString(),
          },
          receipt: {
            gatewayId,
            topic: 'obs',
            batchSeq: 1,
            sentAt: holeTo,
            signerSerial: '01',
            receivedAt: now - MINUTE,
          },
        },
      ],
      statuses: [
        {
          status: {
            gatewayId,
            state: seed === 2 ? 'offline' : 'online',
            version: '0.1.0',
            sentAt: now - 10 * MINUTE,
            backlog: { alert: 0, live: 0, backlog: 0 },
          },
          signerSerial: '01',
          receivedAt: now - 10 * MINUTE,
        },
      ],
    }),
  );
  return points;
}

describe.skipIf(!haveBrowser)(
  `the dashboard's views and live feed in headless Chromium${haveBrowser ? '' : ' (skipped: /usr/bin/chromium or certutil is not installed)'}`,
  () => {
    let dir: string;
    let stores: Stores;
    let server: DashboardServer;
    let browser: Browser;
    let context: BrowserContext;
    let origin: string;
    let relay: Relay;
    let alarmStore: SqliteAlarmStore;
    let engine: AlarmService;
    let caredPoints: number;
    const violations: string[] = [];
    const watch = (page: Page) => watchConsole(page, violations);

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'rpm-dashboard-views-'));
      const pki = await createDevelopmentPki(join(dir, 'pki'));
      const tls = await issueServerCertificate(pki.ca);

      stores = await makeStores(dir, systemClock);
      const now = Date.now();
      await stores.clinic.assign({
        gatewayId: 'gw-c',
        mrn: 'MRN-3003',
        from: now - DAY,
        createdBy: 'test',
        at: now,
      });
      caredPoints = 3 + (await history(stores, 'gw-a', now, 0)); // makeStores' three, 4 h ago
      await history(stores, 'gw-b', now, 1);
      await history(stores, 'gw-c', now, 2);

      // The browser reaches the dashboard through the relay: the public origin is the relay's port.
      // The alarm engine on the clinic record's feed, with a low-SpO2 limit for every patient; it judges readings
      // committed from now on.
      alarmStore = await SqliteAlarmStore.open({ path: join(dir, 'clinic.db'), key: DB_KEY });
      engine = new AlarmService({
        clinic: stores.clinic,
        alarms: alarmStore,
        scheduler: realScheduler,
        log: createLog({ level: 'silent', redact: true, base: { service: 'dashboard' } }),
      });
      await engine.start();
      for (const mrn of [MRN_CARED, MRN_OTHER, 'MRN-3003']) await engine.setLimits(mrn, [LOW_SPO2], 'test');
      const raised = new Promise<void>((resolve) => {
        const stop = engine.subscribe((event) => {
          if (event.alarm.mrn !== MRN_OTHER || event.alarm.priority !== 'high') return;
          stop();
          resolve();
        });
      });
      await stores.clinic.commit(
        write({ measurements: [item('gw-b', Date.now() - MINUTE, oximetry(86, 104))] }),
      );
      await raised;

      const port = await freePort();
      const relayPort = await freePort();
      origin = `https://localhost:${relayPort}`;
      server = new DashboardServer({
        ...stores,
        ...TEST_SETTINGS,
        staleAfterMs: STALE_AFTER_MS,
        clock: systemClock,
        host: '127.0.0.1',
        port,
        allowNetwork: false,
        publicOrigin: origin,
        https: { cert: tls.certificatePem, key: tls.privateKeyPem },
        alarms: { store: alarmStore, control: engine },
      });
      await server.start();
      relay = new Relay(port);
      await relay.listen(relayPort);
      browser = await launchTrusting(dir, pki.files.ca);
      context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      await logIn(page, origin, 'alice', stores.secret);
      await page.close();
    }, 60_000);

    afterAll(async () => {
      await context?.close();
      await browser?.close();
      await relay?.close();
      await server?.stop();
      await engine?.stop();
      await alarmStore?.close();
      await stores?.staff.close();
      await stores?.clinic.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    const DAY = 24 * 60 * MINUTE;

    /** Commits one SpO2 reading for the cared-for patient now; resolves with its id and when the commit returned. */
    async function commitReading(spo2: number): Promise<{ id: string; started: number; committed: number }> {
      const reading = item('gw-a', Date.now(), oximetry(spo2, 77));
      const started = Date.now();
      await stores.clinic.commit(write({ measurements: [reading] }));
      return { id: reading.measurement.id, started, committed: Date.now() };
    }

    /**
     * Waits for the page to receive the reading's event (the page writes the ids of the last event it received,
     * and when, on <body>: only the live feed's handler does); returns the delay from the start of the commit
     * to the receipt, both on this machine's clock.
     */
    async function eventDelay(
      page: Page,
      what: string,
      reading: { id: string; started: number; committed: number },
    ): Promise<number> {
      await page.waitForSelector(`body[data-last-reading-ids~="${reading.id}"]`, {
        state: 'attached',
        timeout: 5_000,
      });
      const receivedAt = Number(await page.getAttribute('body', 'data-last-reading-at'));
      const delay = receivedAt - reading.started;
      console.log(
        `${what}: the reading's event arrived ${delay} ms after the commit started (${receivedAt - reading.committed} ms after it returned)`,
      );
      return delay;
    }

    it('shows the tile wall and updates a tile from a live event, timed from the commit', async () => {
      const page = await context.newPage();
      watch(page);
      await page.goto(`${origin}/`);
      await page.waitForSelector('body[data-live="live"]');
      await page.waitForSelector('body[data-tiles-loaded]', { state: 'attached' });
      const tile = page.locator(`li.tile[data-mrn="${MRN_CARED}"]`);
      await expect.poll(() => tile.locator('.vital').count()).toBe(6);
      expect(await tile.getAttribute('class')).not.toContain('stale');
      expect(await tile.locator('.tile-live').textContent()).toContain('LIVE');
      const foot = await tile.locator('.tile-foot').textContent();
      expect(foot).toContain('Battery 81 % (dev-ox-1)');
      expect(foot).toContain('Hub gw-a: online');
      expect(await page.locator('li.tile[data-mrn="MRN-3003"] .tile-foot').textContent()).toContain(
        'Hub gw-c: offline',
      );
      // The alarm engine's open alarms: the high one the low SpO2 of MRN-2002 raised, linked to its list.
      const other = page.locator(`li.tile[data-mrn="${MRN_OTHER}"] .tile-alarms`);
      expect(await other.textContent()).toMatch(/open alarms?: .*1 high/);
      expect(await other.getAttribute('class')).toContain('alarm-high');
      expect(await other.locator('a').getAttribute('href')).toBe(`/patients/${MRN_OTHER}/alarms`);
      expect(
        await tile.locator('.vital', { hasText: 'Blood pressure' }).locator('.value').textContent(),
      ).toBe('128/82 mmHg');
      expect(await tile.locator('.vital', { hasText: 'Temperature' }).locator('.value').textContent()).toBe(
        '36.8 °C',
      );
      expect(await tile.locator('.vital', { hasText: 'Glucose' }).locator('.value').textContent()).toBe(
        '104 mg/dL',
      );
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-tiles.png'), fullPage: true });

      const reading = await commitReading(88);
      // Timed from the commit and printed; how fast under load is bench territory (the issue's "within a
      // second" is a performance claim, not something a test on a busy machine can promise): here, that the
      // event came, after the commit.
      const delay = await eventDelay(page, 'tile wall', reading);
      expect(delay).toBeGreaterThanOrEqual(0);
      await expect
        .poll(() => tile.locator('.vital', { hasText: 'SpO2' }).locator('.value').textContent())
        .toBe('88 %');
      expect(await tile.locator('.since').textContent()).toBe('Last reading just now');
      await page.close();
    });

    it("draws the patient's charts and adds a live reading to the SpO2 chart", async () => {
      const page = await context.newPage();
      watch(page);
      await page.goto(`${origin}/patients/${MRN_CARED}`);
      await page.waitForSelector('body[data-live="live"]');
      const chart = page.locator(`section.chart[data-code="${SPO2}"]`);
      await chart.locator('canvas').waitFor();
      await page.waitForSelector(`section.chart[data-code="${SPO2}"][data-points]`);
      // Every reading of the 6-hour range: the history, makeStores' three, any a test before committed.
      const before = Number(await chart.getAttribute('data-points'));
      const stored = await stores.clinic.series({
        mrn: MRN_CARED,
        code: SPO2,
        from: Date.now() - 6 * 60 * MINUTE,
        to: Date.now(),
      });
      expect(before).toBe(stored.length);
      expect(before).toBeGreaterThanOrEqual(caredPoints);
      expect(await chart.locator('.gap-list li').count()).toBe(1);
      expect(await chart.locator('.gap-list li').textContent()).toContain(
        '20 reading(s) from device dev-ox-1',
      );
      expect(await page.locator('section.chart canvas').count()).toBeGreaterThanOrEqual(5);
      // Pointing at the chart shows a reading's provenance.
      await chart.scrollIntoViewIfNeeded();
      const box = await chart.locator('.u-over').boundingBox();
      if (box) await page.mouse.move(box.x + box.width * 0.8, box.y + box.height / 2, { steps: 5 });
      await expect
        .poll(() => chart.locator('.provenance').textContent())
        .toMatch(/device dev-ox-1 \(sig\/pulse-oximeter@1\.0\.0\) via hub gw-a/);
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-patient.png'), fullPage: true });

      const reading = await commitReading(91);
      const delay = await eventDelay(page, 'patient page', reading);
      expect(delay).toBeGreaterThanOrEqual(0);
      await expect.poll(async () => Number(await chart.getAttribute('data-points'))).toBe(before + 1);

      // The 24 h range holds makeStores' readings too; 7 d the same here.
      await page.click('.ranges button[data-range="86400000"]');
      await expect.poll(async () => Number(await chart.getAttribute('data-points'))).toBe(before + 1);
      await page.close();
    });

    it('turns every tile and the page stale within staleAfter when the live feed stalls or drops, and live again after', async () => {
      const page = await context.newPage();
      watch(page);
      await page.goto(`${origin}/`);
      await page.waitForSelector('body[data-live="live"]');
      await page.waitForSelector('body[data-tiles-loaded]', { state: 'attached' });
      const tiles = page.locator('li.tile');
      const count = await tiles.count();
      expect(count).toBe(3);
      const allStale = async () => {
        for (let i = 0; i < count; i++) {
          expect(await tiles.nth(i).getAttribute('class')).toContain('stale');
          expect(await tiles.nth(i).locator('.live-no').isVisible()).toBe(true);
          expect(await tiles.nth(i).locator('.live-yes').isVisible()).toBe(false);
        }
        expect(await page.locator('#live-state').textContent()).toContain('NOT LIVE');
      };

      // A stall: the connection stays open, nothing arrives (no heartbeat, no reading). The page records when
      // it last heard the feed and when it turned stale (its own clock, so no polling delay of the test counts).
      const cut = Date.now();
      relay.freeze();
      await page.waitForSelector('body[data-live="stale"]', { timeout: 30_000 });
      const lastHeard = Number(await page.getAttribute('body', 'data-last-heard'));
      const staleAt = Number(await page.getAttribute('body', 'data-live-since'));
      console.log(
        `stalled feed: stale ${staleAt - cut} ms after the relay froze, ${staleAt - lastHeard} ms after the last event (staleAfter ${STALE_AFTER_MS} ms)`,
      );
      // Stale no sooner than staleAfter after the last event heard (the page's own timestamps: deterministic);
      // how much later depends on the page's 100 ms check and the machine's load, so it is printed, not
      // asserted (the wait above only catches a page that never turns stale).
      expect(staleAt - lastHeard).toBeGreaterThanOrEqual(STALE_AFTER_MS);
      await allStale();
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-tiles-stale.png'), fullPage: true });
      relay.thaw();
      await page.waitForSelector('body[data-live="live"]', { timeout: 30_000 });
      expect(await tiles.first().getAttribute('class')).not.toContain('stale');

      // A drop: every connection closed; stale at once, live again when the browser has reconnected.
      const dropped = Date.now();
      relay.drop();
      await page.waitForSelector('body[data-live="stale"]', { timeout: 30_000 });
      const droppedStaleAt = Number(await page.getAttribute('body', 'data-live-since'));
      console.log(`dropped feed: stale ${droppedStaleAt - dropped} ms after the connections closed`);
      expect(droppedStaleAt).toBeGreaterThanOrEqual(dropped);
      await allStale();
      await page.waitForSelector('body[data-live="live"]', { timeout: 30_000 });
      expect(await tiles.first().getAttribute('class')).not.toContain('stale');
      await page.close();
      expect(violations).toEqual([]);
    });
  },
);
