import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import type { Bundle } from 'fhir/r4.js';
import { readSecretFile, writeFileAtomically } from '../../util/secret-file.js';
import { FhirExportError } from './errors.js';

/** Where exported Bundles go. `send` resolves only when the whole Bundle is stored there. */
export interface ExportTarget {
  send(bundle: Bundle): Promise<void>;
}

export interface HttpTargetOptions {
  /** The FHIR server's base URL (the transaction is POSTed to it, R4 http.html#transaction). */
  readonly baseUrl: string;
  /** PEM file of the CA(s) that issued the server's certificate (the clinic's own CA); system CAs otherwise. */
  readonly caFile?: string;
  /** A file holding a bearer token (RFC 6750), read at every send so a rotated token is picked up; mode 0600. */
  readonly bearerTokenFile?: string;
  /** Per request. Default 30 s. */
  readonly timeoutMs?: number;
}

/**
 * POSTs a transaction Bundle over HTTP(S). Node's `fetch` (undici) takes no per-request CA without the undici
 * package's Agent, which this project does not depend on; node:https takes `ca` directly, so the clinic's CA
 * applies to this connection only, not process-wide (NODE_EXTRA_CA_CERTS would).
 */
export class HttpTarget implements ExportTarget {
  private readonly url: URL;
  private ca: Buffer | undefined;

  constructor(private readonly options: HttpTargetOptions) {
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch (error) {
      throw new FhirExportError('FHIR_CONFIG', 'the FHIR base URL is not a URL', { cause: error });
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new FhirExportError('FHIR_CONFIG', `the FHIR base URL must be http(s), not ${url.protocol}`);
    }
    this.url = url;
  }

  async send(bundle: Bundle): Promise<void> {
    const headers: Record<string, string> = {
      'content-type': 'application/fhir+json',
      accept: 'application/fhir+json',
      // Ask for the minimal answer: the entries' status and location are all the exporter reads.
      prefer: 'return=minimal',
    };
    if (this.options.bearerTokenFile !== undefined) headers.authorization = `Bearer ${await this.token()}`;
    const body = Buffer.from(JSON.stringify(bundle), 'utf8');
    headers['content-length'] = String(body.length);
    const ca = this.url.protocol === 'https:' ? await this.caBytes() : undefined;
    const { status, text } = await this.post(body, headers, ca);
    if (status === 401 || status === 403) {
      throw new FhirExportError(
        'FHIR_UNAUTHORIZED',
        `the FHIR server refused the credentials (HTTP ${status})`,
      );
    }
    if ([400, 404, 409, 412, 422].includes(status)) {
      throw new FhirExportError('FHIR_REJECTED', `the FHIR server refused the Bundle (HTTP ${status})`);
    }
    if (status < 200 || status > 299) {
      throw new FhirExportError('FHIR_SERVER_ERROR', `the FHIR server failed (HTTP ${status})`);
    }
    checkTransactionResponse(text, bundle.entry?.length ?? 0);
  }

  private async token(): Promise<string> {
    const file = this.options.bearerTokenFile as string;
    try {
      const token = (await readSecretFile(file)).toString('utf8').trim();
      if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(token)) {
        throw new FhirExportError(
          'FHIR_CREDENTIALS',
          `${file} does not hold a bearer token (RFC 6750 section 2.1)`,
        );
      }
      return token;
    } catch (error) {
      if (error instanceof FhirExportError) throw error;
      throw new FhirExportError(
        'FHIR_CREDENTIALS',
        `cannot use the bearer token file: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }

  private async caBytes(): Promise<Buffer | undefined> {
    if (this.options.caFile === undefined) return undefined;
    if (this.ca === undefined) {
      try {
        this.ca = await readFile(this.options.caFile);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'error';
        throw new FhirExportError(
          'FHIR_CREDENTIALS',
          `cannot read the FHIR server CA file ${this.options.caFile} (${code})`,
          {
            cause: error,
          },
        );
      }
    }
    return this.ca;
  }

  private post(
    body: Buffer,
    headers: Record<string, string>,
    ca: Buffer | undefined,
  ): Promise<{ status: number; text: string }> {
    const timeoutMs = this.options.timeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const fail = (error: Error) => {
        const code = (error as NodeJS.ErrnoException).code ?? error.message;
        reject(
          new FhirExportError(
            'FHIR_UNREACHABLE',
            `cannot reach the FHIR server at ${this.url.origin} (${code})`,
            { cause: error },
          ),
        );
      };
      const onResponse = (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
      };
      const options = { method: 'POST', headers, timeout: timeoutMs };
      const req =
        this.url.protocol === 'https:'
          ? httpsRequest(this.url, { ...options, ...(ca === undefined ? {} : { ca }) }, onResponse)
          : httpRequest(this.url, options, onResponse);
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', fail);
      req.end(body);
    });
  }
}

/**
 * A transaction succeeds or fails as a whole (R4 http.html#trules), but a 200 is only trusted when the answer
 * is a transaction-response with one 2xx entry per request.
 */
function checkTransactionResponse(text: string, expected: number): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new FhirExportError(
      'FHIR_SERVER_ERROR',
      'the FHIR server answered 2xx with a body that is not JSON',
    );
  }
  const bundle = parsed as Partial<Bundle>;
  if (bundle?.resourceType !== 'Bundle' || bundle.type !== 'transaction-response') {
    throw new FhirExportError(
      'FHIR_SERVER_ERROR',
      'the FHIR server answered 2xx without a transaction-response Bundle',
    );
  }
  const entries = bundle.entry ?? [];
  if (entries.length !== expected) {
    throw new FhirExportError(
      'FHIR_SERVER_ERROR',
      `the transaction-response has ${entries.length} entries, not ${expected}`,
    );
  }
  for (const e of entries) {
    const status = e.response?.status ?? 'none';
    if (/^2\d\d/.test(status)) continue;
    // A conformant server fails the whole transaction instead (R4 http.html#trules); some answer 200 and put
    // the failure in the entry. A 4xx there is still a refusal of the content, not an outage.
    if (/^4\d\d/.test(status)) {
      throw new FhirExportError(
        'FHIR_REJECTED',
        `the FHIR server refused an entry of the Bundle (HTTP ${status.slice(0, 3)})`,
      );
    }
    throw new FhirExportError(
      'FHIR_SERVER_ERROR',
      `a transaction-response entry has status ${status.slice(0, 3)}`,
    );
  }
}

/**
 * Writes each Bundle as one JSON file in a folder, for a clinic that imports files (or ships them by other
 * means). The name is derived from the Bundle's content, so a retry after a crash rewrites the same file rather
 * than adding a second copy; the write is atomic (temporary file, fsync, rename, fsync of the folder), so an
 * importer never sees half a Bundle. Mode 0600: the Bundles are PHI.
 */
export class FolderTarget implements ExportTarget {
  constructor(private readonly folder: string) {}

  async send(bundle: Bundle): Promise<void> {
    // Serialized and encoded once: the hash and the write take the same bytes (a Bundle of 100 readings is
    // about half a megabyte, and each extra pass over it showed in the exporter's profile).
    const bytes = Buffer.from(`${JSON.stringify(bundle)}\n`, 'utf8');
    const name = `bundle-${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}.json`;
    try {
      await writeFileAtomically(join(this.folder, name), bytes, { mode: 0o600, existing: 'replace' });
    } catch (error) {
      throw new FhirExportError(
        'FHIR_FOLDER_WRITE',
        `cannot write a Bundle to ${this.folder}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }
}
