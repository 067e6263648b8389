import { type DestinationStream, type Logger, pino } from 'pino';

/**
 * The hub's operational log: one JSON object per line on stdout (journald keeps it; `journalctl -u
 * rpm-gateway -o cat` shows it), written by pino (https://getpino.io).
 *
 * What may be in it is decided by construction, not by hoping every caller remembers: a log line is an event
 * name plus fields from a closed list (`LogFields`), each of a fixed type. The list holds ids, codes, states,
 * counts and the like; it has no field for a reading value, a Bluetooth address, a device name or label, a key
 * or a passkey, so none can be passed (TypeScript refuses it, and `fieldsOf` drops any key not in the list at
 * run time too). The free-text fields (`detail`, `error`, `reason`) come from error messages of the gateway's
 * own code, which never carry values or addresses (docs/errors.md); as a second net, with `log.redact` on
 * (the default) anything shaped like a Bluetooth address in them is replaced, and pino's `redact` censors the
 * usual PHI keys should one ever slip into an object.
 *
 * With `log.redact: false` (config check warns) an event may also carry the device's `address` and `label`,
 * for a technician chasing a radio problem on their own bench.
 */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** Every field a log line may carry. Adding one means deciding it can never hold PHI. */
export interface LogFields {
  readonly deviceId?: string;
  readonly driver?: string;
  readonly backend?: string;
  readonly state?: string;
  readonly code?: string;
  readonly detail?: string;
  readonly error?: string;
  readonly reason?: string;
  readonly signal?: string;
  readonly count?: number;
  readonly devices?: number;
  readonly lane?: string;
  readonly records?: number;
  readonly bytes?: number;
  readonly broker?: string;
  readonly next?: string;
  readonly attempt?: number;
  readonly released?: number;
  readonly retryInMs?: number;
  readonly inMs?: number;
  readonly deadlineMs?: number;
  readonly elapsedMs?: number;
  readonly synchronised?: boolean;
  readonly source?: string;
  readonly holding?: number;
  readonly version?: string;
  readonly gatewayId?: string;
  readonly problem?: string;
  readonly path?: string;
  readonly expiresAt?: string;
  readonly status?: string;
  readonly characteristic?: string;
  /** A measurement's id (random or a hash: src/model/ids.ts), never its content. */
  readonly measurementId?: string;
  /** The clinic's processes: an MQTT client id (clinic-<name>-<suffix>), a broker refusal's stage and the
   * certificate identity refused (role:id, never a patient's), and the intake's counters. */
  readonly clientId?: string;
  readonly stage?: string;
  readonly identity?: string;
  readonly messages?: number;
  readonly readings?: number;
  readonly duplicates?: number;
  readonly commits?: number;
  readonly backlog?: number;
  /** Refused messages per stable error code (WIRE_*, INTAKE_*): keys are codes only, values counts. */
  readonly rejectedByCode?: Readonly<Record<string, number>>;
  /** Only with log.redact false (see above). */
  readonly address?: string;
  /** Only with log.redact false (see above). */
  readonly label?: string;
}

const TEXT_FIELDS = new Set<keyof LogFields>(['detail', 'error', 'reason']);
const UNREDACTED_ONLY = new Set<keyof LogFields>(['address', 'label']);
const FIELD_TYPES: Readonly<Record<keyof LogFields, 'string' | 'number' | 'boolean' | 'counts'>> = {
  deviceId: 'string',
  driver: 'string',
  backend: 'string',
  state: 'string',
  code: 'string',
  detail: 'string',
  error: 'string',
  reason: 'string',
  signal: 'string',
  count: 'number',
  devices: 'number',
  lane: 'string',
  records: 'number',
  bytes: 'number',
  broker: 'string',
  next: 'string',
  attempt: 'number',
  released: 'number',
  retryInMs: 'number',
  inMs: 'number',
  deadlineMs: 'number',
  elapsedMs: 'number',
  synchronised: 'boolean',
  source: 'string',
  holding: 'number',
  version: 'string',
  gatewayId: 'string',
  problem: 'string',
  path: 'string',
  expiresAt: 'string',
  status: 'string',
  characteristic: 'string',
  measurementId: 'string',
  clientId: 'string',
  stage: 'string',
  identity: 'string',
  messages: 'number',
  readings: 'number',
  duplicates: 'number',
  commits: 'number',
  backlog: 'number',
  rejectedByCode: 'counts',
  address: 'string',
  label: 'string',
};

/**
 * Bluetooth device addresses (48 bits as six hex pairs, Core Vol 6 Part B 1.3), with ':' or '-'
 * between pairs, and with '_' as in the D-Bus object paths BlueZ uses (dev_AA_BB_CC_DD_EE_FF).
 */
const ADDRESS_LIKE = /(?<![0-9A-Fa-f])[0-9A-Fa-f]{2}(?:[:_-][0-9A-Fa-f]{2}){5}(?![0-9A-Fa-f])/g;

/** The keys pino censors wherever they appear (second net; the field list above has none of them). */
const REDACT_PATHS = [
  'address',
  'label',
  'name',
  'passkey',
  'key',
  'value',
  'values',
  'observations',
  'payload',
  'reading',
  'measurement',
  '*.address',
  '*.label',
  '*.name',
  '*.passkey',
  '*.key',
  '*.value',
  '*.observations',
  '*.payload',
];

export interface RuntimeLog {
  error(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  debug(event: string, fields?: LogFields): void;
  /** Whether PHI redaction is on (callers decide whether to offer `address` and `label`). */
  readonly redacting: boolean;
  /** Writes what is buffered (before the process exits). */
  flush(): void;
}

export interface LogOptions {
  readonly level: LogLevel;
  readonly redact: boolean;
  /** Where lines go; default stdout (synchronously, so nothing is lost at exit). */
  readonly destination?: DestinationStream;
  /** The time each line carries (epoch ms); default Date.now. */
  readonly now?: () => number;
  /** Fields on every line (the gateway id; on the clinic's side, which service: broker or intake). */
  readonly base?: { readonly gatewayId?: string; readonly service?: string };
}

export function createLog(options: LogOptions): RuntimeLog {
  const now = options.now ?? Date.now;
  const logger: Logger = pino(
    {
      level: options.level,
      base: { gatewayId: options.base?.gatewayId, service: options.base?.service },
      messageKey: 'event',
      timestamp: () => `,"time":"${new Date(now()).toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
      ...(options.redact ? { redact: { paths: REDACT_PATHS, censor: '[redacted]' } } : {}),
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
  const write = (level: 'error' | 'warn' | 'info' | 'debug') => (event: string, fields?: LogFields) => {
    logger[level](fieldsOf(fields, options.redact), event);
  };
  return {
    error: write('error'),
    warn: write('warn'),
    info: write('info'),
    debug: write('debug'),
    redacting: options.redact,
    flush: () => logger.flush(),
  };
}

/** Keeps the listed fields of their declared type, scrubbed; drops everything else. */
export function fieldsOf(fields: LogFields | undefined, redact: boolean): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  if (fields === undefined) return kept;
  for (const [key, value] of Object.entries(fields)) {
    const name = key as keyof LogFields;
    const type = FIELD_TYPES[name];
    if (type === 'counts') {
      const counts = countsOf(value);
      if (counts !== undefined) kept[name] = counts;
      continue;
    }
    if (type === undefined || typeof value !== type) continue;
    if (redact && UNREDACTED_ONLY.has(name)) continue;
    if (typeof value === 'number' && !Number.isFinite(value)) continue;
    kept[name] = redact && TEXT_FIELDS.has(name) ? scrub(value as string) : value;
  }
  return kept;
}

/** An error code's shape (src/errors.ts): only such keys are kept in a 'counts' field, so no free text rides in. */
const CODE_KEY = /^[A-Z][A-Z0-9_]{0,63}$/;

function countsOf(value: unknown): Record<string, number> | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const kept: Record<string, number> = {};
  for (const [key, count] of Object.entries(value)) {
    if (CODE_KEY.test(key) && typeof count === 'number' && Number.isFinite(count)) kept[key] = count;
  }
  return kept;
}

/** Free text with address-shaped runs replaced, cut to a line's worth. */
export function scrub(text: string): string {
  return text.replace(ADDRESS_LIKE, '<address>').replace(/\s+/g, ' ').slice(0, 300);
}

/** A log that writes nothing (tests that do not look at it). */
export const SILENT_LOG: RuntimeLog = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  redacting: true,
  flush: () => undefined,
};
