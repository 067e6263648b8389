import { defineDeviceModel, pastTimes, type ServiceDefinition, sendOrStore } from 'rpm-gateway/sdk/sim';
import { encodeBeurerMeasurement } from './beurer-protocol.js';

const BLOOD_PRESSURE_SERVICE = '1810';
const MEASUREMENT = '2a35';
const FEATURE = '2a49';

/**
 * A Beurer BM85: the standard Blood Pressure Service, advertised with the name "BM85", indicating BM85-style
 * frames (flags 0x56, mean 00 00, big-endian pulse and status, user id byte without its flag) built from the
 * simulated patient's blood pressure. Blood Pressure Feature 04 00 (irregular pulse detection, which the captures
 * show it reporting; its real feature value is not published); every measurement is user 0's. Kept for the next connection when nobody listens,
 * as the cuff keeps its memory.
 */
export default defineDeviceModel({
  address: 'D0:5E:00:00:01:85',
  name: 'BM85',
  build: (c) => {
    const gatt: ServiceDefinition[] = [
      {
        uuid: BLOOD_PRESSURE_SERVICE,
        characteristics: [
          c.measurementChar(MEASUREMENT, ['indicate']),
          { uuid: FEATURE, properties: ['read'], value: Uint8Array.of(0x04, 0x00) },
        ],
      },
      ...c.commonServices('BM85', () => p),
    ];
    const p = c.peripheral([BLOOD_PRESSURE_SERVICE], gatt);
    const encode = (t: number) => {
      const s = c.subject.bloodPressure(t);
      return encodeBeurerMeasurement({
        systolic: s.systolic,
        diastolic: s.diastolic,
        pulseRate: s.pulseRate,
        time: p.deviceTime(t),
        userId: 0,
        status: 0,
      });
    };
    return {
      peripheral: p,
      measurement: { service: BLOOD_PRESSURE_SERVICE, characteristic: MEASUREMENT },
      streams: false,
      measure: () => sendOrStore(p, MEASUREMENT, encode(c.scheduler.now())),
      preload: (count, everyMs = 6 * 3_600_000, endingAt = c.scheduler.now()) => {
        for (const t of pastTimes(endingAt, count, everyMs)) p.storeRecord(MEASUREMENT, encode(t));
      },
    };
  },
});
