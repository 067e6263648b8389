import { encodeGlucoseMeasurement, encodeGlucoseMeasurementContext } from '../../../gatt/glucose.js';
import { encodeSfloat } from '../../../gatt/mder-float.js';
import { RacpServer } from '../racp.js';
import { isoOf, type ServiceDefinition, type VirtualPeripheral } from '../virtual-peripheral.js';
import { defineDeviceModel } from './define-model.js';
import { pastTimes } from './model-context.js';

/**
 * Glucose meter. Records in the layout of the Nordic vector (flags 1B: time offset, concentration in kg/L,
 * sensor status, context follows; capillary whole blood at the finger), each followed by a context carrying
 * the meal; read through the RACP. Bonding (with a passkey) is required by default, as GLS requires.
 */
export const glucoseMeter = defineDeviceModel({
  address: 'D0:5E:00:00:00:05',
  name: 'Meter-Sim',
  build: (c) => {
    let peripheral: VirtualPeripheral | undefined;
    let server: RacpServer | undefined;
    const gatt: ServiceDefinition[] = [
      {
        uuid: '1808',
        characteristics: [
          c.measurementChar('2a18', ['notify']),
          c.measurementChar('2a34', ['notify']),
          { uuid: '2a51', properties: ['read'], value: Uint8Array.of(0x03, 0x04) }, // low battery, malfunction, multiple bond
          c.measurementChar('2a52', ['write', 'indicate'], {
            onWrite: (value) => server?.handleWrite(value),
          }),
        ],
      },
      ...c.commonServices('Meter-Sim', () => peripheral),
    ];
    const p = c.peripheral(['1808'], gatt);
    peripheral = p;
    const racp = new RacpServer(p, c.options.racpOrder ? { order: c.options.racpOrder } : {});
    server = racp;
    let sequenceNumber = c.options.firstSequenceNumber ?? 1;
    const record = (t: number) => {
      const s = c.subject.glucose(t);
      const baseTime = p.deviceTime(t);
      const seq = sequenceNumber & 0xffff;
      sequenceNumber++;
      racp.add({
        sequenceNumber: seq,
        measurement: encodeGlucoseMeasurement({
          sequenceNumber: seq,
          baseTime,
          timeOffset: 0,
          concentration: {
            sfloat: encodeSfloat(s.mgPerDl * 1e-5, -5),
            unit: 'kg/L',
            type: 1,
            sampleLocation: 1,
          },
          sensorStatus: 0,
          contextFollows: true,
        }),
        context: encodeGlucoseMeasurementContext({ sequenceNumber: seq, meal: s.meal }),
        userFacingTime: isoOf(baseTime),
      });
    };
    return {
      peripheral: p,
      measurement: { service: '1808', characteristic: '2a18' },
      streams: false,
      racp,
      resetMemory: () => {
        racp.clear();
        sequenceNumber = 1;
      },
      measure: () => record(c.scheduler.now()),
      preload: (count, everyMs = 4 * 3_600_000, endingAt = c.scheduler.now()) => {
        for (const t of pastTimes(endingAt, count, everyMs)) record(t);
      },
    };
  },
});
