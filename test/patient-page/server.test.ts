import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { type PatientPageOptions, PatientPageServer } from '../../src/patient-page/server.js';
import type { PatientPageSnapshot } from '../../src/patient-page/source.js';

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const MINUTE = 60_000;

function snapshot(over: Partial<PatientPageSnapshot> = {}): PatientPageSnapshot {
  return {
    hubName: 'Kitchen hub',
    devices: [
      {
        id: 'd1-0123456789abcdef',
        label: 'My oximeter',
        profile: 'pulse-oximeter',
        model: 'Contec CMS50D',
        state: 'streaming',
        lastSeenMs: NOW - 2 * MINUTE,
        batteryPercent: 80,
        lastReading: {
          time: '2026-11-28T11:58:00.000Z',
          observations: [
            { code: 'MDC_PULS_OXIM_SAT_O2', value: 97, unit: '%' },
            { code: 'MDC_PULS_OXIM_PULS_RATE', value: 64, unit: '/min' },
          ],
        },
      },
      {
        id: 'd1-fedcba9876543210',
        label: null,
        profile: 'blood-pressure',
        model: null,
        state: 'needs-pairing',
        lastSeenMs: null,
        batteryPercent: null,
        lastReading: null,
      },
    ],
    backlog: { pending: { alert: 1, live: 0, backlog: 41 }, oldestPendingAgeMs: 5 * MINUTE },
    sent: [{ atMs: NOW - 3 * MINUTE, readings: 12, clinic: 'broker.clinic.example' }],
    connection: { state: 'connected', clinic: 'broker.clinic.example', sinceMs: NOW - 60 * MINUTE },
    certificateNotAfterMs: NOW + 200 * 86_400_000,
    clockSynchronised: true,
    ...over,
  };
}

describe('the patient page over HTTP', () => {
  const servers: PatientPageServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.stop();
  });

  async function started(over: Partial<PatientPageOptions> = {}): Promise<string> {
    const server = new PatientPageServer({
      host: '127.0.0.1',
      port: 0,
      allowLan: false,
      source: { snapshot: () => snapshot() },
      now: () => NOW,
      timeZone: 'UTC',
      machineName: 'rpm-hub',
      ...over,
    });
    servers.push(server);
    const { port } = await server.start();
    return `http://127.0.0.1:${port}`;
  }

  /** A raw request, for what fetch() will not send (another Host header, odd methods). */
  function raw(
    base: string,
    method: string,
    path: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
    const url = new URL(base);
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('shows the devices, their last readings, the backlog, what was sent where, the connection and certificate', async () => {
    const base = await started();
    const response = await fetch(`${base}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const body = await response.text();
    expect(body).toContain('<meta http-equiv="refresh" content="30">');
    expect(body).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
    expect(body).toContain('<h3>My oximeter</h3>');
    expect(body).toContain('Pulse oximeter · Contec CMS50D · device d1-0123456789abcdef');
    expect(body).toContain('<dt>Oxygen level (SpO2)</dt><dd>97 %</dd>');
    expect(body).toContain('<dt>Pulse</dt><dd>64 beats/min</dd>');
    expect(body).toContain('Last reading, 28 Nov 2026, 11:58:');
    expect(body).toContain(
      'Last heard from: 28 Nov 2026, 11:58 <span class="muted">(2 minutes ago)</span> · battery 80 %',
    );
    expect(body).toContain('<h3>Blood pressure monitor</h3>');
    expect(body).toContain('Needs to be paired again. Please tell your care team.');
    expect(body).toContain('No reading yet.');
    expect(body).toContain(
      '42 items waiting to be sent (1 is marked urgent); the oldest has waited 5 minutes.',
    );
    expect(body).toContain('12 readings to broker.clinic.example');
    expect(body).toContain('Connected to broker.clinic.example, since 28 Nov 2026, 11:00');
    expect(body).toContain("The hub's security certificate is valid until 16 Jun 2027, 12:00.");
    expect(body).not.toContain('clock is not set');
    // No script at all, and no inline style for the CSP to have to allow.
    expect(body).not.toMatch(/<script|\sstyle=|\son\w+=/i);
    expect(body).toContain('<link rel="stylesheet" href="/style.css">');
  });

  it('sends the security headers on every answer, errors included', async () => {
    const base = await started();
    for (const [method, path] of [
      ['GET', '/'],
      ['GET', '/status.json'],
      ['GET', '/style.css'],
      ['GET', '/nothing-here'],
      ['POST', '/'],
    ] as const) {
      const r = await raw(base, method, path);
      const csp = String(r.headers['content-security-policy']);
      expect(csp, `${method} ${path}`).toContain("default-src 'none'");
      expect(csp).toContain("style-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).not.toContain('upgrade-insecure-requests');
      expect(r.headers['cache-control'], `${method} ${path}`).toBe('no-store');
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(r.headers['referrer-policy']).toBe('no-referrer');
      expect(r.headers['strict-transport-security']).toBeUndefined();
    }
    const css = await fetch(`${base}/style.css`);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect((await fetch(`${base}/nothing-here`)).status).toBe(404);
  });

  it('escapes every value: a label or model with markup is shown as text', async () => {
    const hostile = snapshot({
      hubName: '<b>hub</b>',
      devices: [
        {
          ...(snapshot().devices[0] as PatientPageSnapshot['devices'][number]),
          label: '<script>alert(1)</script>',
          model: '"><img src=x onerror=alert(2)>',
        },
      ],
      sent: [{ atMs: NOW, readings: 1, clinic: "x'><iframe src=//evil>" }],
    });
    const base = await started({ source: { snapshot: () => hostile } });
    const body = await (await fetch(`${base}/`)).text();
    expect(body).toContain('<h3>&lt;script&gt;alert(1)&lt;/script&gt;</h3>');
    expect(body).toContain('&quot;&gt;&lt;img src=x onerror=alert(2)&gt;');
    expect(body).toContain('x&#39;&gt;&lt;iframe src=//evil&gt;');
    expect(body).toContain('&lt;b&gt;hub&lt;/b&gt;');
    expect(body).not.toMatch(/<script|<img|<iframe|<b>/);
  });

  it('is read-only: every method but GET and HEAD is 405, on every path', async () => {
    const base = await started();
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      for (const path of ['/', '/status.json', '/anything']) {
        const r = await raw(base, method, path);
        expect(r.status, `${method} ${path}`).toBe(405);
        expect(r.headers.allow).toBe('GET, HEAD');
      }
    }
    const head = await fetch(`${base}/`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('serves the same data as /status.json', async () => {
    const base = await started();
    const response = await fetch(`${base}/status.json`);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const json = (await response.json()) as Record<string, unknown>;
    expect(json).toMatchObject({
      generatedAt: '2026-11-28T12:00:00.000Z',
      hub: 'Kitchen hub',
      clockSynchronised: true,
      connection: { state: 'connected', clinic: 'broker.clinic.example', since: '2026-11-28T11:00:00.000Z' },
      certificate: { notAfter: '2027-06-16T12:00:00.000Z' },
      backlog: { pending: { alert: 1, live: 0, backlog: 41 }, oldestPendingAgeMs: 300_000 },
      sent: [{ at: '2026-11-28T11:57:00.000Z', readings: 12, clinic: 'broker.clinic.example' }],
    });
    expect((json.devices as unknown[])[0]).toEqual({
      id: 'd1-0123456789abcdef',
      label: 'My oximeter',
      profile: 'pulse-oximeter',
      model: 'Contec CMS50D',
      state: 'streaming',
      lastSeen: '2026-11-28T11:58:00.000Z',
      batteryPercent: 80,
      lastReading: {
        time: '2026-11-28T11:58:00.000Z',
        observations: [
          { code: 'MDC_PULS_OXIM_SAT_O2', value: 97, unit: '%' },
          { code: 'MDC_PULS_OXIM_PULS_RATE', value: 64, unit: '/min' },
        ],
      },
    });
  });

  it('answers only under names a rebinding DNS cannot serve', async () => {
    const base = await started({ hostNames: ['hub.home.arpa'] });
    const port = new URL(base).port;
    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      `rpm-hub:${port}`,
      `rpm-hub.local:${port}`,
      `hub.home.arpa:${port}`,
      `[::1]:${port}`,
    ]) {
      expect((await raw(base, 'GET', '/', { host })).status, host).toBe(200);
    }
    for (const host of [`evil.example:${port}`, `127.0.0.1.nip.io:${port}`]) {
      const r = await raw(base, 'GET', '/status.json', { host });
      expect(r.status, host).toBe(403);
      expect(r.body).not.toContain('d1-');
    }
  });

  it('says so, without details, when the hub cannot give its data', async () => {
    const base = await started({
      source: {
        snapshot: () => {
          throw new Error('store closed at /var/lib/rpm-gateway/outbox.db');
        },
      },
    });
    for (const path of ['/', '/status.json']) {
      const r = await raw(base, 'GET', path);
      expect(r.status).toBe(503);
      expect(r.body).toBe('The hub cannot show this page right now. Please try again in a minute.\n');
      expect(r.headers['cache-control']).toBe('no-store');
    }
  });

  it('refuses a non-loopback address unless allowLan', async () => {
    const options = {
      port: 0,
      source: { snapshot: () => snapshot() },
      now: () => NOW,
    };
    expect(() => new PatientPageServer({ ...options, host: '0.0.0.0', allowLan: false })).toThrow(
      expect.objectContaining({ code: 'LISTEN_NOT_LOOPBACK' }),
    );
    expect(() => new PatientPageServer({ ...options, host: '::', allowLan: false })).toThrow(
      expect.objectContaining({ code: 'LISTEN_NOT_LOOPBACK' }),
    );
    const server = new PatientPageServer({ ...options, host: '0.0.0.0', allowLan: true });
    servers.push(server);
    const { port } = await server.start();
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);
  });
});
