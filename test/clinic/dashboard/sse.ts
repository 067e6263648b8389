import { type IncomingMessage, request } from 'node:http';
import { HOST } from './rig.js';

/** An open /api/live stream over a real socket (fastify.inject cannot hold one open), its events collected. */
export interface LiveStream {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly events: { event: string; data: string }[];
  /** The data of every event of this name so far, parsed. */
  of<T>(event: string): T[];
  ended: boolean;
  close(): void;
}

/** Opens /api/live on 127.0.0.1:`port` with the browser's cookies and the request headers given. */
export function openLiveStream(
  port: number,
  cookies: ReadonlyMap<string, string> | undefined,
  headers: Record<string, string>,
): Promise<LiveStream> {
  const cookie = cookies ? [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') : '';
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/api/live',
        headers: { host: HOST, accept: 'text/event-stream', ...(cookie ? { cookie } : {}), ...headers },
      },
      (res) => {
        const stream: LiveStream = {
          status: res.statusCode ?? 0,
          headers: res.headers,
          events: [],
          of: <T>(event: string) =>
            stream.events.filter((e) => e.event === event).map((e) => JSON.parse(e.data) as T),
          ended: false,
          close: () => req.destroy(),
        };
        // Server-Sent Events (HTML Standard section 9.2.6): blocks end with a blank line; `field: value`.
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          for (let at = buffer.indexOf('\n\n'); at >= 0; at = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, at);
            buffer = buffer.slice(at + 2);
            const fields = Object.fromEntries(
              block
                .split('\n')
                .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
            );
            if (fields.event !== undefined)
              stream.events.push({ event: fields.event, data: fields.data ?? '' });
          }
        });
        const ended = () => {
          stream.ended = true;
        };
        res.on('end', ended).on('error', ended);
        resolve(stream);
      },
    );
    req.on('error', reject);
    req.end();
  });
}
