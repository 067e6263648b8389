import { createHash } from 'node:crypto';
import { closeSync, constants, fsyncSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { GatewayError } from '../errors.js';
import type { JsonValue } from '../model/observation.js';
import { type Clock, systemClock } from '../util/clock.js';

/**
 * The tamper-evident audit log (HIPAA 164.312(b) audit controls; NIST SP 1800-30 logging): one JSON object per
 * line, each carrying the SHA-256 of the previous line, so removing, reordering or editing an entry breaks
 * the chain at that entry. Every security-relevant event goes here: enrolment, pairing, certificate
 * changes, logins, exports, configuration changes, key rotation, a damaged store moved aside.
 *
 * Entries never hold PHI: no measurement values, no Bluetooth addresses. The file is mode 0600, appended with
 * O_APPEND and fsync'd per entry (audit events are rare; losing one to a power cut would defeat the point).
 * A chain only proves integrity against someone who cannot rewrite it whole; the uplink forwards the head
 * hash to the clinic, which anchors it off the device.
 */
export interface AuditEntry {
  readonly seq: number;
  readonly time: string;
  /** Dotted event type, e.g. "store.rekeyed", "device.paired", "login.failed". */
  readonly type: string;
  /** Who did it: "gateway", "cli", a user id, a certificate subject. */
  readonly actor: string;
  readonly details: { readonly [k: string]: JsonValue };
  /** Hash of the previous entry ("0" x 64 for the first). */
  readonly prev: string;
  /** SHA-256 over this entry without `hash`, as canonical JSON. */
  readonly hash: string;
}

const GENESIS = '0'.repeat(64);

export class AuditError extends GatewayError {
  constructor(
    code: 'AUDIT_IO' | 'AUDIT_CHAIN_BROKEN',
    message: string,
    readonly line?: number,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

export class AuditLog {
  private head: { seq: number; hash: string } | undefined;
  private endsTorn = false;

  constructor(
    readonly path: string,
    private readonly clock: Clock = systemClock,
  ) {}

  /** The hash of the last entry ("0" x 64 for an empty log): what the gateway status carries to the clinic. */
  headHash(): string {
    return (this.head ?? this.readHead()).hash;
  }

  /** Appends one entry and makes it durable before returning. */
  record(type: string, actor: string, details: { readonly [k: string]: JsonValue } = {}): AuditEntry {
    const head = this.head ?? this.readHead();
    const body = {
      seq: head.seq + 1,
      time: new Date(this.clock.now()).toISOString(),
      type,
      actor,
      details,
      prev: head.hash,
    };
    const entry: AuditEntry = { ...body, hash: hashOf(body) };
    try {
      const fd = openSync(this.path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
      try {
        // After a torn write the file does not end in a newline; start a fresh line rather than extend it.
        const separator = this.endsTorn ? '\n' : '';
        writeSync(fd, `${separator}${JSON.stringify(entry)}\n`);
        this.endsTorn = false;
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch (cause) {
      throw new AuditError('AUDIT_IO', `cannot append to the audit log ${this.path}`, undefined, { cause });
    }
    this.head = { seq: entry.seq, hash: entry.hash };
    return entry;
  }

  /**
   * Checks the whole chain; throws AUDIT_CHAIN_BROKEN naming the first bad line. A line that is not JSON (a
   * write torn by a power cut) is counted as torn and chained by the hash of its raw text.
   */
  verify(): { entries: number; torn: number; head: string } {
    let prev = GENESIS;
    let entries = 0;
    let torn = 0;
    for (const [index, line] of this.lines().entries()) {
      const entry = parseEntry(line);
      if (entry === undefined) {
        torn++;
        prev = sha256(line);
        continue;
      }
      const { hash, ...body } = entry;
      if (entry.prev !== prev || hash !== hashOf(body) || entry.seq !== index + 1) {
        throw new AuditError('AUDIT_CHAIN_BROKEN', `audit log chain broken at line ${index + 1}`, index + 1);
      }
      prev = hash;
      entries++;
    }
    return { entries, torn, head: prev };
  }

  private readHead(): { seq: number; hash: string } {
    const lines = this.lines();
    const last = lines.at(-1);
    if (last === undefined) return { seq: 0, hash: GENESIS };
    const entry = parseEntry(last);
    return entry ? { seq: entry.seq, hash: entry.hash } : { seq: lines.length, hash: sha256(last) };
  }

  private lines(): string[] {
    try {
      if (statSync(this.path).size === 0) return [];
      const text = readFileSync(this.path, 'utf8');
      this.endsTorn = !text.endsWith('\n');
      return text.split('\n').filter((line) => line.length > 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new AuditError('AUDIT_IO', `cannot read the audit log ${this.path}`, undefined, { cause: error });
    }
  }
}

/** Canonical JSON (keys sorted at every level) so the hash does not depend on key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function parseEntry(line: string): AuditEntry | undefined {
  try {
    const entry = JSON.parse(line) as AuditEntry;
    return typeof entry === 'object' && entry !== null && typeof entry.hash === 'string' ? entry : undefined;
  } catch {
    return undefined;
  }
}

function hashOf(body: Omit<AuditEntry, 'hash'>): string {
  return sha256(canonical(body));
}
