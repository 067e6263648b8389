import { describe, expect, it } from 'vitest';
import { encodeBciFrame, parseBciFrame } from '../../devices/vendor/berrymed-bm1000/bci-protocol.js';
import { normalizeUuid } from '../../src/gatt/uuid.js';
import { stamp } from '../../src/pipeline/stamp.js';
import type { SessionReading } from '../../src/session/device-session.js';
import { registry, type SessionRig, sessionRig } from './session-rig.js';
import { unthinned } from './thinning-support.js';

/**
 * Declared thinning (CharacteristicSpec.thin) through a real DeviceSession against the simulated BerryMed, in
 * virtual time: the oximeter sends about 100 BCI frames a second, each repeating the displayed values with one
 * pleth sample, and the session passes on one reading a second; a status change inside a second still arrives
 * within that second; what it passes on is a frame's own reading, so its Measurement is the one it would have
 * been without thinning.
 */
const BCI_TX = normalizeUuid('49535343-1e4d-4bd9-ba61-23c647249616');
const DRIVER = 'vendor/berrymed-bm1000';

async function streaming(rig: SessionRig): Promise<number> {
  await rig.central.start();
  rig.session.start();
  while (rig.session.state !== 'streaming') await rig.advance(10);
  return rig.scheduler.now();
}

const hex = (r: SessionReading) => Buffer.from(r.payload).toString('hex');

describe('thinning a waveform-rate stream in a device session', () => {
  it('100 frames a second for 10 s become about 10 readings, where the same stream unthinned gives about 1000', async () => {
    const thinned = sessionRig(DRIVER);
    const everyFrame = sessionRig(DRIVER, { driver: unthinned(registry, DRIVER) });
    const t0 = await streaming(thinned);
    expect(await streaming(everyFrame)).toBe(t0);
    const countBefore = thinned.readings.length;
    const framesBefore = everyFrame.readings.length;
    await thinned.advance(10_000);
    await everyFrame.advance(10_000);
    expect(everyFrame.readings.length - framesBefore).toBeGreaterThanOrEqual(990);
    const kept = thinned.readings.length - countBefore;
    expect(kept).toBeGreaterThanOrEqual(9);
    expect(kept).toBeLessThanOrEqual(11);
    expect(thinned.readings.every((r) => r.characteristic === BCI_TX && r.stored === false)).toBe(true);
    await thinned.session.stop();
    await everyFrame.session.stop();
  });

  it('a single probe-off frame inside a second is the reading of that second, and the return to normal the next', async () => {
    const r = sessionRig(DRIVER);
    await streaming(r);
    await r.advance(3_000);
    // Half-way into a period: one frame (a whole notification of its own, between the device's 20-byte ones,
    // which hold four whole frames each) says the probe is unplugged and finds no finger.
    await r.advance(500);
    const probeOff = encodeBciFrame({
      signalStrength: 15,
      noSignal: true,
      probeUnplugged: true,
      pulseBeep: false,
      pleth: 0,
      barGraph: 0,
      noFinger: true,
      pulseSearching: false,
      pulseRate: 255,
      spo2: 127,
    });
    const injectedAt = r.scheduler.now();
    const before = r.readings.length;
    expect(r.device.peripheral.emit(BCI_TX, probeOff)).toBe(true);
    // Not passed on at once: the period it fell in is still open.
    expect(r.readings.length).toBe(before);
    await r.advance(1_000);
    const within = r.readings.slice(before);
    expect(within).toHaveLength(1);
    expect(hex(within[0] as SessionReading)).toBe(Buffer.from(probeOff).toString('hex'));
    expect(within[0]?.receivedAt).toBe(injectedAt);
    expect(within[0]?.reading.status).toEqual(['no-signal', 'probe-unplugged', 'no-finger']);
    expect(within[0]?.reading.observations.every((o) => o.value === null)).toBe(true);
    // The frames after it have no status again: that change is the next second's reading.
    await r.advance(1_000);
    const next = r.readings.slice(before + 1);
    expect(next).toHaveLength(1);
    expect(next[0]?.reading.status).toEqual([]);
    expect(next[0]?.reading.observations.every((o) => typeof o.value === 'number')).toBe(true);
    await r.session.stop();
  });

  it('a period without a status change passes on its latest frame', async () => {
    const r = sessionRig(DRIVER);
    const everyFrame = sessionRig(DRIVER, { driver: unthinned(registry, DRIVER) });
    await streaming(r);
    await streaming(everyFrame);
    await r.advance(5_000);
    await everyFrame.advance(5_000);
    const kept = r.readings.at(-1) as SessionReading;
    // The frames of the same stream, unthinned, that arrived in the period of the last kept one: it is the last.
    const inPeriod = everyFrame.readings.filter(
      (x) => x.receivedAt > kept.receivedAt - 1_000 && x.receivedAt <= kept.receivedAt,
    );
    expect(inPeriod.length).toBeGreaterThan(90);
    expect(hex(inPeriod.at(-1) as SessionReading)).toBe(hex(kept));
    await r.session.stop();
    await everyFrame.session.stop();
  });

  it('a kept reading is a frame as it arrived: its Measurement, id included, is the one it has unthinned', async () => {
    const thinned = sessionRig(DRIVER);
    const everyFrame = sessionRig(DRIVER, { driver: unthinned(registry, DRIVER) });
    await streaming(thinned);
    await streaming(everyFrame);
    await thinned.advance(5_000);
    await everyFrame.advance(5_000);
    expect(thinned.readings.length).toBeGreaterThanOrEqual(4);
    // BCI frames carry no device time, so their ids are random (src/model/ids.ts); the same random source
    // gives both the same id exactly when every input of the identity is the same.
    const measurement = (x: SessionReading) => stamp(x, thinned.driver, () => 'same-random-source');
    for (const kept of thinned.readings) {
      const twin = everyFrame.readings.find((x) => x.receivedAt === kept.receivedAt && hex(x) === hex(kept));
      expect(twin).toBeDefined();
      expect(measurement(kept)).toEqual(measurement(twin as SessionReading));
      expect(kept.reading.details?.['pleth']).toBe(parseBciFrame(kept.payload).pleth);
    }
    await thinned.session.stop();
    await everyFrame.session.stop();
  });

  it('a lost link passes on the open period at once, and the next connection starts its own periods', async () => {
    const r = sessionRig(DRIVER);
    await streaming(r);
    await r.advance(2_500);
    const before = r.readings.length;
    r.device.peripheral.dropLink('link-loss');
    // Delivered by the link's end itself, not by a timer.
    expect(r.readings.length).toBe(before + 1);
    const lastOfFirstLink = r.readings.at(-1) as SessionReading;
    while (r.session.state !== 'streaming') await r.advance(100);
    const reconnected = r.scheduler.now();
    await r.advance(3_000);
    const second = r.readings.filter((x) => x.receivedAt >= reconnected);
    expect(second.length).toBeGreaterThanOrEqual(2);
    expect(second.length).toBeLessThanOrEqual(4);
    expect(second[0]?.receivedAt).toBeGreaterThan(lastOfFirstLink.receivedAt);
    await r.session.stop();
  });
});
