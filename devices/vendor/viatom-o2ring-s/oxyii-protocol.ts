import { crc8 } from 'rpm-gateway/sdk';

/**
 * The Viatom/Wellue "OxyII" protocol of the O2Ring S (model T8520, advertised as `S8-AW …`), as documented by
 * nglessner/o2ring-s-protocol (README "Frame format", oxyii_protocol.py; verified on firmware 2D010001/2) and
 * implemented by Plantucha/Tepna capture-host/oxyii.py. Requests and replies share one envelope:
 *
 *   A5 | cmd | ~cmd | flag (00 request, 01 reply) | seq | len u16 LE | payload[len] | CRC-8
 *
 * CRC-8 with polynomial 0x07, init 0, no reflection (CRC-8/SMBUS) over every byte before it, the A5 included.
 * Same polynomial as the legacy Oxy protocol, but another lead byte, envelope and service.
 */
export const OXYII_SERVICE = 'e8fb0001-a14b-98f9-831b-4e2941d01248';
/** Write without response (nglessner README, "BLE service & characteristics"). */
export const OXYII_WRITE = 'e8fb0002-a14b-98f9-831b-4e2941d01248';
export const OXYII_NOTIFY = 'e8fb0003-a14b-98f9-831b-4e2941d01248';

export const OXYII_LEAD = 0xa5;
export const FLAG_REQUEST = 0x00;
export const FLAG_REPLY = 0x01;
/** Header bytes before the payload; the CRC follows the payload. */
export const OXYII_HEADER = 7;
/**
 * The largest payload believed (Tepna oxyii.py MAX_FRAME_LEN): a live reply is tens of bytes plus about 126
 * waveform samples per second, a file chunk at most 512 bytes; a longer announced length is lost sync.
 */
export const OXYII_MAX_PAYLOAD = 2_048;

/** AUTH: a one-way handshake, no reply on firmware 2D010001/2 (nglessner README, "cmd=0xFF authentication"). */
export const CMD_AUTH = 0xff;
/** The post-auth setup step, payload 00, answered by an empty acknowledgement (nglessner command table). */
export const CMD_SETUP = 0x10;
/** LIVE_SAMPLES_B: the live parameters and the waveform since the last request (nglessner command table). */
export const CMD_LIVE = 0x04;

/** The live reply's fixed part: 20 bytes of parameters, the waveform offset u32 and the sample count u16. */
export const LIVE_FIXED = 26;

/** One frame: `cmd` with `payload`, as a request (flag 00) or a reply (flag 01). */
export function oxyiiFrame(
  cmd: number,
  payload: readonly number[] = [],
  options: { readonly flag?: number; readonly seq?: number } = {},
): Uint8Array {
  const n = payload.length;
  const out = new Uint8Array(OXYII_HEADER + n + 1);
  out.set([OXYII_LEAD, cmd, ~cmd & 0xff, options.flag ?? FLAG_REQUEST, options.seq ?? 0, n & 0xff, n >> 8]);
  out.set(payload, OXYII_HEADER);
  out[OXYII_HEADER + n] = crc8(out, 0, OXYII_HEADER + n);
  return out;
}

/** Whether `bytes` is one whole request for `cmd` whose complement, length and CRC hold. */
export function isRequest(bytes: Uint8Array, cmd: number): boolean {
  if (bytes.length < OXYII_HEADER + 1) return false;
  if (bytes[0] !== OXYII_LEAD || bytes[1] !== cmd || bytes[2] !== (~cmd & 0xff)) return false;
  if (bytes[3] !== FLAG_REQUEST) return false;
  const n = (bytes[5] as number) | ((bytes[6] as number) << 8);
  return (
    bytes.length === OXYII_HEADER + n + 1 && crc8(bytes, 0, bytes.length - 1) === bytes[bytes.length - 1]
  );
}

/**
 * MD5("lepucloud"), the protocol's salt (nglessner README, "cmd=0xFF authentication"; Tepna oxyii.py _LEPU).
 * Written out because a driver imports nothing but the SDK; test/vendor/viatom-o2ring-s.test.ts recomputes it.
 */
export const LEPUCLOUD_MD5: readonly number[] = [
  0xc2, 0xa7, 0xcf, 0x50, 0xda, 0xfe, 0xd8, 0x85, 0xa8, 0xf8, 0xf7, 0xea, 0xc4, 0x43, 0x35, 0xf3,
];

/**
 * The 16-byte AUTH payload: session key XOR MD5("lepucloud"), the key being MD5 bytes 0, 2, …, 14, the first
 * four ASCII bytes of a serial prefix, then (ts >> 0, ts >> 1, ts >> 2, ts >> 3) & 0xFF of a Unix time `ts`
 * (nglessner derive_session_key, "a faithful port of the vendor implementation"). "0000" is the portable prefix
 * the ring accepts without a prior GET_INFO.
 */
export function authPayload(serialPrefix: string, ts: number): number[] {
  const key: number[] = [];
  for (let i = 0; i < 8; i++) key.push(LEPUCLOUD_MD5[i * 2] as number);
  for (let i = 0; i < 4; i++) key.push(serialPrefix.charCodeAt(i) & 0xff);
  for (let n = 0; n < 4; n++) key.push(Math.floor(ts / 2 ** n) & 0xff);
  return key.map((k, i) => k ^ (LEPUCLOUD_MD5[i] as number));
}

/** The live parameters of a LIVE_SAMPLES_B reply (the vendor SDK's OxyII RtParam, per Tepna parse_live), raw. */
export interface LiveParams {
  /** Seconds into the ring's session, u32 LE. */
  readonly duration: number;
  readonly runStatus: number;
  /** 00 no finger, 01 finger present, 03 a file is open (worn). */
  readonly sensor: number;
  /** %; 0xFF off finger. */
  readonly spo2: number;
  /** Perfusion index in tenths of a percent. */
  readonly pi: number;
  /** /min, u16 LE; 0xFF off finger. */
  readonly pulseRate: number;
  readonly motion: number;
  /** 0 not charging. */
  readonly batteryState: number;
  readonly battery: number;
}

/**
 * A LIVE_SAMPLES_B reply payload: the parameters, the waveform's stream offset, and `samples` one-byte waveform
 * samples (the inverse of the driver's decoder; the simulator's encoder). Byte 10 is the pulse-tone flag, set
 * on every real frame Tepna recorded (0xC7 in the published one).
 */
export function encodeLive(p: LiveParams, offset: number, samples: readonly number[]): number[] {
  const out = new Array<number>(LIVE_FIXED).fill(0);
  out.splice(0, 4, ...le(p.duration, 4));
  out[4] = p.runStatus;
  out[5] = p.sensor;
  out[6] = p.spo2;
  out[7] = p.pi;
  out.splice(8, 2, ...le(p.pulseRate, 2));
  out[10] = 0xc7;
  out[11] = p.motion;
  out[12] = p.batteryState;
  out[13] = p.battery;
  out.splice(20, 4, ...le(offset, 4));
  out.splice(24, 2, ...le(samples.length, 2));
  return [...out, ...samples];
}

function le(value: number, width: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < width; i++) out.push(Math.floor(value / 2 ** (8 * i)) & 0xff);
  return out;
}
