import { readFileSync } from 'node:fs';
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { totpCode } from '../../../src/clinic/dashboard/auth/totp.js';
import { auditOf, Browser, MRN_CARED, MRN_OTHER, type Rig, startRig } from './rig.js';

/**
 * The staff administration pages (/admin/staff) over fastify.inject on the rig's real encrypted SQLite file:
 * each change through the same functions as `rpm-gateway clinic user`, seen by what the changed user can then
 * do (log in, see patients), and in the clinic's audit log.
 */

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

async function signedIn(r: Rig, username: 'alice' | 'carl'): Promise<Browser> {
  const browser = new Browser(r.app);
  const done = await browser.login(username, r.secret, r.clock.now());
  expect(done.headers.location).toBe('/');
  return browser;
}

/** Opens `page` and posts `form` to `action` with the page's CSRF token, as the page's form does. */
async function submit(
  browser: Browser,
  page: string,
  action: string,
  form: Record<string, string>,
): Promise<LightMyRequestResponse> {
  const shown = await browser.get(page);
  expect(shown.statusCode).toBe(200);
  return browser.post(action, { ...form, _csrf: Browser.csrfOf(shown) });
}

const tileMrns = async (browser: Browser) => {
  const response = await browser.get('/api/tiles');
  expect(response.statusCode).toBe(200);
  return (response.json() as { tiles: { mrn: string }[] }).tiles.map((t) => t.mrn);
};

/** A 400 page with the code, and nothing a stack trace would show. */
function expectRefused(response: LightMyRequestResponse, code: string): void {
  expect(response.statusCode).toBe(400);
  expect(response.headers['content-type']).toMatch(/^text\/html/);
  expect(response.body).toContain(`[${code}]`);
  expect(response.body).not.toMatch(/\bat .*\.(ts|js):\d+/);
  expect(response.headers['cache-control']).toBe('no-store');
}

describe('staff list', () => {
  it('lists every user with role, state, second factor and care-team size; an admin has a Staff link, a clinician none', async () => {
    rig = await startRig();
    const alice = await signedIn(rig, 'alice');
    expect((await alice.get('/')).body).toContain('href="/admin/staff"');
    const list = await alice.get('/admin/staff');
    expect(list.statusCode).toBe(200);
    expect(list.headers['cache-control']).toBe('no-store');
    const row = (name: string) =>
      new RegExp(`<tr id="user-${name}"[^>]*>([\\s\\S]*?)</tr>`).exec(list.body)?.[1] ?? '';
    expect(row('alice')).toMatch(/admin[\s\S]*active[\s\S]*enrolled[\s\S]*all patients/);
    expect(row('carl')).toMatch(/clinician[\s\S]*active[\s\S]*enrolled[\s\S]*1 patient</);
    expect(row('nina')).toMatch(/clinician[\s\S]*not enrolled[\s\S]*0 patients/);
    // The signed-in admin's own row offers no disable or reset.
    expect(row('alice')).not.toContain('/disable');
    expect(row('carl')).toContain('action="/admin/staff/carl/disable"');
    // No script at all, and no inline style (the CSP allows neither).
    const team = await alice.get('/admin/staff/carl');
    for (const body of [list.body, team.body]) {
      expect(body).not.toContain('<script');
      expect(body).not.toMatch(/\sstyle=|<style/);
    }

    const carl = await signedIn(rig, 'carl');
    expect((await carl.get('/')).body).not.toContain('/admin/');
  });
});

describe('adding a user', () => {
  it('shows a random password once; it logs in and the first login must enrol TOTP; audited as the command audits', async () => {
    rig = await startRig();
    const alice = await signedIn(rig, 'alice');
    const added = await submit(alice, '/admin/staff', '/admin/staff', {
      username: 'dr.lee',
      role: 'clinician',
    });
    expect(added.statusCode).toBe(200);
    expect(added.headers['cache-control']).toBe('no-store');
    const password = /id="initial-password">([^<]+)</.exec(added.body)?.[1] as string;
    expect(password).toMatch(/^[A-Za-z0-9]{20}$/);
    // Shown once: the list shown again does not hold it, and only its argon2id hash is stored.
    expect((await alice.get('/admin/staff')).body).not.toContain(password);
    const stored = await rig.staff.userByName('dr.lee');
    expect(stored?.role).toBe('clinician');
    expect(stored?.passwordHash).toMatch(/^\$argon2id\$/);
    expect(stored?.passwordHash).not.toContain(password);
    expect(stored?.createdBy).toBe('alice');

    const lee = new Browser(rig.app);
    const first = await lee.password('dr.lee', password);
    expect(first.headers.location).toBe('/mfa/enrol');
    // No page but the enrolment until a second factor is confirmed.
    expect((await lee.get('/')).headers.location).toBe('/mfa/enrol');
    const enrol = await lee.get('/mfa/enrol');
    const secret = /id="totp-secret">([A-Z2-7]+)</.exec(enrol.body)?.[1] as string;
    const done = await lee.post('/mfa/enrol', {
      code: totpCode(secret, rig.clock.now()),
      _csrf: Browser.csrfOf(enrol),
    });
    expect(done.headers.location).toBe('/');
    expect((await lee.get('/')).statusCode).toBe(200);

    expect(auditOf(rig, 'staff.user.added')).toEqual([
      expect.objectContaining({
        actor: 'alice',
        details: { userId: stored?.id, username: 'dr.lee', role: 'clinician' },
      }),
    ]);
    expect(readFileSync(rig.audit.path, 'utf8')).not.toContain(password);
  });

  it('refuses an empty, too long or malformed username, a bad role and a taken name with a 400 page and its code', async () => {
    rig = await startRig();
    const alice = await signedIn(rig, 'alice');
    const before = (await rig.staff.listUsers()).length;
    const add = (form: Record<string, string>) => submit(alice, '/admin/staff', '/admin/staff', form);
    expectRefused(await add({ username: '', role: 'clinician' }), 'STAFF_USERNAME_INVALID');
    expectRefused(await add({ role: 'clinician' }), 'STAFF_USERNAME_INVALID');
    expectRefused(await add({ username: 'a'.repeat(65), role: 'clinician' }), 'STAFF_USERNAME_INVALID');
    expectRefused(await add({ username: 'Dr Lee<script>', role: 'clinician' }), 'STAFF_USERNAME_INVALID');
    expectRefused(await add({ username: 'dr.lee', role: 'root' }), 'STAFF_FIELD_INVALID');
    expectRefused(await add({ username: 'dr.lee' }), 'STAFF_FIELD_INVALID');
    expectRefused(await add({ username: 'carl', role: 'clinician' }), 'STAFF_USER_EXISTS');
    expect((await rig.staff.listUsers()).length).toBe(before);
    expect(auditOf(rig, 'staff.user.added')).toEqual([]);
  });
});

describe('disabling and resetting', () => {
  it('disable ends the user’s live session at once and their password no longer logs in; audited', async () => {
    rig = await startRig();
    const carl = await signedIn(rig, 'carl');
    expect(await tileMrns(carl)).toEqual([MRN_CARED]);
    const alice = await signedIn(rig, 'alice');
    const done = await submit(alice, '/admin/staff', '/admin/staff/carl/disable', {});
    expect(done.statusCode).toBe(200);
    expect(done.body).toContain('User carl disabled; 1 session ended.');
    expect((await carl.get('/api/tiles')).statusCode).toBe(401);
    expect((await carl.get('/')).headers.location).toBe('/login');
    expect((await new Browser(rig.app).password('carl')).statusCode).toBe(401);
    expect((await rig.staff.userByName('carl'))?.disabled).toBe(true);
    expect(auditOf(rig, 'staff.user.disabled')).toEqual([
      expect.objectContaining({
        actor: 'alice',
        details: { userId: rig.users.clinician.id, username: 'carl', sessionsRevoked: 1 },
      }),
    ]);
    // Again: nothing to do, nothing audited.
    const again = await submit(alice, '/admin/staff', '/admin/staff/carl/disable', {});
    expect(again.body).toContain('User carl was already disabled');
    expect(auditOf(rig, 'staff.user.disabled')).toHaveLength(1);
  });

  it('reset-mfa ends the user’s session and their next login must enrol a new second factor; audited', async () => {
    rig = await startRig();
    const carl = await signedIn(rig, 'carl');
    const alice = await signedIn(rig, 'alice');
    const done = await submit(alice, '/admin/staff', '/admin/staff/carl/reset-mfa', {});
    expect(done.statusCode).toBe(200);
    expect(done.body).toContain('second factor removed, 1 session ended');
    expect((await carl.get('/api/tiles')).statusCode).toBe(401);
    const again = new Browser(rig.app);
    expect((await again.password('carl')).headers.location).toBe('/mfa/enrol');
    // The old secret's code is worth nothing now.
    expect((await again.get('/mfa')).headers.location).toBe('/mfa/enrol');
    expect(auditOf(rig, 'staff.mfa.reset')).toEqual([
      expect.objectContaining({
        actor: 'alice',
        details: {
          userId: rig.users.clinician.id,
          username: 'carl',
          sessionsRevoked: 1,
          hadSecondFactor: true,
        },
      }),
    ]);
  });

  it('an admin cannot disable themselves or reset their own second factor; an unknown or malformed user is a 400', async () => {
    rig = await startRig();
    const alice = await signedIn(rig, 'alice');
    expectRefused(await submit(alice, '/admin/staff', '/admin/staff/alice/disable', {}), 'ADMIN_SELF_CHANGE');
    expectRefused(
      await submit(alice, '/admin/staff', '/admin/staff/alice/reset-mfa', {}),
      'ADMIN_SELF_CHANGE',
    );
    expect((await alice.get('/admin/staff')).statusCode).toBe(200);
    expect((await rig.staff.userByName('alice'))?.disabled).toBe(false);
    expectRefused(
      await submit(alice, '/admin/staff', '/admin/staff/ghost/disable', {}),
      'STAFF_USER_UNKNOWN',
    );
    expectRefused(
      await submit(alice, '/admin/staff', '/admin/staff/ghost/reset-mfa', {}),
      'STAFF_USER_UNKNOWN',
    );
    expectRefused(await alice.get('/admin/staff/ghost'), 'STAFF_USER_UNKNOWN');
    expectRefused(await alice.get('/admin/staff/X'), 'STAFF_USERNAME_INVALID');
    expect(auditOf(rig, 'staff.user.disabled')).toEqual([]);
    expect(auditOf(rig, 'staff.mfa.reset')).toEqual([]);
  });
});

describe('care teams', () => {
  it('adding and removing an MRN changes what the clinician’s tiles and patient pages show; audited', async () => {
    rig = await startRig();
    const carl = await signedIn(rig, 'carl');
    const otherPage = `/patients/${encodeURIComponent(MRN_OTHER)}`;
    expect((await carl.get(otherPage)).statusCode).toBe(404);
    expect(await tileMrns(carl)).toEqual([MRN_CARED]);

    const alice = await signedIn(rig, 'alice');
    const team = await alice.get('/admin/staff/carl');
    expect(team.statusCode).toBe(200);
    expect(team.body).toContain(`data-mrn="${MRN_CARED}"`);
    // The add field suggests the known patients not in the team yet.
    expect(team.body).toContain(`<option value="${MRN_OTHER}">`);

    const added = await submit(alice, '/admin/staff/carl', '/admin/staff/carl/care', {
      action: 'add',
      mrn: MRN_OTHER,
    });
    expect(added.statusCode).toBe(200);
    expect(added.body).toContain(`carl added to the care team of ${MRN_OTHER}.`);
    expect(await tileMrns(carl)).toEqual([MRN_CARED, MRN_OTHER]);
    expect((await carl.get(otherPage)).statusCode).toBe(200);

    const removed = await submit(alice, '/admin/staff/carl', '/admin/staff/carl/care', {
      action: 'remove',
      mrn: MRN_OTHER,
    });
    expect(removed.body).toContain(`carl removed from the care team of ${MRN_OTHER}.`);
    expect(await tileMrns(carl)).toEqual([MRN_CARED]);
    expect((await carl.get(otherPage)).statusCode).toBe(404);

    const id = rig.users.clinician.id;
    expect(auditOf(rig, 'staff.care.added')).toEqual([
      expect.objectContaining({ actor: 'alice', details: { userId: id, username: 'carl', mrn: MRN_OTHER } }),
    ]);
    expect(auditOf(rig, 'staff.care.removed')).toEqual([
      expect.objectContaining({ actor: 'alice', details: { userId: id, username: 'carl', mrn: MRN_OTHER } }),
    ]);
  });

  it('an unknown MRN, a malformed one, an admin’s care team and a bad action are refused with a 400 and change nothing', async () => {
    rig = await startRig();
    const alice = await signedIn(rig, 'alice');
    const care = (user: string, form: Record<string, string>) =>
      submit(alice, '/admin/staff/carl', `/admin/staff/${user}/care`, form);
    const unknown = await care('carl', { action: 'add', mrn: 'MRN-9999' });
    expectRefused(unknown, 'ADMIN_PATIENT_UNKNOWN');
    expect(unknown.body).toContain('knows no patient with MRN');
    expectRefused(await care('carl', { action: 'add', mrn: '' }), 'STAFF_FIELD_INVALID');
    expectRefused(await care('carl', { action: 'add', mrn: 'has space' }), 'STAFF_FIELD_INVALID');
    expectRefused(await care('carl', { action: 'steal', mrn: MRN_OTHER }), 'STAFF_FIELD_INVALID');
    expectRefused(await care('alice', { action: 'add', mrn: MRN_OTHER }), 'STAFF_FIELD_INVALID');
    expectRefused(await care('ghost', { action: 'add', mrn: MRN_OTHER }), 'STAFF_USER_UNKNOWN');
    expect(await rig.staff.patientsOf(rig.users.clinician.id)).toEqual([MRN_CARED]);
    expect(await rig.staff.patientsOf(rig.users.admin.id)).toEqual([]);
    expect(auditOf(rig, 'staff.care.added')).toEqual([]);
  });
});

describe('access', () => {
  it('a clinician gets exactly the 404 of a page that does not exist, for every admin GET and POST', async () => {
    rig = await startRig();
    const carl = await signedIn(rig, 'carl');
    const unknownGet = await carl.get('/admin/nothing-here');
    expect(unknownGet.statusCode).toBe(404);
    for (const url of ['/admin/staff', '/admin/staff/carl', '/admin/staff/alice']) {
      const answer = await carl.get(url);
      expect(answer.statusCode).toBe(404);
      expect(answer.body).toBe(unknownGet.body);
    }
    // With the session's own token, as a form of the dashboard would post it.
    const token = Browser.csrfOf(await carl.get('/'));
    const unknownPost = await carl.post('/admin/nothing-here', { _csrf: token });
    expect(unknownPost.statusCode).toBe(404);
    const posts: [string, Record<string, string>][] = [
      ['/admin/staff', { username: 'mallory', role: 'admin' }],
      ['/admin/staff/alice/disable', {}],
      ['/admin/staff/alice/reset-mfa', {}],
      ['/admin/staff/carl/care', { action: 'add', mrn: MRN_OTHER }],
    ];
    for (const [url, form] of posts) {
      for (const withToken of [true, false]) {
        const answer = await carl.post(url, withToken ? { ...form, _csrf: token } : form);
        expect(answer.statusCode).toBe(404);
        expect(answer.body).toBe(unknownPost.body);
      }
    }
    expect(await rig.staff.userByName('mallory')).toBeUndefined();
    expect((await rig.staff.userByName('alice'))?.disabled).toBe(false);
    expect(await tileMrns(carl)).toEqual([MRN_CARED]);
  });

  it('refuses an admin’s POST without the CSRF token, with another session’s, or from another origin', async () => {
    rig = await startRig();
    const alice = await signedIn(rig, 'alice');
    const carl = await signedIn(rig, 'carl');
    const carlsToken = Browser.csrfOf(await carl.get('/'));
    const aliceToken = Browser.csrfOf(await alice.get('/admin/staff'));
    const attempts = [
      () => alice.post('/admin/staff', { username: 'mallory', role: 'admin' }),
      () => alice.post('/admin/staff', { username: 'mallory', role: 'admin', _csrf: carlsToken }),
      () =>
        alice.post(
          '/admin/staff',
          { username: 'mallory', role: 'admin', _csrf: aliceToken },
          { origin: 'https://evil.example' },
        ),
      () => alice.post('/admin/staff/carl/disable', {}),
      () => alice.post('/admin/staff/carl/reset-mfa', { _csrf: carlsToken }),
      () => alice.post('/admin/staff/carl/care', { action: 'add', mrn: MRN_OTHER }),
    ];
    for (const attempt of attempts) expect((await attempt()).statusCode).toBe(403);
    expect(await rig.staff.userByName('mallory')).toBeUndefined();
    expect((await rig.staff.userByName('carl'))?.disabled).toBe(false);
    expect(await tileMrns(carl)).toEqual([MRN_CARED]);
    for (const type of ['staff.user.added', 'staff.user.disabled', 'staff.mfa.reset', 'staff.care.added']) {
      expect(auditOf(rig, type)).toEqual([]);
    }
  });

  it('without a login the admin pages go to the login page', async () => {
    rig = await startRig();
    const anonymous = new Browser(rig.app);
    expect((await anonymous.get('/admin/staff')).headers.location).toBe('/login');
  });
});
