import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSessionId } from '../../../src/clinic/dashboard/auth/tokens.js';
import { DashboardServer, PRUNE_INTERVAL_MS } from '../../../src/clinic/dashboard/server.js';
import { createDevelopmentCa, issueServerCertificate } from '../../../src/pki/ca.js';
import { VirtualScheduler } from '../../../src/util/scheduler.js';
import { makeStores, type Stores, TEST_SETTINGS } from './rig.js';

let dir: string;
let stores: Stores;
let tls: { cert: string; key: string };
let ca: string;
const scheduler = new VirtualScheduler();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-dashboard-server-'));
  stores = await makeStores(dir, scheduler);
  const authority = await createDevelopmentCa();
  const issued = await issueServerCertificate(authority);
  tls = { cert: issued.certificatePem, key: issued.privateKeyPem };
  ca = authority.certificatePem;
});
afterAll(async () => {
  await stores.staff.close();
  await stores.clinic.close();
  await rm(dir, { recursive: true, force: true });
});

const options = (overrides: Record<string, unknown> = {}) => ({
  ...stores,
  ...TEST_SETTINGS,
  clock: scheduler,
  scheduler,
  host: '127.0.0.1',
  port: 0,
  allowNetwork: false,
  publicOrigin: 'https://localhost:8443',
  https: tls,
  ...overrides,
});

function get(port: number, path: string): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, servername: 'localhost', ca, headers: { host: `localhost:${port}` } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('DashboardServer', () => {
  it('serves over HTTPS with the PKI certificate, verified against the CA', async () => {
    const server = new DashboardServer(options());
    await server.start();
    try {
      const { port } = server.address();
      const response = await get(port, '/login');
      expect(response.status).toBe(200);
      expect(response.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
      expect(server.statusText()).toBe(`serving https://localhost:8443 on 127.0.0.1:${port}`);
    } finally {
      await server.stop('test');
    }
  });

  it("refuses a key that is not the certificate's, and a certificate without the public host", async () => {
    const other = await issueServerCertificate(await createDevelopmentCa());
    expect(
      () => new DashboardServer(options({ https: { cert: tls.cert, key: other.privateKeyPem } })),
    ).toThrow(expect.objectContaining({ code: 'DASHBOARD_TLS_INVALID' }));
    expect(
      () => new DashboardServer(options({ https: { cert: 'not a certificate', key: tls.key } })),
    ).toThrow(expect.objectContaining({ code: 'DASHBOARD_TLS_INVALID' }));
    expect(() => new DashboardServer(options({ publicOrigin: 'https://rpm.st-mary.example' }))).toThrow(
      expect.objectContaining({
        code: 'DASHBOARD_CERT_NAME_MISMATCH',
        message: expect.stringContaining('does not name rpm.st-mary.example'),
      }),
    );
    expect(() => new DashboardServer(options({ host: '0.0.0.0' }))).toThrow(
      expect.objectContaining({ code: 'LISTEN_NOT_LOOPBACK' }),
    );
    // The IP the certificate names is a valid public host too.
    expect(() => new DashboardServer(options({ publicOrigin: 'https://127.0.0.1:8443' }))).not.toThrow();
  });

  it('deletes ended sessions every hour, and keeps live ones', async () => {
    const now = scheduler.now();
    const base = {
      userId: stores.users.admin.id,
      stage: 'complete' as const,
      createdAt: now,
      lastSeenAt: now,
      csrfSecret: 's'.repeat(32),
    };
    await stores.staff.createSession({ ...base, idHash: hashSessionId('ended'), expiresAt: now + 1_000 });
    await stores.staff.createSession({
      ...base,
      idHash: hashSessionId('live'),
      expiresAt: now + 2 * PRUNE_INTERVAL_MS,
    });
    const server = new DashboardServer(options());
    await server.start();
    try {
      await scheduler.advanceAsync(0);
      // Nothing had ended at start.
      expect(await stores.staff.session(hashSessionId('ended'))).toBeDefined();
      await scheduler.advanceAsync(PRUNE_INTERVAL_MS);
      expect(await stores.staff.session(hashSessionId('ended'))).toBeUndefined();
      expect(await stores.staff.session(hashSessionId('live'))).toBeDefined();
    } finally {
      await server.stop('test');
    }
  });
});
