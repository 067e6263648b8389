import { CardioProcess, defineDeviceModel, type ServiceDefinition, Ticker } from 'rpm-gateway/sdk/sim';
import {
  encodeNoninFrame,
  NONIN_CONTINUOUS_OXIMETRY,
  NONIN_CONTROL_POINT,
  NONIN_OXIMETRY_SERVICE,
  NONIN_STATUS,
} from './nonin-protocol.js';

/**
 * Nonin 3230: one Continuous Oximetry value a second while notifications are on (no setup write: Nonin's
 * sample app and andreasdri/nonin-3230-ble only subscribe), with the finger placed correctly (CorrectCheck),
 * SmartPoint passed, display in sync, the simulated patient's SpO2, pulse rate and perfusion, two fresh AAA
 * cells (3.0 V) and the seconds counter running from the connection.
 */
export default defineDeviceModel({
  name: 'Nonin3230_500000001',
  build: (c) => {
    const gatt: ServiceDefinition[] = [
      {
        uuid: NONIN_OXIMETRY_SERVICE,
        characteristics: [
          c.measurementChar(NONIN_CONTINUOUS_OXIMETRY, ['notify']),
          // The control point accepts writes (e.g. "end of measurement"); the model ignores them.
          { uuid: NONIN_CONTROL_POINT, properties: ['write'] },
        ],
      },
    ];
    const p = c.peripheral([NONIN_OXIMETRY_SERVICE], gatt);
    const cardio = new CardioProcess(
      c.random.fork(12),
      c.subject.profile.restingPulse,
      c.subject.profile.spo2,
    );
    const ticker = new Ticker(c.scheduler);
    const every = c.streamEvery(1_000);
    let counter = 0;
    const frame = () =>
      encodeNoninFrame({
        status: NONIN_STATUS.displaySync | NONIN_STATUS.smartPoint | NONIN_STATUS.correctCheck,
        batteryDecivolts: 30,
        pai: Math.round(cardio.perfusionIndex * 100),
        counter: counter++ & 0xffff,
        spo2: cardio.spo2,
        pulseRate: cardio.pulseRate,
      });
    p.addHooks({
      onSubscribe: (char) => {
        if (char === NONIN_CONTINUOUS_OXIMETRY)
          ticker.start(every, () => {
            cardio.advance(every);
            p.emit(NONIN_CONTINUOUS_OXIMETRY, frame());
          });
      },
      onUnsubscribe: (char) => {
        if (char === NONIN_CONTINUOUS_OXIMETRY) ticker.stop();
      },
      onDisconnect: () => {
        ticker.stop();
        counter = 0;
      },
    });
    return {
      peripheral: p,
      measurement: { service: NONIN_OXIMETRY_SERVICE, characteristic: NONIN_CONTINUOUS_OXIMETRY },
      streams: true,
      measure: () => p.emit(NONIN_CONTINUOUS_OXIMETRY, frame()),
      preload: () => undefined, // live values only; the 3230 keeps no records this service offers
    };
  },
});
