import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';

/**
 * Just enough of a browser to use the demo's dashboard over real HTTPS: it trusts only the CA file the demo
 * printed (Node's certificate and host name checks stay on, so a wrong certificate fails the test), keeps the
 * cookies the dashboard sets, and sends what a browser sends with its requests: Origin on a form post (Fetch
 * Standard, "append a request `Origin` header") and `Sec-Fetch-Site: same-origin` on the page's own
 * EventSource (W3C Fetch Metadata). Redirects are not followed: the test looks at where each step leads.
 */
export interface Answer {
  readonly status: number;
  readonly location: string | undefined;
  readonly body: string;
}

export class HttpsBrowser {
  private readonly cookies = new Map<string, string>();

  constructor(
    /** https://localhost:<port> */
    private readonly origin: string,
    private readonly ca: string,
  ) {}

  get(path: string): Promise<Answer> {
    return this.send('GET', path);
  }

  /** An HTML form's post (application/x-www-form-urlencoded), from a page of this origin. */
  post(path: string, form: Record<string, string>): Promise<Answer> {
    return this.send('POST', path, new URLSearchParams(form).toString());
  }

  /** Opens the live feed (GET /api/live as the page's EventSource sends it); resolves once it answered 200. */
  openLive(): Promise<LiveFeed> {
    return new Promise<LiveFeed>((resolve, reject) => {
      const req = request(new URL('/api/live', this.origin), {
        ca: this.ca,
        headers: { ...this.cookieHeader(), accept: 'text/event-stream', 'sec-fetch-site': 'same-origin' },
      });
      req.on('response', (response) => {
        if (response.statusCode !== 200) {
          req.destroy();
          reject(new Error(`/api/live answered ${response.statusCode}`));
          return;
        }
        resolve(new LiveFeed(response, () => req.destroy()));
      });
      req.on('error', reject);
      req.end();
    });
  }

  private cookieHeader(): Record<string, string> {
    if (this.cookies.size === 0) return {};
    return { cookie: [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ') };
  }

  private send(method: 'GET' | 'POST', path: string, body?: string): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      const req = request(new URL(path, this.origin), {
        method,
        ca: this.ca,
        headers: {
          ...this.cookieHeader(),
          ...(body === undefined
            ? {}
            : {
                origin: this.origin,
                'content-type': 'application/x-www-form-urlencoded',
                'content-length': String(Buffer.byteLength(body)),
              }),
        },
      });
      req.on('response', (response: IncomingMessage) => {
        this.remember(response.headers['set-cookie'] ?? []);
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          text += chunk;
        });
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, location: response.headers.location, body: text }),
        );
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  private remember(lines: readonly string[]): void {
    for (const line of lines) {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
      const at = pair.indexOf('=');
      const name = pair.slice(0, at);
      const value = pair.slice(at + 1);
      const cleared = value === '' || attributes.some((a) => /^Expires=Thu, 01 Jan 1970/i.test(a));
      if (cleared) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
}

/** The hidden _csrf value of the page's form. */
export function csrfOf(page: Answer): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(page.body);
  if (!match) throw new Error(`no CSRF token on the page (status ${page.status})`);
  return match[1] as string;
}

/** One open live feed: its events as they arrive, and its end. */
export class LiveFeed {
  private readonly waiting = new Set<{
    name: string;
    accept: (data: unknown) => boolean;
    done: (data: unknown) => void;
  }>();
  /** Resolves when the server ended the stream (or the connection closed). */
  readonly ended: Promise<void>;

  constructor(
    response: IncomingMessage,
    readonly close: () => void,
  ) {
    let buffered = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      buffered += chunk;
      // Events end with a blank line (HTML Standard section 9.2.6).
      for (let end = buffered.indexOf('\n\n'); end >= 0; end = buffered.indexOf('\n\n')) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const name = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (name === undefined || data === undefined) continue;
        const parsed: unknown = JSON.parse(data);
        for (const waiter of this.waiting) {
          if (waiter.name === name && waiter.accept(parsed)) {
            this.waiting.delete(waiter);
            waiter.done(parsed);
          }
        }
      }
    });
    this.ended = new Promise<void>((resolve) => response.on('close', () => resolve()));
  }

  /**
   * The data of the next event named `name` that `accept` takes; fails when none came within `timeoutMs` (a
   * deadline for failing, not a wait that proves anything).
   */
  next<T>(name: string, accept: (data: T) => boolean, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const waiter = {
        name,
        accept: (data: unknown) => accept(data as T),
        done: (data: unknown) => {
          clearTimeout(timer);
          resolve(data as T);
        },
      };
      const timer = setTimeout(() => {
        this.waiting.delete(waiter);
        reject(new Error(`no "${name}" event on /api/live within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.add(waiter);
    });
  }
}
