import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetGateway } from '../../../scripts/support/gateway-fleet.js';
import type { IntakeEvent } from '../../../src/clinic/intake/index.js';
import { until } from '../../support/until.js';
import { ControlledStore } from './controlled-store.js';
import {
  batch,
  enrol,
  type Harness,
  idsOf,
  newGateway,
  publish,
  startHarness,
  startIntake,
  stopHarness,
  type TestMessage,
} from './harness.js';

/**
 * PUBACK only after commit, over real TLS to the embedded broker. The broker's own record of PUBACKs (aedes
 * 'ack') is the witness: a message acknowledged before its readings were committed would be one the hub deletes
 * and the clinic could still lose.
 */
let dir: string;
let harness: Harness;
let gateways: FleetGateway[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-intake-acks-'));
  harness = await startHarness(dir);
  gateways = [];
  for (let i = 0; i < 4; i++) {
    const gateway = await newGateway(harness.pki.ca, `gw-acks-000${i}`);
    enrol(harness, gateway);
    gateways.push(gateway);
  }
});

afterAll(async () => {
  await stopHarness(harness);
  await rm(dir, { recursive: true, force: true });
});

const gw = (i: number) => gateways[i] as FleetGateway;

describe('acknowledgement after commit', () => {
  it('sends no PUBACK while the commit is held back, and sends it once the commit resolves', async () => {
    const { intake, store, acks } = await startIntake(harness);
    try {
      store.hold();
      const message = batch(gw(0), 0, 3);
      await publish(harness, message);
      await until('the commit to start', () => store.commitsStarted === 1);
      // Everything the intake wrote before this round trip (a PUBACK sent early included) has reached the
      // broker when it returns: so no ack now means none was sent.
      await intake.roundTrip();
      expect(acks()).toHaveLength(0);
      expect(await store.countMeasurements()).toBe(0);

      store.release();
      await until('the PUBACK', () => acks().length === 1);
      expect((await store.measurementIds()).sort()).toEqual([...message.ids].sort());
      expect(intake.snapshot()).toMatchObject({ acksSent: 1, commits: 1, measurementsInserted: 3 });
    } finally {
      store.release();
      await intake.stop();
    }
  });

  it('groups many messages into few commits, and acknowledges each only after its own commit', async () => {
    const { intake, store, acks } = await startIntake(harness, {
      group: { maxMessages: 100, maxDelayMs: 5 },
    });
    const sent: TestMessage[] = [];
    const early: string[] = [];
    // Checked by the broker's PUBACK handler itself: is every reading of the acknowledged message committed?
    harness.onAck = (packet) => {
      const ids = idsOf(sent, packet);
      void Promise.all(ids.map((id) => store.measurement(id))).then((found) => {
        if (ids.length === 0 || found.some((s) => s === undefined)) early.push(packet.topic);
      });
    };
    try {
      store.hold();
      for (let i = 0; i < 60; i++) {
        const message = batch(gw(i % 4), 1000 + i * 5, 5);
        sent.push(message);
        await publish(harness, message);
      }
      await until('the first commit to start', () => store.commitsStarted >= 1);
      await until('every message to be read', () => intake.snapshot().received === 60);
      store.release();
      await until('every PUBACK', () => acks().length === 60);
      expect(early).toEqual([]);
      expect(await store.countMeasurements()).toBe(300);
      const stats = intake.snapshot();
      expect(stats.messagesCommitted).toBe(60);
      // one commit held the first message(s); the 50-odd that came meanwhile went into one or two more
      expect(stats.commits).toBeLessThanOrEqual(4);
      expect(stats.maxMessagesPerCommit).toBeGreaterThanOrEqual(30);
    } finally {
      harness.onAck = undefined;
      store.release();
      await intake.stop();
    }
  });

  it('stores a message delivered twice once, and acknowledges both deliveries', async () => {
    const { intake, store, acks } = await startIntake(harness);
    try {
      const message = batch(gw(1), 5000, 4);
      await publish(harness, message);
      await publish(harness, message);
      // a re-sent item travels in another batch with other neighbours (docs/wire-format.md 7.3)
      await publish(harness, batch(gw(1), 5002, 4));
      await until('three PUBACKs', () => acks().length === 3);
      expect(await store.countMeasurements()).toBe(6);
      expect(intake.snapshot()).toMatchObject({ measurementsInserted: 6, measurementDuplicates: 6 });
    } finally {
      await intake.stop();
    }
  });

  it('a failing database acknowledges nothing; the redelivered message is stored once when it is back', async () => {
    const { intake, store, acks, events } = await startIntake(harness);
    try {
      store.failing = new Error('database is down');
      const message = batch(gw(2), 7000, 2);
      await publish(harness, message);
      await until('two failed attempts', () => intake.snapshot().commitFailures >= 2);
      await intake.roundTrip();
      expect(acks()).toHaveLength(0);

      // The connection drops while the database is down: the broker must deliver the message again.
      const disconnects = events.filter((e) => e.type === 'disconnected').length;
      await harness.broker.suspend();
      await until(
        'the intake to notice',
        () => events.filter((e) => e.type === 'disconnected').length > disconnects,
      );
      await harness.broker.resume();
      await until('the redelivery', () => intake.snapshot().received === 2);
      expect(acks()).toHaveLength(0);

      store.failing = undefined;
      await until('the PUBACK of the redelivered copy', () => acks().length === 1);
      await until('both copies committed', () => intake.snapshot().backlog === 0);
      expect((await store.measurementIds()).sort()).toEqual([...message.ids].sort());
      // the first copy's PUBACK belonged to the closed connection: dropped, never sent on the new one
      expect(intake.snapshot()).toMatchObject({ acksSent: 1, acksDropped: 1, measurementsInserted: 2 });
    } finally {
      store.failing = undefined;
      await intake.stop();
    }
  });

  it('stop() finishes the commit in flight, acknowledges it and disconnects', async () => {
    const { intake, store, acks } = await startIntake(harness);
    store.hold();
    const messages = [batch(gw(3), 9000), batch(gw(3), 9001), batch(gw(3), 9002)];
    for (const message of messages) await publish(harness, message);
    await until('every message to be read', () => intake.snapshot().received === 3);
    const stopped = intake.stop();
    store.release();
    await stopped;
    await until('three PUBACKs', () => acks().length === 3);
    expect(await store.countMeasurements()).toBe(3);
  });

  it('readies the store for as many commits as it runs at once, before it connects', async () => {
    const { store } = await startIntake(harness, { group: { maxConcurrent: 3 } });
    expect(store.prepared).toEqual([3]);

    // A store that cannot get ready: start() fails with its error, and the intake never connected.
    const failing = await ControlledStore.open(harness.dir);
    failing.preparing = new Error('the database is not there');
    const events: IntakeEvent[] = [];
    const started = startIntake(harness, { store: failing, onEvent: (event) => events.push(event) });
    await expect(started).rejects.toThrow('the database is not there');
    expect(events.filter((e) => e.type === 'connected')).toEqual([]);
  });
});
