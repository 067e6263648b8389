import {
  encodePlxContinuous,
  encodePlxFeatures,
  encodePlxSpotCheck,
  PLX_FEATURE,
} from '../../../gatt/pulse-oximetry.js';
import { CardioProcess } from '../physiology.js';
import type { ServiceDefinition, VirtualPeripheral } from '../virtual-peripheral.js';
import { defineDeviceModel } from './define-model.js';
import { pastTimes, sendOrStore, Ticker } from './model-context.js';

/**
 * Pulse oximeter (PLXS). Continuous measurement once a second in the layout of the Spezi "status fields and
 * PAI" vector (flags 1C); spot-checks in the layout of the Spezi "all optional fields" vector (flags 0F:
 * timestamp, both status fields, PAI), kept in memory when nobody listens (spot-check storage feature).
 */
export const pulseOximeter = defineDeviceModel({
  address: 'D0:5E:00:00:00:01',
  name: 'PLX-Sim',
  build: (c) => {
    let peripheral: VirtualPeripheral | undefined;
    const gatt: ServiceDefinition[] = [
      {
        uuid: '1822',
        characteristics: [
          c.measurementChar('2a5e', ['indicate']),
          c.measurementChar('2a5f', ['notify']),
          {
            uuid: '2a60',
            properties: ['read'],
            value: encodePlxFeatures({
              supportedFeatures:
                PLX_FEATURE.spotCheckMeasurementStorage |
                PLX_FEATURE.spotCheckTimestamp |
                PLX_FEATURE.pulseAmplitudeIndex,
              measurementStatusSupport: 0x00a0, // measurement ongoing, validated data
              deviceAndSensorStatusSupport: 0x002020, // low perfusion, sensor displaced
            }),
          },
        ],
      },
      ...c.commonServices('PLX-Sim', () => peripheral),
    ];
    const p = c.peripheral(['1822'], gatt);
    peripheral = p;
    const cardio = new CardioProcess(
      c.random.fork(2),
      c.subject.profile.restingPulse,
      c.subject.profile.spo2,
    );
    const ticker = new Ticker(c.scheduler);
    const every = c.streamEvery(1_000);
    const lowPerfusion = () => (cardio.perfusionIndex < 1.5 ? 0x000020 : 0);
    const continuous = () =>
      encodePlxContinuous({
        spo2: { value: cardio.spo2 },
        pulseRate: { value: cardio.pulseRate },
        measurementStatus: 0x0020,
        deviceAndSensorStatus: lowPerfusion(),
        pulseAmplitudeIndex: { value: cardio.perfusionIndex },
      });
    const spotCheck = (t: number) =>
      encodePlxSpotCheck({
        spo2: { value: cardio.spo2 },
        pulseRate: { value: cardio.pulseRate },
        timestamp: p.deviceTime(t),
        measurementStatus: 0x0080,
        deviceAndSensorStatus: lowPerfusion(),
        pulseAmplitudeIndex: { value: cardio.perfusionIndex },
      });
    p.addHooks({
      onSubscribe: (char) => {
        if (char === '2a5f')
          ticker.start(every, () => {
            cardio.advance(every);
            p.emit('2a5f', continuous());
          });
      },
      onUnsubscribe: (char) => {
        if (char === '2a5f') ticker.stop();
      },
      onDisconnect: () => ticker.stop(),
    });
    return {
      peripheral: p,
      measurement: { service: '1822', characteristic: '2a5f' },
      streams: true,
      measure: () => {
        cardio.advance(30_000); // a spot-check takes about half a minute on the finger
        sendOrStore(p, '2a5e', spotCheck(c.scheduler.now()));
      },
      preload: (count, everyMs = 8 * 3_600_000, endingAt = c.scheduler.now()) => {
        for (const t of pastTimes(endingAt, count, everyMs)) {
          cardio.advance(30_000);
          p.storeRecord('2a5e', spotCheck(t));
        }
      },
    };
  },
});
