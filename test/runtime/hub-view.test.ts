import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { countingErrors } from '../../src/runtime/hub-surfaces.js';
import {
  batteryPercentOf,
  controlStatus,
  type HubView,
  metricsSnapshot,
  pageSnapshot,
} from '../../src/runtime/hub-view.js';
import { createLog } from '../../src/runtime/log.js';
import { UplinkWatch } from '../../src/runtime/uplink-watch.js';
import { oldSpaceBytesPerOperation } from '../support/old-space.js';
import { LogCapture } from './hub-rig.js';

const BROKERS = [
  { host: 'clinic-a.example', port: 8883 },
  { host: 'clinic-b.example', port: 8884 },
];

describe('UplinkWatch', () => {
  it('follows the connection through failover, keeping when each state began', () => {
    let now = 1_000;
    const watch = new UplinkWatch(BROKERS, () => now);
    expect(watch.view).toEqual({ state: 'disconnected', index: null, broker: null, sinceMs: null });
    watch.started();
    now = 2_000;
    watch.event({
      type: 'connect-failed',
      broker: 'clinic-a.example:8883',
      error: 'ECONNREFUSED',
      retryInMs: 100,
      next: 'clinic-b.example:8884',
    });
    // Still connecting, since the start, now towards the second broker.
    expect(watch.view).toEqual({ state: 'connecting', index: 1, broker: BROKERS[1], sinceMs: 1_000 });
    now = 3_000;
    watch.event({ type: 'connected', broker: 'clinic-b.example:8884', attempt: 2 });
    expect(watch.view).toMatchObject({ state: 'connected', index: 1, sinceMs: 3_000 });
    watch.stopped();
    expect(watch.view).toMatchObject({ state: 'disconnected', sinceMs: 3_000 });
  });

  it('keeps the last acknowledged batches, newest first, and no more than it was told', () => {
    let now = 0;
    const watch = new UplinkWatch(BROKERS, () => now, 3);
    watch.started();
    watch.event({ type: 'connected', broker: 'clinic-a.example:8883', attempt: 1 });
    for (let i = 1; i <= 5; i++) {
      now = i * 1_000;
      watch.event({ type: 'batch-acked', lane: 'live', records: i, bytes: 100 });
    }
    expect(watch.sent.map((b) => [b.atMs, b.records, b.broker?.host])).toEqual([
      [5_000, 5, 'clinic-a.example'],
      [4_000, 4, 'clinic-a.example'],
      [3_000, 3, 'clinic-a.example'],
    ]);
  });
});

describe('UplinkWatch memory', () => {
  it('returns fewer batches than it keeps, newest first, as copies later acknowledgements leave alone', () => {
    const watch = new UplinkWatch(BROKERS, () => 7, 4);
    watch.started();
    watch.event({ type: 'batch-acked', lane: 'backlog', records: 250, bytes: 100 });
    watch.event({ type: 'batch-acked', lane: 'live', records: 1, bytes: 100 });
    const sent = watch.sent;
    expect(sent.map((b) => [b.lane, b.records])).toEqual([
      ['live', 1],
      ['backlog', 250],
    ]);
    for (let i = 0; i < 6; i++) watch.event({ type: 'batch-acked', lane: 'live', records: 9, bytes: 100 });
    expect(sent.map((b) => b.records)).toEqual([1, 250]);
    expect(watch.sent.map((b) => b.records)).toEqual([9, 9, 9, 9]);
  });

  it('records an acknowledgement without making garbage in the old generation', () => {
    // A live hub acknowledges a batch every ~0.1 s and keeps the last 20 for the patient page, so a record
    // made per batch lives through several young collections (one every ~2 s) into the old generation, where
    // only a full collection frees it. Here a young collection every 10 acknowledgements plays those seconds.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;
    const acked = { type: 'batch-acked', lane: 'live', records: 1, bytes: 100 } as const;
    const perAck = oldSpaceBytesPerOperation(
      () => {
        const watch = new UplinkWatch(BROKERS, () => 7);
        watch.started();
        return watch;
      },
      (watch, i) => {
        watch.event(acked);
        if (i % 10 === 0) gc({ type: 'minor' });
      },
      5_000,
    );
    expect(perAck).toBeLessThan(15);
  });
});

describe('the hub snapshot, as status, metrics and page', () => {
  const view: HubView = {
    running: true,
    gatewayId: 'gw-1',
    hubName: 'Home',
    startedAtMs: Date.UTC(2026, 0, 1),
    nowMs: Date.UTC(2026, 0, 2),
    devices: [
      {
        device: {
          id: 'd1-a',
          address: 'D0:5E:00:00:00:01',
          driverId: 'sig/pulse-oximeter',
          category: 'pulse-oximeter',
          label: 'Bedroom',
          model: null,
          bonded: false,
          enrolledAt: 0,
          updatedAt: 0,
          lastSeenAt: null,
        },
        state: 'streaming',
        lastSeenMs: Date.UTC(2026, 0, 2),
        batteryPercent: 80,
        lastReading: { time: '2026-01-02T00:00:00Z', observations: [] },
      },
    ],
    stats: undefined,
    storePath: '/var/lib/rpm-gateway/outbox.db',
    broker: { state: 'connected', index: 1, broker: BROKERS[1] ?? null, sinceMs: Date.UTC(2026, 0, 1) },
    sent: [],
    clock: { synchronised: true, source: 'not-required', detail: 'not required', held: 0 },
    certificatePem: undefined,
    alertReadings: 2,
    alertRules: [],
  };

  it('says the same thing three ways, with the address nowhere', () => {
    const status = controlStatus(view);
    expect(status.broker).toEqual({
      state: 'connected',
      url: 'mqtts://clinic-b.example:8884',
      since: '2026-01-01T00:00:00.000Z',
    });
    expect(status.devices[0]).toMatchObject({
      state: 'streaming',
      batteryPercent: 80,
      lastSeen: '2026-01-02T00:00:00.000Z',
    });
    expect(status.certificate).toBeNull();
    expect(status.alertReadings).toBe(2);
    const metrics = metricsSnapshot(view);
    expect(metrics.connectedBroker).toBe(1);
    expect([...metrics.sessionStates]).toEqual(['streaming']);
    expect(metrics.certificateNotAfterMs).toBeNull();
    const page = pageSnapshot(view);
    expect(page.connection).toEqual({
      state: 'connected',
      clinic: 'clinic-b.example',
      sinceMs: Date.UTC(2026, 0, 1),
    });
    for (const text of [status, metrics, page].map((v) => JSON.stringify(v))) {
      expect(text).not.toContain('D0:5E');
    }
  });

  it('reads the battery level from the Battery Level read, and says when a device has none', () => {
    const level = (value: number | null) => ({
      '2a19': {
        kind: 'info',
        time: null,
        observations: [{ code: 'MDC_ATTR_VAL_BATT_CHARGE', value, unit: '%' }],
      },
    });
    expect(batteryPercentOf(level(57))).toBe(57);
    expect(batteryPercentOf(level(null))).toBeNull(); // a reserved value
    expect(batteryPercentOf({})).toBeUndefined(); // no Battery Service: keep what was known
  });
});

describe('countingErrors', () => {
  it('counts every warning and error with a stable code, and logs each line as before', () => {
    const capture = new LogCapture();
    const counted: string[] = [];
    const log = countingErrors(createLog({ level: 'debug', redact: true, destination: capture }), (code) =>
      counted.push(code),
    );
    log.error('store.append-failed', { code: 'STORE_IO' });
    log.warn('uplink.connect-failed', { error: 'PKI_CERT_EXPIRED: the certificate expired', broker: 'a:1' });
    log.warn('uplink.disconnected', { reason: 'keepalive timeout' });
    log.info('device.state', { code: 'NOT_AN_ERROR' });
    log.error('device.session-failed', { error: 'something broke' });
    expect(counted).toEqual(['STORE_IO', 'PKI_CERT_EXPIRED']);
    expect(capture.events.map((e) => e.event)).toEqual([
      'store.append-failed',
      'uplink.connect-failed',
      'uplink.disconnected',
      'device.state',
      'device.session-failed',
    ]);
  });
});
