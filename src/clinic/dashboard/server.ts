import type { FastifyInstance } from 'fastify';
import { boundAddress, checkListenAddress, hostPort, listenFailed } from '../../observability/listen.js';
import { realScheduler, type Scheduler, type TimerHandle } from '../../util/scheduler.js';
import { buildDashboardApp, type DashboardAppOptions } from './app.js';
import { checkDashboardTls } from './errors.js';

const WHAT = 'the clinic dashboard';

/** Ended sessions are deleted from the database this often (only their hashes are there, but rows add up). */
export const PRUNE_INTERVAL_MS = 3_600_000;

export interface DashboardServerOptions extends DashboardAppOptions {
  readonly host: string;
  /** 0 lets the kernel choose (tests); the bound port is in address(). */
  readonly port: number;
  readonly allowNetwork: boolean;
  readonly https: { readonly cert: string; readonly key: string };
  /** For the hourly pruning of ended sessions; the real timers by default. */
  readonly scheduler?: Scheduler;
  /** Told when pruning fails (the dashboard keeps serving; the next round tries again). */
  readonly onPruneError?: (error: unknown) => void;
}

/**
 * `rpm-gateway clinic serve`: the dashboard over HTTPS (src/clinic/dashboard/app.ts has what it serves). The
 * certificate is checked before anything listens: it must belong to the key and name the public origin's host.
 */
export class DashboardServer {
  private app: FastifyInstance | undefined;
  private pruneTimer: TimerHandle | undefined;
  private readonly scheduler: Scheduler;

  constructor(private readonly options: DashboardServerOptions) {
    checkListenAddress(WHAT, { ...options, allowLan: options.allowNetwork });
    checkDashboardTls(options.https, options.publicOrigin);
    this.scheduler = options.scheduler ?? realScheduler;
  }

  async start(): Promise<void> {
    if (this.app) throw new Error('the dashboard is already started');
    const app = await buildDashboardApp(this.options);
    try {
      await app.listen({ host: this.options.host, port: this.options.port });
    } catch (error) {
      await app.close();
      throw listenFailed(WHAT, { ...this.options, allowLan: this.options.allowNetwork }, error);
    }
    this.app = app;
    this.schedulePrune(0);
  }

  address(): { host: string; port: number } {
    if (!this.app) throw new Error('the dashboard is not started');
    return boundAddress(this.app.server.address());
  }

  /** One line for `systemctl status`. */
  statusText(): string {
    return `serving ${this.options.publicOrigin} on ${hostPort(this.address())}`;
  }

  async stop(_reason?: string): Promise<void> {
    const app = this.app;
    if (!app) return;
    this.app = undefined;
    if (this.pruneTimer !== undefined) this.scheduler.clearTimeout(this.pruneTimer);
    this.pruneTimer = undefined;
    app.server.closeAllConnections();
    await app.close();
  }

  private schedulePrune(ms: number): void {
    this.pruneTimer = this.scheduler.setTimeout(() => {
      this.options.staff
        .pruneSessions(this.options.clock.now())
        .catch((error: unknown) => this.options.onPruneError?.(error))
        .finally(() => {
          if (this.app) this.schedulePrune(PRUNE_INTERVAL_MS);
        });
    }, ms);
    // A Node timer must not keep a stopping process alive.
    (this.pruneTimer as { unref?: () => void } | undefined)?.unref?.();
  }
}
