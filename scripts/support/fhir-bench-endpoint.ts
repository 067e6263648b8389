import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Bundle, BundleEntry } from 'fhir/r4.js';

/**
 * A minimal FHIR endpoint for `bench:fhir`: it accepts what the exporter sends, a transaction Bundle POSTed to
 * the base URL (R4 http.html#transaction), and answers a `transaction-response` with one entry per request,
 * `201 Created` or, when a conditional create's `ifNoneExist` finds a resource, `200 OK` (R4 http.html#ccreate).
 * It keeps no resources, only the identifiers of the ones it "created", indexed by type, system and value, so a
 * second upload of the same Bundle creates nothing, as on a real server.
 *
 * Why not the test endpoint (test/clinic/fhir/fhir-server.ts, @medplum/fhir-router over MemoryRepository): it
 * validates and stores every resource and runs each conditional create as a search, so it is far slower than
 * the exporter and the benchmark would measure medplum. This endpoint still does what any server must per
 * request (read and parse the whole body, check the Bundle, resolve each conditional create, serialize the
 * answer), so the exporter's HTTP path (serialize, POST, read and check the answer) is exercised for real.
 */
export interface BenchEndpointStats {
  readonly requests: number;
  readonly created: Readonly<Record<string, number>>;
  readonly found: number;
  readonly refused: number;
}

export class BenchFhirEndpoint {
  private server: Server | undefined;
  /** `<type>|<system>|<value>` of every identifier of every resource created. */
  private readonly identifiers = new Map<string, string>();
  private requests = 0;
  private found = 0;
  private refused = 0;
  private readonly created: Record<string, number> = {};

  get url(): string {
    const address = this.server?.address() as AddressInfo | undefined;
    if (address === undefined) throw new Error('the endpoint is not running');
    return `http://127.0.0.1:${address.port}/fhir`;
  }

  stats(): BenchEndpointStats {
    return {
      requests: this.requests,
      created: { ...this.created },
      found: this.found,
      refused: this.refused,
    };
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    // Keep-alive as a FHIR server behind a proxy would; the exporter's node:http agent reuses the socket.
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.requests++;
      if (req.method !== 'POST') return this.answer(res, 405, outcome('not-supported', 'POST a Bundle'));
      let bundle: Partial<Bundle>;
      try {
        bundle = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Partial<Bundle>;
      } catch {
        return this.answer(res, 400, outcome('structure', 'the body is not JSON'));
      }
      if (bundle.resourceType !== 'Bundle' || bundle.type !== 'transaction' || !Array.isArray(bundle.entry)) {
        return this.answer(res, 400, outcome('structure', 'not a transaction Bundle'));
      }
      const answers: BundleEntry[] = [];
      for (const entry of bundle.entry) {
        const answer = this.entry(entry);
        if (answer === undefined) {
          this.refused++;
          return this.answer(res, 400, outcome('invalid', 'an entry is not a conditional create'));
        }
        answers.push(answer);
      }
      this.answer(res, 200, { resourceType: 'Bundle', type: 'transaction-response', entry: answers });
    });
  }

  /** One conditional create; undefined when the entry is not one (the whole transaction then fails). */
  private entry(entry: BundleEntry): BundleEntry | undefined {
    const resource = entry.resource;
    const type = resource?.resourceType;
    if (resource === undefined || entry.request?.method !== 'POST' || entry.request.url !== type)
      return undefined;
    const wanted = identifierSearch(entry.request.ifNoneExist);
    if (wanted === undefined) return undefined;
    const existing = this.identifiers.get(`${type}|${wanted}`);
    if (existing !== undefined) {
      this.found++;
      return { response: { status: '200 OK', location: `${type}/${existing}/_history/1` } };
    }
    const id = randomUUID();
    const identifiers = (resource as { identifier?: { system?: string; value?: string }[] }).identifier ?? [];
    for (const i of identifiers) this.identifiers.set(`${type}|${i.system ?? ''}|${i.value ?? ''}`, id);
    this.created[type] = (this.created[type] ?? 0) + 1;
    return { response: { status: '201 Created', location: `${type}/${id}/_history/1` } };
  }

  private answer(res: ServerResponse, status: number, body: object): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/fhir+json',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  }
}

/**
 * `identifier=<system>|<value>` (each part URL-encoded, `\`, `|`, `,` and `$` escaped with `\`, R4
 * search.html#escaping) as `<system>|<value>`; undefined for any other search.
 */
function identifierSearch(query: string | undefined): string | undefined {
  if (query === undefined || !query.startsWith('identifier=')) return undefined;
  const token = decodeURIComponent(query.slice('identifier='.length));
  const split = /(?<!\\)\|/.exec(token);
  if (split === null) return undefined;
  const plain = (s: string) => s.replace(/\\([\\|,$])/g, '$1');
  return `${plain(token.slice(0, split.index))}|${plain(token.slice(split.index + 1))}`;
}

function outcome(code: string, text: string): object {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics: text }] };
}
