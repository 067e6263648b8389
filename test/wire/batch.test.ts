import { Decoder as CborxDecoder } from 'cbor-x';
import { describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../scripts/support/measurements.js';
import type { Gap } from '../../src/model/gap.js';
import type { Measurement } from '../../src/model/measurement.js';
import {
  type Batch,
  type BatchItem,
  decodeBatch,
  decodeBatchItem,
  encodeBatch,
  encodeBatchItem,
} from '../../src/wire/batch.js';
import { type CborInput, decodeCbor, encodeCbor } from '../../src/wire/cbor.js';
import { diagnose } from '../../src/wire/diag.js';
import { ascii, expectWireError, hex, toHex } from './support.js';

const SENT = Date.UTC(2026, 10, 28, 12, 0, 0);

function batchOf(...items: BatchItem[]): Batch {
  return { gatewayId: 'gw-test-01', seq: 7, sentAt: SENT, items };
}

function m(overrides: Partial<Measurement> = {}, n = 1): BatchItem {
  return { type: 'measurement', measurement: spo2Measurement(n, overrides) };
}

const GAP: Gap = {
  type: 'gap',
  id: `g1-${'0'.repeat(31)}1`,
  deviceId: 'd1',
  count: 3,
  firstTime: '2026-11-28T08:00:00Z',
  lastTime: '2026-11-28T08:02:00Z',
  reason: 'evicted-full',
  recordedAt: '2026-11-28T12:00:00.000Z',
};

describe('batch round trips', () => {
  it.each<[string, BatchItem]>([
    ['a plain SpO2 reading', m()],
    ['a gap record', GAP],
    ['an expired gap', { ...GAP, reason: 'expired', count: 86_400, firstTime: '2026-11-01T00:00:00' }],
    ['a store-damaged gap', { ...GAP, deviceId: '*', reason: 'store-damaged', seqs: [901, 2000] }],
    [
      'a NaN observation',
      m({ observations: [{ code: 'MDC_PULS_OXIM_SAT_O2', value: null, unit: '%', invalid: 'nan' }] }),
    ],
    [
      'qualifiers with and without invalid reasons',
      m({
        observations: [
          { code: 'MDC_PULS_OXIM_SAT_O2', value: 97.5, unit: '%', qualifier: 'fast' },
          { code: 'MDC_PULS_OXIM_SAT_O2', value: null, unit: '%', invalid: 'nres', qualifier: 'slow' },
          { code: 'MDC_ECG_TIME_PD_RR_GL', value: 0.8203125, unit: 's', qualifier: 'rr-1' },
        ],
      }),
    ],
    [
      'every invalid reason',
      m({
        observations: (['nan', 'nres', '+inf', '-inf', 'reserved'] as const).map((invalid) => ({
          code: 'MDC_TEMP_BODY' as const,
          value: null,
          unit: 'Cel' as const,
          invalid,
        })),
      }),
    ],
    [
      'a device-timed reading with status and nested details',
      m({
        id: 'm1-0123456789abcdef0123456789abcdef',
        characteristic: '2a35',
        time: '2026-11-28T07:59:58.250+01:00',
        timeSource: 'device-corrected',
        deviceTime: '2026-11-28T08:00:00',
        status: ['irregular-pulse', 'cuff-fit-loose'],
        details: {
          userId: 3,
          sequence: 65535,
          ratio: 0.25,
          big: 1795867200000,
          negative: -40,
          flag: true,
          none: null,
          text: 'left arm',
          list: [1, 'two', [3], { four: 4 }],
          nested: { deeper: { deepest: [] } },
          ['__proto__']: { polluted: true },
        },
      }),
    ],
    ['an info reading without observations', m({ kind: 'info', observations: [], details: { battery: 80 } })],
    ['an intermediate reading', m({ kind: 'intermediate' })],
    ['a 128-bit vendor characteristic', m({ characteristic: '0000fff1-0000-1000-8000-00805f9b34fc' })],
    ['UTF-8 text in details', m({ details: { note: 'Blutdruck \u00fcberpr\u00fcft \u6c34 \ud83e\ude7a' } })],
    ['a stored record', m({ stored: true })],
    ['a live reading an alert rule marked', m({ alert: { rule: 'spo2-low', late: false } })],
    [
      'a stored record marked late by a rule',
      m({ stored: true, alert: { rule: 'pulse-high:MDC_PULS_OXIM_PULS_RATE', late: true } }),
    ],
  ])('%s', (_name, item) => {
    const batch = batchOf(item);
    const decoded = decodeBatch(encodeBatch(batch));
    expect(decoded).toEqual(batch);
    // JSON of the decoded item is the JSON of the original: what the clinic stores is what the gateway sent.
    expect(JSON.stringify(decoded.items[0])).toBe(JSON.stringify(item));
  });

  it('round-trips a large batch of many devices in order', () => {
    const items: BatchItem[] = [];
    for (let n = 0; n < 500; n++)
      items.push(
        n % 50 === 49
          ? { ...GAP, id: `g1-${n.toString(16).padStart(32, '0')}` }
          : m({ deviceId: `dev-${n % 3}` }, n),
      );
    const batch = { ...batchOf(...items), seq: 2 ** 40 };
    expect(decodeBatch(encodeBatch(batch))).toEqual(batch);
  });

  it('a "__proto__" key in details stays data and never becomes a prototype', () => {
    const decoded = decodeBatch(
      encodeBatch(batchOf(m({ details: JSON.parse('{"__proto__": {"polluted": true}}') }))),
    );
    const item = decoded.items[0] as { measurement: Measurement };
    expect(Object.getPrototypeOf(item.measurement.details)).toBe(Object.prototype);
    expect(Object.hasOwn(item.measurement.details, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('leaves out empty status and details, and writes the shortest observation arrays', () => {
    const bytes = encodeBatch(batchOf(m()));
    const text = diagnose(bytes);
    expect(text).not.toContain('"st"');
    expect(text).not.toContain('"det"');
    expect(text).toContain('["MDC_PULS_OXIM_SAT_O2", 91, "%"]');
    expect(text).not.toContain('"stored"');
    expect(text).not.toContain('"alert"');
  });

  it('writes stored and the alert mark as the optional keys of docs/wire-format.md 7.1', () => {
    const text = diagnose(encodeBatch(batchOf(m({ stored: true, alert: { rule: 'spo2-low', late: true } }))));
    expect(text).toContain('"stored": true');
    expect(text).toContain('"alert": {"rule": "spo2-low", "late": true}');
  });
});

describe('batch encoding against hand-written expectations', () => {
  it('matches a hand-written diagnostic notation', () => {
    const batch = batchOf(
      m({
        id: 'm1-00000000000000000000000000000abc',
        observations: [
          { code: 'MDC_PULS_OXIM_SAT_O2', value: 98.5, unit: '%' },
          { code: 'MDC_PULS_OXIM_PULS_RATE', value: null, unit: '/min', invalid: 'nan' },
          { code: 'MDC_PULS_OXIM_SAT_O2', value: 97, unit: '%', qualifier: 'slow' },
        ],
        status: ['low-perfusion-detected'],
        details: { userId: 1 },
      }),
      GAP,
    );
    expect(diagnose(encodeBatch(batch), { width: 200 })).toBe(
      [
        '{',
        '  "v": 1,',
        '  "gw": "gw-test-01",',
        '  "seq": 7,',
        '  "sent": 1795867200000,',
        '  "items": [',
        '    {',
        '      "t": "m",',
        '      "id": "m1-00000000000000000000000000000abc",',
        '      "dev": "dev-ox-1",',
        '      "drv": "sig/pulse-oximeter@1.0.0",',
        '      "chr": "2a5f",',
        '      "time": "2026-11-28T08:00:01.000Z",',
        '      "tsrc": "gateway",',
        '      "dtime": null,',
        '      "rcvd": "2026-11-28T08:00:01.000Z",',
        '      "kind": "measurement",',
        '      "obs": [["MDC_PULS_OXIM_SAT_O2", 98.5, "%"], ["MDC_PULS_OXIM_PULS_RATE", null, "/min", "nan"], ["MDC_PULS_OXIM_SAT_O2", 97, "%", null, "slow"]],',
        '      "st": ["low-perfusion-detected"],',
        '      "det": {"userId": 1}',
        '    },',
        '    {',
        '      "t": "gap",',
        '      "id": "g1-00000000000000000000000000000001",',
        '      "dev": "d1",',
        '      "n": 3,',
        '      "first": "2026-11-28T08:00:00Z",',
        '      "last": "2026-11-28T08:02:00Z",',
        '      "why": "evicted-full",',
        '      "rec": "2026-11-28T12:00:00.000Z"',
        '    }',
        '  ]',
        '}',
      ].join('\n'),
    );
  });

  it('decodes hand-written bytes, and encodes the same value to the same bytes', () => {
    const bytes = hex(
      [
        'a5', //                                     map(5)
        `61${ascii('v')} 01`, //                     "v": 1
        `62${ascii('gw')} 6a${ascii('gw-test-01')}`, // "gw": "gw-test-01"
        `63${ascii('seq')} 07`, //                   "seq": 7
        `64${ascii('sent')} 1b000001a22206ca00`, //  "sent": 1795867200000 (uint64)
        `65${ascii('items')} 81`, //                 "items": array(1)
        'a8', //                                     map(8)
        `61${ascii('t')} 63${ascii('gap')}`,
        `62${ascii('id')} 7823${ascii(GAP.id)}`, //  text(35)
        `63${ascii('dev')} 62${ascii('d1')}`,
        `61${ascii('n')} 03`,
        `65${ascii('first')} 74${ascii('2026-11-28T08:00:00Z')}`, // text(20)
        `64${ascii('last')} 74${ascii('2026-11-28T08:02:00Z')}`,
        `63${ascii('why')} 6c${ascii('evicted-full')}`, // text(12)
        `63${ascii('rec')} 7818${ascii('2026-11-28T12:00:00.000Z')}`, // text(24)
      ].join(''),
    );
    expect(decodeBatch(bytes)).toEqual(batchOf(GAP));
    expect(toHex(encodeBatch(batchOf(GAP)))).toBe(toHex(bytes));
  });

  it('is plain CBOR that a generic decoder (cbor-x) reads without extensions', () => {
    const generic = new CborxDecoder({ useRecords: false, mapsAsObjects: true });
    const value = generic.decode(encodeBatch(batchOf(m(), GAP))) as Record<string, unknown>;
    expect(value['v']).toBe(1);
    expect(value['sent']).toBe(BigInt(SENT));
    const items = value['items'] as Record<string, unknown>[];
    expect(items[0]?.['obs']).toEqual([
      ['MDC_PULS_OXIM_SAT_O2', 91, '%'],
      ['MDC_PULS_OXIM_PULS_RATE', 61, '/min'],
    ]);
    expect(items[1]).toEqual({
      t: 'gap',
      id: GAP.id,
      dev: 'd1',
      n: 3,
      first: GAP.firstTime,
      last: GAP.lastTime,
      why: 'evicted-full',
      rec: GAP.recordedAt,
    });
  });
});

/** The batch as a plain CBOR-encodable object, for decoding tests that need fields the encoder would refuse. */
function rawBatch(): Record<string, CborInput> {
  const value = decodeCbor(encodeBatch(batchOf(m(), GAP)));
  return toInput(value) as Record<string, CborInput>;
}

function toInput(value: unknown): CborInput {
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), toInput(v)]));
  if (Array.isArray(value)) return value.map(toInput);
  return value as CborInput;
}

function withItem(index: number, change: (item: Record<string, CborInput>) => void): Uint8Array {
  const batch = rawBatch();
  const items = batch['items'] as Record<string, CborInput>[];
  change(items[index] as Record<string, CborInput>);
  return encodeCbor(batch);
}

describe('batch decoding validates every field', () => {
  it('ignores unknown keys at every level (forward compatibility)', () => {
    const batch = rawBatch();
    batch['future'] = { anything: [1, 2, 3] };
    const items = batch['items'] as Record<string, CborInput>[];
    (items[0] as Record<string, CborInput>)['newField'] = 'x';
    (items[1] as Record<string, CborInput>)['newField'] = 42;
    expect(decodeBatch(encodeCbor(batch))).toEqual(batchOf(m(), GAP));
    // integer keys are unknown keys too
    const withIntKey = encodeCbor(
      new Map<string | number, CborInput>([...Object.entries(rawBatch()), [99, 'x']]),
    );
    expect(decodeBatch(withIntKey)).toEqual(batchOf(m(), GAP));
  });

  it('refuses an unknown version before reading anything else', () => {
    for (const v of [0, 2, 255]) {
      const error = expectWireError(
        () => decodeBatch(encodeCbor({ v, whatever: true })),
        'WIRE_UNSUPPORTED_VERSION',
      );
      expect(error.message).toContain(`version ${v}`);
    }
    expectWireError(() => decodeBatch(encodeCbor({ v: '1' })), 'WIRE_UNSUPPORTED_VERSION');
    expectWireError(() => decodeBatch(encodeCbor({ gw: 'gw-test-01' })), 'WIRE_INVALID_FIELD');
  });

  it('refuses a payload that is not a map as WIRE_MALFORMED', () => {
    expectWireError(() => decodeBatch(encodeCbor([1, 2])), 'WIRE_MALFORMED');
    expectWireError(() => decodeBatch(hex('a0 00')), 'WIRE_MALFORMED');
  });

  it('checks the gateway id against the topic and signer', () => {
    const bytes = encodeBatch(batchOf(m()));
    expect(decodeBatch(bytes, { gatewayId: 'gw-test-01' }).gatewayId).toBe('gw-test-01');
    expectWireError(() => decodeBatch(bytes, { gatewayId: 'gw-test-02' }), 'WIRE_GATEWAY_MISMATCH');
  });

  it.each<[string, (b: Record<string, CborInput>) => void, string]>([
    ['gw not a gateway id', (b) => (b['gw'] = 'GW_1'), 'batch.gw'],
    ['gw missing', (b) => delete b['gw'], 'batch.gw'],
    ['seq negative', (b) => (b['seq'] = -1), 'batch.seq'],
    ['seq a float', (b) => (b['seq'] = 1.5), 'batch.seq'],
    ['seq beyond 2^53', (b) => (b['seq'] = 2n ** 60n), 'batch.seq'],
    ['sent a float (a cbor-x style time)', (b) => (b['sent'] = 1795867200000.5), 'batch.sent'],
    ['sent text', (b) => (b['sent'] = '2026-11-28T12:00:00Z'), 'batch.sent'],
    ['items a map', (b) => (b['items'] = {}), 'batch.items'],
  ])('batch: %s', (_name, change, path) => {
    const batch = rawBatch();
    change(batch);
    expect(expectWireError(() => decodeBatch(encodeCbor(batch)), 'WIRE_INVALID_FIELD').message).toContain(
      path,
    );
  });

  it.each<[string, number, (i: Record<string, CborInput>) => void, string]>([
    ['item not a map', 0, (i) => Object.assign(i, { t: 'm', id: 1 }), 'batch.items[0].id'],
    ['unknown item type', 0, (i) => (i['t'] = 'event'), 'batch.items[0].t'],
    ['id not m1-', 0, (i) => (i['id'] = 'm2-00000000000000000000000000000001'), 'batch.items[0].id'],
    ['id uppercase hex', 0, (i) => (i['id'] = 'm1-0000000000000000000000000000000A'), 'batch.items[0].id'],
    ['dev empty', 0, (i) => (i['dev'] = ''), 'batch.items[0].dev'],
    ['dev a number', 0, (i) => (i['dev'] = 5), 'batch.items[0].dev'],
    ['drv without version', 0, (i) => (i['drv'] = 'sig/pulse-oximeter'), 'batch.items[0].drv'],
    ['chr uppercase', 0, (i) => (i['chr'] = '2A5F'), 'batch.items[0].chr'],
    ['time not ISO', 0, (i) => (i['time'] = '28.11.2026 08:00'), 'batch.items[0].time'],
    ['time month 13', 0, (i) => (i['time'] = '2026-13-28T08:00:00Z'), 'batch.items[0].time'],
    ['tsrc unknown', 0, (i) => (i['tsrc'] = 'ntp'), 'batch.items[0].tsrc'],
    ['dtime missing', 0, (i) => delete i['dtime'], 'batch.items[0].dtime'],
    ['dtime a number', 0, (i) => (i['dtime'] = 0), 'batch.items[0].dtime'],
    ['rcvd without Z', 0, (i) => (i['rcvd'] = '2026-11-28T08:00:01'), 'batch.items[0].rcvd'],
    ['kind unknown', 0, (i) => (i['kind'] = 'final'), 'batch.items[0].kind'],
    ['obs not an array', 0, (i) => (i['obs'] = {}), 'batch.items[0].obs'],
    ['observation too short', 0, (i) => (i['obs'] = [['MDC_TEMP_BODY', 1]]), 'batch.items[0].obs[0]'],
    [
      'observation too long',
      0,
      (i) => (i['obs'] = [['MDC_TEMP_BODY', 1, 'Cel', null, 'q', 'x']]),
      'batch.items[0].obs[0]',
    ],
    ['code not MDC', 0, (i) => (i['obs'] = [['SPO2', 1, '%']]), 'batch.items[0].obs[0][0]'],
    ['value text', 0, (i) => (i['obs'] = [['MDC_TEMP_BODY', '37', 'Cel']]), 'batch.items[0].obs[0][1]'],
    ['value NaN', 0, (i) => (i['obs'] = [['MDC_TEMP_BODY', Number.NaN, 'Cel']]), 'batch.items[0].obs[0][1]'],
    [
      'value infinite',
      0,
      (i) => (i['obs'] = [['MDC_TEMP_BODY', Number.POSITIVE_INFINITY, 'Cel']]),
      'batch.items[0].obs[0][1]',
    ],
    [
      'unit with a space',
      0,
      (i) => (i['obs'] = [['MDC_TEMP_BODY', 37, 'deg C']]),
      'batch.items[0].obs[0][2]',
    ],
    [
      'null value without reason',
      0,
      (i) => (i['obs'] = [['MDC_TEMP_BODY', null, 'Cel']]),
      'batch.items[0].obs[0][3]',
    ],
    [
      'reason with a value',
      0,
      (i) => (i['obs'] = [['MDC_TEMP_BODY', 37, 'Cel', 'nan']]),
      'batch.items[0].obs[0][3]',
    ],
    [
      'unknown reason',
      0,
      (i) => (i['obs'] = [['MDC_TEMP_BODY', null, 'Cel', 'overflow']]),
      'batch.items[0].obs[0][3]',
    ],
    [
      'empty qualifier',
      0,
      (i) => (i['obs'] = [['MDC_TEMP_BODY', 37, 'Cel', null, '']]),
      'batch.items[0].obs[0][4]',
    ],
    ['status not text', 0, (i) => (i['st'] = [1]), 'batch.items[0].st[0]'],
    ['details not a map', 0, (i) => (i['det'] = [1]), 'batch.items[0].det'],
    [
      'details with a byte string',
      0,
      (i) => (i['det'] = { raw: Uint8Array.of(1) }),
      'batch.items[0].det.raw',
    ],
    ['details with NaN', 0, (i) => (i['det'] = { x: Number.NaN }), 'batch.items[0].det.x'],
    ['details with an integer key', 0, (i) => (i['det'] = new Map([[1, 'x']])), 'batch.items[0].det'],
    ['stored false', 0, (i) => (i['stored'] = false), 'batch.items[0].stored'],
    ['stored a number', 0, (i) => (i['stored'] = 1), 'batch.items[0].stored'],
    ['alert not a map', 0, (i) => (i['alert'] = 'spo2-low'), 'batch.items[0].alert'],
    ['alert without rule', 0, (i) => (i['alert'] = { late: false }), 'batch.items[0].alert.rule'],
    ['alert rule empty', 0, (i) => (i['alert'] = { rule: '', late: false }), 'batch.items[0].alert.rule'],
    [
      'alert rule with a space',
      0,
      (i) => (i['alert'] = { rule: 'spo2 low', late: false }),
      'batch.items[0].alert.rule',
    ],
    ['alert late missing', 0, (i) => (i['alert'] = { rule: 'spo2-low' }), 'batch.items[0].alert.late'],
    ['alert late a number', 0, (i) => (i['alert'] = { rule: 'r', late: 0 }), 'batch.items[0].alert.late'],
    ['gap id not g1-', 1, (i) => (i['id'] = 'm1-00000000000000000000000000000001'), 'batch.items[1].id'],
    ['gap count 0', 1, (i) => (i['n'] = 0), 'batch.items[1].n'],
    ['gap count negative', 1, (i) => (i['n'] = -3), 'batch.items[1].n'],
    ['gap reason unknown', 1, (i) => (i['why'] = 'deleted'), 'batch.items[1].why'],
    ['gap first missing', 1, (i) => delete i['first'], 'batch.items[1].first'],
    ['gap rec not UTC', 1, (i) => (i['rec'] = '2026-11-28T12:00:00+01:00'), 'batch.items[1].rec'],
    ['gap seqs reversed', 1, (i) => (i['seqs'] = [9, 3]), 'batch.items[1].seqs'],
    ['gap seqs not a pair', 1, (i) => (i['seqs'] = [9]), 'batch.items[1].seqs'],
  ])('item: %s', (_name, index, change, path) => {
    const error = expectWireError(() => decodeBatch(withItem(index, change)), 'WIRE_INVALID_FIELD');
    expect(error.message).toContain(path);
  });

  it('accepts MDC codes and UCUM units newer than its own tables (syntax only)', () => {
    const bytes = withItem(0, (i) => (i['obs'] = [['MDC_FUTURE_THING', 1.25, 'mL/min']]));
    const item = decodeBatch(bytes).items[0] as { measurement: Measurement };
    expect(item.measurement.observations).toEqual([
      { code: 'MDC_FUTURE_THING', value: 1.25, unit: 'mL/min' },
    ]);
  });

  it('never puts a field value (PHI) into an error message', () => {
    const error = expectWireError(
      () => decodeBatch(withItem(0, (i) => (i['dev'] = 'x'.repeat(129)))),
      'WIRE_INVALID_FIELD',
    );
    expect(error.message).not.toContain('xxx');
    const time = expectWireError(
      () => decodeBatch(withItem(0, (i) => (i['time'] = 'Jane Doe 1970'))),
      'WIRE_INVALID_FIELD',
    );
    expect(time.message).not.toContain('Jane');
  });
});

describe('encodeBatch refuses what a receiver would refuse', () => {
  it.each<[string, BatchItem, string]>([
    [
      'an MDC code not in the table',
      m({ observations: [{ code: 'MDC_NOPE' as 'MDC_TEMP_BODY', value: 1, unit: 'Cel' }] }),
      'batch.items[0].obs[0][0]',
    ],
    [
      'a unit not in the table',
      m({ observations: [{ code: 'MDC_TEMP_BODY', value: 1, unit: 'K' as 'Cel' }] }),
      'batch.items[0].obs[0][2]',
    ],
    [
      'a NaN value',
      m({ observations: [{ code: 'MDC_TEMP_BODY', value: Number.NaN, unit: 'Cel' }] }),
      'batch.items[0].obs[0][1]',
    ],
    [
      'null without a reason',
      m({ observations: [{ code: 'MDC_TEMP_BODY', value: null, unit: 'Cel' }] }),
      'batch.items[0].obs[0][3]',
    ],
    ['a malformed id', m({ id: 'abc' }), 'batch.items[0].id'],
    ['a local receipt time', m({ receivedAt: '2026-11-28T08:00:01' }), 'batch.items[0].rcvd'],
    ['a Date in details', m({ details: { at: new Date() as unknown as string } }), 'batch.items[0].det.at'],
    [
      'an infinite number in details',
      m({ details: { x: Number.POSITIVE_INFINITY } }),
      'batch.items[0].det.x',
    ],
    ['a gap with count 0', { ...GAP, count: 0 }, 'batch.items[0].n'],
  ])('%s', (_name, item, path) => {
    const error = expectWireError(() => encodeBatch(batchOf(item)), 'WIRE_INVALID_FIELD');
    expect(error.message).toContain(path);
  });

  it('refuses a bad gateway id, sequence number or time', () => {
    expectWireError(() => encodeBatch({ ...batchOf(), gatewayId: 'GW' }), 'WIRE_INVALID_FIELD');
    expectWireError(() => encodeBatch({ ...batchOf(), seq: -1 }), 'WIRE_INVALID_FIELD');
    expectWireError(() => encodeBatch({ ...batchOf(), sentAt: 1.5 }), 'WIRE_INVALID_FIELD');
  });
});

describe('the encoder checks exactly what the decoder checks', () => {
  // The encoder no longer decodes what it wrote: it checks each field with the decoder's rules. This walks
  // every field through good and bad values and compares the encoder's verdict with a receiver's, on the same
  // item written without any check.
  const unchecked = (x: Measurement): Record<string, CborInput | undefined> => ({
    t: 'm',
    id: x.id,
    dev: x.deviceId,
    drv: x.driver,
    chr: x.characteristic,
    time: x.time,
    tsrc: x.timeSource,
    dtime: x.deviceTime,
    rcvd: x.receivedAt,
    kind: x.kind,
    obs: x.observations.map((o) =>
      o.qualifier !== undefined
        ? [o.code, o.value, o.unit, o.invalid ?? null, o.qualifier]
        : o.invalid !== undefined
          ? [o.code, o.value, o.unit, o.invalid]
          : [o.code, o.value, o.unit],
    ) as CborInput,
    st: Array.isArray(x.status)
      ? x.status.length > 0
        ? ([...x.status] as CborInput)
        : undefined
      : (x.status as CborInput),
    det: isPlainObject(x.details)
      ? Object.keys(x.details).length > 0
        ? (x.details as CborInput)
        : undefined
      : (x.details as CborInput),
    stored: x.stored as CborInput | undefined,
    alert: x.alert as CborInput | undefined,
  });
  const isPlainObject = (v: unknown): v is object =>
    typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
  const texts = [
    '',
    'x',
    'x\uD800',
    'X'.repeat(129),
    'm1-0000000000000000000000000000000a',
    'g1-0000000000000000000000000000000a',
  ];
  const times = [
    '2026-11-28T08:00:00',
    '2026-11-28T08:00:00Z',
    '2026-11-28T08:00:00.123+01:00',
    '2026-13-01T00:00:00Z',
  ];
  const odd = [0, -1, 1.5, Number.NaN, null, true, [], {}];
  const values: Record<string, readonly unknown[]> = {
    id: [...texts, ...odd],
    deviceId: [...texts, ...odd],
    driver: ['sig/x@1', 'sig/x', '@1', 'a@b@c', ...texts, ...odd],
    characteristic: ['2a5f', '2A5F', '2a5', '0000180d-0000-1000-8000-00805f9b34fb', ...odd],
    time: [...times, ...texts, ...odd],
    timeSource: ['device', 'device-corrected', 'gateway', 'ntp', ...odd],
    deviceTime: [...times, ...odd],
    receivedAt: [...times, ...odd],
    kind: ['measurement', 'intermediate', 'info', 'final', ...odd],
    status: [[], ['ok'], [''], ['x'.repeat(65)], [1], 'ok'],
    details: [
      {},
      { a: 1 },
      { a: Number.NaN },
      { a: { b: [1, 'x', null] } },
      [],
      null,
      { big: 2 ** 53, bigger: 1e16 },
      { 'a\uD800': 1, 'a\uDC00': 2 },
      { a: 'x\uD800' },
    ],
    stored: [undefined, true, false, null, 1, 'yes'],
    alert: [
      undefined,
      { rule: 'spo2-low', late: false },
      { rule: 'spo2-low', late: true },
      { rule: 'spo2-low', late: true, since: 'later revisions' },
      { rule: '', late: false },
      { rule: 'x'.repeat(129), late: false },
      { rule: 'spo2 low', late: false },
      { rule: 'spo2-low\uD800', late: false },
      { rule: 'spo2-low' },
      { rule: 'spo2-low', late: 'yes' },
      { late: true },
      ...odd,
    ],
    observations: [
      [],
      [{ code: 'MDC_TEMP_BODY', value: 37, unit: 'Cel' }],
      [{ code: 'MDC_TEMP_BODY', value: null, unit: 'Cel', invalid: 'nan' }],
      [{ code: 'MDC_TEMP_BODY', value: null, unit: 'Cel' }],
      [{ code: 'MDC_TEMP_BODY', value: 37, unit: 'Cel', invalid: 'nan' }],
      [{ code: 'MDC_TEMP_BODY', value: 37, unit: 'Cel', qualifier: 'oral' }],
      [{ code: 'MDC_TEMP_BODY', value: 37, unit: 'Cel', qualifier: '' }],
      [{ code: 'MDC_TEMP_BODY', value: Number.POSITIVE_INFINITY, unit: 'Cel' }],
      [{ code: 'MDC_TEMP_BODY', value: '37', unit: 'Cel' }],
      [{ code: 'MDC_TEMP_BODY', value: null, unit: 'Cel', invalid: 'overflow' }],
      [{ code: 'MDC_TEMP_BODY', value: 2 ** 53, unit: 'Cel' }],
      [{ code: 'MDC_TEMP_BODY', value: -1e16, unit: 'Cel' }],
      [{ code: 'MDC_TEMP_BODY', value: 37, unit: 'Cel', qualifier: 'oral\uD800' }],
    ],
  };
  const cases = Object.entries(values).flatMap(([field, list]) =>
    list.map((value, i) => [`${field} #${i}`, field, value] as const),
  );

  it.each(cases)('%s', (_name, field, value) => {
    const measurement = { ...spo2Measurement(1), [field]: value } as Measurement;
    let encoded = true;
    try {
      encodeBatchItem({ type: 'measurement', measurement });
    } catch (error) {
      expect((error as { code?: string }).code).toBe('WIRE_INVALID_FIELD');
      encoded = false;
    }
    let raw: Uint8Array | undefined;
    try {
      raw = encodeCbor(unchecked(measurement));
    } catch {
      raw = undefined; // not even CBOR (e.g. a Date): the encoder must have refused it
    }
    let accepted = raw !== undefined;
    if (raw !== undefined) {
      try {
        decodeBatchItem(raw);
      } catch {
        accepted = false;
      }
    }
    expect(encoded).toBe(accepted);
  });

  it('refuses what CBOR would silently change (a Date in details would arrive as an empty map)', () => {
    expectWireError(
      () => encodeBatchItem(m({ details: { at: new Date() as unknown as string } })),
      'WIRE_INVALID_FIELD',
    );
  });

  it('refuses codes and units that are well-formed but not in its own tables (stricter, never looser)', () => {
    const item = (code: string, unit: string): BatchItem =>
      m({ observations: [{ code: code as 'MDC_TEMP_BODY', value: 1, unit: unit as 'Cel' }] });
    expectWireError(() => encodeBatchItem(item('MDC_FUTURE_THING', 'Cel')), 'WIRE_INVALID_FIELD');
    expectWireError(() => encodeBatchItem(item('MDC_TEMP_BODY', 'mL/min')), 'WIRE_INVALID_FIELD');
  });
});
