import { createCentral } from '../ble/backends.js';
import type { SimScenario } from '../ble/sim/scenario.js';
import type { LoadedConfig } from '../config/load.js';
import { packageVersion } from '../util/package-version.js';
import { realScheduler } from '../util/scheduler.js';
import { Hub, type HubOptions } from './hub.js';
import { runUntilSignalled } from './lifecycle.js';
import { createLog, type RuntimeLog } from './log.js';
import { systemTimeSyncProbe } from './time-sync.js';

/**
 * `rpm-gateway start` as a process: the hub with the real world plugged in (wall-clock timers, the radio
 * backend the configuration names, the system clock's sync state, systemd's notify socket, JSON logs on
 * stdout, SIGTERM and SIGINT). Resolves with the exit status.
 */

/**
 * A time this release's clock is certainly past: a Pi whose clock reads earlier has not been set (fake-hwclock
 * restores the last shutdown's time, a Pi without it boots in 1970). Raise it with each release.
 */
export const RELEASE_NOT_BEFORE = Date.UTC(2026, 0, 1);

/** What a caller may put in place of the real world's parts (the demo: its own radio, log and stop). */
export interface ServiceParts {
  /** The log; default: JSON lines on stdout at the configured level. */
  readonly log?: RuntimeLog;
  /** The radio; default: the backend ble.backend names, without a pairing agent. */
  readonly createCentral?: HubOptions['createCentral'];
  /** Told of every reading appended (the demo's count of what the hub stored). */
  readonly onAppended?: HubOptions['onAppended'];
  /** The simulated devices of the sim backend ($RPM_SIM_SCENARIO, src/ble/sim/scenario.ts). */
  readonly simScenario?: SimScenario;
}

/**
 * The hub `rpm-gateway start` runs, built from a checked configuration: the one place the real world is
 * plugged into a Hub, so the demo runs exactly the service's hub with only its radio and log swapped.
 */
export function createHub(
  loaded: LoadedConfig,
  env: NodeJS.ProcessEnv,
  parts: ServiceParts = {},
): { hub: Hub; log: RuntimeLog } {
  const { config } = loaded;
  const log =
    parts.log ??
    createLog({
      level: config.log.level,
      redact: config.log.redact,
      base: { gatewayId: config.gateway.id },
    });
  for (const warning of loaded.warnings) log.warn('config.warning', { detail: warning });
  const hub = new Hub({
    config,
    version: packageVersion(),
    scheduler: realScheduler,
    log,
    env,
    pid: process.pid,
    // The hub's pairing agent answers only during an enrolment over the control socket (`rpm-gateway pair`
    // while the service runs), and only for the device being enrolled; every other pairing request is refused.
    createCentral:
      parts.createCentral ??
      ((backend, hooks) =>
        createCentral(backend, {
          ...hooks,
          ...(parts.simScenario ? { simScenario: parts.simScenario } : {}),
        })),
    timeProbe: systemTimeSyncProbe({ now: () => Date.now(), notBeforeMs: RELEASE_NOT_BEFORE }),
    ...(parts.onAppended ? { onAppended: parts.onAppended } : {}),
  });
  return { hub, log };
}

export async function runService(
  loaded: LoadedConfig,
  env: NodeJS.ProcessEnv,
  parts: Pick<ServiceParts, 'simScenario'> = {},
): Promise<number> {
  const { hub, log } = createHub(loaded, env, parts);
  const status = await runUntilSignalled({
    service: hub,
    signals: process,
    deadlineMs: loaded.config.shutdown.deadlineMs,
    scheduler: realScheduler,
    log,
  });
  log.flush();
  return status;
}
