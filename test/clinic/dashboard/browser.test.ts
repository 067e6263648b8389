import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import type { Bundle } from 'fhir/r4.js';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../../../src/clinic/dashboard/auth/totp.js';
import { DashboardServer } from '../../../src/clinic/dashboard/server.js';
import { hashPassword } from '../../../src/clinic/staff/passwords.js';
import { issueServerCertificate } from '../../../src/pki/ca.js';
import { createDevelopmentPki } from '../../../src/pki/dev-pki.js';
import { systemClock } from '../../../src/util/clock.js';
import { PATIENT_SYSTEM, SYSTEM_BASE } from '../fhir/samples.js';
import { ARTIFACTS, freePort, haveBrowser, launchTrusting, logIn } from './chromium.js';
import { MRN_CARED, MRN_OTHER, makeStores, PASSWORD, type Stores, TEST_SETTINGS } from './rig.js';

/**
 * The dashboard in a real browser: Debian's Chromium, headless, driven by playwright-core, over real HTTPS with
 * a certificate from the development PKI. The browser TRUSTS the development CA through its NSS database (the
 * store Chromium on Linux reads, $HOME/.pki/nssdb), and certificate errors are not ignored, so the `__Host-`
 * cookie and HSTS are exercised as a browser really applies them (both need a secure, trusted origin).
 */

describe.skipIf(!haveBrowser)(
  `the dashboard in headless Chromium${haveBrowser ? '' : ' (skipped: /usr/bin/chromium or certutil is not installed; apt-get install chromium libnss3-tools)'}`,
  () => {
    let dir: string;
    let stores: Stores;
    let server: DashboardServer;
    let browser: Browser;
    let origin: string;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'rpm-dashboard-browser-'));
      const pki = await createDevelopmentPki(join(dir, 'pki'));
      const tls = await issueServerCertificate(pki.ca);

      stores = await makeStores(dir, systemClock);
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
        fhirExport: { patientIdentifierSystem: PATIENT_SYSTEM, systemBase: SYSTEM_BASE },
      });
      await server.start();
      browser = await launchTrusting(dir, pki.files.ca);
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
      await server?.stop();
      await stores?.staff.close();
      await stores?.clinic.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    /** Console messages about the CSP (a refused script, style or image): there must be none. */
    const violations: string[] = [];
    const watch = (page: Page) =>
      page.on('console', (message) => {
        if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
      });

    it('enrols TOTP at the first login and shows the patient list', async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      watch(page);
      const login = await page.goto(`${origin}/login`);
      expect(login?.status()).toBe(200);
      expect(await login?.headerValue('strict-transport-security')).toBe(
        'max-age=31536000; includeSubDomains',
      );
      await page.fill('#username', 'nina');
      await page.fill('#password', PASSWORD);
      await page.click('button[type=submit]');
      await page.waitForURL(`${origin}/mfa/enrol`);
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-enrol.png'), fullPage: true });
      const qr = await page.locator('img').getAttribute('src');
      expect(qr).toMatch(/^data:image\/png;base64,/);
      // The QR image is drawn (the CSP allows data: images): its natural width is not 0.
      expect(
        await page
          .locator('img')
          .evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth),
      ).toBe(240);
      const secret = (await page.locator('#totp-secret').textContent())?.trim() ?? '';
      expect(secret).toMatch(/^[A-Z2-7]{32}$/);

      const enrolCookie = (await context.cookies()).find((c) => c.name === '__Host-rpm_session');
      await page.fill('#code', totpCode(secret, Date.now()));
      await page.click('button[type=submit]');
      await page.waitForURL(`${origin}/`);
      await expect.poll(() => page.locator('h1').textContent()).toBe('Patients');
      // nina is a clinician on no care team yet: an empty list, said so.
      expect(await page.locator('main').textContent()).toContain('none is assigned to you yet');

      const cookies = await context.cookies();
      const session = cookies.find((c) => c.name === '__Host-rpm_session');
      expect(session).toMatchObject({ secure: true, httpOnly: true, sameSite: 'Strict', path: '/' });
      expect(session?.value).not.toBe(enrolCookie?.value);
      await context.close();
    });

    it('logs a clinician in with password and TOTP, shows their patients and a patient page', async () => {
      await stores.staff.addToCareTeam('MRN-<b>3003</b>', stores.users.clinician.id, 'test', Date.now());
      const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
      const page = await context.newPage();
      watch(page);
      await page.goto(`${origin}/`);
      await page.waitForURL(`${origin}/login`);
      await page.fill('#username', 'carl');
      await page.fill('#password', PASSWORD);
      await page.click('button[type=submit]');
      await page.waitForURL(`${origin}/mfa`);
      await page.fill('#code', totpCode(stores.secret, Date.now()));
      await page.click('button[type=submit]');
      await page.waitForURL(`${origin}/`);
      const items = await page.locator('ul.patients li h2').allTextContents();
      // An MRN holding markup is shown as text (escaped), never as markup.
      expect(items).toEqual(['MRN-1001', 'MRN-<b>3003</b>']);
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-patients.png'), fullPage: true });

      await page.click(`text=${MRN_CARED}`);
      await page.waitForURL(`${origin}/patients/${MRN_CARED}`);
      expect(await page.locator('h1').textContent()).toBe(`Patient ${MRN_CARED}`);
      expect(await page.locator('table').first().textContent()).toContain('gw-a');
      expect(await page.locator('table').nth(1).textContent()).toContain('Oxygen level (SpO2)93 %');
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-patient.png'), fullPage: true });

      // Logging out posts the form with its CSRF token from this origin; the session is gone afterwards.
      await page.click('header button[type=submit]');
      await page.waitForURL(`${origin}/login`);
      await page.goto(`${origin}/`);
      await page.waitForURL(`${origin}/login`);
      await context.close();
      expect(violations).toEqual([]);
    });

    it("downloads a patient's readings from the page's export form; another patient's export is the 404 page", async () => {
      // A clinician of her own (carl's code of this 30-second step was used above, and a code counts once).
      const dana = await stores.staff.addUser({
        username: 'dana',
        role: 'clinician',
        passwordHash: await hashPassword(PASSWORD),
        createdBy: 'test',
        at: Date.now(),
      });
      await stores.staff.setTotpSecret(dana.id, stores.secret, Date.now());
      await stores.staff.confirmTotp(dana.id, Date.now());
      await stores.staff.addToCareTeam(MRN_CARED, dana.id, 'test', Date.now());
      const context = await browser.newContext({
        acceptDownloads: true,
        viewport: { width: 1000, height: 700 },
      });
      const page = await context.newPage();
      watch(page);
      await logIn(page, origin, 'dana', stores.secret);
      await page.goto(`${origin}/patients/${MRN_CARED}`);
      await page.locator('#export').screenshot({ path: join(ARTIFACTS, 'dashboard-export.png') });

      // The form's first range is the last 24 hours: the rig's readings of 4 hours ago are in it.
      const [csv] = await Promise.all([
        page.waitForEvent('download'),
        page.click('#export button[type=submit]'),
      ]);
      expect(csv.suggestedFilename()).toMatch(/^readings_MRN-1001_\d{8}T\d{6}Z_\d{8}T\d{6}Z\.csv$/);
      const csvPath = join(dir, 'export.csv');
      await csv.saveAs(csvPath);
      const records = parse(readFileSync(csvPath, 'utf8'), { columns: true }) as Record<string, string>[];
      expect(records.map((r) => [r.code, r.value, r.gateway])).toEqual([
        ['MDC_PULS_OXIM_SAT_O2', '91', 'gw-a'],
        ['MDC_PULS_OXIM_PULS_RATE', '61', 'gw-a'],
        ['MDC_PULS_OXIM_SAT_O2', '92', 'gw-a'],
        ['MDC_PULS_OXIM_PULS_RATE', '62', 'gw-a'],
        ['MDC_PULS_OXIM_SAT_O2', '93', 'gw-a'],
        ['MDC_PULS_OXIM_PULS_RATE', '63', 'gw-a'],
      ]);
      // The download left the page where it was.
      expect(page.url()).toBe(`${origin}/patients/${MRN_CARED}`);

      await page.selectOption('#export-format', 'fhir');
      const [fhir] = await Promise.all([
        page.waitForEvent('download'),
        page.click('#export button[type=submit]'),
      ]);
      expect(fhir.suggestedFilename()).toMatch(/\.json$/);
      const fhirPath = join(dir, 'export.json');
      await fhir.saveAs(fhirPath);
      const bundle = JSON.parse(readFileSync(fhirPath, 'utf8')) as Bundle;
      expect(bundle.type).toBe('collection');
      expect(bundle.entry?.filter((e) => e.resource?.resourceType === 'Observation')).toHaveLength(6);

      // A patient outside dana's care team: the export is the same 404 page as the patient page.
      const range = new URLSearchParams({ from: '2026-01-01T00:00', to: '2026-01-02T00:00', format: 'csv' });
      const other = await page.goto(`${origin}/patients/${MRN_OTHER}/export?${range.toString()}`);
      expect(other?.status()).toBe(404);
      expect(await page.locator('h1').textContent()).toBe('Not found');
      const otherPage = await page.goto(`${origin}/patients/${MRN_OTHER}`);
      expect(otherPage?.status()).toBe(404);
      // An inverted range of her own patient: a page that says why, with the code.
      const inverted = new URLSearchParams({
        from: '2026-01-02T00:00',
        to: '2026-01-01T00:00',
        format: 'csv',
      });
      const refused = await page.goto(`${origin}/patients/${MRN_CARED}/export?${inverted.toString()}`);
      expect(refused?.status()).toBe(400);
      expect(await page.locator('main').textContent()).toContain('EXPORT_RANGE_INVERTED');
      await context.close();
      expect(violations).toEqual([]);
    });
  },
);
