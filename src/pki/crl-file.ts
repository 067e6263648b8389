import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type Clock, systemClock } from '../util/clock.js';
import { type CertificateAuthority, loadCertificateAuthorityDir } from './ca.js';
import {
  CRL_FILE,
  findRevocation,
  parseRevocationList,
  type RevocationList,
  type RevocationReason,
  type RevokedEntry,
  signRevocationList,
} from './crl.js';
import { PkiError } from './errors.js';
import { exists, readTextFile, writeCertificateFile } from './files.js';
import { toCertificate } from './identity.js';

/** What `certs revoke` and `certs crl` did. */
export interface CrlUpdate {
  readonly file: string;
  readonly list: RevocationList;
  /** The entry for the certificate named (revoke only). */
  readonly entry?: RevokedEntry;
  /** True when that certificate was already on the CRL: nothing was signed. */
  readonly alreadyRevoked?: boolean;
}

export interface CrlUpdateOptions {
  /** Where the CRL lives (default: <ca-dir>/crl.pem). */
  readonly crlFile?: string;
  /** Days until nextUpdate. */
  readonly days?: number;
  readonly clock?: Clock;
}

/**
 * Adds a certificate the CA issued to the CA's CRL and writes the newly signed CRL (number + 1) atomically
 * (temporary file, fsync, rename: a reader never sees half a CRL). A certificate of another CA is refused
 * (PKI_MISMATCH): its serial would mean nothing on this CA's list.
 */
export async function revokeCertificate(
  caDir: string,
  certificatePem: string,
  reason: RevocationReason,
  options: CrlUpdateOptions = {},
): Promise<CrlUpdate> {
  const ca = await loadCertificateAuthorityDir(caDir);
  const certificate = toCertificate(certificatePem, 'the certificate to revoke');
  const caCertificate = ca.certificate;
  if (
    !Buffer.from(certificate.issuerName.toArrayBuffer()).equals(
      Buffer.from(caCertificate.subjectName.toArrayBuffer()),
    ) ||
    !(await certificate.verify({ publicKey: caCertificate.publicKey, signatureOnly: true }))
  ) {
    throw new PkiError(
      'PKI_MISMATCH',
      `${certificate.subject} was not issued by the CA ${caCertificate.subject}`,
    );
  }
  const file = options.crlFile ?? join(caDir, CRL_FILE);
  const current = await readCurrent(file, ca);
  const existing = current && findRevocation(current, certificate.serialNumber);
  if (current && existing) return { file, list: current, entry: existing, alreadyRevoked: true };
  // X.509 times have whole seconds.
  const now = Math.floor((options.clock ?? systemClock).now() / 1000) * 1000;
  const entry: RevokedEntry = {
    serialNumber: certificate.serialNumber.toLowerCase(),
    revocationDate: new Date(now),
    reason,
  };
  const list = await signRevocationList(ca, {
    entries: [...(current?.entries.values() ?? []), entry],
    number: (current?.number ?? 0n) + 1n,
    ...(options.days === undefined ? {} : { days: options.days }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
  await writeCertificateFile(file, list.pem);
  return { file, list, entry, alreadyRevoked: false };
}

/**
 * Signs the CA's CRL again with the same entries, a fresh thisUpdate/nextUpdate and the next number: what
 * an operator runs (from cron or a systemd timer) well before nextUpdate passes. Without a CRL yet it signs an
 * empty one, so a broker can be given a CRL from the start.
 */
export async function renewRevocationList(caDir: string, options: CrlUpdateOptions = {}): Promise<CrlUpdate> {
  const ca = await loadCertificateAuthorityDir(caDir);
  const file = options.crlFile ?? join(caDir, CRL_FILE);
  const current = await readCurrent(file, ca);
  const list = await signRevocationList(ca, {
    entries: [...(current?.entries.values() ?? [])],
    number: (current?.number ?? 0n) + 1n,
    ...(options.days === undefined ? {} : { days: options.days }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
  await writeCertificateFile(file, list.pem);
  return { file, list };
}

async function readCurrent(file: string, ca: CertificateAuthority): Promise<RevocationList | undefined> {
  if (!(await exists(file))) return undefined;
  // An existing CRL that is not this CA's is refused rather than replaced: replacing it would drop its entries.
  return parseRevocationList(await readTextFile(file, 'CRL'), ca.certificatePem);
}

/** What a CrlFile read last: the list, or the error that the last change of the file brought. */
export type CrlState =
  | { readonly status: 'absent' }
  | { readonly status: 'loaded'; readonly list: RevocationList }
  | { readonly status: 'unusable'; readonly error: PkiError; readonly list?: RevocationList };

/**
 * A CRL file that may change while a process runs. `current()` stats the file (one system call) and re-reads
 * it only when its inode, size or modification time changed. This is called on every new connection or
 * lookup rather than watching the file: the next handshake after a `certs revoke` always sees the new list,
 * with no timer, no debounce and no missed rename (fs.watch loses the watch when the file is replaced by
 * rename, which is how every CRL is written here).
 *
 * A file that appears is loaded; one that changes into something unreadable, or not signed by the CA, or that
 * disappears after having been loaded, keeps the last good list in force (removing or breaking the file must
 * not un-revoke anyone) and is reported once through `onChange`.
 */
export class CrlFile {
  private stamp: string | undefined;
  private state: CrlState = { status: 'absent' };

  constructor(
    readonly path: string,
    private readonly caPem: string | Buffer,
    private readonly onChange?: (state: CrlState) => void,
  ) {}

  current(): CrlState {
    let stamp: string;
    try {
      const stat = statSync(this.path, { bigint: true });
      stamp = `${stat.ino}:${stat.size}:${stat.mtimeNs}`;
    } catch (error) {
      stamp = 'absent';
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') stamp = `error:${String(error)}`;
    }
    if (stamp === this.stamp) return this.state;
    this.stamp = stamp;
    const last = this.state.status === 'absent' ? undefined : this.state.list;
    this.state = this.read(stamp, last);
    this.onChange?.(this.state);
    return this.state;
  }

  /** The list in force: the last one that loaded, if any. */
  list(): RevocationList | undefined {
    const state = this.current();
    return state.status === 'absent' ? undefined : state.list;
  }

  private read(stamp: string, last: RevocationList | undefined): CrlState {
    try {
      if (stamp === 'absent') {
        if (!last) return { status: 'absent' };
        throw new PkiError(
          'PKI_BAD_CRL',
          `the CRL ${this.path} disappeared; the last one read stays in force`,
        );
      }
      const list = parseRevocationList(readFileSync(this.path, 'utf8'), this.caPem);
      if (last && list.number < last.number) {
        throw new PkiError(
          'PKI_BAD_CRL',
          `the CRL ${this.path} has number ${list.number}, older than the ${last.number} in force`,
        );
      }
      return { status: 'loaded', list };
    } catch (error) {
      const pkiError =
        error instanceof PkiError
          ? error
          : new PkiError('PKI_BAD_CRL', `cannot read the CRL ${this.path}`, { cause: error });
      return last
        ? { status: 'unusable', error: pkiError, list: last }
        : { status: 'unusable', error: pkiError };
    }
  }
}
