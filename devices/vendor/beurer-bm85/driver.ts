import {
  bitNames,
  bloodPressureFeatureSpec,
  bloodPressureMeasurementSpec,
  type Decoder,
  defineDriver,
  deviceInformationCharacteristics,
  type JsonValue,
  type Observation,
  observe,
} from 'rpm-gateway/sdk';
import { decodeBeurerMeasurement } from './beurer-protocol.js';

/**
 * Beurer BM85 upper-arm cuff and the models the Beurer app treats the same way (BM48, ELITE900: inferred, no
 * capture). Standard Blood Pressure Service, non-standard Blood Pressure Measurement frames: see
 * beurer-protocol.ts and README.md.
 */

/**
 * The Beurer app's name test as copied by derdilla/blood-pressure-monitor-fl (ble_read_cubit.dart,
 * isKnownBigEndianDevice): the name, upper-cased and with non-alphanumerics removed, contains BM48, BM85 or
 * ELITE900. Here separators are allowed only where one is plausible ("BM 85", "BM-85", "Elite 900"). BM59, on
 * the list at first, was dropped from it later: it is left to the strict SIG driver.
 */
const BEURER_NAME = /BM[^A-Z0-9]*(?:48|85)|ELITE[^A-Z0-9]*900/i;

/** Measurement Status bits 0-2 (GATT Specification Supplement); bits 3-4 are the pulse-range field, bit 5 below. */
const STATUS_BITS = ['body-movement', 'cuff-fit-loose', 'irregular-pulse'];
const PULSE_RANGES = ['within-range', 'exceeds-upper-limit', 'below-lower-limit', 'reserved'] as const;

function statusNames(raw: number): string[] {
  const names = bitNames(raw & 0x07, STATUS_BITS);
  const range = (raw >> 3) & 0x03;
  if (range === 1) names.push('pulse-rate-exceeds-upper-limit');
  else if (range === 2) names.push('pulse-rate-below-lower-limit');
  if ((raw & 0x20) !== 0) names.push('improper-measurement-position');
  return names;
}

const beurerMeasurementDecoder: Decoder = (bytes) => {
  const m = decodeBeurerMeasurement(bytes);
  const observations: Observation[] = [
    observe('MDC_PRESS_BLD_NONINV_SYS', m.systolic, m.unit),
    observe('MDC_PRESS_BLD_NONINV_DIA', m.diastolic, m.unit),
  ];
  // The BM85 sends the mean as 00 00: it computes none, and 0 is no mean pressure. Any other value is kept.
  if (m.meanArterialPressure.value !== 0) {
    observations.push(observe('MDC_PRESS_BLD_NONINV_MEAN', m.meanArterialPressure, m.unit));
  }
  if (m.pulseRate !== undefined) observations.push(observe('MDC_PULS_RATE_NON_INV', m.pulseRate, '/min'));
  const details: { [k: string]: JsonValue } = { userId: m.userId === 0xff ? null : m.userId };
  if (m.status !== undefined) {
    details['measurementStatus'] = {
      bodyMovement: (m.status & 0x01) !== 0,
      cuffTooLoose: (m.status & 0x02) !== 0,
      irregularPulse: (m.status & 0x04) !== 0,
      pulseRateRange: PULSE_RANGES[(m.status >> 3) & 0x03] as string,
      improperMeasurementPosition: (m.status & 0x20) !== 0,
    };
  }
  if (m.timestamp !== undefined && !m.timestamp.valid) details['deviceTimeInvalid'] = true;
  return [
    {
      observations,
      time: m.timestamp?.iso ?? null,
      status: m.status === undefined ? [] : statusNames(m.status),
      kind: 'measurement',
      details,
    },
  ];
};

export default defineDriver({
  id: 'vendor/beurer-bm85',
  version: '1.0.0',
  name: 'Beurer BM85 blood pressure monitor (and BM48, ELITE900 by name)',
  category: 'blood-pressure',
  match: { services: ['1810'], name: BEURER_NAME, supersedes: ['sig/blood-pressure'] },
  characteristics: [
    {
      ...bloodPressureMeasurementSpec,
      name: 'Blood Pressure Measurement (Beurer byte order)',
      decode: beurerMeasurementDecoder,
    },
    bloodPressureFeatureSpec,
    ...deviceInformationCharacteristics,
  ],
  quirks: {
    pulseRateBigEndian: {
      reason: 'The pulse rate SFLOAT is sent most significant byte first (00 3f = 63/min)',
    },
    measurementStatusBigEndian: {
      reason: 'The measurement status is sent most significant byte first (00 04 = irregular pulse)',
    },
    alwaysSendsUserId: {
      reason: 'A user id byte (0 or 1) follows the pulse rate although flags bit 3 is clear',
    },
    reservedFlagBits: { reason: 'Flags bits 5 and 6 (reserved) are set (flags 0x56); ignored' },
    noMeanArterialPressure: {
      reason: 'The mean arterial pressure is sent as 00 00; a zero mean gives no MDC_PRESS_BLD_NONINV_MEAN',
    },
    recognisedByName: {
      reason:
        'The cuff advertises the standard service 0x1810, so only its name (BM85; BM48 and ELITE900 inferred) tells it from a standard cuff, whose frames the strict SIG driver keeps',
    },
    settleBeforeSubscribe: {
      reason:
        'blood-pressure-monitor-fl waits 100 ms between service discovery and subscribing or the BM85 stays silent; the session subscribes after discovery and its reads, which has not been checked against a BM85',
    },
    intermediateCuffPressureNotUsed: {
      reason: 'The byte order of the BM85 on 0x2A36 is not published, so the driver does not subscribe to it',
    },
  },
  sources: [
    'derdilla/blood-pressure-monitor-fl app/test/features/bluetooth/logic/characteristics/ble_measurement_data_test.dart (four BM85 frames, PR #735 "verified against a Beurer BM85 for both of its users", PR #737 "Recorded from a Beurer BM85")',
    "derdilla/blood-pressure-monitor-fl app/lib/features/bluetooth/logic/ble_read_cubit.dart (isKnownBigEndianDevice: the Beurer app's name list) and characteristics/ble_measurement_data.dart (bigEndian, alwaysSendsUserId)",
    'Bluetooth SIG, Blood Pressure Service 1.1.1, section 3; GATT Specification Supplement, Blood Pressure Measurement (0x2A35)',
  ],
});
