import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bundle, Observation } from 'fhir/r4.js';
import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createFleet,
  type FleetGateway,
  type SignedMessage,
  signedBatch,
  writeFleetCertificates,
} from '../../../scripts/support/gateway-fleet.js';
import { openClinicStore } from '../../../src/clinic/storage/open.js';
import { loadClinicConfig } from '../../../src/config/clinic/load.js';
import { until } from '../../support/until.js';
import { TestFhirServer } from '../fhir/fhir-server.js';
import { Children, type ClinicRig, clinicRig, waitFor } from './rig.js';

/**
 * The FHIR export as `rpm-gateway clinic intake` runs it (fhir.enabled), over the built CLI (dist/) with the
 * broker, a hub publishing signed readings and an administrator assigning the gateway: to a folder, and to a
 * real FHIR endpoint (@medplum/fhir-router behind HTTPS with a certificate from the clinic's CA, and a bearer
 * token). The export policy decides how many Observations there are: every spot reading (a scale's weights),
 * one per interval of a continuous stream (an oximeter at 1 Hz).
 */
const SYSTEM_BASE = 'https://clinic.example/fhir/rpm';
const MEASUREMENT_ID = `${SYSTEM_BASE}/measurement-id`;
const WEIGHTS = 20;
/** 60 readings a second apart, within one 5 min interval: one is exported, as SpO2 and pulse rate. */
const STREAM = 60;

let root: string;
const children = new Children();
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rpm-clinic-fhir-'));
});
afterEach(() => children.killAll());
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Run {
  readonly rig: ClinicRig;
  readonly gateway: FleetGateway;
  /** Ids of the readings the export must send: every weight and the stream's first reading. */
  readonly exported: string[];
}

/**
 * init, broker, intake (with `fhir`), a hub publishing the readings, `clinic assign`; resolves once the export
 * queue is empty, every reading exported or skipped by the policy.
 */
async function runExport(name: string, fhir: string): Promise<Run> {
  const rig = await clinicRig(join(root, name), fhir);
  const [gateway] = await createFleet(rig.pki.ca, 1, `gw-${name}`);
  if (gateway === undefined) throw new Error('no gateway');
  writeFleetCertificates([gateway], rig.gatewayCerts);
  expect((await children.spawn(['clinic', 'init', '--config', rig.config], {}).exited).code).toBe(0);
  const broker = children.spawn(['broker', '--config', rig.config], {});
  await waitFor(broker, 'broker.listening');
  const intake = children.spawn(['clinic', 'intake', '--config', rig.config], {});
  await waitFor(intake, 'intake.connected');

  const sentAt = Date.now();
  const weights = signedBatch(gateway, { seq: 1, first: 0, count: WEIGHTS, sentAt, reading: 'weight' });
  const stream = signedBatch(gateway, { seq: 2, first: 1000, count: STREAM, sentAt });
  await publish(rig, gateway, [weights, stream]);
  const assign = children.spawn(
    ['clinic', 'assign', gateway.id, 'MRN-42', '--from', '2026-11-30T00:00:00Z', '--config', rig.config],
    {},
  );
  expect((await assign.exited).code).toBe(0);

  const total = WEIGHTS + STREAM;
  await until(
    'every reading exported or skipped by the policy',
    async () => {
      const counts = await exportCounts(rig);
      return counts.pending === 0 && counts.exported + counts.skipped === total;
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  const counts = await exportCounts(rig);
  expect(counts).toMatchObject({ exported: WEIGHTS + 1, skipped: STREAM - 1, failing: 0 });

  intake.child.kill('SIGTERM');
  expect((await intake.exited).code).toBe(0);
  expect(intake.stderr).toBe('');
  // Counts and codes only in the log: no MRN, no value.
  expect(intake.lines.join('\n')).not.toMatch(/MRN-42|"kg"/);
  broker.child.kill('SIGTERM');
  await broker.exited;
  return { rig, gateway, exported: [...weights.ids, stream.ids[0] as string].sort() };
}

async function publish(rig: ClinicRig, gateway: FleetGateway, messages: readonly SignedMessage[]) {
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
  for (const m of messages) await hub.publishAsync(m.topic, m.payload, { qos: 1 });
  await hub.endAsync();
}

async function exportCounts(rig: ClinicRig) {
  const { config } = loadClinicConfig({ configFile: rig.config, env: {}, defaultConfigFile: '/nonexistent' });
  const store = await openClinicStore(config.database, { env: {}, mode: 'existing' });
  try {
    return await store.exportCounts();
  } finally {
    await store.close();
  }
}

/**
 * The stored measurements the Observations came from, sorted: their `<base>/measurement-id` identifier is
 * `<measurement id>/<code>#<index>` (src/clinic/fhir/mapping.ts).
 */
function sourceIds(observations: readonly Observation[]): string[] {
  const ids = observations.flatMap(
    (o) =>
      o.identifier
        ?.filter((i) => i.system === MEASUREMENT_ID)
        .map((i) => (i.value as string).split('/')[0] as string) ?? [],
  );
  return [...new Set(ids)].sort();
}

const fhirSection = (target: string[]) =>
  [
    'fhir:',
    '  enabled: true',
    '  target:',
    ...target,
    '  patientIdentifierSystem: https://clinic.example/mrn',
    `  systemBase: ${SYSTEM_BASE}`,
  ].join('\n');

describe('rpm-gateway clinic intake with fhir.enabled', () => {
  it('writes the Bundles to a folder (0600), spot readings all and the stream thinned', async () => {
    const folder = join(root, 'bundles');
    const { exported } = await runExport('folder', fhirSection([`    folder: ${folder}`]));
    const files = readdirSync(folder).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThan(0);
    const observations = files.flatMap((file) => {
      expect(statSync(join(folder, file)).mode & 0o777).toBe(0o600);
      const bundle = JSON.parse(readFileSync(join(folder, file), 'utf8')) as Bundle;
      expect(bundle.type).toBe('transaction');
      return (bundle.entry ?? [])
        .map((e) => e.resource)
        .filter((r): r is Observation => r?.resourceType === 'Observation');
    });
    expect(sourceIds(observations)).toEqual(exported);
  });

  it('POSTs them to a FHIR server over HTTPS (the clinic CA, a bearer token): each reading once', async () => {
    const pki = join(root, 'server-pki');
    // The server's certificate: the broker's of a clinic rig (it names localhost, from the clinic CA).
    const serverRig = await clinicRig(pki);
    const token = 'tok-0123456789abcdef';
    const server = new TestFhirServer({
      tls: { cert: serverRig.pki.pem.broker, key: serverRig.pki.pem.brokerKey },
      bearerToken: token,
    });
    await server.start();
    try {
      const tokenFile = join(root, 'fhir.token');
      writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
      const { exported } = await runExport(
        'http',
        [
          fhirSection([`    baseUrl: ${server.url}`]),
          `  ca: ${serverRig.pki.files.ca}`,
          `  token: { file: ${tokenFile} }`,
        ].join('\n'),
      );
      const observations = await server.all<Observation>('Observation');
      expect(sourceIds(observations)).toEqual(exported);
      // The weights one each, the stream's one reading as SpO2 and pulse rate.
      expect(observations).toHaveLength(WEIGHTS + 2);
      expect(
        observations.every((o) => o.subject?.identifier?.value === 'MRN-42'),
        'every Observation is the assigned patient',
      ).toBe(true);
    } finally {
      await server.stop();
    }
  });
});
