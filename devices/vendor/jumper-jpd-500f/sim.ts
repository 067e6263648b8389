import { CardioProcess, defineDeviceModel, type ServiceDefinition, Ticker } from 'rpm-gateway/sdk/sim';
import { encodeJumperParameters, JUMPER_NOTIFY, JUMPER_SERVICE, JUMPER_WRITE } from './jumper-protocol.js';

/**
 * Jumper JPD-500F: a 4-byte 0x81 parameter frame (PR, SpO2, PI in 0.1 %) of the simulated patient a second,
 * one frame per notification, from the moment notifications are on (no reader writes a command). The model
 * sends no 0x80 or 0x88 frames: their layouts are undocumented, and bytes made up for them would only test a
 * guess. The advertised name is the one the Jumper readers look for ("My Oximeter"); the match is by service.
 */
export default defineDeviceModel({
  name: 'My Oximeter',
  build: (c) => {
    const gatt: ServiceDefinition[] = [
      {
        uuid: JUMPER_SERVICE,
        characteristics: [
          c.measurementChar(JUMPER_NOTIFY, ['notify']),
          { uuid: JUMPER_WRITE, properties: ['write', 'write-without-response'] },
        ],
      },
    ];
    const p = c.peripheral([JUMPER_SERVICE], gatt);
    const cardio = new CardioProcess(
      c.random.fork(13),
      c.subject.profile.restingPulse,
      c.subject.profile.spo2,
    );
    const ticker = new Ticker(c.scheduler);
    const every = c.streamEvery(1_000);
    const frame = () =>
      encodeJumperParameters({
        pulseRate: cardio.pulseRate,
        spo2: cardio.spo2,
        perfusionIndex: Math.round(cardio.perfusionIndex * 10),
      });
    p.addHooks({
      onSubscribe: (char) => {
        if (char === JUMPER_NOTIFY)
          ticker.start(every, () => {
            cardio.advance(every);
            p.emit(JUMPER_NOTIFY, frame());
          });
      },
      onUnsubscribe: (char) => {
        if (char === JUMPER_NOTIFY) ticker.stop();
      },
      onDisconnect: () => ticker.stop(),
    });
    return {
      peripheral: p,
      measurement: { service: JUMPER_SERVICE, characteristic: JUMPER_NOTIFY },
      streams: true,
      measure: () => p.emit(JUMPER_NOTIFY, frame()),
      preload: () => undefined, // live stream only
    };
  },
});
