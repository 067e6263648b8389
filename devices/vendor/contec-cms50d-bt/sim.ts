import { CardioProcess, defineDeviceModel, type ServiceDefinition, Ticker } from 'rpm-gateway/sdk/sim';
import { CONTEC_LIVE_HEADER, contecChecksum, encodeContecMeasurement } from './contec-protocol.js';

const CONTEC_SERVICE = 'ff12';
const CONTEC_WRITE = 'ff01';
const CONTEC_NOTIFY = 'ff02';
/** The CMS50D-BT stops streaming when no 9A heartbeat came for this long (pulseoxdl, nringelstein). */
const CONTEC_HEARTBEAT_TIMEOUT_MS = 5_000;

/**
 * Contec CMS50D-BT: nothing on ff02 until 9B 01 1C is written to ff01; then an 8-byte EB 01 measurement
 * frame a second (flags 04 as in the OxiVis capture, PI bytes 7F 00: this model measures no PI, PR bit 7 in
 * flags bit 1) for as long as 9A 1A heartbeats keep coming within 5 s; 9B 7F 1A stops it (answer EB 7F 6A).
 */
export default defineDeviceModel({
  address: 'D0:5E:00:00:00:08',
  name: 'SpO2080971',
  build: (c) => {
    let onCommand: (value: Uint8Array) => void = () => undefined;
    const gatt: ServiceDefinition[] = [
      {
        uuid: CONTEC_SERVICE,
        characteristics: [
          {
            uuid: CONTEC_WRITE,
            properties: ['write', 'write-without-response'],
            onWrite: (v) => onCommand(v),
          },
          c.measurementChar(CONTEC_NOTIFY, ['notify']),
        ],
      },
    ];
    const p = c.peripheral([CONTEC_SERVICE], gatt);
    const cardio = new CardioProcess(
      c.random.fork(5),
      c.subject.profile.restingPulse,
      c.subject.profile.spo2,
    );
    const ticker = new Ticker(c.scheduler);
    const every = c.streamEvery(1_000);
    let lastHeartbeat = 0;
    const frame = () =>
      encodeContecMeasurement({
        flags: 0x04,
        pulseRate: cardio.pulseRate,
        spo2: cardio.spo2,
        perfusionIndex: undefined,
      });
    const tick = () => {
      if (c.scheduler.now() - lastHeartbeat > CONTEC_HEARTBEAT_TIMEOUT_MS) return ticker.stop();
      cardio.advance(every);
      p.emit(CONTEC_NOTIFY, frame());
    };
    onCommand = (value) => {
      // Commands carry the same 7-bit checksum as frames; the device ignores a command that fails it.
      if (value.length < 2 || contecChecksum(value, 0, value.length - 1) !== value[value.length - 1]) return;
      const [command, argument] = [value[0], value[1]];
      if (command === 0x9a) {
        lastHeartbeat = c.scheduler.now();
      } else if (command === 0x9b && argument === 0x01) {
        lastHeartbeat = c.scheduler.now();
        ticker.start(every, tick);
      } else if (command === 0x9b && argument === 0x7f) {
        ticker.stop();
        p.emit(CONTEC_NOTIFY, Uint8Array.of(CONTEC_LIVE_HEADER, 0x7f, 0x6a));
      }
    };
    p.addHooks({ onDisconnect: () => ticker.stop() });
    return {
      peripheral: p,
      measurement: { service: CONTEC_SERVICE, characteristic: CONTEC_NOTIFY },
      streams: true,
      measure: () => {
        p.emit(CONTEC_NOTIFY, frame());
      },
      preload: () => undefined, // stored-record download (9F/9C) is not modelled
    };
  },
});
