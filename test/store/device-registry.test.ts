import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../scripts/support/measurements.js';
import { DeviceRegistry } from '../../src/store/device-registry.js';
import { openEncryptedDatabase } from '../../src/store/encrypted-database.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { Outbox } from '../../src/store/outbox.js';
import { ManualClock } from '../../src/util/clock.js';

const KEY = '3c'.repeat(32);
const CUFF = { address: 'C0:FF:EE:12:34:56', driverId: 'sig/blood-pressure', category: 'blood-pressure' };
const METER = { address: 'AB:CD:EF:01:02:03', driverId: 'sig/glucose', category: 'glucose-meter' };

let dir: string;
let clock: ManualClock;
let outbox: Outbox | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-devices-'));
  clock = new ManualClock();
});
afterEach(async () => {
  outbox?.close();
  outbox = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function open(options: { randomHex?: () => string } = {}): Promise<DeviceRegistry> {
  outbox?.close();
  outbox = new Outbox({ path: join(dir, 'outbox.db'), keys: new EnvKeyProvider('K', { K: KEY }), clock });
  await outbox.open();
  return new DeviceRegistry(outbox.database, { clock, ...options });
}

describe('DeviceRegistry', () => {
  it('enrols a device under a random d1- id that owes nothing to its address, and finds it again', async () => {
    const registry = await open();
    const { device, created } = registry.enrol({ ...CUFF, bonded: false, label: ' kitchen cuff ' });
    expect(created).toBe(true);
    expect(device).toMatchObject({
      address: CUFF.address,
      driverId: 'sig/blood-pressure',
      category: 'blood-pressure',
      label: 'kitchen cuff',
      model: null,
      bonded: false,
      enrolledAt: clock.now(),
      updatedAt: clock.now(),
      lastSeenAt: null,
    });
    expect(device.id).toMatch(/^d1-[0-9a-f]{16}$/);
    expect(device.id.toUpperCase()).not.toContain('C0FFEE');
    expect(registry.get(device.id)).toEqual(device);
    expect(registry.findByAddress('c0:ff:ee:12:34:56')).toEqual(device); // backends differ in case
    expect(registry.list()).toEqual([device]);
    expect(registry.get('d1-0000000000000000')).toBeUndefined();
  });

  it('re-enrolling the same address keeps the id and enrolment time and updates driver, bond and label', async () => {
    const registry = await open();
    const first = registry.enrol({ ...CUFF, bonded: false, label: 'cuff' }).device;
    clock.advance(60_000);
    const again = registry.enrol({
      address: CUFF.address.toLowerCase(),
      driverId: 'vendor/omron-bp',
      category: 'blood-pressure',
      bonded: true,
      model: 'OMRON\0 HEM-7155T\u001b[2J',
    });
    expect(again.created).toBe(false);
    expect(again.device).toMatchObject({
      id: first.id,
      driverId: 'vendor/omron-bp',
      bonded: true,
      label: 'cuff', // kept: no label given
      model: 'OMRON HEM-7155T[2J', // radio strings lose their control characters
      enrolledAt: first.enrolledAt,
      updatedAt: first.enrolledAt + 60_000,
    });
    expect(registry.enrol({ ...CUFF, bonded: true, label: '   ' }).device.label).toBeNull(); // blank clears
    expect(registry.list()).toHaveLength(1);
  });

  it('keeps a handle that is not a Bluetooth address in its own case (CoreBluetooth ids on macOS)', async () => {
    const registry = await open();
    const handle = '5f1a0c9e2b7d4e3f8a6b1c0d9e8f7a6b';
    const { device } = registry.enrol({ ...CUFF, address: handle, bonded: false });
    expect(device.address).toBe(handle);
    expect(registry.findByAddress(handle)?.id).toBe(device.id);
    expect(registry.findByAddress(handle.toUpperCase())).toBeUndefined();
  });

  it('refuses labels that are too long or carry control characters, naming no address', async () => {
    const registry = await open();
    expect(() => registry.enrol({ ...CUFF, bonded: false, label: 'x'.repeat(65) })).toThrow(
      expect.objectContaining({ code: 'DEVICE_INVALID' }),
    );
    expect(() => registry.enrol({ ...CUFF, bonded: false, label: 'a\u001b[31mred' })).toThrow(
      expect.objectContaining({ code: 'DEVICE_INVALID' }),
    );
    expect(() => registry.enrol({ ...CUFF, address: ' ', bonded: false })).toThrow(
      expect.objectContaining({ code: 'DEVICE_INVALID' }),
    );
    expect(registry.list()).toEqual([]);
  });

  it('forgets a device and never hands its id out again', async () => {
    const ids = ['00000000000000aa', '00000000000000aa', '00000000000000bb', '00000000000000cc'];
    const registry = await open({ randomHex: () => ids.shift() as string });
    const cuff = registry.enrol({ ...CUFF, bonded: true }).device;
    expect(cuff.id).toBe('d1-00000000000000aa');
    registry.markSeen(cuff.id, clock.now() + 5);
    expect(registry.get(cuff.id)?.lastSeenAt).toBe(clock.now() + 5);
    const removed = registry.forget(cuff.id);
    expect(removed).toMatchObject({ id: cuff.id, bonded: true, address: CUFF.address });
    expect(registry.get(cuff.id)).toBeUndefined();
    expect(registry.findByAddress(CUFF.address)).toBeUndefined();
    // The next random draw repeats the retired id: it is skipped.
    expect(registry.enrol({ ...METER, bonded: true }).device.id).toBe('d1-00000000000000bb');
    // Enrolling the forgotten device again makes it a new device, with a new id.
    expect(registry.enrol({ ...CUFF, bonded: false }).device.id).toBe('d1-00000000000000cc');
    expect(() => registry.forget(cuff.id)).toThrow(
      expect.objectContaining({ code: 'DEVICE_NOT_ENROLLED', message: expect.stringContaining(cuff.id) }),
    );
    expect(() => registry.require('AA:BB:CC:DD:EE:FF')).toThrow(
      expect.objectContaining({ code: 'DEVICE_NOT_ENROLLED', message: expect.not.stringContaining('AA:BB') }),
    );
  });

  it('keeps devices across a restart, after the readings, in enrolment order', async () => {
    let registry = await open();
    const cuff = registry.enrol({ ...CUFF, bonded: false }).device;
    clock.advance(1);
    const meter = registry.enrol({ ...METER, bonded: true }).device;
    await outbox?.append(spo2Measurement(1, { deviceId: meter.id }));
    registry = await open();
    expect(registry.list().map((d) => d.id)).toEqual([cuff.id, meter.id]);
    expect(outbox?.stats().rows).toBe(1);
  });

  it('stores addresses and labels only encrypted: not in the main file, the WAL or the shared memory', async () => {
    const registry = await open();
    const address = 'FE:ED:FA:CE:CA:FE';
    registry.enrol({ ...CUFF, address, bonded: true, label: 'LABEL-MARKER-5d1e' });
    const path = join(dir, 'outbox.db');
    const needles = [address, 'FEEDFACECAFE', 'LABEL-MARKER-5d1e', 'sig/blood-pressure'];
    const scan = async () => {
      for (const suffix of ['', '-wal', '-shm']) {
        const bytes = await readFile(`${path}${suffix}`).catch(() => Buffer.alloc(0));
        for (const needle of needles)
          expect(bytes.includes(needle), `${needle} in ${suffix || 'main file'}`).toBe(false);
      }
    };
    await scan(); // while the WAL holds the pages
    expect((await readFile(`${path}-wal`)).length).toBeGreaterThan(0);
    outbox?.close();
    outbox = undefined;
    await scan(); // after the checkpoint moved them into the main file
  });

  it('migrates a store written by a version-2 gateway, keeping its readings', async () => {
    const path = join(dir, 'outbox.db');
    const key = Uint8Array.from(Buffer.from(KEY, 'hex'));
    // A version-2 store, as the gateway before enrolment left it: schema 1-2 and one pending reading.
    const { db } = openEncryptedDatabase(path, key, { keyDescription: 'test key', now: () => clock.now() });
    db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL, applied_ms INTEGER NOT NULL)');
    for (const migration of MIGRATIONS.filter((m) => m.version <= 2)) {
      db.exec(migration.sql);
      db.prepare('INSERT INTO schema_version VALUES (?, ?)').run(migration.version, clock.now());
    }
    const body = Buffer.from(JSON.stringify({ type: 'measurement', measurement: spo2Measurement(7) }));
    db.prepare(
      `INSERT INTO outbox (id, kind, lane, device, stable, measured_at, appended_ms, size, body)
       VALUES (?, 0, 1, 'dev-ox-1', 0, ?, ?, ?, ?)`,
    ).run(spo2Measurement(7).id, spo2Measurement(7).time, clock.now(), body.length, body);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();

    const events: { schemaFrom: number; schemaTo: number }[] = [];
    outbox = new Outbox({
      path,
      keys: new EnvKeyProvider('K', { K: KEY }),
      clock,
      onEvent: (e) => {
        if (e.type === 'store.opened') events.push(e);
      },
    });
    await outbox.open();
    expect(events[0]?.schemaFrom).toBe(2);
    expect(events[0]?.schemaTo).toBeGreaterThanOrEqual(3);
    const registry = new DeviceRegistry(outbox.database, { clock });
    expect(registry.list()).toEqual([]);
    const meter = registry.enrol({ ...METER, bonded: true }).device;
    expect(registry.get(meter.id)?.bonded).toBe(true);
    const lease = outbox.lease({ maxRows: 10 });
    expect(lease.records.map((r) => r.id)).toEqual([spo2Measurement(7).id]);
  });
});
