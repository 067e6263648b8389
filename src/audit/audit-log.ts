import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  openSync,
  readFileSync,
  readSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
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
 *
 * Several processes append to one log (the running service and an operator's `clinic user add`, `store rekey`
 * ...), so each append holds `<log>.lock` and chains to the head read from the file at that moment, never to
 * a head cached from this process's last write: two writers each chaining to their own cached head would
 * give two entries the same `prev`, which verify() reports as a broken chain.
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
  private head: Head | undefined;
  private endsTorn = false;

  constructor(
    readonly path: string,
    private readonly clock: Clock = systemClock,
  ) {}

  /** The hash of the last entry ("0" x 64 for an empty log): what the gateway status carries to the clinic. */
  headHash(): string {
    let fd: number;
    try {
      fd = openSync(this.path, constants.O_RDONLY);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return GENESIS;
      throw new AuditError('AUDIT_IO', `cannot read the audit log ${this.path}`, undefined, { cause: error });
    }
    try {
      return this.currentHead(fd).hash;
    } finally {
      closeSync(fd);
    }
  }

  /** Appends one entry and makes it durable before returning. */
  record(type: string, actor: string, details: { readonly [k: string]: JsonValue } = {}): AuditEntry {
    const lock = acquireLock(`${this.path}.lock`);
    try {
      return this.appendLocked(type, actor, details);
    } finally {
      lock.release();
    }
  }

  private appendLocked(
    type: string,
    actor: string,
    details: { readonly [k: string]: JsonValue },
  ): AuditEntry {
    let fd: number;
    try {
      fd = openSync(this.path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT, 0o600);
    } catch (cause) {
      throw new AuditError('AUDIT_IO', `cannot open the audit log ${this.path}`, undefined, { cause });
    }
    try {
      const head = this.currentHead(fd);
      const body = {
        seq: head.seq + 1,
        time: new Date(this.clock.now()).toISOString(),
        type,
        actor,
        details,
        prev: head.hash,
      };
      const entry: AuditEntry = { ...body, hash: hashOf(body) };
      // After a torn write the file does not end in a newline; start a fresh line rather than extend it.
      const separator = this.endsTorn ? '\n' : '';
      const line = Buffer.from(`${separator}${JSON.stringify(entry)}\n`);
      writeSync(fd, line);
      fsyncSync(fd);
      this.endsTorn = false;
      this.head = { seq: entry.seq, hash: entry.hash, size: head.size + line.length };
      return entry;
    } catch (cause) {
      if (cause instanceof AuditError) throw cause;
      throw new AuditError('AUDIT_IO', `cannot append to the audit log ${this.path}`, undefined, { cause });
    } finally {
      closeSync(fd);
    }
  }

  /**
   * The head as the file has it now. The cached head is used only while the file still has the size this
   * process left it at (nobody else appended); otherwise the last line is read from the end of the file.
   */
  private currentHead(fd: number): Head {
    const size = fstatSync(fd).size;
    if (this.head !== undefined && this.head.size === size) return this.head;
    const tail = readLastLine(fd, size);
    if (tail === undefined) return this.readHead();
    this.endsTorn = tail.endsTorn;
    if (tail.line === undefined) return { seq: 0, hash: GENESIS, size };
    const entry = parseEntry(tail.line);
    // A torn last line is chained by the hash of its text and counted by its line number: count them all.
    return entry ? { seq: entry.seq, hash: entry.hash, size } : this.readHead();
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

  private readHead(): Head {
    const { lines, size } = this.readAll();
    const last = lines.at(-1);
    if (last === undefined) return { seq: 0, hash: GENESIS, size };
    const entry = parseEntry(last);
    return entry
      ? { seq: entry.seq, hash: entry.hash, size }
      : { seq: lines.length, hash: sha256(last), size };
  }

  private lines(): string[] {
    return this.readAll().lines;
  }

  private readAll(): { lines: string[]; size: number } {
    try {
      if (statSync(this.path).size === 0) return { lines: [], size: 0 };
      const bytes = readFileSync(this.path);
      const text = bytes.toString('utf8');
      this.endsTorn = !text.endsWith('\n');
      return { lines: text.split('\n').filter((line) => line.length > 0), size: bytes.length };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { lines: [], size: 0 };
      throw new AuditError('AUDIT_IO', `cannot read the audit log ${this.path}`, undefined, { cause: error });
    }
  }
}

interface Head {
  readonly seq: number;
  readonly hash: string;
  /** The file's size in bytes when this head was its last line. */
  readonly size: number;
}

/** Entries are a few hundred bytes; a last line longer than this is read with the whole file instead. */
const TAIL_BYTES = 64 * 1024;

/**
 * The last non-empty line of the file, read from its end; undefined when it does not fit in TAIL_BYTES.
 * `line` is undefined for an empty file.
 */
function readLastLine(fd: number, size: number): { line: string | undefined; endsTorn: boolean } | undefined {
  if (size === 0) return { line: undefined, endsTorn: false };
  const length = Math.min(size, TAIL_BYTES);
  const buffer = Buffer.alloc(length);
  readSync(fd, buffer, 0, length, size - length);
  const endsTorn = buffer[length - 1] !== 0x0a;
  const end = endsTorn ? length : length - 1;
  const start = buffer.lastIndexOf(0x0a, end - 1) + 1;
  if (start === 0 && length < size) return undefined;
  return { line: buffer.subarray(start, end).toString('utf8'), endsTorn };
}

/**
 * An exclusive lock on the log between processes: a lock file created with O_EXCL holding the owner's pid.
 * Node has no flock(2); appends are rare and short, so a short synchronous wait is fine. A lock left by a
 * process that no longer exists (killed mid-append) is taken over, as is one carrying this process's own pid
 * (record() is synchronous, so this process cannot be inside it already).
 */
const LOCK_WAIT_MS = 5_000;
const LOCK_POLL_MS = 2;

function acquireLock(path: string): { release(): void } {
  const waiter = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        writeSync(fd, String(process.pid));
      } finally {
        closeSync(fd);
      }
      return { release: () => unlinkQuietly(path) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new AuditError('AUDIT_IO', `cannot lock the audit log (${path})`, undefined, { cause: error });
      }
    }
    const owner = lockOwner(path);
    if (owner !== undefined && (owner === process.pid || !processExists(owner))) {
      unlinkQuietly(path);
      continue;
    }
    if (Date.now() > deadline) {
      throw new AuditError(
        'AUDIT_IO',
        `the audit log is locked by process ${owner ?? '(unknown)'} for more than ${LOCK_WAIT_MS} ms (${path})`,
      );
    }
    Atomics.wait(waiter, 0, 0, LOCK_POLL_MS);
  }
}

function lockOwner(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone: a waiter took it over as stale.
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
