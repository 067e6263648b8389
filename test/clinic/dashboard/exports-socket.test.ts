import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../../scripts/support/measurements.js';
import { SESSION_COOKIE } from '../../../src/clinic/dashboard/app.js';
import { hashSessionId, newSessionId } from '../../../src/clinic/dashboard/auth/tokens.js';
import { DashboardServer } from '../../../src/clinic/dashboard/server.js';
import { createDevelopmentCa, issueServerCertificate } from '../../../src/pki/ca.js';
import { ManualClock } from '../../../src/util/clock.js';
import { until } from '../../support/until.js';
import { auditOf, MINUTE, MRN_CARED, makeStores, type Stores, TEST_SETTINGS } from './rig.js';

/**
 * The CSV export over a real HTTPS socket: a large range arrives whole, and a browser that goes away
 * mid-download stops the export (the store is read only as fast as the client takes the file) and leaves an
 * audit entry that says it was not complete.
 */

const HOUR = 60 * MINUTE;
/** 60,000 readings of 2 values: a CSV of about 30 MB, far more than the loopback socket's buffers hold. */
const READINGS = 60_000;
const SESSION = newSessionId();

let dir: string;
let stores: Stores;
let server: DashboardServer;
let ca: string;
const clock = new ManualClock();
/** Pages the dashboard has read from the store (ClinicStore.measurementPage calls). */
let pagesRead = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-dashboard-exports-'));
  stores = await makeStores(dir, clock);
  const now = clock.now();
  const measurements = Array.from({ length: READINGS }, (_, i) => {
    const at = now - 3 * HOUR + i * 100;
    return {
      measurement: {
        ...spo2Measurement(i, { time: new Date(at).toISOString() }),
        id: `m1-f${i.toString(16).padStart(31, '0')}`,
      },
      measuredAt: at,
      receipt: {
        gatewayId: 'gw-a',
        topic: 'obs' as const,
        batchSeq: i,
        sentAt: at,
        signerSerial: '01',
        receivedAt: at,
      },
    };
  });
  await stores.clinic.commit({ measurements, gaps: [], statuses: [], rejections: [] });
  // A complete login of the clinician, as the login pages would have stored it.
  await stores.staff.createSession({
    idHash: hashSessionId(SESSION),
    userId: stores.users.clinician.id,
    stage: 'complete',
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + HOUR,
    csrfSecret: 's'.repeat(32),
  });
  const authority = await createDevelopmentCa();
  const issued = await issueServerCertificate(authority);
  ca = authority.certificatePem;
  // The real store, with its page reads counted on the way.
  const inner = stores.clinic;
  const counted = new Proxy(inner, {
    get(target, name) {
      const value = Reflect.get(target, name, target) as unknown;
      if (name === 'measurementPage') pagesRead++;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  server = new DashboardServer({
    ...stores,
    clinic: counted,
    ...TEST_SETTINGS,
    clock,
    host: '127.0.0.1',
    port: 0,
    allowNetwork: false,
    publicOrigin: 'https://localhost:8443',
    https: { cert: issued.certificatePem, key: issued.privateKeyPem },
  });
  await server.start();
}, 120_000);

afterAll(async () => {
  await server?.stop('test');
  await stores?.staff.close();
  await stores?.clinic.close();
  await rm(dir, { recursive: true, force: true });
});

const PATH = `/patients/${MRN_CARED}/export?${new URLSearchParams({
  from: new Date(clock.now() - 3 * HOUR).toISOString(),
  to: new Date(clock.now()).toISOString(),
  format: 'csv',
}).toString()}`;

/** GETs the export; `take` decides after each chunk whether to go on (false: the client goes away). */
function download(
  take: (received: number) => boolean,
): Promise<{ status: number; body: Buffer; cut: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.address().port,
        path: PATH,
        servername: 'localhost',
        ca,
        headers: { host: 'localhost:8443', cookie: `${SESSION_COOKIE}=${SESSION}` },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let received = 0;
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          received += chunk.length;
          if (!take(received)) {
            req.destroy();
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), cut: true });
          }
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), cut: false }),
        );
        res.on('error', () => undefined);
      },
    );
    req.on('error', (error) => {
      if (!req.destroyed) reject(error);
    });
    req.end();
  });
}

const exported = () => auditOf(stores, 'patient.exported');

describe('CSV export over HTTPS', () => {
  it('streams a large range whole, then stops reading the store when the client goes away mid-way', async () => {
    const whole = await download(() => true);
    expect(whole.status).toBe(200);
    const lines = whole.body.toString('utf8').split('\r\n');
    // The header, two records per reading (SpO2 and pulse), and the empty string after the last CRLF.
    expect(lines.length).toBe(1 + 2 * READINGS + 1);
    expect(whole.body.length).toBeGreaterThan(25_000_000);
    await until('the audit entry of the whole download', () => exported().length === 1);
    expect(exported()[0]?.details).toMatchObject({
      measurements: READINGS,
      rows: 2 * READINGS,
      complete: true,
    });

    // 60 pages of 1,000 readings and the empty one that ends the walk.
    expect(pagesRead).toBe(61);

    // The client reads 1 MB and goes away.
    pagesRead = 0;
    const cut = await download((received) => received < 1_000_000);
    expect(cut.cut).toBe(true);
    await until('the audit entry of the cut download', () => exported().length === 2);
    const entry = exported()[1]?.details as { measurements: number; rows: number; complete: boolean };
    expect(entry.complete).toBe(false);
    // The server had read from the store only what the socket took (its buffers hold a few MB of the ~30 MB),
    // not the whole range, and sent no more than it read.
    expect(entry.rows).toBeGreaterThan(0);
    expect(pagesRead).toBeLessThan(30);
    expect(entry.measurements).toBeLessThanOrEqual(pagesRead * 1_000);
  }, 120_000);
});
