import {
  encodeBloodPressureFeature,
  encodeBloodPressureMeasurement,
  encodeIntermediateCuffPressure,
} from '../../../gatt/blood-pressure.js';
import type { ServiceDefinition, VirtualPeripheral } from '../virtual-peripheral.js';
import { defineDeviceModel } from './define-model.js';
import { pastTimes, sendOrStore } from './model-context.js';

/**
 * Blood pressure cuff. Layout of the Nordic "full" vector in the driver's fixtures (flags 1E: mmHg,
 * timestamp, pulse rate, user id, measurement status); Blood Pressure Feature 03 00 (body movement and cuff
 * fit detection); inflation shown on Intermediate Cuff Pressure when subscribed.
 */
export const bloodPressureCuff = defineDeviceModel({
  address: 'D0:5E:00:00:00:02',
  name: 'BLESmart_Sim',
  build: (c) => {
    let peripheral: VirtualPeripheral | undefined;
    const gatt: ServiceDefinition[] = [
      {
        uuid: '1810',
        characteristics: [
          c.measurementChar('2a35', ['indicate']),
          c.measurementChar('2a36', ['notify']),
          { uuid: '2a49', properties: ['read'], value: encodeBloodPressureFeature(0x0003) },
        ],
      },
      ...c.commonServices('BP-Sim', () => peripheral),
    ];
    const p = c.peripheral(['1810'], gatt);
    peripheral = p;
    const encode = (t: number) => {
      const s = c.subject.bloodPressure(t);
      return encodeBloodPressureMeasurement({
        unit: 'mmHg',
        systolic: s.systolic,
        diastolic: s.diastolic,
        meanArterialPressure: s.meanArterialPressure,
        timestamp: p.deviceTime(t),
        pulseRate: s.pulseRate,
        userId: 1,
        status: 0,
      });
    };
    return {
      peripheral: p,
      measurement: { service: '1810', characteristic: '2a35' },
      streams: false,
      measure: () => {
        const t = c.scheduler.now();
        if (p.isSubscribed('2a36')) {
          // Deflation from above systolic, as a cuff reports it while measuring.
          for (const pressure of [180, 150, 120, 90, 60]) {
            p.emit(
              '2a36',
              encodeIntermediateCuffPressure({
                unit: 'mmHg',
                cuffPressure: pressure,
                timestamp: p.deviceTime(t),
              }),
            );
          }
        }
        sendOrStore(p, '2a35', encode(t));
      },
      preload: (count, everyMs = 6 * 3_600_000, endingAt = c.scheduler.now()) => {
        for (const t of pastTimes(endingAt, count, everyMs)) p.storeRecord('2a35', encode(t));
      },
    };
  },
});
