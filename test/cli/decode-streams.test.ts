import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

/**
 * `rpm-gateway decode` on vendor streams: a "stream" of notifications through one connection's framer, driver
 * choice by advertised service and name, and framed payloads in single mode.
 */
const cli = (args: string[], stdin = '') => runCli(args, { stdin });
const ndjson = async (...lines: unknown[]) => {
  const { code, stdout, stderr } = await cli(
    ['decode', '--ndjson'],
    `${lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')}\n`,
  );
  expect(code).toBe(0);
  expect(stderr).toBe('');
  const out = stdout
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line));
  expect(out).toHaveLength(lines.length);
  return out;
};

const BCI = '49535343-1e4d-4bd9-ba61-23c647249616';
const BCI_SERVICE = '49535343-fe7d-4ae5-8fa9-9fafd205e455';
// BCI frames (devices/vendor/berrymed-bm1000/fixtures.json): SpO2 98 / PR 72, then pleth 64.
const F1 = '8732054862';
const F2 = '8740064862';
// Contec CMS50D-BT capture (tobiasisenberg/OxiVis issue #2): PR 64, SpO2 99; and PR 138, SpO2 97 (layout).
const M1 = 'eb010440637f0012';
const M2 = 'eb01060a617f005c';

const spo2Of = (reading: { observations: { code: string; value: number | null }[] }) =>
  reading.observations.find((o) => o.code === 'MDC_PULS_OXIM_SAT_O2')?.value;

describe('rpm-gateway decode: streams', () => {
  it('answers a stream with every reading in frame-completion order and every frame error', async () => {
    const [out] = await ndjson({
      char: BCI,
      stream: ['873205', '4862' + '0102', F2.slice(0, 4), F2.slice(4)],
    });
    expect(out.driver).toMatch(/^vendor\/berrymed-bm1000@/);
    expect(out.readings.map((r: { details: { pleth: number } }) => r.details.pleth)).toEqual([50, 64]);
    expect(out.errors).toEqual([
      {
        code: 'DECODE_FRAME_GARBAGE',
        message: '2 byte(s) that start no frame were skipped (at byte 5)',
        offset: 5,
        bytes: 2,
      },
    ]);
  });

  it('decodes frames split across notifications or merged into one exactly as when sent whole', async () => {
    const whole = [M1, M2, M1, 'eb0005300525', M2];
    const joined = whole.join('');
    const cuts = [
      whole,
      [joined],
      [joined.slice(0, 10), joined.slice(10, 30), joined.slice(30)],
      joined.match(/.{1,40}/g) as string[],
    ];
    const answers = await ndjson(...cuts.map((stream) => ({ char: 'ff02', stream })));
    for (const answer of answers) {
      expect(answer.errors).toEqual([]);
      expect(answer.readings).toEqual(answers[0].readings);
    }
    expect(answers[0].readings.map(spo2Of)).toEqual([99, 97, 99, 97]);
  });

  it('reports a bad checksum as an error entry, never silence, and keeps the frames around it', async () => {
    const [out] = await ndjson({ char: 'ff02', stream: [M1, 'eb010440637f0013', M2] });
    expect(out.readings.map(spo2Of)).toEqual([99, 97]);
    expect(out.errors).toHaveLength(1);
    expect(out.errors[0]).toMatchObject({ code: 'DECODE_CHECKSUM', bytes: 8, offset: 8 });
  });

  it('reports an unfinished frame at the end of the stream', async () => {
    const [out] = await ndjson({ char: 'ff02', stream: [M1, 'eb0104'] });
    expect(out.readings.map(spo2Of)).toEqual([99]);
    expect(out.errors).toMatchObject([{ code: 'DECODE_TRUNCATED', bytes: 3 }]);
  });

  it('refuses malformed stream requests with an error line', async () => {
    const out = await ndjson(
      { char: 'ff02', stream: [M1, 'zz'] },
      { char: 'ff02', stream: [] },
      { char: 'ff02', stream: [M1], hex: M1 },
      { char: 'ff02', stream: [1] },
      { char: 'ff02', hex: M1, service: 12 },
      { char: 'ffff', stream: [M1] },
    );
    expect(out.map((o) => o.error?.code)).toEqual([
      'DECODE_BAD_HEX',
      'DECODE_BAD_REQUEST',
      'DECODE_BAD_REQUEST',
      'DECODE_BAD_REQUEST',
      'DECODE_BAD_REQUEST',
      'DECODE_UNKNOWN_CHARACTERISTIC',
    ]);
    for (const o of out) expect(JSON.stringify(o)).not.toMatch(/\bat (?:file|node):|\n\s+at /);
  });
});

describe('rpm-gateway decode: driver chosen as a hub would', () => {
  it('picks the driver a device advertising the service and name would get', async () => {
    const out = await ndjson(
      { char: 'ff02', hex: M1, service: 'ff12', name: 'SpO2080971' },
      { char: BCI, hex: F1, service: BCI_SERVICE, name: 'BerryMed' },
      // The transparent-UART service alone is not BerryMed's (other products use it): no driver.
      { char: BCI, hex: F1, service: BCI_SERVICE },
      { char: 'ff02', hex: M1, service: 'ff12', name: 'Something else' },
      // A device the Contec driver claims has no Blood Pressure Measurement to decode.
      { char: '2a35', hex: '00780050005d00', service: 'ff12', name: 'SpO208' },
      { char: '2a35', hex: '00780050005d00', service: '1810' },
      { char: '2a35', hex: '00780050005d00' },
      { char: 'ff02', hex: M1, service: 'not-a-uuid' },
    );
    expect(out[0].driver).toMatch(/^vendor\/contec-cms50d-bt@/);
    expect(spo2Of(out[0])).toBe(99);
    expect(out[1].driver).toMatch(/^vendor\/berrymed-bm1000@/);
    expect(out[2].error.code).toBe('DECODE_NO_DRIVER');
    expect(out[3].error.code).toBe('DECODE_NO_DRIVER');
    expect(out[4].error.code).toBe('DECODE_UNKNOWN_CHARACTERISTIC');
    expect(out[5].driver).toMatch(/^sig\/blood-pressure@/);
    expect(out[6].driver).toBe(out[5].driver);
    expect(out[7].error.code).toBe('DECODE_BAD_UUID');
  });

  it('takes --service/--name in single mode, and refuses them with --driver', async () => {
    const picked = await cli(['decode', '--service', 'ff12', '--name', 'SpO208', 'ff02', M1]);
    expect(picked.code).toBe(0);
    expect(JSON.parse(picked.stdout).driver).toMatch(/^vendor\/contec-cms50d-bt@/);
    const none = await cli(['decode', '--name', 'Nobody', 'ff02', M1]);
    expect(none.code).toBe(1);
    expect(JSON.parse(none.stdout).error.code).toBe('DECODE_NO_DRIVER');
    const both = await cli(['decode', '--driver', 'sig/heart-rate', '--name', 'x', '2a37', '0048']);
    expect(both.code).toBe(2);
  });
});

describe('rpm-gateway decode: framed payloads in single mode', () => {
  it('answers readings for a payload holding several frames', async () => {
    const { code, stdout } = await cli(['decode', BCI, F1 + F2]);
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    expect(out.readings).toHaveLength(2);
    expect(out.errors).toBeUndefined();
  });

  it('exits 1 on a bad checksum, with the typed error', async () => {
    const { code, stdout, stderr } = await cli(['decode', 'ff02', 'eb010440637f0013']);
    expect(code).toBe(1);
    expect(JSON.parse(stdout).error).toMatchObject({ code: 'DECODE_CHECKSUM', bytes: 8 });
    expect(stderr).toBe('');
  });

  it('exits 1 when only part of the payload framed, printing the readings and the errors', async () => {
    const { code, stdout } = await cli(['decode', 'ff02', `${M1}eb0104`]);
    expect(code).toBe(1);
    const out = JSON.parse(stdout);
    expect(spo2Of(out)).toBe(99);
    expect(out.errors).toMatchObject([{ code: 'DECODE_TRUNCATED', bytes: 3 }]);
  });

  it('documents streams and driver choice in --help', async () => {
    const { stdout } = await cli(['decode', '--help']);
    expect(stdout).toContain('"stream":["<hex>","<hex>",...]');
    expect(stdout).toContain('"service":"<uuid>","name":"<local name>"');
    expect(stdout).toContain('--service <uuid>');
  });
});
