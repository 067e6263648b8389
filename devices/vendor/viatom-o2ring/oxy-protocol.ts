import { crc8 } from 'rpm-gateway/sdk';

/**
 * The Viatom/Wellue legacy "Oxy" protocol (O2Ring, Checkme O2, SleepU, KidsO2, BabyO2, Oxylink), as written by
 * the vendor's Android SDK (viatomEcho/LepuBle blepro/src/main/java/com/lepu/blepro/ble/cmd/OxyBleCmd.java and
 * OxyBleResponse.kt) and the open-source reader MackeyStingray/o2r (o2r/o2pkt.py):
 *
 *   request : AA | cmd | ~cmd | block u16 LE | len u16 LE | data[len] | CRC-8
 *   response: 55 | status | ~status | block u16 LE | len u16 LE | data[len] | CRC-8   (status 00 = ok)
 *
 * CRC-8 with polynomial 0x07 and init 0 (CRC-8/SMBUS) over every byte before it (LepuBle utils/CrcUtil.java
 * Table_CRC8; o2pkt.py chksum). The response does not repeat the command: what it answers is known from the
 * request in flight (the vendor SDK allows one at a time).
 */
export const OXY_SERVICE = '14839ac4-7d7e-415c-9a42-167340cf2339';
export const OXY_NOTIFY = '0734594a-a8e7-4b1a-a6b1-cd5243059a57';
export const OXY_WRITE = '8b00ace7-eb0b-49b0-bbe9-9aee0a26e1a3';

export const OXY_REQUEST = 0xaa;
export const OXY_RESPONSE = 0x55;
/** RT_PARAM: the real-time parameters (OxyBleCmd). */
export const CMD_RT_PARAM = 0x17;
/** Header bytes before the data, and the CRC after it. */
export const OXY_HEADER = 7;
/** RT_PARAM's data length as the ring sends it (the three o2r payloads, OxyBleResponse.RtParam). */
export const RT_PARAM_LENGTH = 13;

/** A request frame for `cmd` with `data` (block 0). */
export function oxyRequest(cmd: number, data: readonly number[] = []): Uint8Array {
  return withCrc([OXY_REQUEST, cmd, ~cmd & 0xff, 0, 0, data.length & 0xff, data.length >> 8, ...data]);
}

/** A response frame with `status` (0 = ok) and `data` (block 0). */
export function oxyResponse(data: readonly number[], status = 0): Uint8Array {
  return withCrc([OXY_RESPONSE, status, ~status & 0xff, 0, 0, data.length & 0xff, data.length >> 8, ...data]);
}

/** Whether `bytes` is one whole request for `cmd` whose CRC holds. */
export function isRequest(bytes: Uint8Array, cmd: number): boolean {
  if (bytes.length < 8 || bytes[0] !== OXY_REQUEST || bytes[1] !== cmd || bytes[2] !== (~cmd & 0xff))
    return false;
  const length = (bytes[5] as number) | ((bytes[6] as number) << 8);
  return bytes.length === 8 + length && crc8(bytes, 0, bytes.length - 1) === bytes[bytes.length - 1];
}

function withCrc(bytes: readonly number[]): Uint8Array {
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  out[bytes.length] = crc8(out, 0, bytes.length);
  return out;
}

/** The real-time parameters (OxyBleResponse.RtParam), raw, invalid markers kept. */
export interface RtParam {
  /** 0xFF: invalid (not worn, searching). */
  readonly spo2: number;
  /** u16 LE; 0xFFFF (o2r reads the low byte only: 0xFF): invalid. */
  readonly pulseRate: number;
  readonly steps: number;
  readonly battery: number;
  /** 0 not charging, 1 charging, 2 full. */
  readonly batteryState: number;
  readonly motion: number;
  /** Perfusion index in tenths of a percent (the vendor demo shows pi / 10). */
  readonly pi: number;
  /** Bit 0: worn (lead on). */
  readonly state: number;
}

/** The 13-byte RT_PARAM payload of `p` (the inverse of the driver's decoder; the simulator's encoder). */
export function encodeRtParam(p: RtParam): number[] {
  return [
    p.spo2,
    p.pulseRate & 0xff,
    p.pulseRate >> 8,
    p.steps & 0xff,
    (p.steps >> 8) & 0xff,
    (p.steps >> 16) & 0xff,
    (p.steps >>> 24) & 0xff,
    p.battery,
    p.batteryState,
    p.motion,
    p.pi,
    p.state,
    0,
  ];
}
