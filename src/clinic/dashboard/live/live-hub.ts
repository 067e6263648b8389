import { realScheduler, type Scheduler, type TimerHandle } from '../../../util/scheduler.js';
import type { AlarmChange, AlarmChangeType } from '../../alarms/alarm-store.js';
import type { Alarm } from '../../alarms/model.js';
import type { Assignment, ClinicStore, CommittedEvent } from '../../storage/clinic-store.js';
import {
  type AlarmCountJson,
  type AlarmJson,
  alarmCounts,
  alarmJson,
  type GapJson,
  gapJson,
  NO_ALARMS,
  type PointJson,
  patientAt,
  pointJson,
} from '../views/points.js';

/** One browser's live connection, as the hub sees it. */
export interface LiveClient {
  /** Whether this connection's user may see the patient now (the set the last refresh found). */
  mayView(mrn: string): boolean;
  /** Writes one Server-Sent Event; the data is one line of JSON. */
  send(event: 'reading' | 'alarm' | 'heartbeat', data: string): void;
  /**
   * Run before each heartbeat: checks the session again (ended, expired or its user disabled: the connection
   * closes) and reloads which patients the user may see (care teams and assignments change).
   */
  refresh(): Promise<void>;
}

/** What the pages get for one patient from one commit. */
export interface PatientEvent {
  readonly mrn: string;
  /** When the database committed it (the store's clock): the client measures its delay from this. */
  readonly committedAt: number;
  readonly points: PointJson[];
  readonly hubs: {
    readonly gatewayId: string;
    readonly state: 'online' | 'offline';
    readonly statusAt: number;
  }[];
  readonly gaps: GapJson[];
}

/** What the pages get for one stored change of an alarm (the `alarm` event). */
export interface AlarmEventJson {
  readonly mrn: string;
  /** What happened: raised, reactivated, latched, cleared, acknowledged. */
  readonly change: AlarmChangeType;
  /** The alarm as stored after it. */
  readonly alarm: AlarmJson;
  /** The patient's open alarms after it, as a tile shows them. */
  readonly counts: AlarmCountJson;
}

export interface LiveHubOptions {
  readonly clinic: ClinicStore;
  /** The clinic's IANA time zone: reads a gap record's local times when the assignment names none. */
  readonly timeZone: string;
  /** A heartbeat goes to every connection this often, so a page can tell a quiet clinic from a lost feed. */
  readonly heartbeatMs: number;
  readonly scheduler?: Scheduler;
  /** Told when a commit could not be turned into events (the connections stay; the next commit is tried). */
  readonly onError?: (error: unknown) => void;
  /**
   * The alarm feed, when the dashboard has alarms (AlarmStore.subscribe: on PostgreSQL every process's
   * changes, so a dashboard whose engine stands by hears what the leading one raised): each change goes, with
   * the patient's open alarm counts after it, to the connections that may see the patient (an `alarm` event).
   */
  readonly alarms?: {
    readonly subscribe: (listener: (change: AlarmChange) => void) => Promise<() => Promise<void>>;
    readonly openOf: (mrn: string) => Promise<Alarm[]>;
  };
}

/**
 * The dashboard's side of the intake's live feed: ONE subscription to ClinicStore.subscribe (told after each
 * commit), each commit attributed to patients (a reading by its measurement time against the assignments, as
 * the store attributes it; a status and a gap record to the patient the hub belongs to now) and written to
 * every connection whose user may see that patient, and to no other. Commits are handled one after the other
 * in the order the store told them, so a connection receives them in commit order.
 */
export class LiveHub {
  private readonly clients = new Set<LiveClient>();
  private readonly scheduler: Scheduler;
  private unsubscribe: (() => Promise<void>) | undefined;
  private unsubscribeAlarms: (() => Promise<void>) | undefined;
  private timer: TimerHandle | undefined;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: LiveHubOptions) {
    this.scheduler = options.scheduler ?? realScheduler;
  }

  async start(): Promise<void> {
    this.unsubscribe = await this.options.clinic.subscribe((event) => {
      this.queue = this.queue
        .then(() => this.tell(event))
        .catch((error: unknown) => this.options.onError?.(error));
    });
    const alarms = this.options.alarms;
    if (alarms) {
      // On the same queue as the commits, so a connection gets the events in the order this process heard
      // them: on SQLite a reading's event before the alarm it raised (the engine raises after the commit was
      // told); on PostgreSQL the two feeds come over two connections, and an alarm may be heard first.
      this.unsubscribeAlarms = await alarms.subscribe((change) => {
        this.queue = this.queue
          .then(() => this.tellAlarm(change, alarms.openOf))
          .catch((error: unknown) => this.options.onError?.(error));
      });
    }
    this.scheduleHeartbeat();
  }

  private async tellAlarm(change: AlarmChange, openOf: (mrn: string) => Promise<Alarm[]>): Promise<void> {
    const { mrn } = change.alarm;
    if (![...this.clients].some((c) => c.mayView(mrn))) return;
    const event: AlarmEventJson = {
      mrn,
      change: change.type,
      alarm: alarmJson(change.alarm),
      counts: alarmCounts(await openOf(mrn)).get(mrn) ?? NO_ALARMS,
    };
    const data = JSON.stringify(event);
    for (const client of this.clients) if (client.mayView(mrn)) client.send('alarm', data);
  }

  /** Adds a connection; the returned function removes it. */
  add(client: LiveClient): () => void {
    this.clients.add(client);
    return () => {
      this.clients.delete(client);
    };
  }

  get connections(): number {
    return this.clients.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) this.scheduler.clearTimeout(this.timer);
    this.clients.clear();
    await this.unsubscribeAlarms?.();
    await this.unsubscribe?.();
    await this.queue;
  }

  private async tell(event: CommittedEvent): Promise<void> {
    if (this.clients.size === 0) return;
    const byPatient = attribute(
      event,
      await this.options.clinic.assignments(),
      this.scheduler.now(),
      this.options.timeZone,
    );
    for (const patient of byPatient.values()) {
      const data = JSON.stringify(patient);
      for (const client of this.clients) {
        if (client.mayView(patient.mrn)) client.send('reading', data);
      }
    }
  }

  private scheduleHeartbeat(): void {
    this.timer = this.scheduler.setTimeout(() => {
      void this.heartbeat().finally(() => {
        if (!this.closed) this.scheduleHeartbeat();
      });
    }, this.options.heartbeatMs);
    // A Node timer must not keep a stopping process alive.
    (this.timer as { unref?: () => void } | undefined)?.unref?.();
  }

  private async heartbeat(): Promise<void> {
    const clients = [...this.clients];
    await Promise.all(
      clients.map((c) => c.refresh().catch((error: unknown) => this.options.onError?.(error))),
    );
    const data = JSON.stringify({ at: this.scheduler.now() });
    for (const client of clients) if (this.clients.has(client)) client.send('heartbeat', data);
  }
}

/** Splits one commit by patient. Items of a hub assigned to nobody at that time go nowhere. */
export function attribute(
  event: CommittedEvent,
  assignments: readonly Assignment[],
  now: number,
  timeZone: string,
): Map<string, PatientEvent> {
  const byPatient = new Map<string, PatientEvent>();
  const of = (mrn: string, committedAt: number): PatientEvent => {
    let patient = byPatient.get(mrn);
    if (patient === undefined) {
      patient = { mrn, committedAt, points: [], hubs: [], gaps: [] };
      byPatient.set(mrn, patient);
    }
    return patient;
  };
  const committedAt = event.measurements[0]?.committedAt ?? now;
  for (const stored of event.measurements) {
    const gatewayId = stored.receipt.gatewayId;
    const mrn = patientAt(assignments, gatewayId, stored.measuredAt);
    if (mrn === undefined) continue;
    const patient = of(mrn, stored.committedAt);
    const m = stored.measurement;
    for (const o of m.observations) {
      patient.points.push(
        pointJson({
          measurementId: m.id,
          measuredAt: stored.measuredAt,
          code: o.code,
          value: o.value,
          unit: o.unit,
          ...(o.invalid === undefined ? {} : { invalid: o.invalid }),
          stored: m.stored === true,
          gatewayId,
          deviceId: m.deviceId,
          driver: m.driver,
        }),
      );
    }
  }
  for (const s of event.statuses) {
    const mrn = patientAt(assignments, s.status.gatewayId, s.receivedAt);
    if (mrn === undefined) continue;
    of(mrn, committedAt).hubs.push({
      gatewayId: s.status.gatewayId,
      state: s.status.state,
      statusAt: s.receivedAt,
    });
  }
  for (const g of event.gaps) {
    const gatewayId = g.receipt.gatewayId;
    const assignment = assignments.find(
      (a) =>
        a.gatewayId === gatewayId &&
        a.from <= g.receipt.receivedAt &&
        (a.to === undefined || g.receipt.receivedAt < a.to),
    );
    if (assignment === undefined) continue;
    of(assignment.mrn, committedAt).gaps.push(gapJson(g.gap, gatewayId, assignment.timeZone ?? timeZone));
  }
  return byPatient;
}
