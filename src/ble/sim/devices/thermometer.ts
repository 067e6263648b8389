import { encodeMeasurementInterval, encodeTemperatureMeasurement } from '../../../gatt/thermometer.js';
import type { ServiceDefinition, VirtualPeripheral } from '../virtual-peripheral.js';
import { defineDeviceModel } from './define-model.js';
import { pastTimes, sendOrStore } from './model-context.js';

/**
 * Health thermometer. Layout of the Nordic vector (flags 06: Celsius, timestamp, temperature type; FLOAT
 * mantissa with a negative exponent); type 3 (ear) in every measurement, so no Temperature Type
 * characteristic; a few settling values on Intermediate Temperature when subscribed.
 */
export const thermometer = defineDeviceModel({
  address: 'D0:5E:00:00:00:03',
  name: 'Thermo-Sim',
  build: (c) => {
    let peripheral: VirtualPeripheral | undefined;
    const gatt: ServiceDefinition[] = [
      {
        uuid: '1809',
        characteristics: [
          c.measurementChar('2a1c', ['indicate']),
          c.measurementChar('2a1e', ['notify']),
          { uuid: '2a21', properties: ['read'], value: encodeMeasurementInterval(0) },
        ],
      },
      ...c.commonServices('Thermo-Sim', () => peripheral),
    ];
    const p = c.peripheral(['1809'], gatt);
    peripheral = p;
    const encode = (t: number, temperature = c.subject.temperature(t)) =>
      encodeTemperatureMeasurement({
        unit: 'celsius',
        temperature,
        timestamp: p.deviceTime(t),
        temperatureType: 3,
      });
    return {
      peripheral: p,
      measurement: { service: '1809', characteristic: '2a1c' },
      streams: false,
      measure: () => {
        const t = c.scheduler.now();
        const final = c.subject.temperature(t);
        if (p.isSubscribed('2a1e')) {
          for (const below of [0.6, 0.3, 0.1]) {
            p.emit(
              '2a1e',
              encodeTemperatureMeasurement({
                unit: 'celsius',
                temperature: Math.round((final - below) * 10) / 10,
              }),
            );
          }
        }
        sendOrStore(p, '2a1c', encode(t, final));
      },
      preload: (count, everyMs = 12 * 3_600_000, endingAt = c.scheduler.now()) => {
        for (const t of pastTimes(endingAt, count, everyMs)) p.storeRecord('2a1c', encode(t));
      },
    };
  },
});
