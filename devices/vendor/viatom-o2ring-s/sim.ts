import { CardioProcess, defineDeviceModel, plethAt, type ServiceDefinition } from 'rpm-gateway/sdk/sim';
import {
  CMD_LIVE,
  CMD_SETUP,
  encodeLive,
  FLAG_REPLY,
  isRequest,
  OXYII_NOTIFY,
  OXYII_SERVICE,
  OXYII_WRITE,
  oxyiiFrame,
} from './oxyii-protocol.js';

/** A notification carries at most 20 bytes at the default ATT_MTU (Bluetooth Core 5.4 Vol 3 Part F 3.2.9). */
const NOTIFICATION_BYTES = 20;
/** The ring answers within a connection interval or two. */
const ANSWER_DELAY_MS = 30;
/** The waveform's sample period: 125 Hz (Tepna oxyii.py, "the ADC runs at exactly 125.000 Hz"). */
const SAMPLE_MS = 8;
/** Samples the ring holds for one reply at most (Tepna: 124-128 per reply at a one-second poll). */
const MAX_SAMPLES = 250;

/**
 * An O2Ring S on the OxyII protocol: silent until asked. AUTH (0xFF) is taken without a reply, setup 0x10 is
 * acknowledged with an empty reply, and each LIVE_SAMPLES_B request (0x04) is answered with the simulated
 * patient's SpO2, pulse rate and perfusion index, worn, plus the 125 Hz waveform since the last request, the
 * reply cut into 20-byte notifications. Requests failing their CRC, and other commands, get no answer.
 */
export default defineDeviceModel({
  address: 'D0:5E:00:00:00:0C',
  name: 'S8-AW 2100',
  build: (c) => {
    let onRequest: (value: Uint8Array) => void = () => undefined;
    const gatt: ServiceDefinition[] = [
      {
        uuid: OXYII_SERVICE,
        characteristics: [
          {
            uuid: OXYII_WRITE,
            properties: ['write', 'write-without-response'],
            onWrite: (v) => onRequest(v),
          },
          c.measurementChar(OXYII_NOTIFY, ['notify']),
        ],
      },
    ];
    const p = c.peripheral([OXYII_SERVICE], gatt);
    const cardio = new CardioProcess(
      c.random.fork(12),
      c.subject.profile.restingPulse,
      c.subject.profile.spo2,
    );
    const started = c.scheduler.now();
    let last = started;
    let offset = 0;
    /** The waveform since the last reply, sampled every 8 ms from the simulated pulse. */
    const waveform = (): number[] => {
      const now = c.scheduler.now();
      const count = Math.min(MAX_SAMPLES, Math.floor((now - last) / SAMPLE_MS));
      const samples: number[] = [];
      for (let i = 0; i < count; i++) {
        cardio.advance(SAMPLE_MS);
        samples.push(200 - plethAt(cardio.beatPhase));
      }
      last = now;
      return samples;
    };
    const live = () => {
      const samples = waveform();
      const frame = oxyiiFrame(
        CMD_LIVE,
        encodeLive(
          {
            duration: Math.floor((c.scheduler.now() - started) / 1_000),
            runStatus: 2,
            sensor: 0x01,
            spo2: cardio.spo2,
            pi: Math.max(1, Math.round(cardio.perfusionIndex * 10)),
            pulseRate: cardio.pulseRate,
            motion: 0,
            batteryState: 0,
            battery: 87,
          },
          offset,
          samples,
        ),
        { flag: FLAG_REPLY },
      );
      offset += samples.length;
      return frame;
    };
    const send = (frame: Uint8Array) => {
      for (let i = 0; i < frame.length; i += NOTIFICATION_BYTES) {
        p.emit(OXYII_NOTIFY, frame.subarray(i, i + NOTIFICATION_BYTES));
      }
    };
    const answer = (frame: () => Uint8Array) => c.scheduler.setTimeout(() => send(frame()), ANSWER_DELAY_MS);
    onRequest = (value) => {
      if (isRequest(value, CMD_SETUP)) answer(() => oxyiiFrame(CMD_SETUP, [], { flag: FLAG_REPLY }));
      else if (isRequest(value, CMD_LIVE)) answer(live);
    };
    return {
      peripheral: p,
      measurement: { service: OXYII_SERVICE, characteristic: OXYII_NOTIFY },
      streams: true,
      measure: () => send(live()),
      preload: () => undefined, // the ring's recordings (file read F1-F4) are not modelled
    };
  },
});
