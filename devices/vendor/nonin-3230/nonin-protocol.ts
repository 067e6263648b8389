/**
 * Nonin Continuous Oximetry characteristic (0AAD7EA0-0D60-11E2-8E3C-0002A5D5C51B) of the Nonin Oximetry Service
 * (46A970E0-0D5F-11E2-8B5E-0002A5D5C51B), as sent by the Nonin 3230 and WristOx2 3150 BLE oximeters once a
 * second. Layout: Nonin, "Nonin Continuous Oximetry Characteristic", document 113142-000-02 Rev B (cited by
 * the public readers below), and Nonin's own "NONIN3230 Mini iOS Application" (2013, Revision 1.0)
 * PulseOximeterClass parseData, which documents every field. Multi-byte fields are big-endian ("Nonin uses
 * Big-endian format", M. Villarroel, swift-async_pulse_ox ble_nco_spec_decoder.swift).
 *
 *   0     length   the value's length in bytes (10 in Rev B)
 *   1     status   bit 0 display synchronised to this packet | bit 1 weak signal (pulse modulation 0.3 % or
 *                   less) | bit 2 SmartPoint (the data passed Nonin's SmartPoint algorithm) | bit 3 searching
 *                   (no consecutive good pulses) | bit 4 CorrectCheck (finger placed correctly) | bit 5 low
 *                   battery | bit 6 encrypted connection
 *   2     battery  battery voltage, 0.1 V
 *   3-4   PAI      pulse amplitude index (perfusion), 0.01 %
 *   5-6   counter  seconds since the device went into run mode, 0-65535
 *   7     SpO2     0-100 %, 127 = missing
 *   8-9   pulse    0-325 /min, 511 = missing
 *
 * Pure: no state, no exceptions except the ByteReader's DecodeError.
 */
import { ByteReader } from 'rpm-gateway/sdk';

export const NONIN_OXIMETRY_SERVICE = '46a970e0-0d5f-11e2-8b5e-0002a5d5c51b';
export const NONIN_CONTINUOUS_OXIMETRY = '0aad7ea0-0d60-11e2-8e3c-0002a5d5c51b';
/** Control point (write); not needed to stream, see README.md. */
export const NONIN_CONTROL_POINT = '1447af80-0d60-11e2-88b6-0002a5d5c51b';

/** The Rev B value's length; the length byte may announce more (later fields), never less. */
export const NONIN_FRAME_LENGTH = 10;
/** SpO2 byte meaning "missing" (NONIN3230 Mini iOS Application parseData: "127 indicates missing"). */
export const NONIN_SPO2_MISSING = 127;
/** Pulse rate meaning "missing" ("511 indicates missing"). */
export const NONIN_PULSE_MISSING = 511;
/** Highest pulse rate the device reports ("Pulse Rate in beats per minute, 0-325"). */
export const NONIN_PULSE_MAX = 325;

export const NONIN_STATUS = {
  displaySync: 0x01,
  weakSignal: 0x02,
  smartPoint: 0x04,
  searching: 0x08,
  correctCheck: 0x10,
  lowBattery: 0x20,
  encrypted: 0x40,
} as const;

export interface NoninFrame {
  /** Byte 1 as sent. */
  readonly status: number;
  /** Byte 2: battery voltage in 0.1 V. */
  readonly batteryDecivolts: number;
  /** Bytes 3-4: pulse amplitude index in 0.01 %. */
  readonly pai: number;
  /** Bytes 5-6: seconds since the device entered run mode. */
  readonly counter: number;
  /** Byte 7: SpO2 %, 127 = missing. */
  readonly spo2: number;
  /** Bytes 8-9: pulse rate /min, 511 = missing. */
  readonly pulseRate: number;
}

function u16be(r: ByteReader, field: string): number {
  const b = r.take(2, field);
  return ((b[0] as number) << 8) | (b[1] as number);
}

/**
 * Reads one characteristic value. The length byte must equal the value's length (a value cut short or run on
 * is refused, as the public readers do); bytes it announces beyond the Rev B fields are skipped, since they can
 * only be fields a later revision appended.
 */
export function parseNoninFrame(bytes: Uint8Array): NoninFrame {
  const r = new ByteReader(bytes, 'Nonin continuous oximetry');
  const length = r.u8('length');
  if (length !== bytes.length) {
    r.invalid(`the length byte announces ${length} bytes, the value has ${bytes.length}`, 0);
  }
  const frame: NoninFrame = {
    status: r.u8('status'),
    batteryDecivolts: r.u8('battery voltage'),
    pai: u16be(r, 'pulse amplitude index'),
    counter: u16be(r, 'seconds counter'),
    spo2: r.u8('SpO2'),
    pulseRate: u16be(r, 'pulse rate'),
  };
  r.rest(); // fields appended after Rev B, announced by the length byte
  return frame;
}

/** Encodes one Rev B value (simulator and tests). Fields are masked to their widths. */
export function encodeNoninFrame(frame: NoninFrame): Uint8Array {
  return Uint8Array.of(
    NONIN_FRAME_LENGTH,
    frame.status & 0xff,
    frame.batteryDecivolts & 0xff,
    (frame.pai >> 8) & 0xff,
    frame.pai & 0xff,
    (frame.counter >> 8) & 0xff,
    frame.counter & 0xff,
    frame.spo2 & 0xff,
    (frame.pulseRate >> 8) & 0xff,
    frame.pulseRate & 0xff,
  );
}
