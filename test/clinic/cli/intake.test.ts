import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
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
import type { CliProcess } from '../../support/cli-process.js';
import { until } from '../../support/until.js';
import { Children, type ClinicRig, clinicRig, events, logged, waitFor } from './rig.js';

/**
 * `rpm-gateway clinic intake` with `rpm-gateway broker`, both the built CLI (dist/) in processes of their
 * own, and simulated hubs publishing signed batches over mutual TLS: what a hub saw acknowledged is in the
 * database exactly once, across an intake killed with SIGKILL while a backlog is in flight.
 */
let root: string;
let rig: ClinicRig;
let fleet: FleetGateway[];
const children = new Children();
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rpm-clinic-intake-'));
  rig = await clinicRig(root);
  fleet = await createFleet(rig.pki.ca, 4, 'gw-cli');
  writeFleetCertificates(fleet, rig.gatewayCerts);
});
afterEach(() => children.killAll());
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A hub: connects as its gateway over mutual TLS and publishes at QoS 1; `acked` holds what got a PUBACK. */
async function hub(gateway: FleetGateway): Promise<{ client: MqttClient; acked: string[] }> {
  const client = await mqtt.connectAsync({
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
  return { client, acked: [] };
}

async function publishAll(
  sender: { client: MqttClient; acked: string[] },
  messages: readonly SignedMessage[],
): Promise<void> {
  for (const message of messages) {
    await sender.client.publishAsync(message.topic, message.payload, { qos: 1 });
    sender.acked.push(...message.ids); // publishAsync resolves on the broker's PUBACK
  }
}

async function storedIds(): Promise<string[]> {
  const { config } = loadClinicConfig({ configFile: rig.config, env: {}, defaultConfigFile: '/nonexistent' });
  const store = await openClinicStore(config.database, { env: {}, mode: 'existing' });
  try {
    return await store.measurementIds();
  } finally {
    await store.close();
  }
}

const stop = async (run: CliProcess) => {
  const at = Date.now();
  run.child.kill('SIGTERM');
  const { code } = await run.exited;
  return { code, ms: Date.now() - at };
};

describe('rpm-gateway clinic intake', () => {
  it('refuses an incomplete FHIR section (exit 2) and a missing database, creating nothing', async () => {
    const dataDir = join(root, 'elsewhere');
    const fhir = children.spawn(
      [
        'clinic',
        'intake',
        '--config',
        rig.config,
        '--data-dir',
        dataDir,
        '--set',
        'fhir.enabled=true',
        '--set',
        `fhir.target.folder=${join(root, 'bundles')}`,
        '--set',
        'fhir.patientIdentifierSystem=https://clinic.example/mrn',
      ],
      {},
    );
    expect((await fhir.exited).code).toBe(2);
    expect(fhir.stderr).toMatch(/fhir\.systemBase.*fhir\.enabled is true: set a URL the clinic owns/s);
    expect(fhir.lines).toEqual([]);

    const missing = children.spawn(['clinic', 'intake', '--config', rig.config, '--data-dir', dataDir], {});
    expect((await missing.exited).code).toBe(1);
    expect(missing.stderr).toMatch(/clinic init.*CLINIC_NOT_INITIALISED/);
    expect(existsSync(dataDir)).toBe(false);
    expect(existsSync(join(root, 'bundles'))).toBe(false);
  });

  it('stores every acknowledged reading exactly once across an intake SIGKILL mid-backlog; SIGTERM stops both', async () => {
    const init = children.spawn(['clinic', 'init', '--config', rig.config], {});
    expect((await init.exited).code).toBe(0);
    const broker = children.spawn(['broker', '--config', rig.config], {});
    await waitFor(broker, 'broker.listening');
    // Hubs publish before the intake ever connected: the provisioned sessions keep it for the intake.
    const hubs = await Promise.all(fleet.map(hub));
    const batches = (g: FleetGateway, from: number, count: number) =>
      Array.from({ length: count }, (_, i) =>
        signedBatch(g, { seq: from + i, first: (from + i) * 250, count: 250, sentAt: Date.now() }),
      );
    await Promise.all(hubs.map((h, i) => publishAll(h, batches(fleet[i] as FleetGateway, 0, 2))));

    let intake = children.spawn(['clinic', 'intake', '--config', rig.config], {});
    await waitFor(intake, 'intake.connected');
    // A backlog in flight: the hubs keep publishing while the intake commits, and the intake is killed with
    // messages received and not yet committed.
    const publishing = Promise.all(
      hubs.map((h, i) => publishAll(h, batches(fleet[i] as FleetGateway, 2, 20))),
    );
    await until('part of the backlog committed', async () => (await storedIds()).length >= 4_000, {
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    intake.child.kill('SIGKILL');
    expect((await intake.exited).signal).toBe('SIGKILL');
    const atKill = (await storedIds()).length;
    await publishing;
    const acked = hubs.flatMap((h) => h.acked);
    expect(acked.length).toBe(4 * 22 * 250);
    expect(atKill).toBeLessThan(acked.length);

    // Restarted with a broker first in the list that refuses connections: the next one is used.
    const failover = join(root, 'failover.yaml');
    writeFileSync(
      failover,
      readFileSync(rig.config, 'utf8').replace(
        'intake:\n',
        `intake:\n  brokers:\n    - { url: 'mqtts://127.0.0.1:1', servername: localhost }\n    - { url: 'mqtts://127.0.0.1:${rig.port}', servername: localhost }\n`,
      ),
    );
    intake = children.spawn(['clinic', 'intake', '--config', failover], {});
    await waitFor(intake, 'intake.connected');
    expect(logged(intake, 'intake.broker-failed')).toMatchObject({ broker: 'mqtts://127.0.0.1:1' });
    await until('every acknowledged reading stored', async () => (await storedIds()).length >= acked.length, {
      timeoutMs: 60_000,
      intervalMs: 100,
    });
    const stored = await storedIds();
    expect(stored.length).toBe(new Set(stored).size);
    expect(new Set(stored)).toEqual(new Set(acked));

    const intakeStop = await stop(intake);
    expect(intakeStop.code).toBe(0);
    expect(intakeStop.ms).toBeLessThan(10_000);
    expect(intake.stderr).toBe('');
    const final = events(intake).filter((e) => e.event === 'intake.stats-final');
    expect(final.map((e) => e.lane).sort()).toEqual(['alert', 'main']);
    const main = final.find((e) => e.lane === 'main');
    expect(main).toMatchObject({ service: 'intake', rejectedByCode: {} });
    expect(Number(main?.readings)).toBeGreaterThan(0);
    expect(logged(intake, 'intake.stopped')).toBeDefined();
    // No reading value in any log line: the fleet's SpO2 readings are the only numbers 90..99 with a '%'.
    expect(intake.lines.join('\n')).not.toMatch(/MDC_|"value"|"%"/);

    for (const h of hubs) await h.client.endAsync();
    const brokerStop = await stop(broker);
    expect(brokerStop.code).toBe(0);
    expect(brokerStop.ms).toBeLessThan(10_000);
    expect(readdirSync(rig.dataDir).sort()).toEqual(
      expect.arrayContaining(['broker', 'broker-audit.log', 'clinic-audit.log', 'clinic.db', 'clinic.key']),
    );
  });
});
