import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createFleet, signedBatch, writeFleetCertificates } from '../../../scripts/support/gateway-fleet.js';
import { type RunningPostgres, startPostgres } from '../../../scripts/support/postgres.js';
import { until } from '../../support/until.js';
import { Children, type ClinicRig, clinicRig, waitFor } from './rig.js';

/**
 * The clinic's commands on PostgreSQL (database.kind: postgres), over the built CLI (dist/) against a
 * throwaway server (scripts/support/postgres.ts) that asks for a password: `clinic init` makes the tables in the
 * administrator's empty database, the intake stores what a hub published, `clinic assign` dates a patient.
 */
let root: string;
let rig: ClinicRig;
let server: RunningPostgres;
let database: string;
let config: string;
const children = new Children();

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rpm-clinic-pg-'));
  [rig, server] = await Promise.all([clinicRig(root), startPostgres()]);
  database = await server.createDatabase('clinic');
  const passwordFile = join(root, 'pg.password');
  writeFileSync(passwordFile, `${server.password}\n`, { mode: 0o600 });
  config = join(root, 'clinic-pg.yaml');
  const postgres = (name: string, password: string) =>
    [
      'database:',
      '  kind: postgres',
      '  postgres:',
      `    host: ${server.host}`,
      `    port: ${server.port}`,
      `    database: ${name}`,
      `    user: ${server.user}`,
      `    password: { file: ${password} }`,
      '    ssl: { mode: disable }',
      '    poolSize: 4',
    ].join('\n');
  writeFileSync(config, `${readFileSync(rig.config, 'utf8')}\n${postgres(database, passwordFile)}\n`);
  const wrong = join(root, 'wrong.password');
  writeFileSync(wrong, 'not-the-password\n', { mode: 0o600 });
  writeFileSync(
    join(root, 'wrong-password.yaml'),
    `${readFileSync(rig.config, 'utf8')}\n${postgres(database, wrong)}\n`,
  );
}, 60_000);
afterEach(() => children.killAll());
afterAll(async () => {
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

async function cli(file: string, ...args: string[]) {
  const run = children.spawn([...args, '--config', file], {});
  const { code } = await run.exited;
  return { code, stdout: run.lines.join('\n'), stderr: run.stderr };
}

async function query<T extends pg.QueryResultRow>(sql: string): Promise<T[]> {
  const client = new pg.Client(server.connection(database));
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('the clinic commands on PostgreSQL', () => {
  it('init makes the tables once; intake stores a hub reading; assign dates a patient', async () => {
    // Before init: the intake refuses the empty database and creates nothing in it.
    const early = await cli(config, 'clinic', 'intake');
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/has no clinic tables.*clinic init.*CLINIC_NOT_INITIALISED/);
    expect(await query("SELECT 1 FROM pg_tables WHERE schemaname = 'public'")).toEqual([]);

    const refused = await cli(join(root, 'wrong-password.yaml'), 'clinic', 'init');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/CLINIC_STORE_UNREACHABLE/);
    expect(refused.stderr).not.toContain('not-the-password');

    const init = await cli(config, 'clinic', 'init');
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);
    expect(init.stdout).toMatch(/initialised: database postgres rpm_test@127\.0\.0\.1:\d+\/clinic_1/);
    expect((await query<{ n: string }>('SELECT count(*) AS n FROM clinic_schema'))[0]?.n).not.toBe('0');
    const again = await cli(config, 'clinic', 'init');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already holds the clinic tables.*CLINIC_ALREADY_INITIALISED/);

    const [gateway] = await createFleet(rig.pki.ca, 1, 'gw-pg');
    if (gateway === undefined) throw new Error('no gateway');
    writeFleetCertificates([gateway], rig.gatewayCerts);
    const broker = children.spawn(['broker', '--config', config], {});
    await waitFor(broker, 'broker.listening');
    const intake = children.spawn(['clinic', 'intake', '--config', config], {});
    await waitFor(intake, 'intake.connected');
    const hub = await mqtt.connectAsync({
      protocol: 'mqtts',
      host: '127.0.0.1',
      port: rig.port,
      servername: 'localhost',
      ca: rig.pki.pem.ca,
      cert: gateway.certificatePem,
      key: gateway.privateKeyPem,
      clientId: gateway.id,
      reconnectPeriod: 0,
    });
    const batch = signedBatch(gateway, { seq: 1, first: 0, count: 50, sentAt: Date.now() });
    await hub.publishAsync(batch.topic, batch.payload, { qos: 1 });
    await hub.endAsync();
    const stored = async () =>
      (await query<{ id: string }>('SELECT id FROM measurements ORDER BY id')).map((r) => r.id);
    await until('the batch stored in PostgreSQL', async () => (await stored()).length >= 50, {
      timeoutMs: 20_000,
      intervalMs: 100,
    });
    expect(await stored()).toEqual([...batch.ids].sort());

    // The fleet's readings are measured from 2026-12-01T00:00:00Z, one a second.
    const assigned = await cli(
      config,
      'clinic',
      'assign',
      gateway.id,
      'MRN-7',
      '--from',
      '2026-12-01T00:00:10Z',
    );
    expect(assigned.stderr).toBe('');
    expect(assigned.code).toBe(0);
    const unassigned = JSON.parse((await cli(config, 'clinic', 'unassigned', '--json')).stdout) as unknown[];
    expect(unassigned).toHaveLength(10);
    const listed = JSON.parse((await cli(config, 'clinic', 'assignments', gateway.id, '--json')).stdout);
    expect(listed).toMatchObject([{ gatewayId: gateway.id, mrn: 'MRN-7', to: null }]);

    intake.child.kill('SIGTERM');
    broker.child.kill('SIGTERM');
    expect((await intake.exited).code).toBe(0);
    expect((await broker.exited).code).toBe(0);
  });
});
