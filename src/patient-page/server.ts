import { isIP } from 'node:net';
import { hostname as osHostname } from 'node:os';
import helmet from '@fastify/helmet';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import {
  boundAddress,
  checkListenAddress,
  type ListenAddress,
  listenFailed,
} from '../observability/listen.js';
import { renderPage, statusJson } from './render.js';
import type { PatientPageSource } from './source.js';
import { PAGE_CSS } from './style.js';

const WHAT = 'the patient page';

export interface PatientPageOptions extends ListenAddress {
  readonly source: PatientPageSource;
  /** Epoch ms. */
  readonly now: () => number;
  /** IANA time zone for the times shown; default the hub's own. */
  readonly timeZone?: string;
  /** Seconds between the page's automatic reloads; default 30. */
  readonly refreshSeconds?: number;
  /**
   * Host names (besides IP addresses, localhost, this machine's name and *.local) the page answers to, for a
   * hub reached on the LAN under a DNS name. See checkHost.
   */
  readonly hostNames?: readonly string[];
  /** This machine's host name; injected by tests. */
  readonly machineName?: string;
}

/**
 * The patient transparency page (docs/patient-page.md): `/` (HTML), `/status.json` (the same as data) and
 * `/style.css`. Read-only by construction: GET and HEAD only, anything else is 405 before any handler runs.
 *
 * The headers, all from @fastify/helmet except Cache-Control:
 *  - Content-Security-Policy `default-src 'none'; style-src 'self'; ...`: no script, no frame, no form, no
 *    request to anywhere but this page's own stylesheet (CSP Level 3, W3C);
 *  - Cache-Control `no-store` (RFC 9111 section 5.2.2.5): health data must not stay in a browser's cache;
 *  - X-Content-Type-Options `nosniff`, Referrer-Policy `no-referrer`, X-Frame-Options `DENY`.
 * HSTS is not sent: the page is plain HTTP on loopback (a hub has no certificate a browser would trust), and
 * the header is ignored over HTTP anyway (RFC 6797 section 8.1).
 */
export class PatientPageServer {
  private app: FastifyInstance | undefined;

  constructor(private readonly options: PatientPageOptions) {
    checkListenAddress(WHAT, options);
  }

  async start(): Promise<{ host: string; port: number }> {
    if (this.app) throw new Error('the patient page is already started');
    const app = await this.build();
    try {
      await app.listen({ host: this.options.host, port: this.options.port });
    } catch (error) {
      await app.close();
      throw listenFailed(WHAT, this.options, error);
    }
    this.app = app;
    return boundAddress(app.server.address());
  }

  /** The bound address; only after start. */
  address(): { host: string; port: number } {
    if (!this.app) throw new Error('the patient page is not started');
    return boundAddress(this.app.server.address());
  }

  async stop(): Promise<void> {
    const app = this.app;
    if (!app) return;
    this.app = undefined;
    app.server.closeAllConnections();
    await app.close();
  }

  private async build(): Promise<FastifyInstance> {
    const { source, now } = this.options;
    const refreshSeconds = this.options.refreshSeconds ?? 30;
    const machine = (this.options.machineName ?? osHostname()).toLowerCase();
    const names = new Set([machine, ...(this.options.hostNames ?? []).map((n) => n.toLowerCase())]);
    const app = Fastify({ logger: false, requestTimeout: 10_000, return503OnClosing: true });
    await app.register(helmet, {
      global: true,
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'none'"],
          styleSrc: ["'self'"],
          baseUri: ["'none'"],
          formAction: ["'none'"],
          frameAncestors: ["'none'"],
        },
      },
      strictTransportSecurity: false,
      referrerPolicy: { policy: 'no-referrer' },
      frameguard: { action: 'deny' },
    });
    app.addHook('onRequest', async (request, reply) => {
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        return reply
          .code(405)
          .header('Allow', 'GET, HEAD')
          .type('text/plain; charset=utf-8')
          .send('This page only shows information; it accepts no changes.\n');
      }
      if (!hostAllowed(request.hostname, names)) {
        return reply
          .code(403)
          .type('text/plain; charset=utf-8')
          .send("This page answers under this hub's own address only.\n");
      }
      return undefined;
    });
    app.addHook('onSend', async (_request, reply, payload) => {
      reply.header('Cache-Control', 'no-store');
      return payload;
    });

    const snapshotOr503 = async (reply: FastifyReply) => {
      try {
        return await source.snapshot();
      } catch {
        void reply
          .code(503)
          .type('text/plain; charset=utf-8')
          .send('The hub cannot show this page right now. Please try again in a minute.\n');
        return undefined;
      }
    };
    app.get('/', async (_request, reply) => {
      const snapshot = await snapshotOr503(reply);
      if (!snapshot) return reply;
      const body = renderPage(snapshot, {
        now: now(),
        refreshSeconds,
        ...(this.options.timeZone === undefined ? {} : { timeZone: this.options.timeZone }),
      });
      return reply.type('text/html; charset=utf-8').send(body);
    });
    app.get('/status.json', async (_request, reply) => {
      const snapshot = await snapshotOr503(reply);
      if (!snapshot) return reply;
      return reply.type('application/json; charset=utf-8').send(JSON.stringify(statusJson(snapshot, now())));
    });
    app.get('/style.css', async (_request, reply) => reply.type('text/css; charset=utf-8').send(PAGE_CSS));
    app.setNotFoundHandler(async (_request, reply) =>
      reply.code(404).type('text/plain; charset=utf-8').send('Not found. The page is at /\n'),
    );
    // Never a stack trace or an internal message on the page.
    app.setErrorHandler(async (error: { statusCode?: number }, _request, reply) => {
      const status = error.statusCode !== undefined && error.statusCode < 500 ? error.statusCode : 500;
      return reply
        .code(status)
        .type('text/plain; charset=utf-8')
        .send('The request could not be answered.\n');
    });
    return app;
  }
}

/**
 * DNS rebinding (a web page the patient visits points its own name at 127.0.0.1 and reads this page from the
 * browser) is stopped by answering only Host names an attacker's DNS cannot serve: IP addresses, localhost,
 * this machine's own name, mDNS names (*.local, RFC 6762, answered on the local link only) and names the hub
 * was told about. The same defence as in e.g. the Jupyter and webpack-dev-server host checks.
 */
export function hostAllowed(host: string, names: ReadonlySet<string>): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return isIP(h) !== 0 || h === 'localhost' || h.endsWith('.local') || names.has(h);
}
