import { createHash, type KeyObject, X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CrlFile, type CrlState, findRevocation, identityOf, type RevocationList } from '../../pki/index.js';
import type { Clock } from '../../util/clock.js';

/**
 * The intake's inventory of gateway certificates (docs/wire-format.md section 4): kid (SHA-256 of the
 * certificate DER) -> gateway id, public key, validity and serial number. Unlike src/clinic/gateway-directory.ts
 * it keeps revoked certificates, so the intake can refuse their messages as INTAKE_SIGNER_REVOKED instead of
 * an unknown kid (which would be quarantined and retried forever).
 *
 * Certificates come from a folder of PEM files (`*.crt`, `*.pem`, one or more certificates each), as
 * `rpm-gateway certs` issues them, and from `add()`. The folder is checked for changes at most every
 * `checkIntervalMs` (and by `refresh()`): one readdir and one stat per file, and only changed files are read
 * again. A file is found by its name, inode, size and modification time, so an atomic rename is seen too. A
 * certificate the clinic CA did not issue, or that is not a gateway's, is left out and reported once.
 *
 * The CA's CRL is src/pki's CrlFile: re-read when the file changes, the last good list kept when it breaks or
 * disappears. When its nextUpdate has passed the list stays in force (a revocation never lapses because the CA
 * was late re-signing), and this is reported once per CRL (`crl-stale`) and counted by the caller.
 */
export interface InventoryEntry {
  readonly gatewayId: string;
  readonly key: KeyObject;
  readonly notBefore: number;
  readonly notAfter: number;
  /** Lower-case hex, as src/pki prints serials. */
  readonly serialNumber: string;
}

export type InventoryEvent =
  | { readonly type: 'loaded'; readonly certificates: number }
  | { readonly type: 'refused'; readonly file: string; readonly reason: string }
  | { readonly type: 'folder-unreadable'; readonly reason: string }
  | { readonly type: 'crl'; readonly state: CrlState }
  | { readonly type: 'crl-stale'; readonly nextUpdate: number };

export interface InventoryOptions {
  readonly caPem: string | Buffer;
  /** The folder of issued gateway certificates; absent: only what `add()` gives. */
  readonly folder?: string;
  /** The clinic CA's CRL (PEM). An absent file means nothing is revoked yet. */
  readonly crlFile?: string;
  readonly clock: Clock;
  /** How often lookups check the folder for changes (default 1000 ms; 0: at every lookup). */
  readonly checkIntervalMs?: number;
  readonly onEvent?: (event: InventoryEvent) => void;
}

export type SignerLookup =
  | { readonly status: 'unknown' }
  | { readonly status: 'revoked'; readonly entry: InventoryEntry }
  | { readonly status: 'known'; readonly entry: InventoryEntry };

interface FileState {
  readonly stamp: string;
  readonly entries: readonly [string, InventoryEntry][];
}

const CERTIFICATE_FILE = /\.(?:crt|pem)$/;
const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export class GatewayInventory {
  private readonly ca: X509Certificate;
  private readonly crl: CrlFile | undefined;
  private readonly added = new Map<string, InventoryEntry>();
  private files = new Map<string, FileState>();
  private byKid = new Map<string, InventoryEntry>();
  private lastCheck = Number.NEGATIVE_INFINITY;
  private staleReported: bigint | undefined;
  private lastList: RevocationList | undefined;
  private versionNumber = 0;

  constructor(private readonly options: InventoryOptions) {
    this.ca = new X509Certificate(options.caPem);
    this.crl = options.crlFile
      ? new CrlFile(options.crlFile, options.caPem, (state) => options.onEvent?.({ type: 'crl', state }))
      : undefined;
  }

  /** Grows whenever the set of certificates or the CRL changes: quarantined messages are worth a retry then. */
  get version(): number {
    return this.versionNumber;
  }

  get size(): number {
    return this.byKid.size;
  }

  /** Admits one certificate (PEM); returns why not when the clinic CA did not issue it or it is no gateway's. */
  add(pem: string): InventoryEntry | string {
    const parsed = this.parse(pem);
    if (typeof parsed === 'string') return parsed;
    this.added.set(parsed[0], parsed[1]);
    this.rebuild();
    return parsed[1];
  }

  lookup(kid: Uint8Array): SignerLookup {
    const now = this.options.clock.now();
    if (now - this.lastCheck >= (this.options.checkIntervalMs ?? 1000)) this.refresh();
    const entry = this.byKid.get(Buffer.from(kid).toString('hex'));
    if (!entry) return { status: 'unknown' };
    const list = this.crlList(now);
    return list && findRevocation(list, entry.serialNumber)
      ? { status: 'revoked', entry }
      : { status: 'known', entry };
  }

  /** Checks the folder and the CRL now; true when something changed (the version grew). */
  refresh(): boolean {
    const before = this.versionNumber;
    this.lastCheck = this.options.clock.now();
    this.crlList(this.lastCheck);
    if (this.options.folder !== undefined) this.scanFolder(this.options.folder);
    return this.versionNumber !== before;
  }

  private crlList(now: number): RevocationList | undefined {
    if (!this.crl) return undefined;
    const state = this.crl.current();
    const list = state.status === 'absent' ? undefined : state.list;
    if (list && list !== this.lastList) {
      this.lastList = list;
      this.versionNumber++;
    }
    if (list && now > list.nextUpdate.getTime() && this.staleReported !== list.number) {
      this.staleReported = list.number;
      this.options.onEvent?.({ type: 'crl-stale', nextUpdate: list.nextUpdate.getTime() });
    }
    return list;
  }

  /** True when the CRL in force is past its nextUpdate (it is still applied). */
  crlStale(): boolean {
    const list = this.crl ? this.crlList(this.options.clock.now()) : undefined;
    return list !== undefined && this.options.clock.now() > list.nextUpdate.getTime();
  }

  private scanFolder(folder: string): void {
    let names: string[];
    try {
      names = readdirSync(folder).filter((name) => CERTIFICATE_FILE.test(name));
    } catch (error) {
      // A missing or unreadable folder keeps what was loaded: certificates never vanish by accident.
      this.options.onEvent?.({ type: 'folder-unreadable', reason: (error as Error).message });
      return;
    }
    const next = new Map<string, FileState>();
    let changed = names.length !== this.files.size;
    for (const name of names) {
      const path = join(folder, name);
      let stamp: string;
      try {
        const stat = statSync(path, { bigint: true });
        stamp = `${stat.ino}:${stat.size}:${stat.mtimeNs}`;
      } catch {
        continue; // removed between readdir and stat: the next check sees the folder as it is then
      }
      const known = this.files.get(name);
      if (known && known.stamp === stamp) {
        next.set(name, known);
        continue;
      }
      changed = true;
      next.set(name, { stamp, entries: this.readFile(path) });
    }
    if (!changed) return;
    this.files = next;
    this.rebuild();
  }

  private readFile(path: string): [string, InventoryEntry][] {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      this.options.onEvent?.({ type: 'refused', file: path, reason: (error as Error).message });
      return [];
    }
    const entries: [string, InventoryEntry][] = [];
    const blocks = text.match(PEM_BLOCK) ?? [];
    if (blocks.length === 0) {
      this.options.onEvent?.({ type: 'refused', file: path, reason: 'no PEM certificate in the file' });
    }
    for (const block of blocks) {
      const parsed = this.parse(block);
      if (typeof parsed === 'string') this.options.onEvent?.({ type: 'refused', file: path, reason: parsed });
      else entries.push(parsed);
    }
    return entries;
  }

  private parse(pem: string): [string, InventoryEntry] | string {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch {
      return 'not an X.509 certificate';
    }
    if (!cert.checkIssued(this.ca) || !cert.verify(this.ca.publicKey)) {
      return `certificate ${cert.serialNumber} was not issued by the clinic CA`;
    }
    const identity = identityOf(cert.raw);
    if (identity.role !== 'gateway' || identity.id === null) {
      return `certificate ${cert.serialNumber} is not a gateway certificate`;
    }
    const kid = createHash('sha256').update(cert.raw).digest('hex');
    return [
      kid,
      {
        gatewayId: identity.id,
        key: cert.publicKey,
        notBefore: Date.parse(cert.validFrom),
        notAfter: Date.parse(cert.validTo),
        serialNumber: identity.serialNumber,
      },
    ];
  }

  private rebuild(): void {
    const byKid = new Map<string, InventoryEntry>(this.added);
    for (const file of this.files.values()) for (const [kid, entry] of file.entries) byKid.set(kid, entry);
    this.byKid = byKid;
    this.versionNumber++;
    this.options.onEvent?.({ type: 'loaded', certificates: byKid.size });
  }
}
