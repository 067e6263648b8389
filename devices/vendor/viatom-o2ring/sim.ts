import { CardioProcess, defineDeviceModel, type ServiceDefinition } from 'rpm-gateway/sdk/sim';
import {
  CMD_RT_PARAM,
  encodeRtParam,
  isRequest,
  OXY_NOTIFY,
  OXY_SERVICE,
  OXY_WRITE,
  oxyResponse,
} from './oxy-protocol.js';

/** A notification carries at most 20 bytes at the default ATT_MTU (Bluetooth Core 5.4 Vol 3 Part F 3.2.9). */
const NOTIFICATION_BYTES = 20;
/** The ring answers within a connection interval or two. */
const ANSWER_DELAY_MS = 30;

/**
 * An O2Ring on the legacy Oxy protocol: silent until asked; each RT_PARAM request (AA 17 E8 ... CRC) is answered
 * with the real-time parameters of the simulated patient (worn, SpO2, pulse rate, PI), the 21-byte response cut
 * into 20-byte notifications as the ring's default MTU does. Requests that fail their CRC, and other commands,
 * are not answered, as the vendor SDK's busy check implies.
 */
export default defineDeviceModel({
  address: 'D0:5E:00:00:00:0B',
  name: 'O2Ring 1234',
  build: (c) => {
    let onRequest: (value: Uint8Array) => void = () => undefined;
    const gatt: ServiceDefinition[] = [
      {
        uuid: OXY_SERVICE,
        characteristics: [
          {
            uuid: OXY_WRITE,
            properties: ['write', 'write-without-response'],
            onWrite: (v) => onRequest(v),
          },
          c.measurementChar(OXY_NOTIFY, ['notify']),
        ],
      },
    ];
    const p = c.peripheral([OXY_SERVICE], gatt);
    const cardio = new CardioProcess(
      c.random.fork(11),
      c.subject.profile.restingPulse,
      c.subject.profile.spo2,
    );
    let last = c.scheduler.now();
    let steps = 0;
    const response = () => {
      const now = c.scheduler.now();
      cardio.advance(Math.max(0, now - last));
      last = now;
      return oxyResponse(
        encodeRtParam({
          spo2: Math.round(cardio.spo2),
          pulseRate: Math.round(cardio.pulseRate),
          steps: steps++,
          battery: 87,
          batteryState: 0,
          motion: 0,
          pi: Math.max(1, Math.round(cardio.perfusionIndex * 10)),
          state: 0x01,
        }),
      );
    };
    const send = (frame: Uint8Array) => {
      for (let i = 0; i < frame.length; i += NOTIFICATION_BYTES) {
        p.emit(OXY_NOTIFY, frame.subarray(i, i + NOTIFICATION_BYTES));
      }
    };
    onRequest = (value) => {
      if (!isRequest(value, CMD_RT_PARAM)) return;
      c.scheduler.setTimeout(() => send(response()), ANSWER_DELAY_MS);
    };
    return {
      peripheral: p,
      measurement: { service: OXY_SERVICE, characteristic: OXY_NOTIFY },
      streams: true,
      measure: () => send(response()),
      preload: () => undefined, // the ring's sleep files (file read 03/04/05) are not modelled
    };
  },
});
