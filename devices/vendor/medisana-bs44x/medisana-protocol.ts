/**
 * Medisana BS44x scales (BS444, BS440, BS430, BS410; made by Transtek) on their vendor service 78B2. Medisana
 * publishes no document; the layout is that of the open-source readers (full list in README.md):
 *
 *   - oliexdev/openScale wiki "Medisana BS444" and BluetoothMedisanaBS44x.java (the setup sequence, the
 *     trigger write, weight /100, body values masked with 0x0FFF and /10);
 *   - keptenkurk/BS440 BS440.py decodeWeight/decodeBody/decodePerson (field offsets, fixed first bytes,
 *     person 1-8, the time offset per model).
 *
 * Every value is little-endian. Both measurement frames are 19 bytes in every published capture.
 *
 *   Weight, 8A21:   [0] flags 1D (bits 5-6: unit, 00 kg) [1-2] weight /100 [3-4] ? [5-8] time [9-12] ?
 *                   [13] person 1-8, FF none [14-18] reserved
 *   Body, 8A22:     [0] 6F [1-4] time [5] person [6-7] kcal [8-9] fat % [10-11] water % [12-13] muscle %
 *                   [14-15] bone kg; the four body values /10 after masking the top nibble (sent as F)
 *                   [16-18] reserved
 *   Person, 8A82:   [0] 84 [2] person [4] 1 male, 2 female [5] age [6] height cm [8] activity
 *   Command, 8A81:  02 + the scale's new clock, u32 (written by the hub; sets the clock, starts the transfer)
 *
 * The time is a count of seconds: since 2010-01-01 on the BS444 and BS410, since 1970-01-01 on the BS440 and
 * BS430 (keptenkurk/BS440 time_offset; openScale's name prefixes). `scaleTime` decides by plausibility.
 */
import { ByteReader, DecodeError } from 'rpm-gateway/sdk';

/** Seconds from 1970-01-01 to 2010-01-01 UTC: the BS444/BS410 clock counts from here. */
export const EPOCH_2010_S = 1_262_304_000;

/**
 * The trigger the hub writes to 8A81: 02 + the scale's new clock, u32 little-endian. The scale takes the four
 * bytes as its clock (keptenkurk/BS440: the write "will resync the scale's RTC"); the readers write the current
 * time (openScale BluetoothMedisanaBS44x.java, keptenkurk/BS440).
 */
export function triggerCommand(clock: number): Uint8Array {
  return Uint8Array.of(0x02, clock & 0xff, (clock >>> 8) & 0xff, (clock >>> 16) & 0xff, clock >>> 24);
}

/**
 * The openScale wiki's own trigger, 02 7B 7B F6 0D: its clock 0x0DF67B7B is 2017-06-04 07:27:55 on a 2010-epoch
 * scale. The hub writes it when its own clock is not known to be synchronised, so that the weighings after it
 * are recognisably on a restarted clock (scaleTime: clock-set-by-trigger) rather than stamped with a wrong time.
 */
export const TRIGGER_CLOCK = 0x0df67b7b;
export const TRIGGER_COMMAND: Uint8Array = triggerCommand(TRIGGER_CLOCK);

/**
 * The clock to write for `now`: seconds since 2010-01-01 UTC, the BS444/BS410 count. A BS440/BS430 (Unix clock)
 * given it counts on from it too, and its weighings then carry 2010 counts, which scaleTime reads on the 2010
 * epoch: true times on every model. Outside what four bytes hold (never, for a synchronised clock after
 * 2010), the fixed trigger.
 */
export function scaleClockAt(now: Date): number {
  const count = Math.floor(now.getTime() / 1000) - EPOCH_2010_S;
  return count >= 0 && count <= 0xffff_ffff ? count : TRIGGER_CLOCK;
}

/** Times a clock restarted by TRIGGER_COMMAND shows for a year after it: not a true time. */
const TRIGGER_WINDOW_S = 366 * 86_400;
/** 2012-01-01: a clock showing an earlier time was never set (the BS44x family came later). */
const EARLIEST_PLAUSIBLE_S = 1_325_376_000;

export const WEIGHT_LENGTH = 19;
export const BODY_LENGTH = 19;
const WEIGHT_FLAGS = 0x1d;
const UNIT_BITS = 0x60;
const BODY_MARKER = 0x6f;
const PERSON_MARKER = 0x84;
const NO_PERSON = 0xff;
const BODY_VALUE_MASK = 0x0fff;

/** A scale time read as a calendar time, or null with why when it cannot be a true time. */
export type ScaleTime =
  | { readonly iso: string; readonly epoch: '2010' | 'unix' }
  | { readonly iso: null; readonly why: 'clock-set-by-trigger' | 'clock-not-set' };

/**
 * Which clock a raw count is from. A BS440/BS430 (Unix) count of a time after 2010 is above EPOCH_2010_S; read
 * on a 2010 clock it would be after 2050. A BS444/BS410 count stays below EPOCH_2010_S until 2050; read as Unix
 * it would be before 2010, before these scales existed. So the count itself tells the epoch (the captures: the
 * BS444's 0x0DF40F80 is 2017 only on the 2010 clock, the BS440's 0x56A00A6E is 2016 only on the Unix clock).
 * Counts within a year after TRIGGER_CLOCK come from a clock the hub's own trigger restarted.
 */
export function scaleTime(raw: number): ScaleTime {
  if (raw >= TRIGGER_CLOCK && raw - TRIGGER_CLOCK < TRIGGER_WINDOW_S) {
    return { iso: null, why: 'clock-set-by-trigger' };
  }
  const unix = raw >= EPOCH_2010_S;
  const seconds = unix ? raw : raw + EPOCH_2010_S;
  if (seconds < EARLIEST_PLAUSIBLE_S) return { iso: null, why: 'clock-not-set' };
  // The readers write the hub's UTC seconds into the clock, so the count is read as UTC wall-clock time.
  return { iso: new Date(seconds * 1000).toISOString().slice(0, 19), epoch: unix ? 'unix' : '2010' };
}

export interface WeightFrame {
  /** Weight in kg (hundredths on the air). */
  readonly weightKg: number;
  readonly time: number;
  /** Person 1-8, or null for a weighing the scale did not assign (FF). */
  readonly person: number | null;
}

export interface BodyFrame {
  readonly time: number;
  readonly person: number | null;
  readonly kcal: number;
  /** Tenths, top nibble masked: fat %, water %, muscle %, bone kg. */
  readonly fatPercent: number;
  readonly waterPercent: number;
  readonly musclePercent: number;
  readonly boneKg: number;
}

function personOf(raw: number): number | null {
  return raw === NO_PERSON ? null : raw;
}

function tenths(r: ByteReader, field: string): number {
  return (r.u16(field) & BODY_VALUE_MASK) / 10;
}

/** Reads a weight frame (8A21); refuses a frame that is not exactly one. */
export function parseWeight(bytes: Uint8Array): WeightFrame {
  const r = new ByteReader(bytes, 'Medisana weight');
  const flags = r.u8('flags');
  if ((flags & ~UNIT_BITS) !== WEIGHT_FLAGS) r.invalid(`flags 0x${flags.toString(16)} are not 1D/3D/5D`);
  if ((flags & UNIT_BITS) !== 0) {
    // openScale's wiki: the unit bits "also affect the weight divider"; only the kg divider (100) is known.
    r.invalid('the scale is set to lb or st:lb, whose weight encoding is not published');
  }
  const weight = r.u16('weight');
  r.take(2, 'unknown bytes 3-4');
  const time = r.u32('timestamp');
  r.take(4, 'unknown bytes 9-12');
  const person = personOf(r.u8('person'));
  r.take(WEIGHT_LENGTH - 14, 'reserved bytes 14-18');
  r.end();
  return { weightKg: weight / 100, time, person };
}

/** Reads a body composition frame (8A22). */
export function parseBody(bytes: Uint8Array): BodyFrame {
  const r = new ByteReader(bytes, 'Medisana body composition');
  const marker = r.u8('marker');
  if (marker !== BODY_MARKER) r.invalid(`first byte 0x${marker.toString(16)} is not 6F`);
  const time = r.u32('timestamp');
  const person = personOf(r.u8('person'));
  const kcal = r.u16('kcal');
  const fatPercent = tenths(r, 'fat');
  const waterPercent = tenths(r, 'water');
  const musclePercent = tenths(r, 'muscle');
  const boneKg = tenths(r, 'bone');
  r.take(BODY_LENGTH - 16, 'reserved bytes 16-18');
  r.end();
  return { time, person, kcal, fatPercent, waterPercent, musclePercent, boneKg };
}

/** Checks a person frame (8A82): the scale's stored profile, which the hub does not report. */
export function checkPerson(bytes: Uint8Array): void {
  if (bytes.length < 9) {
    throw new DecodeError(
      'DECODE_TRUNCATED',
      `Medisana person: needs 9 bytes, got ${bytes.length}`,
      bytes.length,
    );
  }
  if (bytes[0] !== PERSON_MARKER) {
    throw new DecodeError('DECODE_INVALID_FIELD', 'Medisana person: first byte is not 84', 0);
  }
  if (bytes.length > 20) {
    throw new DecodeError('DECODE_TRAILING_BYTES', 'Medisana person: longer than 20 bytes', 20);
  }
}

// ---- Encoders (simulator and tests) --------------------------------------------------------------------

function u16le(out: Uint8Array, at: number, value: number): void {
  out[at] = value & 0xff;
  out[at + 1] = (value >>> 8) & 0xff;
}

function u32le(out: Uint8Array, at: number, value: number): void {
  u16le(out, at, value & 0xffff);
  u16le(out, at + 2, (value >>> 16) & 0xffff);
}

/** A kg weight frame; bytes 3-4 and 9-12 as in the openScale wiki capture (their meaning is unknown). */
export function encodeWeight(frame: WeightFrame): Uint8Array {
  const out = new Uint8Array(WEIGHT_LENGTH);
  out[0] = WEIGHT_FLAGS;
  u16le(out, 1, Math.round(frame.weightKg * 100));
  out[3] = 0x00;
  out[4] = 0xfe;
  u32le(out, 5, frame.time);
  out[9] = 0x6a;
  out[10] = 0x17;
  out[11] = 0x00;
  out[12] = 0xff;
  out[13] = frame.person ?? NO_PERSON;
  return out;
}

/** A body composition frame, each tenths value sent with the top nibble F as the captures show. */
export function encodeBody(frame: BodyFrame): Uint8Array {
  const out = new Uint8Array(BODY_LENGTH);
  out[0] = BODY_MARKER;
  u32le(out, 1, frame.time);
  out[5] = frame.person ?? NO_PERSON;
  u16le(out, 6, frame.kcal);
  const values = [frame.fatPercent, frame.waterPercent, frame.musclePercent, frame.boneKg];
  values.forEach((v, i) => {
    u16le(out, 8 + 2 * i, 0xf000 | (Math.round(v * 10) & BODY_VALUE_MASK));
  });
  return out;
}

/** A person frame (8A82), as keptenkurk/BS440's capture: 84 00 p 80 sex age height 00 activity, 20 bytes. */
export function encodePerson(person: number, male: boolean, age: number, heightCm: number): Uint8Array {
  const out = new Uint8Array(20);
  out.set([PERSON_MARKER, 0x53, person, 0x80, male ? 1 : 2, age, heightCm, 0xe0, 0]);
  return out;
}
