import { type Decoder, defineDriver, type MderNumber, observe, type Reading } from 'rpm-gateway/sdk';
import {
  checkPerson,
  parseBody,
  parseWeight,
  type ScaleTime,
  scaleClockAt,
  scaleTime,
  TRIGGER_CLOCK,
  triggerCommand,
} from './medisana-protocol.js';

/**
 * Medisana BS444 / BS440 / BS430 / BS410 body-composition scales (Transtek OEM) on the vendor service 78B2.
 * See README.md and medisana-protocol.ts.
 */
const SERVICE = '78b2';
const WEIGHT = '8a21';
const BODY = '8a22';
const COMMAND = '8a81';
const PERSON = '8a82';

const NO_VALUE: MderNumber = Object.freeze({ value: null, invalid: 'nan' });
const NO_STATUS: readonly string[] = Object.freeze([]);

/** A percentage of body weight is a reading above 0 and up to 100; anything else is no value. */
function percentOf(value: number): MderNumber {
  return value > 0 && value <= 100 ? { value } : NO_VALUE;
}

function timeFields(t: ScaleTime): Pick<Reading, 'time' | 'status'> {
  return t.iso === null ? { time: null, status: [t.why] } : { time: t.iso, status: NO_STATUS };
}

const weightDecoder: Decoder = (bytes) => {
  const f = parseWeight(bytes);
  return [
    {
      observations: [observe('MDC_MASS_BODY_ACTUAL', { value: f.weightKg }, 'kg')],
      ...timeFields(scaleTime(f.time)),
      kind: 'measurement',
      details: { person: f.person },
    },
  ];
};

const bodyDecoder: Decoder = (bytes) => {
  const f = parseBody(bytes);
  return [
    {
      observations: [
        observe('MDC_BODY_FAT', percentOf(f.fatPercent), '%'),
        observe('MDC_BODY_WATER', percentOf(f.waterPercent), '%'),
        observe('MDC_BODY_MUSCLE', percentOf(f.musclePercent), '%'),
      ],
      ...timeFields(scaleTime(f.time)),
      kind: 'measurement',
      // No verified 11073-10101 code for these two (see quirk uncodedBoneAndKcal): kept, not coded.
      details: { person: f.person, boneKg: f.boneKg, kcal: f.kcal },
    },
  ];
};

const personDecoder: Decoder = (bytes) => {
  checkPerson(bytes);
  return [];
};

export default defineDriver({
  id: 'vendor/medisana-bs44x',
  version: '1.1.0',
  name: 'Medisana BS44x body-composition scale (BS444, BS440, BS430, BS410)',
  category: 'weight-scale',
  // The advertised name is a random number (openScale wiki), so the service alone picks the driver.
  match: { services: [SERVICE] },
  characteristics: [
    {
      uuid: WEIGHT,
      service: SERVICE,
      access: 'indicate',
      name: 'Medisana weight',
      decode: weightDecoder,
      emits: [{ code: 'MDC_MASS_BODY_ACTUAL', units: ['kg'] }],
    },
    {
      uuid: BODY,
      service: SERVICE,
      access: 'indicate',
      name: 'Medisana body composition',
      decode: bodyDecoder,
      emits: [
        { code: 'MDC_BODY_FAT', units: ['%'] },
        { code: 'MDC_BODY_WATER', units: ['%'] },
        { code: 'MDC_BODY_MUSCLE', units: ['%'] },
      ],
    },
    {
      uuid: PERSON,
      service: SERVICE,
      access: 'indicate',
      name: 'Medisana person profile',
      decode: personDecoder,
      emits: [],
    },
  ],
  setup: [
    {
      characteristic: COMMAND,
      service: SERVICE,
      // The hub's time when its clock is synchronised (quirk triggerSetsClock), else the wiki's fixed trigger.
      value: ({ now }) => triggerCommand(now === null ? TRIGGER_CLOCK : scaleClockAt(now)),
      reason:
        'Sets the scale clock and starts the transfer of the stored weighings (02 + the time to 8A81, after the indications are on: openScale wiki "Medisana BS444", BluetoothMedisanaBS44x.java; keptenkurk/BS440)',
    },
  ],
  quirks: {
    randomName: {
      reason:
        'The advertised name is a random number (openScale wiki), so the match rule is the service 78B2 alone',
    },
    epochByModel: {
      reason:
        'The clock counts seconds from 2010-01-01 (BS444, BS410) or 1970-01-01 (BS440, BS430); the count itself tells which (medisana-protocol.ts scaleTime)',
    },
    triggerSetsClock: {
      reason:
        'The trigger write sets the scale clock: to the hub time (seconds since 2010, UTC) when the hub clock is synchronised, else to the fixed 0x0DF67B7B, whose weighings get time null, status clock-set-by-trigger',
    },
    historyResent: {
      reason:
        'The scale sends its whole memory (up to 30 weighings per person) at every connection; the same bytes get the same measurement id',
    },
    maskedBodyValues: {
      reason: 'Body values are sent with the top nibble set (F); masked with 0x0FFF before dividing by 10',
    },
    percentPlausibility: {
      reason:
        'A body percentage of 0 or above 100 (undocumented; seen as no measurement) is value null, invalid nan',
    },
    uncodedBoneAndKcal: {
      reason:
        'Bone mass (kg) and the daily kcal figure have no 11073-10101 code we could verify; they go in details.boneKg and details.kcal',
    },
    kgOnly: {
      reason:
        'A scale set to lb or st:lb (flags 3D/5D) is refused: the openScale wiki says the unit changes the divider, not to what',
    },
    personProfileNotReported: {
      reason:
        '8A82 carries the scale user profile (sex, age, height, activity): subscribed as the readers do, not reported',
    },
  },
  sources: [
    'oliexdev/openScale wiki "Medisana BS444" (github.com/oliexdev/openScale/wiki/Medisana-BS444): service and characteristics, the two 19-byte frames, the trigger 02 7B 7B F6 0D, random name',
    'oliexdev/openScale android_app/app/src/main/java/com/health/openscale/core/bluetooth/BluetoothMedisanaBS44x.java @46bcdacc: setup order, 02 + time written to 8A81, 2010 offset, 0x0FFF mask',
    'keptenkurk/BS440 BS440.py @349287e1: decodePerson, decodeWeight, decodeBody, time_offset per model, captured indications',
    'bwynants/weegschaal (ESPHome port): timeoffset per model; issue #14: bone is kg in the vendor app',
  ],
});
