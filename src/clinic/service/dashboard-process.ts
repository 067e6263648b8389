import type { AuditLog } from '../../audit/audit-log.js';
import type { ClinicDashboardSettings } from '../../config/clinic/schema.js';
import type { RuntimeLog } from '../../runtime/log.js';
import type { Clock } from '../../util/clock.js';
import type { Scheduler } from '../../util/scheduler.js';
import type { AlarmStore } from '../alarms/alarm-store.js';
import { DashboardServer } from '../dashboard/server.js';
import type { MappingOptions } from '../fhir/mapping.js';
import type { StaffStore } from '../staff/staff-store.js';
import type { ClinicStore } from '../storage/clinic-store.js';
import { AlarmService } from './alarm-service.js';
import type { ProcessPart } from './compose.js';
import type { HubCommandsService } from './hub-commands.js';

/**
 * The parts of a dashboard process, in the order they start (compose.ts stops them in reverse): the alarm
 * engine, then what feeds it (the intake, when this process runs one) and the hub commands, then the
 * dashboard. `rpm-gateway clinic serve` composes its process from these, and so does `rpm-gateway demo`
 * (src/demo), which runs its own intake and broker around them.
 */
export interface DashboardProcessOptions {
  readonly clinic: ClinicStore;
  readonly staff: StaffStore;
  readonly alarmStore: AlarmStore;
  /** The `dashboard:` section, parsed; its certificate and key are read by the caller into `https`. */
  readonly settings: Omit<ClinicDashboardSettings, 'cert' | 'key' | 'hubCommands'>;
  readonly https: { readonly cert: string; readonly key: string };
  /** The clinic's name (the issuer authenticator apps show) and IANA time zone (the pages' times). */
  readonly clinicName: string;
  readonly timeZone: string;
  /** The clinic's audit log (one instance for everything this process records). */
  readonly audit: AuditLog;
  readonly log: RuntimeLog;
  readonly scheduler: Scheduler;
  readonly clock: Clock;
  /** The intake of this process (SQLite: the live feed reaches only the process that commits). */
  readonly intake?: ProcessPart;
  readonly hubCommands?: HubCommandsService;
  /** The identifier systems of the FHIR download on the patient page; without them it is not offered. */
  readonly fhirExport?: MappingOptions;
}

export interface DashboardProcess {
  readonly parts: ProcessPart[];
  readonly server: DashboardServer;
  readonly alarms: AlarmService;
}

/** Builds the parts; nothing is started or opened here (the certificate is checked: DashboardServer). */
export function dashboardProcess(options: DashboardProcessOptions): DashboardProcess {
  const { settings, log } = options;
  const alarms = new AlarmService({
    clinic: options.clinic,
    alarms: options.alarmStore,
    scheduler: options.scheduler,
    log,
  });
  const parts: ProcessPart[] = [
    { name: 'alarm engine', service: alarms, statusText: () => alarms.statusText() },
  ];
  if (options.intake) parts.push(options.intake);
  const { hubCommands } = options;
  if (hubCommands) parts.push({ name: 'hub commands', service: hubCommands });
  const server = new DashboardServer({
    host: settings.host,
    port: settings.port,
    allowNetwork: settings.allowNetwork,
    https: options.https,
    publicOrigin: settings.publicOrigin,
    session: settings.session,
    lockout: settings.lockout,
    loginsPerMinute: settings.loginsPerMinute,
    staleAfterMs: settings.staleAfterMs,
    scheduler: options.scheduler,
    // The error of a store read, never a reading's value; the next commit is tried again.
    onLiveError: (error) =>
      log.warn('dashboard.live_error', {
        detail: error instanceof Error ? error.message : String(error),
      }),
    clinicName: options.clinicName,
    timeZone: options.timeZone,
    staff: options.staff,
    clinic: options.clinic,
    audit: options.audit,
    clock: options.clock,
    alarms: {
      store: options.alarmStore,
      control: alarms,
      ...(hubCommands ? { hubCommands } : {}),
    },
    ...(options.fhirExport ? { fhirExport: options.fhirExport } : {}),
  });
  parts.push({
    name: 'dashboard',
    service: {
      start: async () => {
        await server.start();
        log.info('dashboard.listening', { detail: server.statusText() });
      },
      stop: (reason) => server.stop(reason),
    },
    statusText: () => server.statusText(),
  });
  return { parts, server, alarms };
}
