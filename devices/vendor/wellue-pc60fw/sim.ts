import {
  CardioProcess,
  defineDeviceModel,
  plethAt,
  type ServiceDefinition,
  Ticker,
} from 'rpm-gateway/sdk/sim';
import {
  encodeParameters,
  encodePc60fwFrame,
  encodeWave,
  PC60FW_TOKEN_DEVICE,
  PC60FW_TOKEN_OXIMETER,
  PC60FW_TYPE_BATTERY,
  PC60FW_TYPE_WORK_STATUS,
  PC60FW_WAVE_SAMPLES,
} from './pc60fw-protocol.js';

const NUS_SERVICE = '6e400001-b5a3-f393-e0a9-e50e24dcca9e';
const NUS_RX_WRITE = '6e400002-b5a3-f393-e0a9-e50e24dcca9e';
const NUS_TX_NOTIFY = '6e400003-b5a3-f393-e0a9-e50e24dcca9e';
/** Bytes per notification at the default ATT_MTU of 23 (Bluetooth Core 5.4, Vol 3, Part F, 3.2.9). */
const NOTIFICATION_BYTES = 20;
/** One pulse-wave frame every 100 ms, 5 samples each (50 samples/s), as in the public raw log. */
const WAVE_EVERY_MS = 100;
const WAVES_PER_SECOND = 10;

/**
 * PC-60FW: streams as soon as notifications on 6E400003 are on (no command; every public reader only subscribes).
 * Every 100 ms a pulse-wave frame; once a second also the parameter frame (SpO2, PR, PI of the simulated patient),
 * the battery frame (level 3) and the working-status frame (continuous mode), in that order, as in
 * sycophantic/pc60fw_pulseox raw_data.txt. Frames are queued as one byte stream and sent in 20-byte
 * notifications, so frames are split across notifications and merged into one, as the real device does.
 */
export default defineDeviceModel({
  address: 'D0:5E:00:00:00:60',
  name: 'PC-60F_SN010175',
  build: (c) => {
    const gatt: ServiceDefinition[] = [
      {
        uuid: NUS_SERVICE,
        characteristics: [
          { uuid: NUS_RX_WRITE, properties: ['write', 'write-without-response'] },
          c.measurementChar(NUS_TX_NOTIFY, ['notify']),
        ],
      },
    ];
    const p = c.peripheral([NUS_SERVICE], gatt);
    const cardio = new CardioProcess(
      c.random.fork(6),
      c.subject.profile.restingPulse,
      c.subject.profile.spo2,
    );
    const ticker = new Ticker(c.scheduler);
    const every = c.streamEvery(WAVE_EVERY_MS);
    let pending: number[] = [];
    let tick = 0;

    const waveFrame = (dtMs: number): Uint8Array => {
      const samples: number[] = [];
      const beats: boolean[] = [];
      const step = dtMs / PC60FW_WAVE_SAMPLES;
      for (let i = 0; i < PC60FW_WAVE_SAMPLES; i++) {
        beats.push(cardio.advance(step).length > 0);
        // plethAt is 0-100; the device's samples are 7-bit.
        samples.push(Math.round(plethAt(cardio.beatPhase) * 1.2));
      }
      return encodeWave({ samples, beats });
    };
    const parametersFrame = (): Uint8Array =>
      encodeParameters({
        spo2: cardio.spo2,
        pulseRate: cardio.pulseRate,
        perfusionIndex: Math.round(cardio.perfusionIndex * 10),
        status: 0,
        extra: 0xc0, // what the PC-60FW sends with its battery at level 3 (spo2_combined.csv)
      });
    const secondFrames = (): Uint8Array[] => [
      parametersFrame(),
      encodePc60fwFrame(PC60FW_TOKEN_DEVICE, PC60FW_TYPE_BATTERY, [3]),
      encodePc60fwFrame(PC60FW_TOKEN_OXIMETER, PC60FW_TYPE_WORK_STATUS, [2, 0, 0, 0]),
    ];
    const flush = () => {
      while (pending.length > 0) {
        p.emit(NUS_TX_NOTIFY, Uint8Array.from(pending.slice(0, NOTIFICATION_BYTES)));
        pending = pending.slice(NOTIFICATION_BYTES);
      }
    };
    const step = () => {
      pending.push(...waveFrame(every));
      if (tick++ % WAVES_PER_SECOND === 0) for (const f of secondFrames()) pending.push(...f);
      flush();
    };
    p.addHooks({
      onSubscribe: (char) => {
        if (char === NUS_TX_NOTIFY) {
          pending = [];
          tick = 0;
          ticker.start(every, step);
        }
      },
      onUnsubscribe: (char) => {
        if (char === NUS_TX_NOTIFY) ticker.stop();
      },
      onDisconnect: () => ticker.stop(),
    });
    return {
      peripheral: p,
      measurement: { service: NUS_SERVICE, characteristic: NUS_TX_NOTIFY },
      streams: true,
      measure: () => {
        pending.push(...parametersFrame());
        flush();
      },
      preload: () => undefined, // live stream only; the PC-60FW keeps no records
    };
  },
});
