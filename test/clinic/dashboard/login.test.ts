import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LOGIN_COOKIE, SESSION_COOKIE } from '../../../src/clinic/dashboard/app.js';
import { hashSessionId } from '../../../src/clinic/dashboard/auth/tokens.js';
import { totpCode } from '../../../src/clinic/dashboard/auth/totp.js';
import { LOGIN_FAILED } from '../../../src/clinic/dashboard/pages/pages.js';
import { Browser, MINUTE, PASSWORD, type Rig, setCookies, startRig } from './rig.js';

let rig: Rig;
beforeEach(async () => {
  rig = await startRig();
});
afterEach(async () => {
  await rig.close();
});

const auditTypes = () =>
  readFileSync(rig.audit.path, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { type: string; actor: string; details: Record<string, unknown> });

describe('the session cookie', () => {
  it('is __Host-, Secure, HttpOnly, SameSite=Strict, Path=/ without Domain, and a new id at each stage', async () => {
    const browser = new Browser(rig.app);
    const first = await browser.password('alice');
    expect(first.statusCode).toBe(303);
    expect(first.headers.location).toBe('/mfa');
    const [passwordStage] = setCookies(first).filter((c) => c.name === SESSION_COOKIE);
    expect(passwordStage?.attributes.toSorted()).toEqual(['HttpOnly', 'Path=/', 'SameSite=Strict', 'Secure']);
    expect(passwordStage?.value).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const page = await browser.get('/mfa');
    const second = await browser.post('/mfa', {
      code: totpCode(rig.secret, rig.clock.now()),
      _csrf: Browser.csrfOf(page),
    });
    expect(second.statusCode).toBe(303);
    expect(second.headers.location).toBe('/');
    const [complete] = setCookies(second).filter((c) => c.name === SESSION_COOKIE);
    expect(complete?.attributes.toSorted()).toEqual(['HttpOnly', 'Path=/', 'SameSite=Strict', 'Secure']);
    expect(complete?.value).not.toBe(passwordStage?.value);

    // The store knows sessions by hash only; the password-stage one is ended, so replaying it gets nowhere.
    const early = await rig.staff.session(hashSessionId(passwordStage?.value as string));
    const late = await rig.staff.session(hashSessionId(complete?.value as string));
    expect(early?.revokedAt).toBe(rig.clock.now());
    expect(late).toMatchObject({ stage: 'complete', expiresAt: rig.clock.now() + 12 * 60 * MINUTE });
    expect(await rig.staff.session(complete?.value as string)).toBeUndefined();
    const replay = await rig.app.inject({
      url: '/',
      headers: { host: 'localhost:8443', cookie: `${SESSION_COOKIE}=${passwordStage?.value}` },
    });
    expect(replay.statusCode).toBe(303);
    expect(replay.headers.location).toBe('/login');
    expect((await browser.get('/')).statusCode).toBe(200);
  });

  it('the login form token is a __Host- cookie too, and is gone once the password is accepted', async () => {
    const browser = new Browser(rig.app);
    const page = await browser.get('/login');
    const [login] = setCookies(page).filter((c) => c.name === LOGIN_COOKIE);
    expect(login?.attributes.toSorted()).toEqual(['HttpOnly', 'Path=/', 'SameSite=Strict', 'Secure']);
    await browser.post('/login', { username: 'alice', password: PASSWORD, _csrf: Browser.csrfOf(page) });
    expect(browser.cookies.has(LOGIN_COOKIE)).toBe(false);
  });
});

describe('the second factor', () => {
  it('a login without it cannot reach the patient list or a patient', async () => {
    const browser = new Browser(rig.app);
    await browser.password('alice');
    for (const url of ['/', '/patients/MRN-1001']) {
      const response = await browser.get(url);
      expect(response.statusCode).toBe(303);
      expect(response.headers.location).toBe('/mfa');
      expect(response.body).not.toContain('MRN-1001');
    }
  });

  it('the password stage ends after five minutes even with requests in between', async () => {
    const browser = new Browser(rig.app);
    await browser.password('alice');
    rig.clock.advance(4 * MINUTE);
    expect((await browser.get('/mfa')).statusCode).toBe(200);
    rig.clock.advance(MINUTE);
    const late = await browser.get('/mfa');
    expect(late.headers.location).toBe('/login');
  });

  it('refuses a code that was used already, even within its step', async () => {
    const at = rig.clock.now();
    const code = totpCode(rig.secret, at);
    const first = new Browser(rig.app);
    expect((await first.login('alice', rig.secret, at)).headers.location).toBe('/');

    rig.clock.advance(5_000); // the same 30-second step
    const second = new Browser(rig.app);
    await second.password('alice');
    const page = await second.get('/mfa');
    const reused = await second.post('/mfa', { code, _csrf: Browser.csrfOf(page) });
    expect(reused.statusCode).toBe(401);
    expect(reused.body).toContain('was used already');
    expect((await second.get('/')).headers.location).toBe('/mfa');

    // The previous step's code (inside the window) is older than the one used, so refused too.
    const older = await second.post('/mfa', {
      code: totpCode(rig.secret, at - 30_000),
      _csrf: Browser.csrfOf(page),
    });
    expect(older.statusCode).toBe(401);
    // The next step's code is new: accepted.
    rig.clock.advance(30_000);
    const fresh = await second.post('/mfa', {
      code: totpCode(rig.secret, rig.clock.now()),
      _csrf: Browser.csrfOf(page),
    });
    expect(fresh.headers.location).toBe('/');
    expect(
      auditTypes()
        .filter((e) => e.type === 'mfa.failed')
        .map((e) => e.details.reason),
    ).toEqual(['reused-code', 'reused-code']);
  });

  it('accepts a code one step either side of now, and not two', async () => {
    const browser = new Browser(rig.app);
    await browser.password('alice');
    const page = await browser.get('/mfa');
    const now = rig.clock.now();
    const far = await browser.post('/mfa', {
      code: totpCode(rig.secret, now - 60_000),
      _csrf: Browser.csrfOf(page),
    });
    expect(far.statusCode).toBe(401);
    const near = await browser.post('/mfa', {
      code: totpCode(rig.secret, now + 30_000),
      _csrf: Browser.csrfOf(page),
    });
    expect(near.headers.location).toBe('/');
  });

  it('enrols a user without one: the QR code and the secret, confirmed by a first code', async () => {
    const browser = new Browser(rig.app);
    const first = await browser.password('nina');
    expect(first.headers.location).toBe('/mfa/enrol');
    expect((await browser.get('/mfa')).headers.location).toBe('/mfa/enrol');
    const page = await browser.get('/mfa/enrol');
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/<img src="data:image\/png;base64,[A-Za-z0-9+/=]+"/);
    const secret = /id="totp-secret">([A-Z2-7]+)</.exec(page.body)?.[1] as string;
    expect(secret).toHaveLength(32);
    // A reload shows the same secret: what the user scanned stays good.
    expect((await browser.get('/mfa/enrol')).body).toContain(secret);

    const wrong = await browser.post('/mfa/enrol', { code: '000000', _csrf: Browser.csrfOf(page) });
    expect(wrong.statusCode).toBe(401);
    const ok = await browser.post('/mfa/enrol', {
      code: totpCode(secret, rig.clock.now()),
      _csrf: Browser.csrfOf(page),
    });
    expect(ok.headers.location).toBe('/');
    const nina = await rig.staff.userByName('nina');
    expect(nina?.totpConfirmedAt).toBe(rig.clock.now());
    expect((await browser.get('/')).statusCode).toBe(200);
    // Enrolled now: the next login asks for a code and offers no new secret.
    const again = new Browser(rig.app);
    expect((await again.password('nina')).headers.location).toBe('/mfa');
    expect((await again.get('/mfa/enrol')).headers.location).toBe('/mfa');
    expect(auditTypes().map((e) => e.type)).toEqual([
      'login.ok',
      'mfa.failed',
      'mfa.enrolled',
      'mfa.verified',
      'login.ok',
    ]);
  });
});

describe('failed logins', () => {
  it('answer the same for an unknown user, a wrong password and a locked account, and lock after five', async () => {
    const browser = new Browser(rig.app);
    const unknown = await browser.password('mallory', 'guess');
    expect(unknown.statusCode).toBe(401);
    expect(unknown.body).toContain(LOGIN_FAILED);
    for (let i = 0; i < 5; i++) {
      const wrong = await browser.password('alice', `wrong-${i}`);
      expect(wrong.statusCode).toBe(401);
      expect(wrong.body).toContain(LOGIN_FAILED);
    }
    // Locked: the right password is refused with the very same page.
    const locked = await browser.password('alice');
    expect(locked.statusCode).toBe(401);
    const strip = (body: string) => body.replace(/value="[^"]+"/g, '');
    expect(strip(locked.body)).toBe(strip(unknown.body));
    expect(browser.session).toBeUndefined();

    rig.clock.advance(15 * MINUTE - 1);
    expect((await browser.password('alice')).statusCode).toBe(401);
    rig.clock.advance(1);
    expect((await browser.password('alice')).headers.location).toBe('/mfa');

    const entries = auditTypes();
    expect(entries.map((e) => e.type)).toEqual([
      'login.failed',
      ...Array(5).fill('login.failed'),
      'login.locked',
      'login.failed',
      'login.failed',
      'login.ok',
    ]);
    expect(entries[0]).toMatchObject({
      actor: 'dashboard',
      details: { username: 'mallory', reason: 'unknown-user' },
    });
    expect(entries.filter((e) => e.type === 'login.failed').map((e) => e.details.reason)).toEqual([
      'unknown-user',
      'bad-password',
      'bad-password',
      'bad-password',
      'bad-password',
      'bad-password',
      'locked',
      'locked',
    ]);
    // Never a password in the audit log, wrong or right.
    const text = readFileSync(rig.audit.path, 'utf8');
    for (const secret of ['guess', 'wrong-0', 'wrong-4', PASSWORD]) expect(text).not.toContain(secret);
    expect(rig.audit.verify().entries).toBe(entries.length);
  });

  it('wrong codes count too: five lock the account and end the half-done login', async () => {
    const browser = new Browser(rig.app);
    await browser.password('alice');
    const page = await browser.get('/mfa');
    for (let i = 0; i < 4; i++) {
      expect((await browser.post('/mfa', { code: '000000', _csrf: Browser.csrfOf(page) })).statusCode).toBe(
        401,
      );
    }
    const fifth = await browser.post('/mfa', { code: '000000', _csrf: Browser.csrfOf(page) });
    expect(fifth.body).toContain(LOGIN_FAILED);
    expect(browser.session).toBeUndefined();
    expect((await browser.password('alice')).statusCode).toBe(401);
  });

  it('a successful login resets the count', async () => {
    const browser = new Browser(rig.app);
    for (let i = 0; i < 4; i++) await browser.password('alice', 'wrong');
    await browser.login('alice', rig.secret, rig.clock.now());
    const later = new Browser(rig.app);
    for (let i = 0; i < 4; i++) await later.password('alice', 'wrong');
    expect((await later.password('alice')).headers.location).toBe('/mfa');
  });

  it('are rate limited per IP address', async () => {
    await rig.close();
    rig = await startRig({ loginsPerMinute: 3 });
    const browser = new Browser(rig.app);
    for (let i = 0; i < 3; i++) expect((await browser.password('alice', 'wrong')).statusCode).toBe(401);
    const limited = await browser.password('alice', 'wrong');
    expect(limited.statusCode).toBe(429);
    expect(limited.body).toMatch(/^Too many login attempts from this address; wait \d+ seconds\.\n$/);
    // Another address is not limited by this one's attempts.
    const other = await rig.app.inject({
      url: '/login',
      headers: { host: 'localhost:8443' },
      remoteAddress: '10.0.0.9',
    });
    expect(other.statusCode).toBe(200);
  });
});

describe('sessions', () => {
  it('end after 15 minutes idle, counted from the last request', async () => {
    const browser = new Browser(rig.app);
    await browser.login('alice', rig.secret, rig.clock.now());
    rig.clock.advance(14 * MINUTE);
    expect((await browser.get('/')).statusCode).toBe(200);
    rig.clock.advance(14 * MINUTE);
    expect((await browser.get('/')).statusCode).toBe(200);
    rig.clock.advance(15 * MINUTE);
    const idle = await browser.get('/');
    expect(idle.statusCode).toBe(303);
    expect(idle.headers.location).toBe('/login');
    // Ended for good: it does not come back.
    expect((await browser.get('/')).headers.location).toBe('/login');
  });

  it('end at the absolute limit however busy', async () => {
    const browser = new Browser(rig.app);
    await browser.login('alice', rig.secret, rig.clock.now());
    for (let elapsed = 0; elapsed < 12 * 60 * MINUTE - 10 * MINUTE; elapsed += 10 * MINUTE) {
      rig.clock.advance(10 * MINUTE);
      expect((await browser.get('/')).statusCode).toBe(200);
    }
    rig.clock.advance(10 * MINUTE);
    expect((await browser.get('/')).headers.location).toBe('/login');
  });

  it('end at logout, and the old cookie is worth nothing', async () => {
    const browser = new Browser(rig.app);
    await browser.login('alice', rig.secret, rig.clock.now());
    const id = browser.session as string;
    const page = await browser.get('/');
    const out = await browser.post('/logout', { _csrf: Browser.csrfOf(page) });
    expect(out.headers.location).toBe('/login');
    expect(browser.session).toBeUndefined();
    const replay = await rig.app.inject({
      url: '/',
      headers: { host: 'localhost:8443', cookie: `${SESSION_COOKIE}=${id}` },
    });
    expect(replay.headers.location).toBe('/login');
    expect(auditTypes().at(-1)).toMatchObject({ type: 'logout', actor: 'alice' });
  });

  it('of a user who is disabled stop at their next request', async () => {
    const browser = new Browser(rig.app);
    await browser.login('carl', rig.secret, rig.clock.now());
    expect((await browser.get('/')).statusCode).toBe(200);
    await rig.staff.setDisabled(rig.users.clinician.id, true, rig.clock.now());
    expect((await browser.get('/')).headers.location).toBe('/login');
    // Enabling the account again does not bring the session back.
    await rig.staff.setDisabled(rig.users.clinician.id, false, rig.clock.now());
    expect((await browser.get('/')).headers.location).toBe('/login');
    // A disabled user cannot log in, with the usual answer.
    await rig.staff.setDisabled(rig.users.clinician.id, true, rig.clock.now());
    expect((await browser.password('carl')).body).toContain(LOGIN_FAILED);
  });

  it('a cookie that is not one of ours is no session', async () => {
    for (const value of ['x', 'A'.repeat(43), '../../etc/passwd']) {
      const response = await rig.app.inject({
        url: '/',
        headers: { host: 'localhost:8443', cookie: `${SESSION_COOKIE}=${value}` },
      });
      expect(response.headers.location).toBe('/login');
    }
  });
});
