import { describe, expect, it } from 'vitest';
import { SimCentral, VirtualPeripheral } from '../../src/ble/sim/index.js';
import {
  type Decoder,
  defineDriver,
  type SetupAnswer,
  type SetupContext,
  type SetupWrite,
} from '../../src/drivers/sdk/define-driver.js';
import { DecodeError, DriverError } from '../../src/errors.js';
import { DeviceSession, type SessionReading, type SessionState } from '../../src/session/device-session.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';

/**
 * Drivers that talk back, through a real DeviceSession against a simulated device in virtual time: a sequence of
 * setup writes each waiting for its answer (an unlock, then an acknowledged start command), then a poll every
 * second whose answers are the readings. The device here is a small request/response protocol of its own:
 *   01 kk -> A1 00 (unlocked) or A1 01 (wrong key)      02 -> A2 (started)      03 -> 10 pp (pulse pp)
 * The A2 acknowledgement is a frame the decoder refuses: it must still answer its step.
 */
const SERVICE = 'ffe0';
const NOTIFY = 'ffe1';
const WRITE = 'ffe2';
const KEY = 0x5a;
const START = Date.UTC(2026, 10, 28, 8, 0, 0);

const decode: Decoder = (bytes) => {
  if (bytes[0] === 0xa1) return [];
  if (bytes[0] === 0x10 && bytes.length === 2) {
    return [
      {
        observations: [{ code: 'MDC_PULS_OXIM_PULS_RATE', value: bytes[1] as number, unit: '/min' }],
        time: null,
        kind: 'measurement',
      },
    ];
  }
  throw new DecodeError('DECODE_INVALID_FIELD', 'not a reading of this test protocol');
};

const answerOn = { characteristic: NOTIFY };
const UNLOCK_ANSWER: SetupAnswer = {
  ...answerOn,
  match: [0xa1, 0x00],
  refused: [0xa1, 0x01],
  timeoutMs: 2_000,
  retries: 1,
};
const POLL_ANSWER: SetupAnswer = {
  ...answerOn,
  match: (frame) => frame[0] === 0x10,
  timeoutMs: 800,
  retries: 2,
};
const UNLOCK: SetupWrite = {
  service: SERVICE,
  characteristic: WRITE,
  value: Uint8Array.of(0x01, KEY),
  reason: 'unlock with the device key',
  expect: UNLOCK_ANSWER,
};
const START_COMMAND: SetupWrite = {
  service: SERVICE,
  characteristic: WRITE,
  value: Uint8Array.of(0x02),
  reason: 'start measuring',
  expect: { ...answerOn, match: [0xa2], timeoutMs: 1_000, retries: 2 },
};
const POLL: SetupWrite = {
  service: SERVICE,
  characteristic: WRITE,
  value: Uint8Array.of(0x03),
  reason: 'real-time parameter request',
  repeatEveryMs: 1_000,
  expect: POLL_ANSWER,
};

const driver = defineDriver({
  id: 'vendor/test-talkback',
  version: '1.0.0',
  name: 'Talk-back test device',
  category: 'pulse-oximeter',
  match: { services: [SERVICE] },
  characteristics: [
    {
      uuid: NOTIFY,
      service: SERVICE,
      access: 'notify',
      name: 'Answers',
      decode,
      emits: [{ code: 'MDC_PULS_OXIM_PULS_RATE', units: ['/min'] }],
    },
  ],
  setup: [UNLOCK, START_COMMAND, POLL],
  sources: ['this test'],
});

interface DeviceBehaviour {
  key: number;
  /** Start commands to ignore before answering one. */
  ignoreStarts: number;
  /** Polls go unanswered while true. */
  silent: boolean;
}

function rig(
  behaviour: Partial<DeviceBehaviour> = {},
  options: { setup?: readonly SetupWrite[]; mayWriteClock?: boolean } = {},
) {
  const scheduler = new VirtualScheduler(START);
  const device: DeviceBehaviour = { key: KEY, ignoreStarts: 0, silent: false, ...behaviour };
  const writes: { at: number; hex: string }[] = [];
  let pulse = 60;
  // The device answers 50 ms after a write, as a real one takes a connection interval or two.
  const answer = (bytes: number[]) =>
    scheduler.setTimeout(() => peripheral.emit(NOTIFY, Uint8Array.from(bytes)), 50);
  const peripheral: VirtualPeripheral = new VirtualPeripheral({
    address: 'D0:5E:00:00:0A:01',
    name: 'TALK-1',
    services: [SERVICE],
    scheduler,
    gatt: [
      {
        uuid: SERVICE,
        characteristics: [
          { uuid: NOTIFY, properties: ['notify'] },
          {
            uuid: WRITE,
            properties: ['write'],
            onWrite: (value) => {
              writes.push({ at: scheduler.now() - START, hex: Buffer.from(value).toString('hex') });
              if (value[0] === 0x01) answer([0xa1, value[1] === device.key ? 0x00 : 0x01]);
              else if (value[0] === 0x02) {
                if (device.ignoreStarts > 0) device.ignoreStarts--;
                else answer([0xa2]);
              } else if (value[0] === 0x03 && !device.silent) answer([0x10, pulse++]);
            },
          },
        ],
      },
    ],
  });
  const central = new SimCentral({ peripherals: [peripheral], scheduler });
  const readings: SessionReading[] = [];
  const states: { state: SessionState; detail: string | undefined; at: number }[] = [];
  const session = new DeviceSession({
    device: { id: 'dev-talk', address: peripheral.address },
    driver: options.setup ? defineDriver({ ...driver, setup: options.setup }) : driver,
    ...(options.mayWriteClock === undefined ? {} : { mayWriteClock: () => options.mayWriteClock !== false }),
    central,
    scheduler,
    random: () => 0.5,
    utcOffsetMinutes: () => 0,
    onReading: (r) => readings.push(r),
    onState: (state, detail) => states.push({ state, detail, at: scheduler.now() - START }),
  });
  return { scheduler, device, peripheral, central, session, readings, states, writes };
}

const stateNames = (states: readonly { state: SessionState }[]) => states.map((s) => s.state);

describe('setup writes that wait for answers, then polls', () => {
  it('unlocks, starts, then polls every second; each poll answer is a reading', async () => {
    const r = rig();
    await r.central.start();
    r.session.start();
    await r.scheduler.advanceAsync(200);
    expect(r.session.state).toBe('streaming');
    // Each write went out only once the one before it was answered (50 ms later); the poll's first write is
    // the sequence's last step.
    expect(r.writes).toEqual([
      { at: 0, hex: '015a' },
      { at: 50, hex: '02' },
      { at: 100, hex: '03' },
    ]);
    await r.scheduler.advanceAsync(4_000);
    // Then one a second, starting one period after the sequence ended (its last answer, at 150 ms).
    expect(r.writes.filter((w) => w.hex === '03').map((w) => w.at)).toEqual([
      100, 1_150, 2_150, 3_150, 4_150,
    ]);
    expect(r.readings.map((x) => x.reading.observations[0]?.value)).toEqual([60, 61, 62, 63, 64]);
    // The answers' bytes are the readings' payloads.
    expect(Buffer.from(r.readings[0]?.payload ?? []).toString('hex')).toBe('103c');
    await r.session.stop();
  });

  it('repeats consecutive repeating writes of one period as one transaction, in order, each after its answer', async () => {
    const every = { repeatEveryMs: 5_000 };
    const r = rig({}, { setup: [UNLOCK, { ...START_COMMAND, ...every }, { ...POLL, ...every }] });
    await r.central.start();
    r.session.start();
    await r.scheduler.advanceAsync(11_000);
    expect(r.session.state).toBe('streaming');
    // First run at 0/50/100 ms, answered 50 ms after each write; then start and poll again every 5 s counted
    // from the end of the previous run (its last answer), the poll written only once the start was answered.
    expect(r.writes).toEqual([
      { at: 0, hex: '015a' },
      { at: 50, hex: '02' },
      { at: 100, hex: '03' },
      { at: 5_150, hex: '02' },
      { at: 5_200, hex: '03' },
      { at: 10_250, hex: '02' },
      { at: 10_300, hex: '03' },
    ]);
    expect(r.readings.map((x) => x.reading.observations[0]?.value)).toEqual([60, 61, 62]);
    await r.session.stop();
  });

  it('fails the link when a step of a repeating transaction stays unanswered after its retries', async () => {
    const every = { repeatEveryMs: 5_000 };
    const r = rig({}, { setup: [UNLOCK, { ...START_COMMAND, ...every }, { ...POLL, ...every }] });
    await r.central.start();
    r.session.start();
    await r.scheduler.advanceAsync(1_000);
    r.device.ignoreStarts = 3;
    await r.scheduler.advanceAsync(8_000);
    expect(r.session.state).toBe('backoff');
    expect(r.states.find((s) => s.state === 'backoff')?.detail).toBe(
      'BLE_NO_ANSWER: setup step 2 (start measuring) got no answer within 1000 ms, 3 tries',
    );
    // The poll of that run was never written: the transaction stopped at its unanswered step.
    expect(r.writes.filter((w) => w.hex === '03').map((w) => w.at)).toEqual([100]);
    await r.session.stop();
  });

  it('writes a step again when its answer does not come in time, then goes on', async () => {
    const r = rig({ ignoreStarts: 2 });
    await r.central.start();
    r.session.start();
    await r.scheduler.advanceAsync(3_000);
    expect(r.session.state).toBe('streaming');
    const starts = r.writes.filter((w) => w.hex === '02');
    expect(starts).toHaveLength(3);
    // Each retry one timeout (1 s) after the previous try.
    expect(starts.map((s) => s.at - (starts[0] as { at: number }).at)).toEqual([0, 1_000, 2_000]);
    await r.session.stop();
  });

  it('fails the connection with BLE_NO_ANSWER when a step stays unanswered after its retries, and retries later', async () => {
    const r = rig({ ignoreStarts: 3 });
    await r.central.start();
    r.session.start();
    await r.scheduler.advanceAsync(3_500);
    expect(r.session.state).toBe('backoff');
    const backoff = r.states.find((s) => s.state === 'backoff');
    expect(backoff?.detail).toMatch(
      /^BLE_NO_ANSWER: setup step 2 \(start measuring\) got no answer within 1000 ms, 3 tries$/,
    );
    expect(r.writes.filter((w) => w.hex === '02')).toHaveLength(3);
    expect(r.writes.some((w) => w.hex === '03')).toBe(false);
    // The link was let go, and the retry policy knows the code: a later attempt connects and, the device now
    // answering, streams.
    expect(r.peripheral.connected).toBe(false);
    await r.scheduler.advanceAsync(10_000);
    expect(r.session.state).toBe('streaming');
    await r.session.stop();
  });

  it('fails at once with BLE_REFUSED when the unlock is refused: no retry of the step, no start command', async () => {
    const r = rig({ key: 0x11 });
    await r.central.start();
    r.session.start();
    await r.scheduler.advanceAsync(1_000);
    expect(stateNames(r.states)).toEqual(['connecting', 'subscribing', 'backoff']);
    expect(r.states.at(-1)?.detail).toBe(
      'BLE_REFUSED: the device refused setup step 1 (unlock with the device key)',
    );
    expect(r.writes.map((w) => w.hex)).toEqual(['015a']);
    expect(r.peripheral.connected).toBe(false);
    await r.session.stop();
  });

  it('tolerates unanswered polls up to the retries, then fails the connection with BLE_NO_ANSWER', async () => {
    const r = rig();
    await r.central.start();
    r.session.start();
    await r.scheduler.advanceAsync(2_200);
    expect(r.readings).toHaveLength(3);
    // Two polls in a row unanswered (the retries allow two), then answers again: still streaming.
    r.device.silent = true;
    await r.scheduler.advanceAsync(2_000);
    r.device.silent = false;
    await r.scheduler.advanceAsync(2_000);
    expect(r.session.state).toBe('streaming');
    expect(r.readings).toHaveLength(5);
    // Three in a row: the third miss fails the link, 800 ms after the third unanswered poll.
    r.device.silent = true;
    const silentFrom = r.scheduler.now() - START;
    await r.scheduler.advanceAsync(4_000);
    expect(r.session.state).toBe('backoff');
    const failed = r.states.find((s) => s.state === 'backoff');
    expect(failed?.detail).toBe(
      'BLE_NO_ANSWER: repeating setup write 3 (real-time parameter request) went unanswered 3 times in a row (800 ms each)',
    );
    const unanswered = r.writes.filter((w) => w.hex === '03' && w.at >= silentFrom);
    expect(failed?.at).toBe((unanswered[2] as { at: number }).at + 800);
    expect(r.peripheral.connected).toBe(false);
    // No poll after the failure.
    const pollsAtFailure = r.writes.filter((w) => w.hex === '03').length;
    await r.scheduler.advanceAsync(1_000);
    expect(r.writes.filter((w) => w.hex === '03')).toHaveLength(pollsAtFailure);
    await r.session.stop();
  });
});

describe('setup values computed from the session clock', () => {
  /** The poll carries the seconds since START by the context's clock, FF when the hub clock is not synchronised. */
  const STAMPED_POLL: SetupWrite = {
    ...POLL,
    value: ({ now }) => Uint8Array.of(0x03, now === null ? 0xff : Math.floor((now.getTime() - START) / 1000)),
  };

  it('computes a value at each write, the first and every repeat, from the session scheduler', async () => {
    const r = rig({}, { setup: [UNLOCK, START_COMMAND, STAMPED_POLL] });
    await r.central.start();
    r.session.start();
    await r.scheduler.advanceAsync(3_200);
    expect(r.session.state).toBe('streaming');
    expect(r.writes.filter((w) => w.hex.startsWith('03'))).toEqual([
      { at: 100, hex: '0300' },
      { at: 1_150, hex: '0301' },
      { at: 2_150, hex: '0302' },
      { at: 3_150, hex: '0303' },
    ]);
    await r.session.stop();
  });

  it('gives the value no time while the hub clock is not synchronised', async () => {
    const r = rig({}, { setup: [UNLOCK, START_COMMAND, STAMPED_POLL], mayWriteClock: false });
    await r.central.start();
    r.session.start();
    await r.scheduler.advanceAsync(1_200);
    expect(r.writes.filter((w) => w.hex.startsWith('03')).map((w) => w.hex)).toEqual(['03ff', '03ff']);
    await r.session.stop();
  });

  it('fails the attempt with DRIVER_SETUP_VALUE, without the bytes, when a repeat cannot compute its value', async () => {
    // Passes defineDriver's sample contexts (2026-01-01 and no clock), throws from the third second of the test.
    const failing: SetupWrite = {
      ...POLL,
      value: ({ now }) => {
        if (now !== null && now.getTime() - START > 1_500) throw new Error('secret 42');
        return Uint8Array.of(0x03);
      },
    };
    const r = rig({}, { setup: [UNLOCK, START_COMMAND, failing] });
    await r.central.start();
    r.session.start();
    await r.scheduler.advanceAsync(2_200);
    expect(r.session.state).toBe('backoff');
    const detail = r.states.find((s) => s.state === 'backoff')?.detail ?? '';
    expect(detail).toBe(
      'DRIVER_SETUP_VALUE: setup write to ffe2 (real-time parameter request): its value function threw (a driver bug)',
    );
    expect(r.peripheral.connected).toBe(false);
    await r.session.stop();
  });
});

describe('defineDriver checks the answers a setup write expects', () => {
  const base = {
    id: 'vendor/test-talkback',
    version: '1.0.0',
    name: 'x',
    category: 'other' as const,
    match: { services: [SERVICE] },
    characteristics: driver.characteristics,
    sources: ['this test'],
  };
  it.each([
    [{ ...POLL, expect: { ...POLL_ANSWER, timeoutMs: 1_500 } }, /must not exceed repeatEveryMs/],
    [{ ...UNLOCK, expect: { ...UNLOCK_ANSWER, characteristic: WRITE } }, /notify\/indicate/],
    [{ ...UNLOCK, expect: { ...UNLOCK_ANSWER, match: [] } }, /expect.match/],
    [{ ...UNLOCK, expect: { ...UNLOCK_ANSWER, refused: [300] } }, /expect.refused/],
    [{ ...UNLOCK, expect: { ...UNLOCK_ANSWER, retries: 1.5 } }, /expect.retries/],
    [{ ...UNLOCK, expect: { ...UNLOCK_ANSWER, timeoutMs: 0 } }, /expect.timeoutMs/],
    [{ ...UNLOCK, value: new Uint8Array(0) }, /value must be 1 to 512 bytes/],
    [{ ...UNLOCK, value: () => new Uint8Array(0) }, /value function must return 1 to 512 bytes/],
    [
      {
        ...UNLOCK,
        value: ({ now }: SetupContext) => Uint8Array.of(0x01, (now as Date).getUTCSeconds()),
      },
      /value function threw \(a driver bug\), for a clock not synchronised/,
    ],
  ])('refuses a bad expect (%#)', (write, message) => {
    expect(() => defineDriver({ ...base, setup: [write] })).toThrow(DriverError);
    expect(() => defineDriver({ ...base, setup: [write] })).toThrow(message);
  });
});
