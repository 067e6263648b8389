import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Browser, MRN_CARED, MRN_OTHER, ORIGIN, PASSWORD, type Rig, startRig } from './rig.js';

let rig: Rig;
beforeEach(async () => {
  rig = await startRig();
});
afterEach(async () => {
  await rig.close();
});

const CSP =
  "default-src 'self';script-src 'self';style-src 'self';img-src 'self' data:;connect-src 'self';object-src 'none';base-uri 'none';form-action 'self';frame-ancestors 'none'";

describe('headers', () => {
  it('every answer, signed in or not, has the CSP, HSTS, nosniff, framing, referrer and no-store headers', async () => {
    const browser = new Browser(rig.app);
    const anonymous = [
      await browser.get('/login'),
      await browser.get('/assets/dashboard.css'),
      await browser.get('/nope'),
    ];
    await browser.login('alice', rig.secret, rig.clock.now());
    const signedIn = [
      await browser.get('/'),
      await browser.get(`/patients/${MRN_CARED}`),
      await browser.get('/patients/none'),
    ];
    expect(signedIn.map((r) => r.statusCode)).toEqual([200, 200, 404]);
    for (const response of [...anonymous, ...signedIn]) {
      expect(response.headers['content-security-policy']).toBe(CSP);
      expect(response.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['x-frame-options']).toBe('DENY');
      expect(response.headers['referrer-policy']).toBe('same-origin');
      expect(response.headers['cache-control']).toBe('no-store');
    }
    expect(anonymous[1]?.headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it('pages have no inline script or style, and refer to local assets only', async () => {
    const browser = new Browser(rig.app);
    const pages = [await browser.get('/login')];
    await browser.password('nina');
    pages.push(await browser.get('/mfa/enrol'));
    for (const page of pages) {
      expect(page.body).not.toMatch(/<script|<style|\sstyle=|\son[a-z]+=/i);
      expect(page.body).not.toMatch(/(src|href)="(https?:)?\/\//);
    }
  });

  it('answers only under its own host name (DNS rebinding)', async () => {
    const response = await rig.app.inject({ url: '/login', headers: { host: 'attacker.example:8443' } });
    expect(response.statusCode).toBe(403);
    const ok = await rig.app.inject({ url: '/login', headers: { host: '127.0.0.1:8443' } });
    expect(ok.statusCode).toBe(200);
  });

  it('refuses methods other than GET, HEAD and POST', async () => {
    const response = await rig.app.inject({
      method: 'DELETE',
      url: '/',
      headers: { host: 'localhost:8443' },
    });
    expect(response.statusCode).toBe(405);
  });
});

describe('CSRF', () => {
  it('refuses a login post without the form token, with a wrong one, or from another origin', async () => {
    const browser = new Browser(rig.app);
    const page = await browser.get('/login');
    const token = Browser.csrfOf(page);
    const form = { username: 'alice', password: PASSWORD };
    expect((await browser.post('/login', form)).statusCode).toBe(403);
    expect((await browser.post('/login', { ...form, _csrf: `${token.slice(0, -1)}x` })).statusCode).toBe(403);
    expect(
      (await browser.post('/login', { ...form, _csrf: token }, { origin: 'https://attacker.example' }))
        .statusCode,
    ).toBe(403);
    // Origin null (a sandboxed frame, a data: URL) and no Origin or Referer at all are refused too.
    expect((await browser.post('/login', { ...form, _csrf: token }, { origin: 'null' })).statusCode).toBe(
      403,
    );
    const bare = await rig.app.inject({
      method: 'POST',
      url: '/login',
      headers: {
        host: 'localhost:8443',
        'content-type': 'application/x-www-form-urlencoded',
        cookie: `__Host-rpm_login=${token}`,
      },
      payload: new URLSearchParams({ ...form, _csrf: token }).toString(),
    });
    expect(bare.statusCode).toBe(403);
    // A Referer from the dashboard stands in for a missing Origin.
    const referred = await rig.app.inject({
      method: 'POST',
      url: '/login',
      headers: {
        host: 'localhost:8443',
        referer: `${ORIGIN}/login`,
        'content-type': 'application/x-www-form-urlencoded',
        cookie: `__Host-rpm_login=${token}`,
      },
      payload: new URLSearchParams({ ...form, _csrf: token }).toString(),
    });
    expect(referred.headers.location).toBe('/mfa');
  });

  it("refuses a state change of a session without its token, with another session's, or from another origin", async () => {
    const browser = new Browser(rig.app);
    await browser.login('alice', rig.secret, rig.clock.now());
    const token = Browser.csrfOf(await browser.get('/'));
    const other = new Browser(rig.app);
    rig.clock.advance(30_000);
    await other.login('carl', rig.secret, rig.clock.now());
    const otherToken = Browser.csrfOf(await other.get('/'));
    expect(otherToken).not.toBe(token);

    expect((await browser.post('/logout', {})).statusCode).toBe(403);
    expect((await browser.post('/logout', { _csrf: otherToken })).statusCode).toBe(403);
    expect(
      (await browser.post('/logout', { _csrf: token }, { origin: 'https://localhost:9999' })).statusCode,
    ).toBe(403);
    expect(
      (await browser.post('/logout', { _csrf: token }, { origin: 'http://localhost:8443' })).statusCode,
    ).toBe(403);
    // None of them logged out.
    expect((await browser.get('/')).statusCode).toBe(200);
    expect((await browser.post('/logout', { _csrf: token })).headers.location).toBe('/login');
  });

  it('the token of the password stage is not the token of the complete session', async () => {
    const browser = new Browser(rig.app);
    await browser.password('alice');
    const early = Browser.csrfOf(await browser.get('/mfa'));
    const page = await browser.get('/mfa');
    const { totpCode } = await import('../../../src/clinic/dashboard/auth/totp.js');
    await browser.post('/mfa', { code: totpCode(rig.secret, rig.clock.now()), _csrf: Browser.csrfOf(page) });
    expect((await browser.post('/logout', { _csrf: early })).statusCode).toBe(403);
  });

  it('refuses a code post without the session token', async () => {
    const browser = new Browser(rig.app);
    await browser.password('alice');
    const { totpCode } = await import('../../../src/clinic/dashboard/auth/totp.js');
    const response = await browser.post('/mfa', { code: totpCode(rig.secret, rig.clock.now()) });
    expect(response.statusCode).toBe(403);
    expect((await browser.get('/')).headers.location).toBe('/mfa');
  });
});

describe('access by care team', () => {
  it('an admin sees every assigned patient; a clinician only their care team', async () => {
    const admin = new Browser(rig.app);
    await admin.login('alice', rig.secret, rig.clock.now());
    const all = await admin.get('/');
    expect(all.body).toContain(`href="/patients/${MRN_CARED}"`);
    expect(all.body).toContain(`href="/patients/${MRN_OTHER}"`);

    const clinician = new Browser(rig.app);
    rig.clock.advance(30_000);
    await clinician.login('carl', rig.secret, rig.clock.now());
    const mine = await clinician.get('/');
    expect(mine.body).toContain(`href="/patients/${MRN_CARED}"`);
    expect(mine.body).not.toContain(MRN_OTHER);
  });

  it('a clinician gets the same 404 for a patient of another team as for one who does not exist', async () => {
    const clinician = new Browser(rig.app);
    await clinician.login('carl', rig.secret, rig.clock.now());
    const other = await clinician.get(`/patients/${MRN_OTHER}`);
    const missing = await clinician.get('/patients/MRN-9999');
    expect(other.statusCode).toBe(404);
    expect(missing.statusCode).toBe(404);
    const strip = (body: string) => body.replace(/value="[^"]+"/g, '');
    expect(strip(other.body)).toBe(strip(missing.body));
    expect(other.body).not.toContain(MRN_OTHER);
    expect(other.body).not.toContain('gw-b');
  });

  it('shows the patient page with the hub and the latest readings, and audits the view', async () => {
    const clinician = new Browser(rig.app);
    await clinician.login('carl', rig.secret, rig.clock.now());
    const page = await clinician.get(`/patients/${MRN_CARED}`);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<td>gw-a</td>');
    // spo2Measurement(3): SpO2 93 %, pulse 63 /min, at 08:00:03 UTC, the latest of three.
    expect(page.body).toMatch(
      /<td>Oxygen level \(SpO2\)<\/td><td class="number">93 %<\/td><td>28 Nov 2026, 08:00:03 \(3 hours ago\)<\/td><td>dev-ox-1 via gw-a<\/td>/,
    );
    // One chart per code, drawn by the page's script from the series API.
    expect(page.body).toContain('<section class="chart" data-code="MDC_PULS_OXIM_SAT_O2"');
    expect(page.body).toContain('<script src="/assets/uplot.js" defer></script>');
    expect(page.body).toContain('63 beats/min');
    const entries = readFileSync(rig.audit.path, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(entries.at(-1)).toMatchObject({
      type: 'patient.viewed',
      actor: 'carl',
      details: { mrn: MRN_CARED },
    });
    // A refused view is not a view.
    await clinician.get(`/patients/${MRN_OTHER}`);
    const after = readFileSync(rig.audit.path, 'utf8').trim().split('\n');
    expect(after).toHaveLength(entries.length);
  });
});

describe('bad input', () => {
  it('refuses bodies other than a form, and forms that are too large, without a stack trace', async () => {
    const browser = new Browser(rig.app);
    const token = Browser.csrfOf(await browser.get('/login'));
    const json = await browser.post('/login', {}, { 'content-type': 'application/json' });
    expect(json.statusCode).toBe(415);
    const huge = await browser.post('/login', { username: 'x'.repeat(20_000), password: 'p', _csrf: token });
    expect(huge.statusCode).toBe(413);
    for (const response of [json, huge]) {
      expect(response.body).toBe('The request could not be answered.\n');
    }
  });

  it('answers junk in the form with the usual failure, and audits at most 64 characters of it', async () => {
    const browser = new Browser(rig.app);
    const junk = `<script>${'y'.repeat(200)}`;
    const response = await browser.password(junk, '');
    expect(response.statusCode).toBe(401);
    expect(response.body).not.toContain('<script>');
    const entry = JSON.parse(readFileSync(rig.audit.path, 'utf8').trim().split('\n').at(-1) as string);
    expect(entry).toMatchObject({ type: 'login.failed', details: { username: junk.slice(0, 64) } });
    const missing = await browser.post('/login', { _csrf: Browser.csrfOf(response) });
    expect(missing.statusCode).toBe(401);
    const signedIn = new Browser(rig.app);
    await signedIn.login('carl', rig.secret, rig.clock.now());
    const pages = await Promise.all(
      ['/patients/%00', `/patients/${'9'.repeat(5000)}`, '/patients/%ff'].map((path) => signedIn.get(path)),
    );
    // An MRN longer than fastify's maxParamLength is 414, one that is not UTF-8 (%ff) 400: by its form, the
    // same whether such a patient exists or not.
    expect(pages.map((p) => p.statusCode)).toEqual([404, 414, 400]);
    expect(pages[1]?.body).toBe('The request could not be answered.\n');
    expect(pages[2]?.body).toBe('The request could not be answered.\n');
  });
});
