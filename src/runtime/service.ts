import { readFileSync } from 'node:fs';
import { createCentral } from '../ble/backends.js';
import type { SimScenario } from '../ble/sim/scenario.js';
import type { LoadedConfig } from '../config/load.js';
import { realScheduler } from '../util/scheduler.js';
import { Hub } from './hub.js';
import { runUntilSignalled } from './lifecycle.js';
import { createLog } from './log.js';
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

export interface ServiceExtras {
  /** The simulated devices of the sim backend ($RPM_SIM_SCENARIO, src/ble/sim/scenario.ts). */
  readonly simScenario?: SimScenario;
}

export async function runService(
  loaded: LoadedConfig,
  env: NodeJS.ProcessEnv,
  extras: ServiceExtras = {},
): Promise<number> {
  const { config } = loaded;
  const log = createLog({
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
    // The hub never pairs: a device asking for a passkey is not enrolled through `start` (sim answers its own).
    createCentral: (backend) =>
      createCentral(backend, {
        agent: false,
        ...(extras.simScenario ? { simScenario: extras.simScenario } : {}),
      }),
    timeProbe: systemTimeSyncProbe({ now: () => Date.now(), notBeforeMs: RELEASE_NOT_BEFORE }),
  });
  const status = await runUntilSignalled({
    service: hub,
    signals: process,
    deadlineMs: config.shutdown.deadlineMs,
    scheduler: realScheduler,
    log,
  });
  log.flush();
  return status;
}

function packageVersion(): string {
  for (let dir = new URL('.', import.meta.url); dir.pathname !== '/'; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'rpm-gateway' && pkg.version) return pkg.version;
    } catch {
      // not here; one folder up
    }
  }
  return 'unknown';
}
