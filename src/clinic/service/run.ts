import { runUntilSignalled, type Service } from '../../runtime/lifecycle.js';
import type { RuntimeLog } from '../../runtime/log.js';
import { serviceNotifier } from '../../runtime/systemd-notify.js';
import { realScheduler } from '../../util/scheduler.js';

/**
 * Runs one of the clinic's long-lived processes (the broker, the intake) the way `rpm-gateway start` runs the
 * hub (src/runtime/lifecycle.ts): until SIGTERM or SIGINT, then the ordered stop within
 * CLINIC_STOP_DEADLINE_MS (exit 1 past it), a second signal forcing the exit at once (128 + its number).
 *
 * Under systemd (Type=notify) it says READY=1 once the service has started (the broker listens, the intake
 * has subscribed), STOPPING=1 when it stops, and pings the watchdog (WatchdogSec=) while the event loop turns:
 * src/runtime/systemd-notify.ts, sd_notify(3).
 */
export const CLINIC_STOP_DEADLINE_MS = 10_000;

export interface ClinicProcess extends Service {
  /** One line for `systemctl status` once started. */
  statusText(): string;
}

export async function runClinicProcess(options: {
  readonly name: 'broker' | 'intake';
  readonly service: ClinicProcess;
  readonly log: RuntimeLog;
  readonly env: NodeJS.ProcessEnv;
}): Promise<number> {
  const { name, service, log, env } = options;
  const notifier = serviceNotifier({
    env,
    pid: process.pid,
    scheduler: realScheduler,
    onProblem: (problem) =>
      log.warn(`${name}.systemd-notify-failed`, {
        problem: problem.kind,
        ...(problem.kind === 'send-failed' ? { error: problem.message } : {}),
      }),
  });
  const notified: Service = {
    start: async () => {
      await service.start();
      notifier.ready(service.statusText());
      notifier.startWatchdog(() => true);
    },
    stop: async (reason) => {
      notifier.stopping(`stopping: ${reason}`);
      try {
        await service.stop(reason);
      } finally {
        notifier.close();
      }
    },
  };
  const status = await runUntilSignalled({
    service: notified,
    signals: process,
    deadlineMs: CLINIC_STOP_DEADLINE_MS,
    scheduler: realScheduler,
    log,
    eventPrefix: name,
  });
  log.flush();
  return status;
}
