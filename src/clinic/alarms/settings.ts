import { CLOCK_SKEW_MS } from '../../wire/index.js';
import { AlarmError } from './errors.js';
import { type AlarmPriority, PRIORITIES } from './model.js';

/**
 * The engine's settings for the technical conditions. Defaults, and why:
 * - `hubSilenceMs` 60 min: a hub publishes its status when it connects and its Last Will when the connection is
 *   lost (docs/wire-format.md section 8), so an offline hub normally says so; silence is the backstop for what
 *   a status cannot tell (the broker or the hub's network gone quiet without the broker noticing yet).
 * - `offlineGraceMs` 2 min: a hub that restarts (an update) sends an offline status and is back within a
 *   minute or two; raising at once would be a nuisance alarm (IEC 60601-1-8 section 6.2, avoiding alarm
 *   signals that do not need attention).
 * - `deviceSilenceMs` 24 h: a cuff or scale is used once or twice a day; a continuous oximeter stops far sooner,
 *   but a single clinic-wide value must not flood a ward with alarms at night.
 * - `lowBatteryPercent` 20 with `batteryHysteresis` 5: the level a phone warns at; it clears at 25.
 * - `certWarningMs` 14 days: time to renew the hub's certificate before the broker refuses it (an expired
 *   client certificate fails the TLS handshake, RFC 5280 section 6.1.3).
 * - `clockSkewMs` 60 s: the wire format's tolerance (CLOCK_SKEW_MS, docs/wire-format.md 9.2).
 * - `lateAfterMs` 5 min: a reading measured this long before the intake received it is late, even if the
 *   device did not mark it stored (a hub's backlog after an outage).
 * - `maxGapMs` 15 s: as the hub's alert rules (src/pipeline/alert-rules.ts).
 * - `refreshMs` 60 s: how soon assignments and limits changed by another process apply.
 * - `contactWriteMs` 60 s: how often a device's last contact is written (it rebuilds the silence timers after a
 *   restart; a write per reading would double the database's work).
 */
export interface AlarmSettings {
  readonly hubSilenceMs: number;
  readonly offlineGraceMs: number;
  readonly deviceSilenceMs: number;
  readonly lowBatteryPercent: number;
  readonly batteryHysteresis: number;
  readonly certWarningMs: number;
  readonly clockSkewMs: number;
  readonly lateAfterMs: number;
  readonly maxGapMs: number;
  readonly refreshMs: number;
  readonly contactWriteMs: number;
  /** How often a standby engine asks to lead (PostgreSQL). */
  readonly leaderRetryMs: number;
  readonly priorities: {
    readonly hubOffline: AlarmPriority;
    readonly deviceSilent: AlarmPriority;
    readonly batteryLow: AlarmPriority;
    readonly gap: AlarmPriority;
    readonly certExpiry: AlarmPriority;
    readonly clockSkew: AlarmPriority;
  };
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

export const DEFAULT_ALARM_SETTINGS: AlarmSettings = {
  hubSilenceMs: 60 * MINUTE,
  offlineGraceMs: 2 * MINUTE,
  deviceSilenceMs: 24 * HOUR,
  lowBatteryPercent: 20,
  batteryHysteresis: 5,
  certWarningMs: 14 * 24 * HOUR,
  clockSkewMs: CLOCK_SKEW_MS,
  lateAfterMs: 5 * MINUTE,
  maxGapMs: 15_000,
  refreshMs: MINUTE,
  contactWriteMs: MINUTE,
  leaderRetryMs: 10_000,
  // A hub offline means no readings at all for a patient: medium. The rest need attention within hours.
  priorities: {
    hubOffline: 'medium',
    deviceSilent: 'low',
    batteryLow: 'low',
    gap: 'low',
    certExpiry: 'low',
    clockSkew: 'low',
  },
};

export type AlarmSettingsInput = Partial<Omit<AlarmSettings, 'priorities'>> & {
  readonly priorities?: Partial<AlarmSettings['priorities']>;
};

export function alarmSettings(input: AlarmSettingsInput = {}): AlarmSettings {
  const settings: AlarmSettings = {
    ...DEFAULT_ALARM_SETTINGS,
    ...input,
    priorities: { ...DEFAULT_ALARM_SETTINGS.priorities, ...input.priorities },
  };
  for (const [name, value] of Object.entries(settings)) {
    if (name === 'priorities') continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new AlarmError('ALARM_FIELD_INVALID', `alarm setting ${name} must be a whole number, 0 or more`);
    }
  }
  for (const [name, value] of Object.entries(settings.priorities)) {
    if (!PRIORITIES.includes(value)) {
      throw new AlarmError('ALARM_FIELD_INVALID', `alarm priority ${name} must be high, medium or low`);
    }
  }
  return settings;
}
