/**
 * Beurer BM85 (and, by name, BM48 and ELITE900) Blood Pressure Measurement frames (characteristic 0x2A35 of the
 * standard Blood Pressure Service 0x1810). The frame follows the GATT Specification Supplement layout (Blood
 * Pressure Measurement) except for three deviations, found by derdilla/blood-pressure-monitor-fl (PR #735 and
 * #737, `BleMeasurementData.decode(..., bigEndian: true, alwaysSendsUserId: true)`) on a real BM85:
 *
 *   byte 0       flags: bit 0 kPa, bit 1 time stamp, bit 2 pulse rate, bit 3 user id (clear, see below),
 *                bit 4 measurement status; bits 5 and 6 (reserved) are set: 0x56
 *   bytes 1-6    systolic, diastolic, mean arterial pressure: SFLOAT, little-endian as the specification says
 *                (the BM85 sends the mean as 00 00: it does not compute one)
 *   bytes 7-13   time stamp (GATT Date Time, year little-endian) when flags bit 1
 *   2 bytes      pulse rate SFLOAT, BIG-endian (00 3f = 63/min), when flags bit 2
 *   1 byte       user id (0 or 1 on the two-user BM85), ALWAYS present although flags bit 3 is clear
 *   2 bytes      measurement status, BIG-endian (00 04 = irregular pulse), when flags bit 4
 *
 * Pure: no I/O, no state. Throws only DecodeError (via ByteReader).
 */
import {
  ByteReader,
  type DeviceDateTime,
  decodeSfloat,
  encodeDateTime,
  encodeSfloat,
  type MderNumber,
} from 'rpm-gateway/sdk';

export const FLAG_KPA = 0x01;
export const FLAG_TIMESTAMP = 0x02;
export const FLAG_PULSE_RATE = 0x04;
export const FLAG_USER_ID = 0x08;
export const FLAG_STATUS = 0x10;
/** The flags every BM85 capture carries: time stamp, pulse rate, status, and reserved bits 5 and 6. */
export const BM85_FLAGS = 0x56;

/** Plausible pulse rates (/min). A byte-swapped pulse read from a standard frame lands far outside. */
const PULSE_MIN = 20;
const PULSE_MAX = 300;

export interface BeurerMeasurement {
  readonly flags: number;
  readonly unit: 'mm[Hg]' | 'kPa';
  readonly systolic: MderNumber;
  readonly diastolic: MderNumber;
  readonly meanArterialPressure: MderNumber;
  readonly timestamp: DeviceDateTime | undefined;
  readonly pulseRate: MderNumber | undefined;
  /** 0..254, 255 = unknown user (GATT Specification Supplement, User ID). */
  readonly userId: number;
  /** The 16 status bits in the specification's bit order, undefined when flags bit 4 is clear. */
  readonly status: number | undefined;
}

/** Two bytes read most significant first: the BM85's byte order for pulse rate and status. */
function u16be(r: ByteReader, field: string): number {
  const b = r.take(2, field);
  return ((b[0] as number) << 8) | (b[1] as number);
}

/**
 * Decodes one BM85-style frame. A frame too short for the BM85 layout (a standard frame without the user id
 * byte) is DECODE_TRUNCATED; a pulse rate that is not a plausible rate once byte-swapped (a standard frame with
 * a user id, read the BM85 way) is DECODE_INVALID_FIELD: refused rather than stored as a wrong number.
 */
export function decodeBeurerMeasurement(bytes: Uint8Array): BeurerMeasurement {
  const r = new ByteReader(bytes, 'Beurer Blood Pressure Measurement');
  const flags = r.u8('Flags');
  const systolic = r.sfloat('Systolic');
  const diastolic = r.sfloat('Diastolic');
  const meanArterialPressure = r.sfloat('Mean Arterial Pressure');
  const timestamp = (flags & FLAG_TIMESTAMP) !== 0 ? r.dateTime('Time Stamp') : undefined;
  let pulseRate: MderNumber | undefined;
  if ((flags & FLAG_PULSE_RATE) !== 0) {
    pulseRate = decodeSfloat(u16be(r, 'Pulse Rate'));
    const v = pulseRate.value;
    if (v !== null && (v < PULSE_MIN || v > PULSE_MAX)) {
      r.invalid(
        `pulse rate read big-endian is outside ${PULSE_MIN}-${PULSE_MAX}/min (not a Beurer frame?)`,
        r.offset - 2,
      );
    }
  }
  const userId = r.u8('User ID');
  const status = (flags & FLAG_STATUS) !== 0 ? u16be(r, 'Measurement Status') : undefined;
  r.end();
  return {
    flags,
    unit: (flags & FLAG_KPA) !== 0 ? 'kPa' : 'mm[Hg]',
    systolic,
    diastolic,
    meanArterialPressure,
    timestamp,
    pulseRate,
    userId,
    status,
  };
}

/** What the simulator sends: one BM85 frame (flags 0x56, mean 00 00), the inverse of the decoder. */
export interface BeurerFrameInput {
  readonly systolic: number;
  readonly diastolic: number;
  readonly pulseRate: number;
  readonly time: {
    year: number;
    month: number;
    day: number;
    hours: number;
    minutes: number;
    seconds: number;
  };
  readonly userId: number;
  readonly status: number;
}

export function encodeBeurerMeasurement(m: BeurerFrameInput): Uint8Array {
  const sys = encodeSfloat(m.systolic, 0);
  const dia = encodeSfloat(m.diastolic, 0);
  const pulse = encodeSfloat(m.pulseRate, 0);
  return Uint8Array.of(
    BM85_FLAGS,
    sys & 0xff,
    sys >> 8,
    dia & 0xff,
    dia >> 8,
    0x00,
    0x00,
    ...encodeDateTime(m.time),
    pulse >> 8,
    pulse & 0xff,
    m.userId & 0xff,
    (m.status >> 8) & 0xff,
    m.status & 0xff,
  );
}
