import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createFleet,
  type FleetGateway,
  fleetMeasurement,
  signedBatch,
  writeFleetCertificates,
} from '../../../scripts/support/gateway-fleet.js';
import { ClinicalBroker } from '../../../src/broker/clinical-broker.js';
import { identifyClient } from '../../../src/broker/identify.js';
import { alertClientId, LANE_TOPICS } from '../../../src/clinic/service/intake-lanes.js';
import { IntakeService } from '../../../src/clinic/service/intake-service.js';
import type { ClinicStore, IntakeWrite } from '../../../src/clinic/storage/clinic-store.js';
import { SqliteClinicStore } from '../../../src/clinic/storage/sqlite/sqlite-clinic-store.js';
import { createDevelopmentPki, type DevelopmentPki } from '../../../src/pki/dev-pki.js';
import { SILENT_LOG } from '../../../src/runtime/log.js';
import { realScheduler } from '../../../src/util/scheduler.js';
import { signEnvelope } from '../../../src/wire/cose.js';
import { encodeBatch } from '../../../src/wire/index.js';
import { until } from '../../support/until.js';
import { CLINIC_NAME } from './rig.js';

/**
 * The alert lane (src/clinic/service/intake-lanes.ts): an alert is committed while a backlog of observations
 * is stuck in its commit. Deterministic: the store holds every commit that carries observations until the test
 * lets it go, so the observations cannot be committed first; the alert's commit must happen anyway. On one
 * shared connection it could not: the intake commits one group at a time, and the alert would wait for the
 * held group.
 */
let dir: string;
let pki: DevelopmentPki;
let broker: ClinicalBroker;
let port: number;
let gateway: FleetGateway;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-alert-lane-'));
  pki = await createDevelopmentPki(join(dir, 'pki'), { clinicName: CLINIC_NAME });
  [gateway] = (await createFleet(pki.ca, 1, 'gw-lane')) as [FleetGateway];
  writeFleetCertificates([gateway], join(dir, 'gateways'));
  const main = `${CLINIC_NAME}-intake`;
  broker = new ClinicalBroker({
    ca: pki.pem.ca,
    cert: pki.pem.broker,
    key: pki.pem.brokerKey,
    port: 0,
    identify: identifyClient,
    durableSubscribers: [
      { clientId: main, subscriptions: LANE_TOPICS.main.map((topic) => ({ topic, qos: 1 as const })) },
      {
        clientId: alertClientId(main),
        subscriptions: LANE_TOPICS.alert.map((topic) => ({ topic, qos: 1 as const })),
      },
    ],
  });
  port = (await broker.start()).port;
});
afterAll(async () => {
  await broker.stop();
  await rm(dir, { recursive: true, force: true });
});

/** The real SQLite store; commits that carry observations wait while `held`. */
class ObsHeldStore {
  held: Promise<void> | undefined;
  private open = () => {};
  heldCommits = 0;
  readonly store: ClinicStore;

  constructor(readonly inner: ClinicStore) {
    this.store = new Proxy(inner, {
      get: (target, property) => {
        if (property === 'commit') return (write: IntakeWrite) => this.commit(write);
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }

  hold(): void {
    this.held = new Promise<void>((resolve) => {
      this.open = resolve;
    });
  }

  release(): void {
    this.held = undefined;
    this.open();
  }

  private async commit(write: IntakeWrite) {
    if (this.held && write.measurements.some((m) => m.receipt.topic === 'obs')) {
      this.heldCommits++;
      await this.held;
    }
    return this.inner.commit(write);
  }
}

function publish(topic: string, payload: Buffer): Promise<void> {
  return new Promise((resolve, reject) =>
    broker.mqtt.publish(
      { cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false },
      (error?: Error) => (error ? reject(error) : resolve()),
    ),
  );
}

function alertMessage(n: number): { topic: string; payload: Buffer; id: string } {
  const measurement = { ...fleetMeasurement(gateway.id, n), alert: { rule: 'spo2-low', late: false } };
  const payload = encodeBatch({
    gatewayId: gateway.id,
    seq: 1_000 + n,
    sentAt: Date.now(),
    items: [{ type: 'measurement', measurement }],
  });
  return {
    topic: `rpm/v1/${gateway.id}/alert`,
    payload: Buffer.from(signEnvelope(payload, gateway.key, gateway.kid)),
    id: measurement.id,
  };
}

describe('the intake alert lane', () => {
  it('commits an alert while a backlog of observations is held in its commit', async () => {
    const held = new ObsHeldStore(
      await SqliteClinicStore.open({ path: join(dir, 'clinic.db'), key: new Uint8Array(32).fill(7) }),
    );
    const service = new IntakeService({
      brokers: [{ url: `mqtts://127.0.0.1:${port}`, host: '127.0.0.1', port, servername: 'localhost' }],
      clientId: `${CLINIC_NAME}-intake`,
      protocolVersion: 4,
      tls: { ca: pki.pem.ca, cert: pki.pem.clinic, key: pki.pem.clinicKey },
      store: held.store,
      gateways: { caPem: pki.pem.ca, folder: join(dir, 'gateways') },
      graceMs: 0,
      defaultTimeZone: 'UTC',
      group: { maxMessages: 4, maxDelayMs: 1 },
      log: SILENT_LOG,
      scheduler: realScheduler,
    });
    await service.start();
    try {
      held.hold();
      const backlog = Array.from({ length: 20 }, (_, i) =>
        signedBatch(gateway, { seq: i + 1, first: i * 100, count: 100, sentAt: Date.now() }),
      );
      for (const batch of backlog) await publish(batch.topic, batch.payload);
      await until('the first observation commit held', () => held.heldCommits >= 1);

      const alert = alertMessage(1_000_000);
      await publish(alert.topic, alert.payload);
      await until('the alert committed', async () => (await held.inner.measurement(alert.id)) !== undefined);
      // Still nothing of the backlog: its commits are the ones held.
      expect(await held.inner.countMeasurements()).toBe(1);
      expect(service.lane('alert')?.snapshot().measurementsInserted).toBe(1);

      held.release();
      const ids = backlog.flatMap((b) => b.ids);
      await until(
        'the backlog committed',
        async () => (await held.inner.countMeasurements()) === ids.length + 1,
        {
          timeoutMs: 30_000,
        },
      );
      const stored = new Set(await held.inner.measurementIds());
      expect(ids.filter((id) => !stored.has(id))).toEqual([]);
    } finally {
      held.release();
      await service.stop();
      await held.inner.close();
    }
  });
});
