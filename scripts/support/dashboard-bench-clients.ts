import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { Agent, request } from 'node:https';
import { totpCode } from '../../src/clinic/dashboard/auth/totp.js';
import type { PatientEvent } from '../../src/clinic/dashboard/live/live-hub.js';
import type { ClientRecord, Delivery } from './dashboard-bench-plan.js';

/**
 * The staff's browsers of bench:dashboard in one process (forked with IPC), each with its own HTTPS connections
 * (an Agent of its own) and cookie jar, speaking to `rpm-gateway clinic serve` as the pages do:
 *
 *  1. the first login, as the browser makes it: GET /login (the form's CSRF token and its `__Host-rpm_login`
 *     cookie), POST /login with the password, GET /mfa/enrol (the TOTP secret the page shows beside its QR
 *     code), POST /mfa/enrol with the current code (RFC 6238), which completes the login;
 *  2. the tile wall: GET /, then the live feed GET /api/live (Server-Sent Events, HTML Standard section 9.2,
 *     with `Sec-Fetch-Site: same-origin` as a browser's EventSource sends it), then GET /api/tiles, as
 *     tiles.js loads its data once connected.
 *
 * The TLS is verified against the clinic's CA and the name localhost, as a browser that trusts the CA does.
 * Each `reading` event is stamped on arrival (performance.timeOrigin + performance.now(): wall-clock
 * milliseconds; the server stamps commits with Date.now() on the same machine) with the commit time it carries.
 *
 * argv[2]: JSON Config. In: 'login' (answered 'ready'), { type: 'drain', closing: ids } (answered 'report' once
 * every connection has received one of the closing readings, or its stream ended), 'stop'. Out: 'ready',
 * 'report' { clients: ClientRecord[], cpuUserMs, cpuSystemMs, seconds }, 'error'.
 */
interface Config {
  readonly port: number;
  readonly ca: string;
  readonly users: readonly {
    readonly username: string;
    readonly password: string;
    readonly role: 'admin' | 'clinician';
  }[];
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const send = (message: object) => process.send?.(message);
const ca = readFileSync(config.ca);
const ORIGIN = `https://localhost:${config.port}`;

function now(): number {
  return performance.timeOrigin + performance.now();
}

interface Answer {
  readonly status: number;
  readonly location: string | undefined;
  readonly body: string;
}

class StaffBrowser {
  readonly cookies = new Map<string, string>();
  readonly agent = new Agent({ keepAlive: true, ca });
  readonly deliveries: Delivery[] = [];
  ended = false;
  sawClosing = false;
  private stream: IncomingMessage | undefined;
  private closing: ReadonlySet<string> | undefined;
  private onClosing: (() => void) | undefined;

  constructor(readonly user: Config['users'][number]) {}

  private options(method: string, path: string, headers: Record<string, string>) {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    return {
      host: '127.0.0.1',
      port: config.port,
      servername: 'localhost',
      agent: this.agent,
      method,
      path,
      headers: { host: `localhost:${config.port}`, ...(cookie ? { cookie } : {}), ...headers },
    };
  }

  private remember(res: IncomingMessage): void {
    for (const line of res.headers['set-cookie'] ?? []) {
      const [pair] = line.split(';');
      const at = (pair as string).indexOf('=');
      const name = (pair as string).slice(0, at).trim();
      const value = (pair as string).slice(at + 1).trim();
      if (value === '' || /Expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  fetch(method: 'GET' | 'POST', path: string, form?: Record<string, string>): Promise<Answer> {
    const body = form === undefined ? undefined : new URLSearchParams(form).toString();
    const headers: Record<string, string> =
      body === undefined
        ? { 'sec-fetch-site': 'same-origin' }
        : { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' };
    return new Promise((resolve, reject) => {
      const req = request(this.options(method, path, headers), (res) => {
        this.remember(res);
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, location: res.headers.location, body: text }),
        );
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  async login(): Promise<void> {
    const { username, password } = this.user;
    const form = await this.fetch('GET', '/login');
    const sent = await this.fetch('POST', '/login', { username, password, _csrf: csrfOf(form) });
    expectRedirect(sent, '/mfa/enrol', `${username}: the password`);
    const enrol = await this.fetch('GET', '/mfa/enrol');
    const secret = /id="totp-secret">([A-Z2-7]+)</.exec(enrol.body)?.[1];
    if (secret === undefined)
      throw new Error(`${username}: no TOTP secret on the enrolment page (${enrol.status})`);
    const done = await this.fetch('POST', '/mfa/enrol', {
      code: totpCode(secret, Date.now()),
      _csrf: csrfOf(enrol),
    });
    expectRedirect(done, '/', `${username}: the TOTP code`);
    const wall = await this.fetch('GET', '/');
    if (wall.status !== 200) throw new Error(`${username}: the tile wall answered ${wall.status}`);
  }

  /** Opens /api/live; resolves once the server answered 200 (events are collected from then on). */
  openLive(): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = request(
        this.options('GET', '/api/live', { accept: 'text/event-stream', 'sec-fetch-site': 'same-origin' }),
        (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            reject(new Error(`${this.user.username}: /api/live answered ${res.statusCode}`));
            return;
          }
          this.stream = res;
          let buffer = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            const arrivedAt = now();
            buffer += chunk;
            let end = buffer.indexOf('\n\n');
            while (end >= 0) {
              this.event(buffer.slice(0, end), arrivedAt);
              buffer = buffer.slice(end + 2);
              end = buffer.indexOf('\n\n');
            }
          });
          const ended = () => {
            this.ended = true;
            this.onClosing?.();
          };
          res.on('end', ended);
          res.on('error', ended);
          resolve();
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  /** One event block (`event:` and `data:` lines, HTML Standard section 9.2.6); only readings are kept. */
  private event(block: string, arrivedAt: number): void {
    let name = '';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) name = line.slice(7);
      else if (line.startsWith('data: ')) data = line.slice(6);
    }
    if (name !== 'reading') return;
    const event = JSON.parse(data) as PatientEvent;
    // One measurement is several points (SpO2 and pulse rate): one delivery per measurement.
    for (const id of new Set(event.points.map((p) => p.id))) {
      this.deliveries.push([id, event.committedAt, arrivedAt]);
      if (this.closing?.has(id) && !this.sawClosing) {
        this.sawClosing = true;
        this.onClosing?.();
      }
    }
  }

  /** Resolves once a closing reading arrived here (or the stream ended): nothing measured can follow it. */
  drained(closing: ReadonlySet<string>): Promise<void> {
    this.closing = closing;
    if (!this.sawClosing) this.sawClosing = this.deliveries.some(([id]) => closing.has(id));
    if (this.sawClosing || this.ended) return Promise.resolve();
    return new Promise((resolve) => {
      this.onClosing = resolve;
    });
  }

  close(): void {
    this.stream?.destroy();
    this.agent.destroy();
  }

  record(): ClientRecord {
    return {
      username: this.user.username,
      role: this.user.role,
      deliveries: this.deliveries,
      ended: this.ended,
    };
  }
}

function csrfOf(answer: Answer): string {
  const token = /name="_csrf" value="([^"]+)"/.exec(answer.body)?.[1];
  if (token === undefined) throw new Error(`no CSRF token on the page (status ${answer.status})`);
  return token;
}

function expectRedirect(answer: Answer, to: string, what: string): void {
  if (answer.status !== 303 || answer.location !== to) {
    throw new Error(
      `${what} was answered ${answer.status} ${answer.location ?? ''}, not a redirect to ${to}`,
    );
  }
}

const browsers = config.users.map((user) => new StaffBrowser(user));
let cpuAtStart: NodeJS.CpuUsage | undefined;
let startedAt = 0;

async function loginAll(): Promise<void> {
  // One after the other: each login is an argon2id check on the server (deliberately expensive).
  for (const browser of browsers) {
    await browser.login();
    await browser.openLive();
    const tiles = await browser.fetch('GET', '/api/tiles');
    if (tiles.status !== 200)
      throw new Error(`${browser.user.username}: /api/tiles answered ${tiles.status}`);
  }
  cpuAtStart = process.cpuUsage();
  startedAt = now();
  send({ type: 'ready' });
}

async function drain(closing: readonly string[]): Promise<void> {
  const set = new Set(closing);
  // Bounded: a connection that never gets a closing reading is reported, its missing readings counted as lost.
  const limit = new Promise<void>((resolve) => setTimeout(resolve, 60_000).unref());
  await Promise.race([Promise.all(browsers.map((b) => b.drained(set))), limit]);
  const cpu = process.cpuUsage(cpuAtStart);
  const unfinished = browsers.filter((b) => !b.sawClosing && !b.ended).map((b) => b.user.username);
  send({
    type: 'report',
    clients: browsers.map((b) => b.record()),
    unfinished,
    cpuUserMs: cpu.user / 1000,
    cpuSystemMs: cpu.system / 1000,
    seconds: (now() - startedAt) / 1000,
  });
}

process.on('message', (message: { type: string; closing?: string[] }) => {
  const fail = (error: unknown) => send({ type: 'error', message: (error as Error).message });
  switch (message.type) {
    case 'login':
      loginAll().catch(fail);
      break;
    case 'drain':
      drain(message.closing ?? []).catch(fail);
      break;
    case 'stop':
      for (const b of browsers) b.close();
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'started' });
