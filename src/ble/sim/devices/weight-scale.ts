import { encodeWeightMeasurement, encodeWeightScaleFeature } from '../../../gatt/weight-scale.js';
import type { ServiceDefinition, VirtualPeripheral } from '../virtual-peripheral.js';
import { defineDeviceModel } from './define-model.js';
import { pastTimes, sendOrStore } from './model-context.js';

/**
 * Weight scale. Layout of the "SI every field" vector (flags 0E: kg, timestamp, user id, BMI and height);
 * Weight Scale Feature: timestamp, multiple users, BMI, 0.05 kg and 0.01 m resolution.
 */
export const weightScale = defineDeviceModel({
  address: 'D0:5E:00:00:00:04',
  name: 'Scale-Sim',
  build: (c) => {
    let peripheral: VirtualPeripheral | undefined;
    const gatt: ServiceDefinition[] = [
      {
        uuid: '181d',
        characteristics: [
          c.measurementChar('2a9d', ['indicate']),
          {
            uuid: '2a9e',
            properties: ['read'],
            value: encodeWeightScaleFeature({
              timeStampSupported: true,
              multipleUsersSupported: true,
              bmiSupported: true,
              weightResolution: 4,
              heightResolution: 1,
            }),
          },
        ],
      },
      ...c.commonServices('Scale-Sim', () => peripheral),
    ];
    const p = c.peripheral(['181d'], gatt);
    peripheral = p;
    const encode = (t: number) => {
      const weight = c.subject.weight(t);
      return encodeWeightMeasurement({
        imperial: false,
        weight,
        timeStamp: p.deviceTime(t),
        userId: 1,
        bmi: c.subject.bmi(weight),
        height: c.subject.profile.heightM,
      });
    };
    return {
      peripheral: p,
      measurement: { service: '181d', characteristic: '2a9d' },
      streams: false,
      measure: () => sendOrStore(p, '2a9d', encode(c.scheduler.now())),
      preload: (count, everyMs = 24 * 3_600_000, endingAt = c.scheduler.now()) => {
        for (const t of pastTimes(endingAt, count, everyMs)) p.storeRecord('2a9d', encode(t));
      },
    };
  },
});
