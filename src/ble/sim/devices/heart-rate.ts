import { encodeBodySensorLocation, encodeHeartRateMeasurement } from '../../../gatt/heart-rate.js';
import { BleError } from '../../central.js';
import { CardioProcess } from '../physiology.js';
import type { ServiceDefinition } from '../virtual-peripheral.js';
import { defineDeviceModel } from './define-model.js';
import { CURRENT_TIME, Ticker } from './model-context.js';

/**
 * Heart-rate strap. Layout of the Nordic vector "uint8 value, contact, energy, RR" (flags 1E with energy,
 * 16 without): sensor contact detected, the RR intervals of the beats in each second (1/1024 s), energy
 * expended in every tenth notification (HRS 1.0 3.1.1.3); the heart rate is the mean of those RR intervals.
 */
export const heartRateStrap = defineDeviceModel({
  address: 'D0:5E:00:00:00:06',
  name: 'HRM-Sim',
  build: (c) => {
    const energyReset = (value: Uint8Array) => {
      if (value.length !== 1 || value[0] !== 0x01) {
        throw new BleError('BLE_NOT_SUPPORTED', 'Heart Rate Control Point: value not supported (ATT 0x80)');
      }
      energy = 0;
    };
    let energy = 0;
    const gatt: ServiceDefinition[] = [
      {
        uuid: '180d',
        characteristics: [
          c.measurementChar('2a37', ['notify']),
          { uuid: '2a38', properties: ['read'], value: encodeBodySensorLocation('chest') },
          { uuid: '2a39', properties: ['write'], onWrite: energyReset },
        ],
      },
      ...c.commonServices('HRM-Sim', () => undefined).filter((s) => s.uuid !== CURRENT_TIME),
    ];
    const p = c.peripheral(['180d'], gatt);
    const cardio = new CardioProcess(
      c.random.fork(3),
      c.subject.profile.restingPulse,
      c.subject.profile.spo2,
    );
    const ticker = new Ticker(c.scheduler);
    const every = c.streamEvery(1_000);
    let count = 0;
    let lastRate = c.subject.profile.restingPulse;
    const next = () => {
      const beats = cardio.advance(every);
      if (beats.length > 0) lastRate = Math.round(60 / (beats.reduce((a, b) => a + b, 0) / beats.length));
      energy += (every / 60_000) * (2 + lastRate * 0.05); // kJ: resting expenditure rising with the rate
      const withEnergy = count++ % 10 === 0;
      return encodeHeartRateMeasurement({
        heartRate: lastRate,
        sensorContact: 'detected',
        ...(withEnergy ? { energyExpended: Math.floor(energy) } : {}),
        rrIntervals: beats.map((rr) => Math.round(rr * 1024)),
      });
    };
    p.addHooks({
      onSubscribe: (char) => {
        if (char === '2a37') ticker.start(every, () => p.emit('2a37', next()));
      },
      onUnsubscribe: (char) => {
        if (char === '2a37') ticker.stop();
      },
      onDisconnect: () => ticker.stop(),
    });
    return {
      peripheral: p,
      measurement: { service: '180d', characteristic: '2a37' },
      streams: true,
      measure: () => {
        p.emit('2a37', next());
      },
      preload: () => undefined, // a strap keeps no history
    };
  },
});
