import type { GatewayConfig } from '../config/schema.js';
import type { HubControl } from '../control/hub-control.js';
import { ControlServer } from '../control/server.js';
import { GatewayMetrics, type MetricsSnapshot } from '../observability/metrics.js';
import { MetricsServer } from '../observability/metrics-server.js';
import { PatientPageServer } from '../patient-page/server.js';
import type { PatientPageSnapshot } from '../patient-page/source.js';
import type { Lane } from '../store/outbox.js';
import type { RuntimeLog } from './log.js';

/**
 * The running hub's three windows, each on its own socket: the control socket (`rpm-gateway status`, `pair`,
 * `devices`, `forget`, `store status`: docs/control-socket.md), the Prometheus endpoint (docs/metrics.md) and
 * the patient page (docs/patient-page.md), the last two when enabled in the configuration.
 *
 * They open once the store is open and the sessions started, and close first when the hub stops, before the
 * store: no request reaches a closing store. A window that cannot open (a port in use, an unsafe runtime
 * directory) is logged as an error with its code and the hub goes on without it: its job, getting readings
 * to the clinic, does not depend on being watched.
 */
export interface HubSurfacesOptions {
  readonly config: GatewayConfig;
  readonly now: () => number;
  readonly log: RuntimeLog;
  readonly control: HubControl;
  readonly metricsSource: () => MetricsSnapshot;
  readonly pageSource: () => PatientPageSnapshot;
}

export class HubSurfaces {
  /** The counters, when metrics are enabled (the hub tells them what happens). */
  readonly metrics: GatewayMetrics | undefined;
  private control: ControlServer | undefined;
  private metricsServer: MetricsServer | undefined;
  private page: PatientPageServer | undefined;

  constructor(private readonly options: HubSurfacesOptions) {
    const { config } = options;
    this.metrics = config.metrics.enabled
      ? new GatewayMetrics({
          brokers: config.uplink.brokers.length,
          now: options.now,
          source: options.metricsSource,
        })
      : undefined;
  }

  /** A reading's append resolved. */
  appended(lane: Lane, result: 'stored' | 'duplicate'): void {
    if (result === 'stored') this.metrics?.readingStored(lane);
  }

  async start(): Promise<void> {
    const { config, log } = this.options;
    try {
      this.control = await ControlServer.listen({
        runtimeDir: config.paths.runtimeDir,
        control: this.options.control,
        onInternalError: (error) => log.error('control.internal-error', { error: messageOf(error) }),
      });
      log.info('control.listening', { path: this.control.path });
    } catch (error) {
      log.error('control.listen-failed', { code: codeOf(error), error: messageOf(error) });
    }
    if (this.metrics) {
      const server = new MetricsServer(this.metrics, config.metrics);
      try {
        const at = await server.start();
        this.metricsServer = server;
        log.info('metrics.listening', { detail: `http://${hostPort(at)}/metrics` });
      } catch (error) {
        log.error('metrics.listen-failed', { code: codeOf(error), error: messageOf(error) });
      }
    }
    if (config.patientPage.enabled) {
      const page = new PatientPageServer({
        ...config.patientPage,
        source: { snapshot: this.options.pageSource },
        now: this.options.now,
      });
      try {
        const at = await page.start();
        this.page = page;
        log.info('patient-page.listening', { detail: `http://${hostPort(at)}/` });
      } catch (error) {
        log.error('patient-page.listen-failed', { code: codeOf(error), error: messageOf(error) });
      }
    }
  }

  /** Closes all three (an enrolment under way over the socket is cancelled). Idempotent. */
  async stop(): Promise<void> {
    const control = this.control;
    const metrics = this.metricsServer;
    const page = this.page;
    this.control = undefined;
    this.metricsServer = undefined;
    this.page = undefined;
    await Promise.allSettled([control?.close(), metrics?.stop(), page?.stop()]);
  }
}

/**
 * The hub's log, with every warning and error that carries a stable code counted in the metrics
 * (rpm_gateway_errors_total{code}): the log is where every failure is reported already, so the count cannot
 * miss one the log has. The code is the `code` field, else the one the uplink puts before its error text
 * ("PKI_CERT_EXPIRED: ...", "ECONNREFUSED: ..."); GatewayMetrics.error keeps anything else out of the label.
 */
const LEADING_CODE = /^([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*): /;

export function countingErrors(log: RuntimeLog, count: (code: string) => void): RuntimeLog {
  const counted =
    (write: RuntimeLog['error']): RuntimeLog['error'] =>
    (event, fields) => {
      const code = fields?.code ?? LEADING_CODE.exec(fields?.error ?? '')?.[1];
      if (code !== undefined) count(code);
      write(event, fields);
    };
  return {
    error: counted((event, fields) => log.error(event, fields)),
    warn: counted((event, fields) => log.warn(event, fields)),
    info: (event, fields) => log.info(event, fields),
    debug: (event, fields) => log.debug(event, fields),
    get redacting() {
      return log.redacting;
    },
    flush: () => log.flush(),
  };
}

function hostPort(at: { host: string; port: number }): string {
  return at.host.includes(':') ? `[${at.host}]:${at.port}` : `${at.host}:${at.port}`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' ? code : undefined;
}
