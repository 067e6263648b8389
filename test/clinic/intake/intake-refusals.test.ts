import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetGateway } from '../../../scripts/support/gateway-fleet.js';
import { ClinicIntake, DAY_MS } from '../../../src/clinic/intake/index.js';
import { CLOCK_SKEW_MS, createDevelopmentCa, revokeCertificate } from '../../../src/pki/index.js';
import { until } from '../../support/until.js';
import {
  batch,
  enrol,
  type Harness,
  newGateway,
  notAfterOf,
  publish,
  type RunningIntake,
  SetClockScheduler,
  startHarness,
  startIntake,
  status,
  stopHarness,
  type TestMessage,
} from './harness.js';

/**
 * Every refusal of the intake, over real TLS: refused with a stable code, stored as a rejection, counted, and
 * acknowledged (a refused message must not come back forever), with valid traffic in between unaffected.
 */
let dir: string;
let harness: Harness;
let good: FleetGateway;
let other: FleetGateway;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-intake-refusals-'));
  harness = await startHarness(dir);
  good = await newGateway(harness.pki.ca, 'gw-good-0001');
  other = await newGateway(harness.pki.ca, 'gw-other-0002');
  enrol(harness, good);
  enrol(harness, other);
});

afterAll(async () => {
  await stopHarness(harness);
  await rm(dir, { recursive: true, force: true });
});

/** Publishes in order, then waits until the intake acknowledged every one of them. */
async function send(running: RunningIntake, messages: readonly TestMessage[]): Promise<void> {
  const before = running.acks().length;
  for (const message of messages) await publish(harness, message);
  await until(`${messages.length} PUBACKs`, () => running.acks().length === before + messages.length);
}

const junk = (topic: string, bytes: Uint8Array): TestMessage => ({ topic, payload: bytes, ids: [] });

describe('refusals', () => {
  it('refuses each kind of bad message with its code, stores and acknowledges it; valid traffic flows', async () => {
    const running = await startIntake(harness, { maxEnvelopeBytes: 8 * 1024 });
    const { intake, store } = running;
    try {
      const foreignCa = await createDevelopmentCa({ commonName: 'another clinic' });
      const stranger = await newGateway(foreignCa, 'gw-good-0001'); // same id, another CA
      const forged = batch(good, 10);
      const signature = forged.payload.slice();
      signature.set([(signature.at(-1) as number) ^ 0x01], signature.length - 1);
      const valid: TestMessage[] = [];
      const next = () => {
        const message = batch(good, 100 + valid.length);
        valid.push(message);
        return message;
      };
      await send(running, [
        next(),
        junk(forged.topic, signature),
        next(),
        batch(good, 20, 1, { signer: stranger }),
        next(),
        junk(`rpm/v1/${good.id}/obs`, Uint8Array.of(0xd2, 0x84, 0x43)),
        next(),
        junk(`rpm/v1/${good.id}/obs`, randomBytes(9 * 1024)),
        next(),
        junk(`rpm/v1/${good.id}/obs`, randomBytes(300)),
        next(),
        // signed by gw-other-0002, published under gw-good-0001
        batch(other, 30, 1, { topic: `rpm/v1/${good.id}/obs` }),
        next(),
        status(good),
      ]);
      expect((await store.measurementIds()).sort()).toEqual(valid.flatMap((m) => m.ids).sort());
      const counts = Object.fromEntries((await store.rejectionCounts()).map((c) => [c.code, c.count]));
      expect(counts).toEqual({
        WIRE_BAD_SIGNATURE: 1,
        WIRE_UNKNOWN_KID: 1,
        WIRE_MALFORMED: 2,
        WIRE_TOO_LARGE: 1,
        WIRE_GATEWAY_MISMATCH: 1,
      });
      expect(intake.snapshot().rejected).toEqual(counts);
      expect(await store.latestStatus(good.id)).toMatchObject({ status: { state: 'online' } });
      // only the unknown signer's message keeps its bytes (quarantine), and no message names a value
      const quarantined = await store.quarantined(10);
      expect(quarantined.map((q) => q.code)).toEqual(['WIRE_UNKNOWN_KID']);
      expect(intake.snapshot()).toMatchObject({ quarantined: 1, acksSent: 14 });
    } finally {
      await intake.stop();
    }
  });

  it('a flood of junk is counted and never blocks the readings between it', async () => {
    const running = await startIntake(harness);
    try {
      const messages: TestMessage[] = [];
      const valid: TestMessage[] = [];
      for (let i = 0; i < 300; i++) {
        if (i % 15 === 0) {
          const message = batch(good, 1000 + i);
          valid.push(message);
          messages.push(message);
        } else {
          messages.push(junk(`rpm/v1/${good.id}/obs`, randomBytes(1 + (i % 200))));
        }
      }
      await send(running, messages);
      expect(await running.store.countMeasurements()).toBe(valid.length);
      const stats = running.intake.snapshot();
      expect(Object.values(stats.rejected).reduce((a, b) => a + b, 0)).toBe(300 - valid.length);
      expect(stats.acksSent).toBe(300);
    } finally {
      await running.intake.stop();
    }
  });
});

describe('signer rules', () => {
  it('refuses a batch signed with a certificate that expired in 2020', async () => {
    const old = await newGateway(harness.pki.ca, 'gw-old-2020', { issuedAt: Date.UTC(2020, 0, 1), days: 30 });
    enrol(harness, old);
    const running = await startIntake(harness);
    try {
      // signed while the certificate was valid, by its own claim
      await send(running, [batch(old, 0, 2, { sentAt: Date.UTC(2020, 0, 15) }), batch(good, 2000)]);
      expect(await running.store.countMeasurements()).toBe(1);
      expect(await running.store.rejectionCounts()).toEqual([{ code: 'INTAKE_SIGNER_EXPIRED', count: 1 }]);
    } finally {
      await running.intake.stop();
    }
  });

  it('judges expiry at receipt: the grace boundary, `sent` after notAfter, not yet valid', async () => {
    const issuedAt = Math.floor(Date.now() / 1000) * 1000 - 40 * DAY_MS;
    const gw = await newGateway(harness.pki.ca, 'gw-grace-0001', { issuedAt, days: 1 });
    enrol(harness, gw);
    const notAfter = notAfterOf(gw);
    const notBefore = issuedAt - CLOCK_SKEW_MS;
    const scheduler = new SetClockScheduler();
    const running = await startIntake(harness, { scheduler, graceMs: 3 * DAY_MS });
    const grace = 3 * DAY_MS;
    const outcome = async (at: number, message: TestMessage) => {
      scheduler.set(at);
      await send(running, [message]);
      const stored = await Promise.all(message.ids.map((id) => running.store.measurement(id)));
      return stored.every((s) => s !== undefined)
        ? 'stored'
        : Object.keys(running.intake.snapshot().rejected);
    };
    try {
      expect(await outcome(notAfter + grace, batch(gw, 1, 1, { sentAt: notAfter }))).toBe('stored');
      expect(await outcome(notAfter + grace + 1, batch(gw, 2, 1, { sentAt: notAfter - 1000 }))).toEqual([
        'INTAKE_SIGNER_EXPIRED',
      ]);
      expect(await outcome(notAfter - 1000, batch(gw, 3, 1, { sentAt: notAfter + 1 }))).toEqual([
        'INTAKE_SIGNER_EXPIRED',
        'INTAKE_SIGNED_AFTER_EXPIRY',
      ]);
      expect(await outcome(notBefore - CLOCK_SKEW_MS - 1, batch(gw, 4, 1, { sentAt: notBefore }))).toEqual([
        'INTAKE_SIGNER_EXPIRED',
        'INTAKE_SIGNED_AFTER_EXPIRY',
        'INTAKE_SIGNER_NOT_YET_VALID',
      ]);
      expect(await outcome(notBefore - CLOCK_SKEW_MS, batch(gw, 5, 1, { sentAt: notBefore }))).toBe('stored');
    } finally {
      await running.intake.stop();
    }
  });

  it('refuses a revoked signer with its own code once the CRL file changes, and keeps applying a stale CRL', async () => {
    const doomed = await newGateway(harness.pki.ca, 'gw-doomed-0001');
    enrol(harness, doomed);
    const running = await startIntake(harness);
    try {
      await send(running, [batch(doomed, 0)]);
      expect(await running.store.countMeasurements()).toBe(1);

      // a CRL whose nextUpdate has already passed: still applied, and counted as stale
      await revokeCertificate(dir, doomed.certificatePem, 'keyCompromise', {
        days: 1,
        clock: { now: () => Date.now() - 2 * DAY_MS },
      });
      await send(running, [batch(doomed, 1), batch(good, 3000), batch(doomed, 2)]);
      expect(await running.store.countMeasurements()).toBe(2);
      expect(await running.store.rejectionCounts()).toEqual([{ code: 'INTAKE_SIGNER_REVOKED', count: 2 }]);
      expect(running.intake.snapshot().crlStale).toBe(1);
      expect(running.events).toContainEqual({
        type: 'inventory',
        event: expect.objectContaining({ type: 'crl-stale' }),
      });
    } finally {
      await running.intake.stop();
    }
  });
});

describe('quarantine', () => {
  it('keeps a message of an unknown signer and stores it once the inventory knows the gateway', async () => {
    const late = await newGateway(harness.pki.ca, 'gw-late-0001');
    const running = await startIntake(harness);
    try {
      const message = batch(late, 0, 3);
      await send(running, [message, batch(good, 4000)]);
      expect(await running.store.countMeasurements()).toBe(1);
      expect((await running.store.quarantined(10)).map((q) => q.gatewayId)).toEqual([late.id]);

      enrol(harness, late);
      await until('the quarantined readings', async () => (await running.store.countMeasurements()) === 4);
      expect(await running.store.quarantined(10)).toEqual([]);
      const stored = await running.store.measurement(message.ids[0] as string);
      expect(stored?.receipt).toMatchObject({ gatewayId: late.id, topic: 'obs' });
      expect(running.intake.snapshot()).toMatchObject({ quarantined: 1, released: 1 });
    } finally {
      await running.intake.stop();
    }
  });
});

describe('device times', () => {
  it("reads a time without offset in the assignment's zone, else the default zone; Z as it is", async () => {
    const ny = await newGateway(harness.pki.ca, 'gw-zone-ny01');
    const unassigned = await newGateway(harness.pki.ca, 'gw-zone-none');
    enrol(harness, ny);
    enrol(harness, unassigned);
    const running = await startIntake(harness, { defaultTimeZone: 'Europe/Berlin' });
    await running.store.assign({
      gatewayId: ny.id,
      mrn: 'MRN-1',
      from: Date.UTC(2026, 0, 1),
      timeZone: 'America/New_York',
      createdBy: 'test',
      at: Date.now(),
    });
    const local =
      (time: string) => (m: Parameters<NonNullable<Parameters<typeof batch>[3]>['edit'] & {}>[0]) => ({
        ...m,
        time,
        timeSource: 'device' as const,
        deviceTime: time,
      });
    try {
      const gap = batch(ny, 0, 1, { edit: local('2026-03-08T02:30:00') }); // the spring-forward gap
      const overlap = batch(ny, 1, 1, { edit: local('2026-11-01T01:30:00') }); // occurs twice
      const berlin = batch(unassigned, 2, 1, { edit: local('2026-07-01T12:00:00') });
      const utc = batch(ny, 3, 1, { edit: local('2026-07-01T12:00:00Z') });
      await send(running, [gap, overlap, berlin, utc]);
      const at = async (m: TestMessage) => (await running.store.measurement(m.ids[0] as string))?.measuredAt;
      expect(await at(gap)).toBe(Date.parse('2026-03-08T07:30:00Z'));
      expect(await at(overlap)).toBe(Date.parse('2026-11-01T05:30:00Z'));
      expect(await at(berlin)).toBe(Date.parse('2026-07-01T10:00:00Z'));
      expect(await at(utc)).toBe(Date.parse('2026-07-01T12:00:00Z'));
    } finally {
      await running.intake.stop();
    }
  });
});

describe('options', () => {
  it('refuses a grace over 30 days and an unknown default zone', () => {
    const base = {
      broker: { host: '127.0.0.1', port: harness.port },
      tls: { ca: harness.pki.pem.ca, cert: harness.pki.pem.clinic, key: harness.pki.pem.clinicKey },
      clientId: 'clinic-test-options',
      gateways: { caPem: harness.pki.pem.ca },
      store: undefined as never,
    };
    expect(() => new ClinicIntake({ ...base, defaultTimeZone: 'UTC', graceMs: 31 * DAY_MS })).toThrow(
      expect.objectContaining({ code: 'INTAKE_BAD_OPTIONS' }),
    );
    expect(() => new ClinicIntake({ ...base, defaultTimeZone: 'Europe/Atlantis' })).toThrow(
      expect.objectContaining({ code: 'INTAKE_BAD_OPTIONS' }),
    );
  });
});
