import type { FastifyInstance } from 'fastify';
import { boundAddress, checkListenAddress, hostPort, listenFailed } from '../../observability/listen.js';
import { buildDashboardApp, type DashboardAppOptions } from './app.js';

const WHAT = 'the clinic dashboard';

export interface DashboardServerOptions extends DashboardAppOptions {
  readonly host: string;
  /** 0 lets the kernel choose (tests); the bound port is in address(). */
  readonly port: number;
  readonly allowNetwork: boolean;
  readonly https: { readonly cert: string; readonly key: string };
}

/** `rpm-gateway clinic serve`: the dashboard over HTTPS (src/clinic/dashboard/app.ts has what it serves). */
export class DashboardServer {
  private app: FastifyInstance | undefined;

  constructor(private readonly options: DashboardServerOptions) {
    checkListenAddress(WHAT, { ...options, allowLan: options.allowNetwork });
  }

  async start(): Promise<{ host: string; port: number }> {
    if (this.app) throw new Error('the dashboard is already started');
    const app = await buildDashboardApp(this.options);
    try {
      await app.listen({ host: this.options.host, port: this.options.port });
    } catch (error) {
      await app.close();
      throw listenFailed(WHAT, { ...this.options, allowLan: this.options.allowNetwork }, error);
    }
    this.app = app;
    return boundAddress(app.server.address());
  }

  address(): { host: string; port: number } {
    if (!this.app) throw new Error('the dashboard is not started');
    return boundAddress(this.app.server.address());
  }

  /** "127.0.0.1:8443", for the start-up line. */
  where(): string {
    return hostPort(this.address());
  }

  async stop(): Promise<void> {
    const app = this.app;
    if (!app) return;
    this.app = undefined;
    app.server.closeAllConnections();
    await app.close();
  }
}
