import {
  CardioProcess,
  defineDeviceModel,
  plethAt,
  type ServiceDefinition,
  Ticker,
} from 'rpm-gateway/sdk/sim';
import { encodeBciFrame } from './bci-protocol.js';

const BERRYMED_SERVICE = '49535343-fe7d-4ae5-8fa9-9fafd205e455';
const BERRYMED_TX = '49535343-1e4d-4bd9-ba61-23c647249616';
const BERRYMED_RX = '49535343-8841-43f4-a8d4-ecbe34729bb3';

/**
 * BerryMed BM1000 (BCI protocol): 5-byte frames at 100 per second, four per 20-byte notification on the
 * transparent-UART TX characteristic, starting as soon as notifications are on (no setup write). Layout of
 * the atick vector (signal strength, pleth, bar graph, PR, SpO2); the beep bit marks the frame of a beat;
 * the displayed SpO2 and PR change once a second.
 */
export default defineDeviceModel({
  address: 'D0:5E:00:00:00:07',
  name: 'BerryMed',
  build: (c) => {
    const gatt: ServiceDefinition[] = [
      {
        uuid: BERRYMED_SERVICE,
        characteristics: [
          c.measurementChar(BERRYMED_TX, ['notify']),
          { uuid: BERRYMED_RX, properties: ['write', 'write-without-response'] },
        ],
      },
    ];
    const p = c.peripheral([BERRYMED_SERVICE], gatt);
    const cardio = new CardioProcess(
      c.random.fork(4),
      c.subject.profile.restingPulse,
      c.subject.profile.spo2,
    );
    const ticker = new Ticker(c.scheduler);
    const every = c.streamEvery(40);
    const framesPerNotification = 4;
    let frameCount = 0;
    let displayed = { spo2: cardio.spo2, pulseRate: cardio.pulseRate };
    let pending: number[] = c.options.misalignedStream ? [0x32, 0x05, 0x48] : [];
    const frame = () => {
      const beat = cardio.advance(10).length > 0;
      if (frameCount++ % 100 === 0) displayed = { spo2: cardio.spo2, pulseRate: cardio.pulseRate };
      const pleth = plethAt(cardio.beatPhase);
      return encodeBciFrame({
        signalStrength: Math.max(1, Math.min(8, Math.round(cardio.perfusionIndex))),
        noSignal: false,
        probeUnplugged: false,
        pulseBeep: beat,
        pleth,
        barGraph: Math.round((pleth * 15) / 100),
        noFinger: false,
        pulseSearching: false,
        pulseRate: displayed.pulseRate,
        spo2: displayed.spo2,
      });
    };
    const next = () => {
      for (let i = 0; i < framesPerNotification; i++) pending.push(...frame());
      const chunk = Uint8Array.from(pending.slice(0, 20));
      pending = pending.slice(20);
      return chunk;
    };
    p.addHooks({
      onSubscribe: (char) => {
        if (char === BERRYMED_TX) ticker.start(every, () => p.emit(BERRYMED_TX, next()));
      },
      onUnsubscribe: (char) => {
        if (char === BERRYMED_TX) ticker.stop();
      },
      onDisconnect: () => ticker.stop(),
    });
    return {
      peripheral: p,
      measurement: { service: BERRYMED_SERVICE, characteristic: BERRYMED_TX },
      streams: true,
      measure: () => {
        p.emit(BERRYMED_TX, next());
      },
      preload: () => undefined, // live stream only
    };
  },
});
