import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SimCentral, simulatedDevice } from '../../src/ble/sim/index.js';
import { loadBundledRegistry } from '../../src/drivers/default-registry.js';
import { DriverRegistry } from '../../src/drivers/registry.js';
import type { Driver } from '../../src/drivers/sdk/define-driver.js';
import type { Hub } from '../../src/runtime/hub.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { Store } from '../../src/store/store.js';
import { until } from '../support/until.js';
import {
  type Clinic,
  configOf,
  enrol,
  freePort,
  hubWith,
  KEY_VARIABLE,
  LogCapture,
  STORE_KEY,
  startClinic,
  writeConfig,
} from './hub-rig.js';

/**
 * The hub end to end, in this process: simulated radio, real sessions, the real pipeline, a real encrypted
 * store, the real uplink over mutual TLS to the embedded broker, and a clinic receiver that verifies each
 * signed batch.
 */
let root: string;
let clinic: Clinic;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rpm-hub-'));
  clinic = await startClinic(root);
});
afterAll(async () => {
  await clinic.stop();
  await rm(root, { recursive: true, force: true });
});

const hubs: Hub[] = [];
afterEach(async () => {
  for (const hub of hubs.splice(0)) await hub.stop('test over');
});

let runs = 0;
async function fresh(): Promise<string> {
  const dir = join(root, `run-${++runs}`);
  return dir;
}

const LABEL_MARKER = 'Grandma Qzx7 oximeter';
const PASSKEY_MARKER = '907153';

describe('Hub', () => {
  it('delivers the readings of every enrolled device through the uplink, verified at the clinic, and logs no PHI', async () => {
    const dir = await fresh();
    // The metrics endpoint and the patient page run too, and are read: neither may put PHI in the log.
    const metricsPort = await freePort();
    const pagePort = await freePort();
    const config = configOf(writeConfig(dir, clinic, '', { metricsPort, pagePort }));
    const oximeter = simulatedDevice('sig/pulse-oximeter', { seed: 11 });
    const scale = simulatedDevice('sig/weight-scale', { seed: 12, subject: { weightKg: 87.123 } });
    const meter = simulatedDevice('sig/glucose', { seed: 13, passkey: PASSKEY_MARKER, preload: 3 });
    const neighbour = simulatedDevice('sig/heart-rate', { seed: 14 });
    const central = new SimCentral({
      peripherals: [oximeter, scale, meter, neighbour].map((d) => d.peripheral),
      passkeyProvider: () => PASSKEY_MARKER,
    });
    const [oxId, scaleId, meterId] = await enrol(config, [
      {
        address: oximeter.peripheral.address,
        driverId: 'sig/pulse-oximeter',
        category: 'pulse-oximeter',
        bonded: false,
        label: LABEL_MARKER,
      },
      {
        address: scale.peripheral.address,
        driverId: 'sig/weight-scale',
        category: 'weight-scale',
        bonded: false,
      },
      { address: meter.peripheral.address, driverId: 'sig/glucose', category: 'glucose-meter', bonded: true },
    ]);
    const capture = new LogCapture();
    const hub = hubWith(config, central, capture);
    hubs.push(hub);
    await hub.start();

    const from = (id: string | undefined) => clinic.received.filter((r) => r.measurement.deviceId === id);
    await until('readings of the oximeter at the clinic', () => from(oxId).length >= 3, {
      timeoutMs: 15_000,
    });
    await until('the scale to stream', () =>
      hub.status().devices.some((d) => d.id === scaleId && d.state === 'streaming'),
    );
    scale.measure();
    await until('the weight at the clinic', () => from(scaleId).length >= 1, { timeoutMs: 15_000 });
    await until('the meter records at the clinic', () => from(meterId).length >= 3, { timeoutMs: 15_000 });
    expect(clinic.received.every((r) => r.gatewayId === clinic.pki.gatewayId)).toBe(true);
    // The neighbour's strap was never read.
    expect(new Set(clinic.received.map((r) => r.measurement.deviceId))).toEqual(
      new Set([oxId, scaleId, meterId]),
    );
    expect(clinic.statuses.some((s) => s.state === 'online')).toBe(true);
    const status = hub.status();
    expect(status.hub).toMatchObject({ running: true, gatewayId: clinic.pki.gatewayId });
    expect(status.clock).toMatchObject({ synchronised: true, source: 'not-required', held: 0 });
    expect(status.broker).toMatchObject({ state: 'connected', url: `mqtts://127.0.0.1:${clinic.port}` });
    expect(status.certificate?.status).toBe('ok');
    expect(status.devices.map((d) => d.id).sort()).toEqual([oxId, scaleId, meterId].sort());
    const page = await (await fetch(`http://127.0.0.1:${pagePort}/`)).text();
    expect(page).toContain(LABEL_MARKER); // the patient sees the label; the log must not
    const scrape = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(scrape).toMatch(/^rpm_gateway_readings_stored_total\{lane="live"\} [1-9]/m);

    await hub.stop('test over');
    await until('the offline status at the clinic', () => clinic.statuses.some((s) => s.state === 'offline'));

    // No PHI in any log line: not a reading value, an address, the device label, the passkey.
    // Each line without its own timestamp, whose digits ("13:20:45.312Z") would match a short value like 5.3.
    const text = capture.lines.map((l) => l.replace(/"time":"[^"]*"/, '')).join('\n');
    expect(capture.lines.length).toBeGreaterThan(10);
    for (const line of capture.lines) expect(() => JSON.parse(line)).not.toThrow();
    const markers = new Set<string>([LABEL_MARKER, 'Qzx7', PASSKEY_MARKER]);
    for (const device of [oximeter, scale, meter, neighbour]) {
      markers.add(device.peripheral.address);
      markers.add(device.peripheral.address.replaceAll(':', '_'));
    }
    for (const { measurement } of clinic.received) {
      for (const o of measurement.observations) {
        if (typeof o.value === 'number' && !Number.isInteger(o.value)) markers.add(String(o.value));
      }
    }
    expect([...markers].some((m) => /^87\.\d/.test(m))).toBe(true); // the planted weight was sent
    // The timestamp of every line is the log's own (a value such as 4.2 would match "...44.2..Z" in it), so
    // each line is searched without it, and a number only where it stands as a number of its own.
    const searched = capture.lines
      .map((line) => {
        const { time: _time, ...rest } = JSON.parse(line) as Record<string, unknown>;
        return JSON.stringify(rest);
      })
      .join('\n');
    for (const marker of markers) {
      const standalone = /^\d+\.\d+$/.test(marker)
        ? new RegExp(`(?<![\\d.])${marker.replace('.', '\\.')}(?![\\d])`)
        : undefined;
      if (standalone) expect(searched, `the log holds ${marker}`).not.toMatch(standalone);
      else expect(text, `the log holds ${marker}`).not.toContain(marker);
    }
    expect(text).not.toMatch(/[0-9A-F]{2}(:[0-9A-F]{2}){5}/i);
    expect(capture.events.some((e) => e.event === 'device.state' && e.state === 'streaming')).toBe(true);
  });

  it('keeps delivering from the other devices when one driver throws and another device keeps dropping its link', async () => {
    const dir = await fresh();
    const config = configOf(writeConfig(dir, clinic));
    const bundled = await loadBundledRegistry();
    const broken = (driver: Driver): Driver => ({
      ...driver,
      characteristics: driver.characteristics.map((c) => ({
        ...c,
        decode: () => {
          throw new TypeError('a bug in the driver');
        },
      })),
    });
    const drivers = new DriverRegistry(
      bundled.drivers.map((d) => (d.id === 'sig/heart-rate' ? broken(d) : d)),
    );
    const strap = simulatedDevice('sig/heart-rate', { seed: 21 });
    const away = simulatedDevice('sig/pulse-oximeter', {
      seed: 22,
      address: 'D0:5E:00:00:01:01',
      faults: { disconnectProbability: 1 },
    });
    const oximeter = simulatedDevice('sig/pulse-oximeter', { seed: 23 });
    const central = new SimCentral({ peripherals: [strap, away, oximeter].map((d) => d.peripheral) });
    const [strapId, awayId, oxId] = await enrol(config, [
      {
        address: strap.peripheral.address,
        driverId: 'sig/heart-rate',
        category: 'heart-rate',
        bonded: false,
      },
      {
        address: away.peripheral.address,
        driverId: 'sig/pulse-oximeter',
        category: 'pulse-oximeter',
        bonded: false,
      },
      {
        address: oximeter.peripheral.address,
        driverId: 'sig/pulse-oximeter',
        category: 'pulse-oximeter',
        bonded: false,
      },
    ]);
    const capture = new LogCapture();
    const hub = hubWith(config, central, capture, { drivers });
    hubs.push(hub);
    await hub.start();
    const from = (id: string | undefined) => clinic.received.filter((r) => r.measurement.deviceId === id);
    await until('the strap to fail a decode', () =>
      capture.events.some((e) => e.event === 'device.decode-error' && e.deviceId === strapId),
    );
    await until('the dropping device to lose its link', () =>
      capture.events.some((e) => e.event === 'device.state' && e.deviceId === awayId && e.state === 'lost'),
    );
    const before = from(oxId).length;
    await until('more oximeter readings after both failures', () => from(oxId).length >= before + 3, {
      timeoutMs: 15_000,
    });
    expect(from(strapId)).toEqual([]);
    expect(hub.status().devices.find((d) => d.id === strapId)?.state).toBe('streaming');
  });

  it('starts and stops a session when a device is enrolled or forgotten while it runs', async () => {
    const dir = await fresh();
    const config = configOf(writeConfig(dir, clinic));
    const oximeter = simulatedDevice('sig/pulse-oximeter', { seed: 31 });
    const central = new SimCentral({ peripherals: [oximeter.peripheral] });
    await enrol(config, []);
    const capture = new LogCapture();
    const hub = hubWith(config, central, capture);
    hubs.push(hub);
    await hub.start();
    expect(hub.status().devices).toEqual([]);
    // As the control socket does it: through the running hub's own registry.
    const registry = hub.parts()?.registry;
    if (!registry) throw new Error('the hub runs, so its parts are there');
    const { device } = registry.enrol({
      address: oximeter.peripheral.address,
      driverId: 'sig/pulse-oximeter',
      category: 'pulse-oximeter',
      bonded: false,
    });
    await hub.deviceEnrolled(device.id);
    const from = () => clinic.received.filter((r) => r.measurement.deviceId === device.id);
    await until('readings of the new device', () => from().length >= 2, { timeoutMs: 15_000 });
    registry.forget(device.id);
    await hub.deviceForgotten(device.id);
    expect(hub.status().devices).toEqual([]);
    expect(capture.events.some((e) => e.event === 'device.session-stopped' && e.deviceId === device.id)).toBe(
      true,
    );
  });

  it('refuses to start on a data directory without a store, and creates none', async () => {
    const dir = await fresh();
    const config = configOf(writeConfig(dir, clinic));
    const capture = new LogCapture();
    const hub = hubWith(config, new SimCentral({}), capture);
    await expect(hub.start()).rejects.toMatchObject({ code: 'STORE_MISSING' });
    await hub.stop('start failed');
    await expect(
      Store.open({
        path: join(config.paths.dataDir, 'outbox.db'),
        keys: new EnvKeyProvider(KEY_VARIABLE, { [KEY_VARIABLE]: STORE_KEY }),
        existing: 'must-exist',
      }),
    ).rejects.toMatchObject({ code: 'STORE_MISSING' });
  });
});
