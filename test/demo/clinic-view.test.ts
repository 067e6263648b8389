import { describe, expect, it } from 'vitest';
import { ClinicView } from '../../src/demo/clinic-view.js';
import type { Measurement } from '../../src/model/measurement.js';

const BP: Measurement = {
  id: 'm1-00',
  deviceId: 'd1-0011223344556677',
  driver: 'sig/blood-pressure@1.0.0',
  characteristic: '2a35',
  time: '2026-12-05T07:30:00',
  timeSource: 'device',
  deviceTime: '2026-12-05T07:30:00',
  receivedAt: '2026-12-05T07:30:02.000Z',
  kind: 'measurement',
  observations: [
    { code: 'MDC_PRESS_BLD_NONINV_SYS', value: 121, unit: 'mm[Hg]' },
    { code: 'MDC_PRESS_BLD_NONINV_DIA', value: 79, unit: 'mm[Hg]' },
    { code: 'MDC_PULS_RATE_NON_INV', value: null, unit: '/min', invalid: 'nan' },
  ],
  status: [],
  details: {},
};

describe('the demo clinic view', () => {
  it('prints one readable line per reading and counts what arrived', () => {
    const lines: string[] = [];
    const view = new ClinicView(
      (line) => lines.push(line),
      () => 'bedroom cuff',
    );
    view.measurement('gw-demo-0001', BP, 'alert');
    view.gap('gw-demo-0001', {
      type: 'gap',
      id: 'g1',
      deviceId: BP.deviceId,
      count: 3,
      firstTime: BP.time,
      lastTime: BP.time,
      reason: 'expired',
      recordedAt: BP.receivedAt,
    });
    view.rejected('WIRE_BAD_SIGNATURE');
    expect(lines[0]).toBe(
      'clinic <- gw-demo-0001  bedroom cuff     sys 121 mm[Hg]  dia 79 mm[Hg]  pulse -- (nan) /min  at 2026-12-05 07:30:00  [ALERT, device time]',
    );
    expect(lines[1]).toBe('clinic <- gw-demo-0001  gap: 3 reading(s) not delivered (expired)');
    expect(view.summary()).toBe(
      'clinic received 1 reading(s) (1 on the alert lane), 1 gap record(s), dropped 0 duplicate(s), rejected 1 message(s)',
    );
  });

  it('marks stored and intermediate readings, and shows a glucose context by its meal', () => {
    const lines: string[] = [];
    const view = new ClinicView(
      (line) => lines.push(line),
      () => 'meter',
    );
    view.measurement('gw-demo-0001', { ...BP, stored: true, kind: 'intermediate' }, 'obs');
    view.measurement(
      'gw-demo-0001',
      { ...BP, observations: [], kind: 'info', timeSource: 'gateway', details: { meal: 'fasting' } },
      'obs',
    );
    view.measurement('gw-demo-0001', { ...BP, observations: [], kind: 'info', timeSource: 'gateway' }, 'obs');
    expect(lines[0]).toMatch(/ {2}\[stored, intermediate, device time\]$/);
    expect(lines[1]).toBe(
      'clinic <- gw-demo-0001  meter            context: meal fasting  at 2026-12-05 07:30:00',
    );
    expect(lines[2]).toBe(
      'clinic <- gw-demo-0001  meter            info (no values)  at 2026-12-05 07:30:00',
    );
  });
});
