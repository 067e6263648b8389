import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ListenerError } from '../../src/observability/listen.js';
import { GatewayMetrics, type MetricsSnapshot } from '../../src/observability/metrics.js';
import { MetricsServer } from '../../src/observability/metrics-server.js';
import type { SessionState } from '../../src/session/session-states.js';

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);

/** One sample of the exposition text: `name{a="b",...} value` (Prometheus text format 0.0.4). */
interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1] as string] = l[2] as string;
    }
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return samples;
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    ?.value;
}

function snapshot(over: Partial<MetricsSnapshot> = {}): MetricsSnapshot {
  return {
    pending: { alert: 1, live: 2, backlog: 300 },
    oldestPendingAgeMs: 90_500,
    storeBytes: 4096,
    gapRecords: 2,
    evictedReadings: 17,
    sessionStates: ['streaming', 'streaming', 'backoff'] satisfies SessionState[],
    connectedBroker: 1,
    clockSynchronised: true,
    certificateNotAfterMs: NOW + 86_400_000,
    ...over,
  };
}

describe('Prometheus metrics over HTTP', () => {
  const servers: MetricsServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.stop();
  });

  async function started(metrics: GatewayMetrics, host = '127.0.0.1', allowLan = false) {
    const server = new MetricsServer(metrics, { host, port: 0, allowLan });
    servers.push(server);
    const address = await server.start();
    return `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${address.port}`;
  }

  it('serves the hub-reported counters and the scrape-time state, from its own registry', async () => {
    let current = snapshot();
    const metrics = new GatewayMetrics({ brokers: 2, source: () => current, now: () => NOW });
    const base = await started(metrics);

    metrics.readingStored('live');
    metrics.readingStored('live');
    metrics.readingStored('backlog', 5);
    metrics.readingsAcknowledged('live', 2);
    metrics.error('BLE_TIMEOUT');
    metrics.error('BLE_TIMEOUT');
    // Free text (here with a Bluetooth address in it) never becomes a label.
    metrics.error('connect to 12:34:56:78:9A:BC failed');

    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    const text = await response.text();
    const s = parseExposition(text);
    expect(value(s, 'rpm_gateway_readings_stored_total', { lane: 'live' })).toBe(2);
    expect(value(s, 'rpm_gateway_readings_stored_total', { lane: 'backlog' })).toBe(5);
    expect(value(s, 'rpm_gateway_readings_stored_total', { lane: 'alert' })).toBe(0);
    expect(value(s, 'rpm_gateway_readings_acknowledged_total', { lane: 'live' })).toBe(2);
    expect(value(s, 'rpm_gateway_errors_total', { code: 'BLE_TIMEOUT' })).toBe(2);
    expect(value(s, 'rpm_gateway_errors_total', { code: 'OTHER' })).toBe(1);
    expect(text).not.toContain('12:34:56');
    expect(value(s, 'rpm_gateway_outbox_pending_rows', { lane: 'backlog' })).toBe(300);
    expect(value(s, 'rpm_gateway_outbox_oldest_pending_age_seconds')).toBe(90.5);
    expect(value(s, 'rpm_gateway_store_bytes')).toBe(4096);
    expect(value(s, 'rpm_gateway_store_gap_records')).toBe(2);
    expect(value(s, 'rpm_gateway_store_evicted_readings')).toBe(17);
    expect(value(s, 'rpm_gateway_sessions', { state: 'streaming' })).toBe(2);
    expect(value(s, 'rpm_gateway_sessions', { state: 'backoff' })).toBe(1);
    expect(value(s, 'rpm_gateway_sessions', { state: 'needs-pairing' })).toBe(0);
    expect(value(s, 'rpm_gateway_broker_connected', { broker: '0' })).toBe(0);
    expect(value(s, 'rpm_gateway_broker_connected', { broker: '1' })).toBe(1);
    expect(value(s, 'rpm_gateway_clock_synchronised')).toBe(1);
    expect(value(s, 'rpm_gateway_certificate_expiry_seconds')).toBe(86_400);
    expect(value(s, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(value(s, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    // Left out: its 'gc' observer makes old-generation garbage on every collection (process-metrics.ts).
    expect(text).not.toContain('nodejs_gc_duration_seconds');

    // The state is read again at every scrape.
    current = snapshot({
      pending: { alert: 0, live: 0, backlog: 0 },
      oldestPendingAgeMs: null,
      sessionStates: [],
      connectedBroker: null,
      clockSynchronised: false,
      certificateNotAfterMs: NOW - 2_000,
    });
    const again = parseExposition(await (await fetch(`${base}/metrics`)).text());
    expect(value(again, 'rpm_gateway_outbox_pending_rows', { lane: 'backlog' })).toBe(0);
    expect(value(again, 'rpm_gateway_outbox_oldest_pending_age_seconds')).toBe(0);
    expect(value(again, 'rpm_gateway_sessions', { state: 'streaming' })).toBe(0);
    expect(value(again, 'rpm_gateway_broker_connected', { broker: '1' })).toBe(0);
    expect(value(again, 'rpm_gateway_clock_synchronised')).toBe(0);
    expect(value(again, 'rpm_gateway_certificate_expiry_seconds')).toBe(-2);

    current = snapshot({ certificateNotAfterMs: null });
    const unreadable = parseExposition(await (await fetch(`${base}/metrics`)).text());
    expect(value(unreadable, 'rpm_gateway_certificate_expiry_seconds')).toBeNaN();
  });

  it('keeps two hubs apart and leaves the global registry alone', async () => {
    const { register } = await import('prom-client');
    const a = new GatewayMetrics({ brokers: 1, source: () => snapshot(), now: () => NOW });
    const b = new GatewayMetrics({ brokers: 1, source: () => snapshot(), now: () => NOW });
    a.readingStored('alert', 3);
    const sb = parseExposition(await b.scrape());
    expect(value(sb, 'rpm_gateway_readings_stored_total', { lane: 'alert' })).toBe(0);
    expect(register.getSingleMetric('rpm_gateway_readings_stored_total')).toBeUndefined();
  });

  it('answers /metrics only: other paths 404, other methods 405', async () => {
    const metrics = new GatewayMetrics({ brokers: 1, source: () => snapshot(), now: () => NOW });
    const base = await started(metrics);
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/status.json`)).status).toBe(404);
    const post = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('fails the scrape with 503 while the state cannot be read', async () => {
    const metrics = new GatewayMetrics({
      brokers: 1,
      source: () => {
        throw Object.assign(new Error('closed'), { code: 'STORE_CLOSED' });
      },
      now: () => NOW,
    });
    const base = await started(metrics);
    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(503);
    expect(await response.text()).toBe('metrics unavailable [STORE_CLOSED]\n');
  });

  it('refuses a non-loopback address unless allowLan', async () => {
    const metrics = new GatewayMetrics({ brokers: 1, source: () => snapshot(), now: () => NOW });
    expect(() => new MetricsServer(metrics, { host: '0.0.0.0', port: 0, allowLan: false })).toThrow(
      expect.objectContaining({ code: 'LISTEN_NOT_LOOPBACK' }),
    );
    expect(() => new MetricsServer(metrics, { host: '192.168.1.20', port: 0, allowLan: false })).toThrow(
      ListenerError,
    );
    const base = await started(metrics, '0.0.0.0', true);
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
  });

  it('reports a port in use as LISTEN_FAILED, naming the address', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const metrics = new GatewayMetrics({ brokers: 1, source: () => snapshot(), now: () => NOW });
      const server = new MetricsServer(metrics, { host: '127.0.0.1', port, allowLan: false });
      await expect(server.start()).rejects.toMatchObject({
        code: 'LISTEN_FAILED',
        message: `the metrics endpoint cannot listen on 127.0.0.1:${port}: the port is in use by another program`,
      });
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
