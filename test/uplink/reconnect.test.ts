import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/support/mosquitto.js';
import { ClinicalBroker } from '../../src/broker/clinical-broker.js';
import { identifyClient } from '../../src/broker/identify.js';
import { createDevelopmentPki, type DevelopmentPki, signingCredentials } from '../../src/pki/index.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { Outbox } from '../../src/store/outbox.js';
import { signedCodec } from '../../src/uplink/signed-codec.js';
import { Uplink, type UplinkEvent } from '../../src/uplink/uplink.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';
import { gatewayTopics } from '../../src/wire/index.js';
import { until } from '../support/until.js';

/**
 * The reconnect schedule in virtual time: the sockets are real (a closed port refuses each attempt, then the
 * embedded broker accepts one), only the waits between attempts run on a VirtualScheduler. An attempt is
 * observed where it starts: the uplink loads the TLS material first thing in every attempt.
 */
let dir: string;
let pki: DevelopmentPki;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-reconnect-'));
  pki = await createDevelopmentPki(dir);
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('uplink reconnect backoff in virtual time', () => {
  it('retries a refused broker exactly at the backoff delays, then connects when it comes up', async () => {
    const scheduler = new VirtualScheduler();
    const port = await freePort(); // nothing listens here yet: every attempt is refused at once
    const outbox = new Outbox({
      path: join(dir, 'reconnect.db'),
      keys: new EnvKeyProvider('K', { K: 'a7'.repeat(32) }),
    });
    await outbox.open();
    const attemptsAt: number[] = [];
    const events: UplinkEvent[] = [];
    const failed = () => events.filter((e) => e.type === 'connect-failed');
    const credentials = signingCredentials(pki.pem.gateway, pki.pem.gatewayKey);
    const uplink = new Uplink({
      gatewayId: pki.gatewayId,
      brokers: [{ host: '127.0.0.1', port, servername: 'localhost' }],
      tls: async () => {
        attemptsAt.push(scheduler.now());
        return { ca: pki.pem.ca, cert: pki.pem.gateway, key: pki.pem.gatewayKey };
      },
      outbox,
      codec: signedCodec({ gatewayId: pki.gatewayId, version: 't', outbox, credentials: () => credentials }),
      topics: gatewayTopics(pki.gatewayId),
      scheduler,
      // A fixed draw: full jitter then gives exactly half of each ceiling (1, 2, 4, 8, 8 s).
      random: () => 0.5,
      backoff: { baseMs: 1_000, capMs: 8_000, stableAfterMs: 60_000 },
      onEvent: (e) => events.push(e),
    });
    const start = scheduler.now();
    let broker: ClinicalBroker | undefined;
    uplink.start();
    try {
      for (let n = 1; n <= 5; n++) {
        await until(`attempt ${n} to be refused`, () => failed().length === n);
        const { retryInMs } = failed()[n - 1] as { retryInMs: number };
        await scheduler.advanceAsync(retryInMs - 1);
        expect(attemptsAt).toHaveLength(n); // not one millisecond early
        await scheduler.advanceAsync(1);
        expect(attemptsAt).toHaveLength(n + 1); // and on the dot
      }
      expect(
        failed()
          .slice(0, 5)
          .map((e) => (e as { retryInMs: number }).retryInMs),
      ).toEqual([500, 1_000, 2_000, 4_000, 4_000]);
      expect(attemptsAt.map((t) => t - start)).toEqual([0, 500, 1_500, 3_500, 7_500, 11_500]);

      // The broker comes up while attempt 6 is under way or refused; the next scheduled attempt connects.
      await until('attempt 6 to be refused', () => failed().length === 6);
      broker = new ClinicalBroker({
        ca: pki.pem.ca,
        cert: pki.pem.broker,
        key: pki.pem.brokerKey,
        port,
        identify: identifyClient,
      });
      await broker.start();
      await scheduler.advanceAsync(4_000);
      expect(attemptsAt).toHaveLength(7);
      await until('the uplink to connect', () => uplink.connected);
      expect(events.at(-1)).toMatchObject({ type: 'connected', attempt: 7 });
    } finally {
      await uplink.stop();
      await broker?.stop();
      outbox.close();
    }
  });
});

describe('broker failover', () => {
  it('tries the brokers in order, moves to the next after each failure with the backoff, and wraps around', async () => {
    const scheduler = new VirtualScheduler();
    const [deadA, deadB] = [await freePort(), await freePort()];
    const live = new ClinicalBroker({
      ca: pki.pem.ca,
      cert: pki.pem.broker,
      key: pki.pem.brokerKey,
      identify: identifyClient,
    });
    const livePort = (await live.start()).port;
    const outbox = new Outbox({
      path: join(dir, 'failover.db'),
      keys: new EnvKeyProvider('K', { K: 'a8'.repeat(32) }),
    });
    await outbox.open();
    const events: UplinkEvent[] = [];
    const failed = () => events.filter((e) => e.type === 'connect-failed');
    const credentials = signingCredentials(pki.pem.gateway, pki.pem.gatewayKey);
    const uplink = new Uplink({
      gatewayId: pki.gatewayId,
      brokers: [
        { host: '127.0.0.1', port: deadA, servername: 'localhost' },
        { host: '127.0.0.1', port: deadB, servername: 'localhost' },
        { host: '127.0.0.1', port: livePort, servername: 'localhost' },
      ],
      tls: async () => ({ ca: pki.pem.ca, cert: pki.pem.gateway, key: pki.pem.gatewayKey }),
      outbox,
      codec: signedCodec({ gatewayId: pki.gatewayId, version: 't', outbox, credentials: () => credentials }),
      topics: gatewayTopics(pki.gatewayId),
      scheduler,
      random: () => 0.5,
      backoff: { baseMs: 1_000, capMs: 8_000, stableAfterMs: 60_000 },
      onEvent: (e) => events.push(e),
    });
    uplink.start();
    try {
      await until('the first broker to refuse', () => failed().length === 1);
      expect(failed()[0]).toMatchObject({
        broker: `127.0.0.1:${deadA}`,
        next: `127.0.0.1:${deadB}`,
        retryInMs: 500,
      });
      await scheduler.advanceAsync(500);
      await until('the second broker to refuse', () => failed().length === 2);
      expect(failed()[1]).toMatchObject({
        broker: `127.0.0.1:${deadB}`,
        next: `127.0.0.1:${livePort}`,
        retryInMs: 1_000,
      });
      await scheduler.advanceAsync(1_000);
      await until('the third broker to take the connection', () => uplink.connected);
      expect(uplink.broker).toBe(`127.0.0.1:${livePort}`);
      expect(events.at(-1)).toMatchObject({ type: 'connected', broker: `127.0.0.1:${livePort}`, attempt: 3 });

      // The third broker goes away: the next attempt wraps around to the first.
      await live.stop();
      await until('the loss to be noticed', () => events.some((e) => e.type === 'disconnected'));
      expect(events.find((e) => e.type === 'disconnected')).toMatchObject({
        broker: `127.0.0.1:${livePort}`,
        next: `127.0.0.1:${deadA}`,
      });
    } finally {
      await uplink.stop();
      await live.stop().catch(() => undefined);
      outbox.close();
    }
  });
});
