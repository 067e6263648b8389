import { describe, expect, it } from 'vitest';
import { isBciFrame } from '../../devices/vendor/berrymed-bm1000/bci-protocol.js';
import { encodeContecMeasurement } from '../../devices/vendor/contec-cms50d-bt/contec-protocol.js';
import { type DecodeError, FrameError } from '../../src/errors.js';
import { normalizeUuid } from '../../src/gatt/uuid.js';
import { registry, sessionRig } from './session-rig.js';
import { unthinned } from './thinning-support.js';

/**
 * A framed vendor stream through a real DeviceSession against the simulator, in virtual time: the session runs
 * notifications through the connection's framer, delivers one reading per whole frame (the frame is the
 * reading's payload), reports frame errors with their byte counts and goes on, and starts a fresh framer on
 * every connection. The BerryMed tests count every frame, so they use the driver without its declared thinning
 * (one reading a second: thinning.test.ts); the framer under it is the same.
 */
const BCI_TX = normalizeUuid('49535343-1e4d-4bd9-ba61-23c647249616');
const CONTEC_NOTIFY = normalizeUuid('ff02');
const BERRYMED_EVERY_FRAME = unthinned(registry, 'vendor/berrymed-bm1000');

function recordErrors() {
  const errors: string[] = [];
  return {
    errors,
    onDecodeError: (_uuid: string, error: DecodeError) =>
      errors.push(`${error.code}${error instanceof FrameError ? ` ${error.bytes}` : ''}`),
  };
}

describe('framed streams in a device session', () => {
  it('BerryMed: frames that straddle 20-byte notifications all become readings, one frame each', async () => {
    const { errors, onDecodeError } = recordErrors();
    // The simulated oximeter starts three bytes into a frame, so every frame after that straddles two
    // notifications except one in four.
    const r = sessionRig('vendor/berrymed-bm1000', {
      device: { misalignedStream: true },
      session: { onDecodeError },
      driver: BERRYMED_EVERY_FRAME,
    });
    await r.central.start();
    r.session.start();
    await r.advance(1_000);
    expect(r.session.state).toBe('streaming');
    const readings = r.readings.filter((x) => x.characteristic === BCI_TX);
    // Four frames per 20-byte notification, less the one still unfinished: none lost to a boundary.
    expect(readings.length).toBeGreaterThan(90);
    expect((readings.length + 1) % 4).toBe(0);
    expect(readings.every((x) => x.payload.length === 5 && isBciFrame(x.payload))).toBe(true);
    expect(errors).toEqual(['DECODE_FRAME_GARBAGE 3']);
    await r.session.stop();
    // The attempt's end reports the unfinished frame the framer held.
    expect(errors).toEqual(['DECODE_FRAME_GARBAGE 3', 'DECODE_TRUNCATED 2']);
  });

  it('BerryMed: a new connection starts a new framer; no frame is glued from two links', async () => {
    const { errors, onDecodeError } = recordErrors();
    const r = sessionRig('vendor/berrymed-bm1000', {
      device: { misalignedStream: true },
      session: { onDecodeError },
      driver: BERRYMED_EVERY_FRAME,
    });
    await r.central.start();
    r.session.start();
    await r.advance(500);
    const before = r.readings.length;
    expect(before).toBeGreaterThan(0);
    r.device.peripheral.dropLink('link-loss');
    expect(errors).toEqual(['DECODE_FRAME_GARBAGE 3', 'DECODE_TRUNCATED 2']);
    await r.advance(30_000);
    expect(r.session.state).toBe('streaming');
    expect(r.readings.length).toBeGreaterThan(before);
    // Whatever the device sent in between, every delivered payload is one whole frame.
    expect(r.readings.every((x) => isBciFrame(x.payload))).toBe(true);
    await r.session.stop();
  });

  it('Contec: a bad checksum and garbage are reported and counted, and the good frames around them still arrive', async () => {
    const { errors, onDecodeError } = recordErrors();
    const r = sessionRig('vendor/contec-cms50d-bt', { session: { onDecodeError } });
    await r.central.start();
    r.session.start();
    await r.advance(2_000);
    expect(r.session.state).toBe('streaming');
    const good = encodeContecMeasurement({ flags: 4, pulseRate: 61, spo2: 97, perfusionIndex: undefined });
    const bad = good.slice();
    bad[4] = 96; // SpO2 changed, checksum not: a corrupted frame
    const before = r.readings.length;
    // Garbage, a corrupted frame, a good frame split in two, in three notifications.
    expect(
      r.device.peripheral.emit(CONTEC_NOTIFY, Uint8Array.of(0x11, 0x22, ...bad, ...good.subarray(0, 3))),
    ).toBe(true);
    r.device.peripheral.emit(CONTEC_NOTIFY, good.subarray(3));
    expect(errors).toEqual(['DECODE_FRAME_GARBAGE 2', 'DECODE_CHECKSUM 8']);
    const injected = r.readings.slice(before);
    expect(injected).toHaveLength(1);
    expect(injected[0]?.reading.observations).toEqual([
      { code: 'MDC_PULS_OXIM_PULS_RATE', value: 61, unit: '/min' },
      { code: 'MDC_PULS_OXIM_SAT_O2', value: 97, unit: '%' },
    ]);
    expect(Buffer.from(injected[0]?.payload ?? []).equals(Buffer.from(good))).toBe(true);
    // The device's own stream goes on being decoded after them.
    await r.advance(5_000);
    expect(r.readings.length).toBeGreaterThan(before + 3);
    expect(r.session.state).toBe('streaming');
    await r.session.stop();
  });
});
