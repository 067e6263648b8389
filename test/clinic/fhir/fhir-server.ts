import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { getStatus, type SearchRequest, type WithId } from '@medplum/core';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import type { Resource as R4Resource } from 'fhir/r4.js';
import { loadR4 } from './r4.js';

/**
 * A real FHIR endpoint for tests: @medplum/fhir-router's FhirRouter over its MemoryRepository (which implements
 * transactions, conditional create and search) behind a node:http server on 127.0.0.1. The repository outlives
 * stop()/start(), so a test can take the endpoint down and bring it back on the same port with its data.
 */
export interface TestFhirServerOptions {
  /** Serve HTTPS with this certificate and key (PEM). */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Answer 401 unless `Authorization: Bearer <token>` is sent. */
  readonly bearerToken?: string;
}

/**
 * MemoryRepository with an index for the one search an export makes per resource, `identifier=<system>|<value>`
 * (the conditional create's ifNoneExist). MemoryRepository answers a search by testing every stored resource,
 * so an export of n Observations costs O(n^2) searches' worth of FHIRPath evaluation: minutes for a few
 * thousand, on a shared machine. The index answers only that exact search shape; every other search, and what
 * the router does with the answer (create or find), is MemoryRepository's and FhirRouter's own. A hit is read
 * back from the repository and checked, so the index can only ever return what a scan would.
 */
class IndexedMemoryRepository extends MemoryRepository {
  /** `<type>|<system>|<value>` to the ids of the resources that carry that identifier. */
  private readonly byIdentifier = new Map<string, Set<string>>();

  override async createResource<T extends Resource>(resource: T): Promise<WithId<T>> {
    const created = await super.createResource(resource);
    this.remember(created);
    return created;
  }

  override async updateResource<T extends Resource>(resource: T, options?: object): Promise<WithId<T>> {
    const updated = await super.updateResource(resource, options);
    this.remember(updated);
    return updated;
  }

  override async search<T extends Resource>(request: SearchRequest<T>): Promise<Bundle<WithId<T>>> {
    const [filter, ...others] = request.filters ?? [];
    const plain =
      filter?.code === 'identifier' &&
      filter.operator === 'eq' &&
      others.length === 0 &&
      !filter.value.includes(',') &&
      filter.value.includes('|') &&
      (request.sortRules ?? []).length === 0 &&
      request.offset === undefined &&
      request.total === undefined;
    if (!plain) return super.search(request);
    const entry: { resource: WithId<T> }[] = [];
    for (const id of this.byIdentifier.get(`${request.resourceType}|${filter.value}`) ?? []) {
      const found = await this.readResource<WithId<T>>(request.resourceType, id).catch(() => undefined);
      // Read back and checked: a resource deleted, rolled back or changed since is not returned.
      if (found !== undefined && identifiersOf(found).includes(filter.value)) entry.push({ resource: found });
    }
    return {
      resourceType: 'Bundle',
      type: 'searchset',
      entry: entry.slice(0, request.count ?? entry.length),
    };
  }

  private remember(resource: WithId<Resource>): void {
    for (const key of identifiersOf(resource)) {
      const ids = this.byIdentifier.get(`${resource.resourceType}|${key}`) ?? new Set<string>();
      ids.add(resource.id);
      this.byIdentifier.set(`${resource.resourceType}|${key}`, ids);
    }
  }
}

function identifiersOf(resource: Resource): string[] {
  const identifiers = (resource as { identifier?: { system?: string; value?: string }[] }).identifier ?? [];
  return identifiers.map((i) => `${i.system ?? ''}|${i.value ?? ''}`);
}

export class TestFhirServer {
  readonly repo = new IndexedMemoryRepository();
  private readonly router = new FhirRouter();
  private server: Server | undefined;
  private boundPort = 0;
  /** Requests answered (any status). */
  requests = 0;

  constructor(private readonly options: TestFhirServerOptions = {}) {}

  get url(): string {
    return `${this.options.tls === undefined ? 'http' : 'https'}://localhost:${this.boundPort}/fhir/R4/`;
  }

  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<void> {
    loadR4();
    const listener = (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((error: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(String(error));
      });
    };
    const tls = this.options.tls;
    const server: Server = tls === undefined ? createServer(listener) : createTlsServer(tls, listener);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.boundPort, '127.0.0.1', () => resolve());
    });
    this.boundPort = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Every resource of a type, straight from the repository. */
  async all<T extends R4Resource = R4Resource>(resourceType: T['resourceType']): Promise<T[]> {
    const bundle = await this.repo.search({
      resourceType: resourceType as Resource['resourceType'],
      count: 10_000,
    });
    return (bundle.entry ?? []).map((e) => e.resource as unknown as T);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (
      this.options.bearerToken !== undefined &&
      req.headers.authorization !== `Bearer ${this.options.bearerToken}`
    ) {
      this.requests++;
      res.writeHead(401, { 'content-type': 'application/fhir+json', 'www-authenticate': 'Bearer' }).end('{}');
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname.replace(/^\/fhir\/R4/, '') || '/';
    const query: Record<string, string> = {};
    url.searchParams.forEach((v, k) => {
      query[k] = v;
    });
    const [outcome, resource] = await this.router.handleRequest(
      {
        method: req.method as 'POST',
        url: `${path}${url.search}`,
        pathname: '',
        body: text === '' ? undefined : JSON.parse(text),
        params: {},
        query,
      },
      this.repo,
    );
    this.requests++;
    res.writeHead(getStatus(outcome), { 'content-type': 'application/fhir+json' });
    res.end(JSON.stringify(resource ?? outcome));
  }
}
