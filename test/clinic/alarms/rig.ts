import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AlarmStore } from '../../../src/clinic/alarms/alarm-store.js';
import { AlarmEngine, type AlarmEvent } from '../../../src/clinic/alarms/engine.js';
import type { AlarmSettingsInput } from '../../../src/clinic/alarms/settings.js';
import { SqliteAlarmStore } from '../../../src/clinic/alarms/sqlite/sqlite-alarm-store.js';
import type { ClinicStore, Receipt } from '../../../src/clinic/storage/clinic-store.js';
import { SqliteClinicStore } from '../../../src/clinic/storage/sqlite/sqlite-clinic-store.js';
import type { Gap } from '../../../src/model/gap.js';
import type { Measurement } from '../../../src/model/measurement.js';
import { VirtualScheduler } from '../../../src/util/scheduler.js';
import type { GatewayStatus } from '../../../src/wire/status.js';

/**
 * An alarm engine on real stores (the clinic's encrypted SQLite file, the clinic record and the alarm tables
 * each on its own connection, as in production) and virtual time. Readings, statuses and gaps go in through
 * ClinicStore.commit, so the engine sees them through the real live feed.
 */
export const KEY = Uint8Array.from(Buffer.from('5a'.repeat(32), 'hex'));
export const T0 = Date.UTC(2026, 2, 2, 8, 0, 0);
export const GW = 'gw-alarm-1';
export const MRN = 'MRN-0042';
export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

export interface Rig {
  readonly scheduler: VirtualScheduler;
  readonly clinic: ClinicStore;
  alarms: AlarmStore;
  engine: AlarmEngine;
  readonly events: AlarmEvent[];
  readonly path: string;
  /** Commits readings (received now unless `receivedAt`), then waits until the engine handled them. */
  read(...readings: ReadingSpec[]): Promise<void>;
  status(
    state: GatewayStatus['state'],
    extra?: Partial<GatewayStatus> & { receivedAt?: number },
  ): Promise<void>;
  gap(gap: Partial<Gap>): Promise<void>;
  /** Moves virtual time, letting the engine's steps run between timers, and waits until it is idle. */
  advance(ms: number): Promise<void>;
  /** Stops the engine and opens a new one on the same stores (a restart of the process). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface ReadingSpec {
  readonly code?: string;
  readonly value: number;
  readonly unit?: string;
  /** Measurement time; default now. */
  readonly at?: number;
  readonly receivedAt?: number;
  readonly stored?: boolean;
  readonly deviceId?: string;
  /** The hub's `sent` of the batch; default the receipt time. */
  readonly sentAt?: number;
}

let counter = 0;

export async function startRig(settings: AlarmSettingsInput = {}): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'rpm-alarms-'));
  const path = join(dir, 'clinic.db');
  const scheduler = new VirtualScheduler(T0);
  const clinic = await SqliteClinicStore.open({ path, key: KEY, clock: scheduler });
  await clinic.assign({
    gatewayId: GW,
    mrn: MRN,
    from: T0 - 6 * HOUR,
    createdBy: 'admin',
    at: T0 - 6 * HOUR,
  });
  const events: AlarmEvent[] = [];
  const errors: unknown[] = [];
  const open = async () => {
    const alarms = await SqliteAlarmStore.open({ path, key: KEY, clock: scheduler });
    const engine = new AlarmEngine({ clinic, alarms, scheduler, settings, onError: (e) => errors.push(e) });
    engine.subscribe((event) => events.push(event));
    await engine.start();
    return { alarms, engine };
  };
  const first = await open();
  const receipt = (receivedAt: number, sentAt = receivedAt): Receipt => ({
    gatewayId: GW,
    topic: 'obs',
    batchSeq: ++counter,
    sentAt,
    signerSerial: '0a',
    receivedAt,
  });
  const rig: Rig = {
    scheduler,
    clinic,
    ...first,
    events,
    path,
    async read(...readings) {
      const now = scheduler.now();
      await clinic.commit({
        measurements: readings.map((r) => {
          const at = r.at ?? now;
          const receivedAt = r.receivedAt ?? now;
          const time = new Date(at).toISOString();
          const measurement: Measurement = {
            id: `m-alarm-${(++counter).toString(16).padStart(24, '0')}`,
            deviceId: r.deviceId ?? 'dev-ox-1',
            driver: 'sig/pulse-oximeter@1.0.0',
            characteristic: '2a5f',
            time,
            timeSource: 'gateway',
            deviceTime: null,
            receivedAt: new Date(receivedAt).toISOString(),
            kind: 'measurement',
            observations: [
              {
                code: (r.code ?? 'MDC_PULS_OXIM_SAT_O2') as Measurement['observations'][number]['code'],
                value: r.value,
                unit: (r.unit ?? '%') as Measurement['observations'][number]['unit'],
              },
            ],
            status: [],
            details: {},
            ...(r.stored ? { stored: true as const } : {}),
          };
          return { measurement, measuredAt: at, receipt: receipt(receivedAt, r.sentAt ?? receivedAt) };
        }),
        gaps: [],
        statuses: [],
        rejections: [],
      });
      await rig.engine.idle();
      check();
    },
    async status(state, extra = {}) {
      const now = scheduler.now();
      const { receivedAt = now, ...fields } = extra;
      await clinic.commit({
        measurements: [],
        gaps: [],
        statuses: [
          {
            status: {
              gatewayId: GW,
              state,
              version: '1.0.0',
              sentAt: fields.sentAt ?? receivedAt,
              backlog: { alert: 0, live: 0, backlog: 0 },
              ...fields,
            },
            signerSerial: '0a',
            receivedAt,
          },
        ],
        rejections: [],
      });
      await rig.engine.idle();
      check();
    },
    async gap(fields) {
      const now = scheduler.now();
      await clinic.commit({
        measurements: [],
        gaps: [
          {
            gap: {
              type: 'gap',
              id: `g-${++counter}`,
              deviceId: 'dev-ox-1',
              count: 12,
              firstTime: new Date(now - 10 * MINUTE).toISOString(),
              lastTime: new Date(now - 5 * MINUTE).toISOString(),
              reason: 'evicted-full',
              recordedAt: new Date(now).toISOString(),
              ...fields,
            },
            receipt: receipt(now),
          },
        ],
        statuses: [],
        rejections: [],
      });
      await rig.engine.idle();
      check();
    },
    async advance(ms) {
      await scheduler.advanceAsync(ms);
      await rig.engine.idle();
      check();
    },
    async restart() {
      await rig.engine.stop();
      await rig.alarms.close();
      const next = await open();
      rig.alarms = next.alarms;
      rig.engine = next.engine;
      await rig.engine.idle();
      check();
    },
    async close() {
      await rig.engine.stop();
      await rig.alarms.close();
      await clinic.close();
      await rm(dir, { recursive: true, force: true });
      check();
    },
  };
  /** The engine reports failures nobody awaits through onError: a test fails on any. */
  function check(): void {
    if (errors.length > 0) throw errors[0];
  }
  return rig;
}

/** The events of one type, as [type, kind, state] for short assertions. */
export function summary(events: readonly AlarmEvent[]): [string, string, string][] {
  return events.map((e) => [e.type, e.alarm.kind, e.alarm.state]);
}
