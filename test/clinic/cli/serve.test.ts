import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createFleet, signedBatch, writeFleetCertificates } from '../../../scripts/support/gateway-fleet.js';
import { openClinicStore } from '../../../src/clinic/storage/open.js';
import { loadClinicConfig } from '../../../src/config/clinic/load.js';
import { freePort } from '../../runtime/hub-rig.js';
import { Children, type ClinicRig, clinicRig, events, waitFor } from './rig.js';

/**
 * `rpm-gateway clinic serve` over the built CLI (dist/), on the database `clinic init` made. The rig's
 * configuration is SQLite with an intake: section, so `clinic serve` runs the intake, the alarm engine and the
 * dashboard in one process, against the broker the test runs (`rpm-gateway broker`).
 */
let root: string;
let rig: ClinicRig;
let port: number;
const children = new Children();
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rpm-clinic-serve-'));
  port = await freePort();
  rig = await clinicRig(root);
});
afterEach(() => children.killAll());
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The dev PKI's server certificate names localhost and 127.0.0.1 (src/pki/ca.ts, serverProfile). */
const dashboard = (extra = '') =>
  [
    'dashboard:',
    `  port: ${port}`,
    `  cert: ${rig.pki.files.broker}`,
    `  key: { file: ${rig.pki.files.brokerKey} }`,
    extra,
  ].join('\n');

async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const run = children.spawn([...args, '--config', rig.config], env);
  const { code } = await run.exited;
  return { code, stdout: run.lines.join('\n'), stderr: run.stderr };
}

/** Settings as variables, so one configuration file serves every test. */
const asVariables = (text: string): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {};
  for (const line of text.split('\n').slice(1)) {
    const match = /^ {2}(\w+): (.*)$/.exec(line);
    if (!match) continue;
    const [, key, value] = match as unknown as [string, string, string];
    const name = `RPM_CLINIC_DASHBOARD_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
    const file = /^\{ file: (.*) \}$/.exec(value)?.[1];
    if (file) env[`${name}_FILE`] = file;
    else env[name] = value;
  }
  return env;
};

function post(path: string, body: string, headers: Record<string, string>) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
    (resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path,
          method: body === '' ? 'GET' : 'POST',
          servername: 'localhost',
          ca: rig.pki.pem.ca,
          headers: { host: `localhost:${port}`, ...headers },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            text += chunk;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
        },
      );
      req.on('error', reject);
      req.end(body === '' ? undefined : body);
    },
  );
}

describe('rpm-gateway clinic serve', () => {
  it('needs a dashboard section, and exits 2 without one', async () => {
    const run = await cli(['clinic', 'serve']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      'rpm-gateway clinic serve needs a dashboard: section (at least cert and key)',
    );
  });

  it('refuses a certificate that does not name the public origin before listening (exit 2)', async () => {
    expect((await cli(['clinic', 'init'])).code).toBe(0);
    const run = await cli(
      ['clinic', 'serve'],
      asVariables(
        dashboard(`  host: 0.0.0.0\n  allowNetwork: true\n  publicOrigin: https://dash.clinic.example`),
      ),
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/does not name dash\.clinic\.example.*\[DASHBOARD_CERT_NAME_MISMATCH\]/);
  });

  it('on SQLite, refuses a configuration without an intake: section (exit 2), naming why', async () => {
    const withoutIntake = join(root, 'no-intake.yaml');
    writeFileSync(withoutIntake, readFileSync(rig.config, 'utf8').replace(/^intake:\n(?: {2}.*\n)+/m, ''));
    expect(readFileSync(withoutIntake, 'utf8')).not.toContain('intake:');
    const run = children.spawn(['clinic', 'serve', '--config', withoutIntake], asVariables(dashboard()));
    expect((await run.exited).code).toBe(2);
    expect(run.stderr).toMatch(/needs an intake: section.*\[DASHBOARD_NEEDS_INTAKE\]/s);
    expect(run.lines).toEqual([]);
  });

  it("stores a hub's readings and serves the dashboard from one process; logs a password login into the audit log; stops on SIGTERM", async () => {
    const added = await cli(['clinic', 'user', 'add', 'dr.who', '--role', 'clinician']);
    const password = /^initial password: ([A-Za-z0-9]{20})$/m.exec(added.stdout)?.[1] as string;
    expect(password).toBeDefined();
    const [gateway] = await createFleet(rig.pki.ca, 1, 'gw-serve');
    if (gateway === undefined) throw new Error('no gateway');
    writeFleetCertificates([gateway], rig.gatewayCerts);
    const broker = children.spawn(['broker', '--config', rig.config], {});
    await waitFor(broker, 'broker.listening');
    const run = children.spawn(['clinic', 'serve', '--config', rig.config], asVariables(dashboard()));
    const listening = await waitFor(run, 'dashboard.listening');
    // One process: the intake subscribed and the alarm engine leads in the process that listens (each
    // event read from this child's own stdout).
    await waitFor(run, 'intake.started');
    expect(events(run).find((e) => e.event === 'alarms.started')).toMatchObject({ state: 'leading' });

    const hub = await mqtt.connectAsync({
      protocol: 'mqtts',
      host: '127.0.0.1',
      port: rig.port,
      servername: 'localhost',
      ca: rig.pki.pem.ca,
      cert: gateway.certificatePem,
      key: gateway.privateKeyPem,
      clientId: gateway.id,
      clean: true,
      reconnectPeriod: 0,
    });
    const batch = signedBatch(gateway, { seq: 0, first: 0, count: 5, sentAt: Date.now() });
    try {
      await hub.publishAsync(batch.topic, batch.payload, { qos: 1 });
    } finally {
      await hub.endAsync();
    }
    // The PUBACK came after the commit (docs/clinic-intake.md): the readings are in the database now.
    const { config } = loadClinicConfig({
      configFile: rig.config,
      env: {},
      defaultConfigFile: '/nonexistent',
    });
    const store = await openClinicStore(config.database, { env: {}, mode: 'existing' });
    try {
      expect((await store.measurementIds()).sort()).toEqual([...batch.ids].sort());
    } finally {
      await store.close();
    }

    expect(listening.detail).toBe(`serving https://localhost:${port} on 127.0.0.1:${port}`);

    const page = await post('/login', '', {});
    expect(page.status).toBe(200);
    expect(page.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
    const token = /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1] as string;
    const cookie = (page.headers['set-cookie'] as string[])[0]?.split(';')[0] as string;
    const login = await post(
      '/login',
      new URLSearchParams({ username: 'dr.who', password, _csrf: token }).toString(),
      {
        origin: `https://localhost:${port}`,
        cookie,
        'content-type': 'application/x-www-form-urlencoded',
      },
    );
    expect(login.status).toBe(303);
    expect(login.headers.location).toBe('/mfa/enrol');
    const audit = readFileSync(join(rig.dataDir, 'clinic-audit.log'), 'utf8').trim().split('\n');
    expect(JSON.parse(audit.at(-1) as string)).toMatchObject({ type: 'login.ok', actor: 'dr.who' });
    expect(audit.join('\n')).not.toContain(password);

    run.child.kill('SIGTERM');
    expect((await run.exited).code).toBe(0);
    // The ordered stop: the dashboard first, then the intake (its final counts), then the engine.
    const order = events(run).map((e) => e.event);
    expect(order).toContain('intake.stats-final');
    const final = events(run).filter((e) => e.event === 'intake.stats-final' && e.lane === 'main');
    expect(final[0]).toMatchObject({ readings: 5 });
    broker.child.kill('SIGTERM');
    expect((await broker.exited).code).toBe(0);
  });
});
