import { describe, expect, it } from 'vitest';
import { SimCentral, VirtualPeripheral } from '../../src/ble/sim/index.js';
import { type Decoder, defineDriver } from '../../src/drivers/sdk/define-driver.js';
import { stamp } from '../../src/pipeline/stamp.js';
import { DeviceSession, type SessionReading } from '../../src/session/device-session.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';

/**
 * A stored record re-sent over a framed characteristic keeps its Measurement id whatever the notification
 * boundaries: the session gives each reading its reassembled frame as payload, and the id hashes that (with
 * the device time), so the same frames cut differently on two connections give the same ids.
 * Frame: AA | year-2000 | month | day | hour | minute | second | pulse | XOR of the bytes before it.
 */
const SERVICE = 'ffe0';
const NOTIFY = 'ffe1';

const decode: Decoder = (b) => {
  const two = (n: number) => String(n).padStart(2, '0');
  return [
    {
      observations: [{ code: 'MDC_PULS_OXIM_PULS_RATE', value: b[7] as number, unit: '/min' }],
      time: `${2000 + (b[1] as number)}-${two(b[2] as number)}-${two(b[3] as number)}T${two(b[4] as number)}:${two(b[5] as number)}:${two(b[6] as number)}`,
      kind: 'measurement',
    },
  ];
};

const driver = defineDriver({
  id: 'vendor/test-records',
  version: '1.0.0',
  name: 'Framed stored records',
  category: 'pulse-oximeter',
  match: { services: [SERVICE] },
  characteristics: [
    {
      uuid: NOTIFY,
      service: SERVICE,
      access: 'notify',
      name: 'Records',
      framing: { sync: [0xaa], length: { fixed: 9 }, checksum: { algorithm: 'xor8' } },
      decode,
      emits: [{ code: 'MDC_PULS_OXIM_PULS_RATE', units: ['/min'] }],
    },
  ],
  sources: ['this test'],
});

function frame(minute: number, pulse: number): number[] {
  const bytes = [0xaa, 26, 11, 28, 7, minute, 0, pulse];
  return [...bytes, bytes.reduce((x, b) => x ^ b, 0)];
}

/** Sends `stream` cut into notifications of `cut` bytes on one connection; the readings' ids. */
async function idsWhenCut(stream: readonly number[], cut: number): Promise<string[]> {
  const scheduler = new VirtualScheduler(Date.UTC(2026, 10, 28, 8, 0, 0));
  const peripheral = new VirtualPeripheral({
    address: 'D0:5E:00:00:0A:02',
    services: [SERVICE],
    scheduler,
    gatt: [{ uuid: SERVICE, characteristics: [{ uuid: NOTIFY, properties: ['notify'] }] }],
  });
  const central = new SimCentral({ peripherals: [peripheral], scheduler });
  const readings: SessionReading[] = [];
  const session = new DeviceSession({
    device: { id: 'dev-records', address: peripheral.address },
    driver,
    central,
    scheduler,
    random: () => 0.5,
    utcOffsetMinutes: () => 0,
    onReading: (r) => readings.push(r),
  });
  await central.start();
  session.start();
  await scheduler.advanceAsync(100);
  expect(session.state).toBe('streaming');
  for (let i = 0; i < stream.length; i += cut) {
    expect(peripheral.emit(NOTIFY, Uint8Array.from(stream.slice(i, i + cut)))).toBe(true);
  }
  await session.stop();
  return readings.map((r) => stamp(r, driver).id);
}

describe('ids of framed readings', () => {
  it('are the same when the same frames arrive with different notification boundaries', async () => {
    const stream = [...frame(30, 61), ...frame(31, 62), ...frame(32, 63)];
    const whole = await idsWhenCut(stream, stream.length); // all three merged in one notification
    const twenties = await idsWhenCut(stream, 20); // split at a 20-byte MTU
    const fours = await idsWhenCut(stream, 4); // every frame split in three
    expect(whole).toHaveLength(3);
    expect(new Set(whole).size).toBe(3);
    expect(twenties).toEqual(whole);
    expect(fours).toEqual(whole);
  });
});
