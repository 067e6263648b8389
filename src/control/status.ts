import type { ExpiryStatus } from '../pki/expiry.js';
import type { TimeSyncReading } from '../runtime/time-sync.js';
import type { SessionState } from '../session/session-states.js';
import type { Lane } from '../store/outbox.js';

/**
 * What `rpm-gateway status` shows: a snapshot of the hub, plain JSON (it travels over the control socket and is
 * printed by `status --json` as it is). Times are ISO 8601 strings, ages and sizes numbers with their unit in
 * the name. `hub` says whether a running hub answered; without one, the parts only a running hub knows
 * (sessions, broker, clock, certificate) are null and the rest is read from the store.
 *
 * No PHI: device ids, profiles, drivers and the user's labels (the socket is open to the service user and root
 * only, like the store's key), never addresses or reading values.
 */
export interface HubStatus {
  readonly hub: {
    readonly running: boolean;
    readonly gatewayId: string | null;
    readonly since: string | null;
  };
  readonly devices: readonly DeviceStatus[];
  readonly backlog: Readonly<Record<Lane, LaneBacklog>>;
  readonly broker: BrokerStatus | null;
  readonly clock: ClockStatus | null;
  readonly certificate: CertificateStatus | null;
  readonly store: StoreSize;
  /** Gap records written (readings evicted or lost, told to the clinic). */
  readonly gaps: number;
  /** Readings the alert-lane rules sent ahead of the backlog since the hub started; null without a hub. */
  readonly alertReadings: number | null;
  /** The alert-lane rules in force and where each came from (the clinic's limits, else the configuration). */
  readonly alertRules: readonly AlertRuleStatus[] | null;
}

export interface AlertRuleStatus {
  readonly id: string;
  readonly source: 'clinic' | 'configuration';
}

export interface DeviceStatus {
  readonly id: string;
  readonly label: string | null;
  /** The driver's profile, e.g. 'blood-pressure'. */
  readonly profile: string;
  readonly driver: string;
  /** The device's session (src/session/session-states.ts); null without a running hub. */
  readonly state: SessionState | null;
  readonly lastSeen: string | null;
  /** Battery level in percent (Battery Service 0x2A19), when the device reported one. */
  readonly batteryPercent: number | null;
}

export interface LaneBacklog {
  readonly pending: number;
  /** Age of the oldest reading waiting in the lane, ms; null when the lane is empty. */
  readonly oldestAgeMs: number | null;
}

export interface BrokerStatus {
  readonly state: 'connected' | 'connecting' | 'disconnected';
  /** The broker's URL (mqtts://host:port) the hub is on, or last tried. */
  readonly url: string | null;
  /** Since when the state holds. */
  readonly since: string | null;
}

export interface ClockStatus extends TimeSyncReading {
  /** Readings received and held until the clock is synchronised (stamped then with their true times). */
  readonly held: number;
}

export interface CertificateStatus {
  readonly notAfter: string;
  readonly daysLeft: number;
  readonly status: ExpiryStatus;
}

export interface StoreSize {
  readonly path: string;
  /** Main file plus WAL. */
  readonly bytes: number;
  readonly rows: number;
}

const LANES: readonly Lane[] = ['alert', 'live', 'backlog'];

/** `rpm-gateway status` as text: one block per subject, readable columns, no colour (it ends up in tickets). */
export function renderStatus(status: HubStatus): string {
  const lines: string[] = [];
  const row = (name: string, text: string) => lines.push(`${name.padEnd(12)} ${text}`);
  row(
    'hub',
    status.hub.running
      ? `running${status.hub.gatewayId ? ` as ${status.hub.gatewayId}` : ''}${status.hub.since ? ` since ${status.hub.since}` : ''}`
      : 'not running (what follows is read from the store)',
  );
  const b = status.broker;
  row('broker', b ? `${b.state}${b.url ? ` ${b.url}` : ''}${b.since ? ` since ${b.since}` : ''}` : 'unknown');
  const c = status.clock;
  row(
    'clock',
    c
      ? `${c.synchronised ? 'synchronised' : 'NOT synchronised'} (${c.source}: ${c.detail})${c.held > 0 ? `, ${c.held} readings held until it is` : ''}`
      : 'unknown',
  );
  const cert = status.certificate;
  row(
    'certificate',
    cert ? `${cert.status}, ${cert.daysLeft} days left (not after ${cert.notAfter})` : 'unknown',
  );
  row(
    'backlog',
    LANES.map((lane) => {
      const l = status.backlog[lane];
      return `${lane} ${l.pending}${l.oldestAgeMs === null ? '' : ` (oldest ${age(l.oldestAgeMs)})`}`;
    }).join(', '),
  );
  row('store', `${status.store.path}: ${kib(status.store.bytes)}, ${status.store.rows} rows`);
  row('gaps', String(status.gaps));
  row('alert lane', status.alertReadings === null ? 'unknown' : `${status.alertReadings} readings`);
  if (status.alertRules !== null) {
    const fromClinic = status.alertRules.filter((rule) => rule.source === 'clinic').length;
    row('alert rules', `${status.alertRules.length} in force (${fromClinic} set by the clinic)`);
  }
  if (status.devices.length === 0) {
    row('devices', 'none enrolled (pair one with: rpm-gateway pair)');
  } else {
    lines.push('');
    lines.push(
      ...table([
        ['DEVICE', 'PROFILE', 'DRIVER', 'STATE', 'LAST SEEN', 'BATTERY', 'LABEL'],
        ...status.devices.map((d) => [
          d.id,
          d.profile,
          d.driver,
          d.state ?? '-',
          d.lastSeen ?? 'never',
          d.batteryPercent === null ? '-' : `${d.batteryPercent} %`,
          d.label ?? '',
        ]),
      ]),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** "42 s", "17 min", "3.5 h", "2.0 d": an age a person reads at a glance. */
export function age(ms: number): string {
  const s = ms / 1000;
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86_400).toFixed(1)} d`;
}

function kib(bytes: number): string {
  return bytes < 10 * 1024 * 1024
    ? `${(bytes / 1024).toFixed(0)} KiB`
    : `${(bytes / 1048576).toFixed(1)} MiB`;
}

/** Left-aligned columns two spaces apart; the last column is not padded. */
export function table(rows: readonly (readonly string[])[]): string[] {
  const widths =
    rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  return rows.map((row) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}
