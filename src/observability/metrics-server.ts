import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { boundAddress, checkListenAddress, type ListenAddress, listenFailed } from './listen.js';
import type { GatewayMetrics } from './metrics.js';

const WHAT = 'the metrics endpoint';

/**
 * The Prometheus scrape endpoint: `GET /metrics` (and HEAD) on the configured address, loopback unless
 * allowLan; every other path is 404 and every other method 405, so the endpoint does one thing. Node's own
 * http server is enough for one route. A scrape whose source fails (the store closing during shutdown) is
 * answered 503 with the error's code, which Prometheus records as a failed scrape (`up` = 0) rather than as
 * stale numbers.
 */
export class MetricsServer {
  private server: Server | undefined;

  constructor(
    private readonly metrics: GatewayMetrics,
    private readonly listen: ListenAddress,
  ) {
    checkListenAddress(WHAT, listen);
  }

  async start(): Promise<{ host: string; port: number }> {
    if (this.server) throw new Error('the metrics endpoint is already started');
    const server = createServer((request, response) => {
      void this.handle(request, response);
    });
    // A slow or idle client must not hold a socket open forever (Node's defaults are generous).
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      const failed = (error: unknown) => reject(listenFailed(WHAT, this.listen, error));
      server.once('error', failed);
      server.listen(this.listen.port, this.listen.host, () => {
        server.off('error', failed);
        resolve();
      });
    });
    this.server = server;
    return boundAddress(server.address());
  }

  /** The bound address; only after start. */
  address(): { host: string; port: number } {
    if (!this.server) throw new Error('the metrics endpoint is not started');
    return boundAddress(this.server.address());
  }

  /** Stops listening and closes every connection (a scrape in flight is cut: it is only numbers). */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/metrics') return reply(response, 404, 'not found: the metrics are at /metrics\n');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('Allow', 'GET, HEAD');
      return reply(response, 405, 'method not allowed\n');
    }
    let body: string;
    try {
      body = await this.metrics.scrape();
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      return reply(response, 503, `metrics unavailable${typeof code === 'string' ? ` [${code}]` : ''}\n`);
    }
    response.writeHead(200, {
      'Content-Type': this.metrics.contentType,
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
    });
    response.end(request.method === 'HEAD' ? undefined : body);
  }
}

function reply(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  });
  response.end(text);
}
