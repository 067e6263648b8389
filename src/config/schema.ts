import { isIP } from 'node:net';
import { z } from 'zod';
import { isMdcCode, MDC_CODES } from '../model/codes.js';
import { UCUM_UNITS } from '../model/units.js';
import { ID_PATTERN } from '../pki/identity.js';
import type { RetentionPolicy } from '../store/retention.js';
import type { BackoffPolicy } from '../uplink/backoff.js';
import type { ConfigErrorCode } from './errors.js';
import { DURATION_HELP, parseDuration, parseSize, SIZE_HELP } from './quantities.js';
import { didYouMean } from './suggest.js';

/**
 * The one schema of the gateway's configuration (config/gateway.example.yaml shows every key). The file is
 * written the way people read it: lowerCamelCase keys, durations and sizes with their unit ("60s", "1GiB").
 * The parsed configuration (`GatewayConfig`, the schema's output type) is what the code reads: durations in
 * milliseconds under names ending in `Ms`, sizes in bytes under names ending in `Bytes`, and the store's
 * retention and the uplink's backoff in exactly the shapes src/store and src/uplink take.
 *
 * Defaults are not in the schema: they are the lowest layer (src/config/defaults.ts), so `config print` can
 * say of every value where it came from.
 */

/**
 * How a setting is written in an RPM_* variable or a flag, for the settings that are not plain text, numbers,
 * booleans or choices (those are read off the schema itself).
 */
export type LeafKind = 'path' | 'duration' | 'size' | 'secret' | 'brokers';

const KINDS = new WeakMap<z.ZodType, LeafKind>();
const SECRET_WAYS = new WeakMap<z.ZodType, readonly SecretWay[]>();

function kind<T extends z.ZodType>(schema: T, leafKind: LeafKind): T {
  KINDS.set(schema, leafKind);
  return schema;
}

export function leafKindOf(schema: z.ZodType): LeafKind | undefined {
  return KINDS.get(schema);
}

export function secretWaysOf(schema: z.ZodType): readonly SecretWay[] | undefined {
  return SECRET_WAYS.get(schema);
}

/** The stable code a refinement wants its issue reported under (the default is CONFIG_BAD_VALUE). */
export interface IssueParams {
  readonly configCode: Exclude<ConfigErrorCode, 'CONFIG_INVALID'>;
}

const INLINE: IssueParams = { configCode: 'CONFIG_INLINE_SECRET' };
const UNKNOWN: IssueParams = { configCode: 'CONFIG_UNKNOWN_KEY' };
const MISSING: IssueParams = { configCode: 'CONFIG_MISSING_KEY' };

/**
 * Text that is a secret rather than the name of one: PEM (RFC 7468 section 2: "-----BEGIN"), a store key
 * (64 hex digits, src/store/keys.ts) or another long run of hex or base64.
 */
export function looksLikeSecret(text: string): boolean {
  if (text.includes('-----BEGIN')) return true;
  if (/^[0-9a-fA-F]{32,}$/.test(text.trim())) return true;
  return /^[A-Za-z0-9+/=\s]{40,}$/.test(text) && !/^[./]/.test(text);
}

function pathSetting(what: string) {
  return kind(
    z
      .string()
      .min(1)
      .superRefine((value, ctx) => {
        if (looksLikeSecret(value)) {
          ctx.addIssue({
            code: 'custom',
            message: `${what} is written inline; write the path of the file that holds it instead`,
            params: INLINE,
          });
        } else if (value.includes('\0')) {
          ctx.addIssue({ code: 'custom', message: 'a path cannot contain a NUL character' });
        }
      })
      .describe(`the path of ${what}`),
    'path',
  );
}

function duration(options: { min: number; max?: number; minText: string; maxText?: string }) {
  return kind(
    z
      .string()
      .transform((text, ctx) => {
        const ms = parseDuration(text);
        if (ms === undefined) {
          ctx.addIssue({ code: 'custom', message: `not a duration; expected ${DURATION_HELP}` });
          return z.NEVER;
        }
        if (ms < options.min || (options.max !== undefined && ms > options.max)) {
          const range = options.maxText
            ? `from ${options.minText} to ${options.maxText}`
            : `${options.minText} or more`;
          ctx.addIssue({ code: 'custom', message: `out of range; expected ${range}` });
          return z.NEVER;
        }
        return ms;
      })
      .describe(DURATION_HELP),
    'duration',
  );
}

function size(options: { min: number; minText: string }) {
  return kind(
    z
      .string()
      .transform((text, ctx) => {
        const bytes = parseSize(text);
        if (bytes === undefined) {
          ctx.addIssue({ code: 'custom', message: `not a size; expected ${SIZE_HELP}` });
          return z.NEVER;
        }
        if (bytes < options.min) {
          ctx.addIssue({ code: 'custom', message: `too small; expected ${options.minText} or more` });
          return z.NEVER;
        }
        return bytes;
      })
      .describe(SIZE_HELP),
    'size',
  );
}

const count = (min: number, max: number, what: string) =>
  z.number().int().min(min).max(max).describe(`${what}: a whole number from ${min} to ${max}`);

const port = () => z.number().int().min(1).max(65_535).describe('a TCP port, 1 to 65535');

/** RFC 1123 section 2.1 host names (labels of letters, digits and '-'), or an IP address. */
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

const hostName = () =>
  z
    .string()
    .refine((h) => isIP(h) !== 0 || HOST_NAME.test(h))
    .describe('a host name (RFC 1123) or an IP address');

/** An address to listen on: an IP address, or "localhost". */
const listenHost = () =>
  z
    .string()
    .refine((h) => h === 'localhost' || isIP(h) !== 0)
    .describe('an IP address to listen on (127.0.0.1, ::1, 0.0.0.0 for every interface), or localhost');

/** Loopback: 127.0.0.0/8 (RFC 1122 section 3.2.1.3), ::1 (RFC 4291 section 2.5.3) and localhost. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

// --- secrets -------------------------------------------------------------------------------------------

export type SecretWay = 'file' | 'credential' | 'env';

/** Where a secret is, never the secret: a file, a systemd credential, or (tests and demos only) a variable. */
export type SecretRef =
  | { readonly source: 'file'; readonly path: string }
  | { readonly source: 'credential'; readonly name: string }
  | { readonly source: 'env'; readonly variable: string };

const PLACEHOLDER: Readonly<Record<SecretWay, string>> = {
  file: '<path>',
  credential: '<systemd credential name>',
  env: '<environment variable name>',
};

/**
 * systemd credential names are file names under $CREDENTIALS_DIRECTORY (systemd.exec(5), "Credentials");
 * environment variable names as POSIX.1-2017 XBD chapter 8 allows portable ones.
 */
const CREDENTIAL_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,254}$/;
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function secretRef(what: string, ways: readonly SecretWay[]) {
  const shape = ways.map((way) => `{ ${way}: ${PLACEHOLDER[way]} }`).join(' or ');
  const schema = kind(
    z
      .unknown()
      .transform((value, ctx): SecretRef => {
        if (value === undefined) {
          ctx.addIssue({ code: 'custom', message: `required: ${shape}`, params: MISSING });
          return z.NEVER;
        }
        if (typeof value === 'string') {
          ctx.addIssue(
            looksLikeSecret(value)
              ? {
                  code: 'custom',
                  message: `${what} is written inline: secrets are never in the configuration; put it in a file only the service user can read and name that: ${shape}`,
                  params: INLINE,
                }
              : { code: 'custom', message: `expected ${shape}` },
          );
          return z.NEVER;
        }
        if (typeof value !== 'object' || value === null || Array.isArray(value)) {
          ctx.addIssue({ code: 'custom', message: `expected ${shape}` });
          return z.NEVER;
        }
        const entries = Object.entries(value);
        let ok = true;
        for (const [key] of entries) {
          if (!(ways as readonly string[]).includes(key)) {
            ctx.addIssue({
              code: 'custom',
              path: [key],
              message: `unknown key${didYouMean(key, ways)}; expected ${shape}`,
              params: UNKNOWN,
            });
            ok = false;
          }
        }
        const given = entries.filter(([key]) => (ways as readonly string[]).includes(key));
        if (given.length !== 1) {
          if (ok) ctx.addIssue({ code: 'custom', message: `give exactly one of: ${shape}` });
          return z.NEVER;
        }
        const [way, reference] = given[0] as [SecretWay, unknown];
        if (typeof reference !== 'string' || reference === '') {
          ctx.addIssue({ code: 'custom', path: [way], message: `expected ${PLACEHOLDER[way]}` });
          return z.NEVER;
        }
        if (looksLikeSecret(reference)) {
          ctx.addIssue({
            code: 'custom',
            path: [way],
            message: `${what} is written inline: secrets are never in the configuration; ${way} names where it is (${PLACEHOLDER[way]})`,
            params: INLINE,
          });
          return z.NEVER;
        }
        if (!ok) return z.NEVER;
        switch (way) {
          case 'file':
            return { source: 'file', path: reference };
          case 'credential':
            if (CREDENTIAL_NAME.test(reference)) return { source: 'credential', name: reference };
            ctx.addIssue({
              code: 'custom',
              path: [way],
              message: 'expected a systemd credential name (letters, digits, "_", ".", "@", "-"; no "/")',
            });
            return z.NEVER;
          case 'env':
            if (VARIABLE_NAME.test(reference)) return { source: 'env', variable: reference };
            ctx.addIssue({
              code: 'custom',
              path: [way],
              message: 'expected an environment variable name (letters, digits, "_")',
            });
            return z.NEVER;
        }
      })
      .describe(shape),
    'secret',
  );
  SECRET_WAYS.set(schema, ways);
  return schema;
}

// --- sections -------------------------------------------------------------------------------------------

const gatewaySection = z.strictObject({
  id: z
    .string()
    .regex(ID_PATTERN)
    .describe(
      "the gateway id of this hub's certificate: 3 to 63 lower-case letters, digits or '-', starting with a letter or digit",
    ),
  label: z
    .string()
    .min(1)
    .max(64)
    .optional()
    .describe('a name for this hub shown on the patient page, 1 to 64 characters'),
});

const pathsSection = z.strictObject({
  dataDir: pathSetting('the data directory (the encrypted store, the audit log)'),
  runtimeDir: pathSetting('the runtime directory (the control socket)'),
});

const retentionSection = z
  .strictObject({
    maxRows: count(1, Number.MAX_SAFE_INTEGER, 'readings kept at most'),
    maxBytes: size({ min: 1024 * 1024, minText: '1MiB' }),
    maxAge: duration({ min: 60_000, minText: '1min' }),
    whenFull: z
      .enum(['evict-oldest-backlog', 'reject'])
      .describe('what a full store does: evict-oldest-backlog (with gap records) or reject'),
    ackedIdRetention: duration({ min: 60_000, minText: '1min' }),
  })
  .transform(
    (r): RetentionPolicy => ({
      maxRows: r.maxRows,
      maxBytes: r.maxBytes,
      maxAgeMs: r.maxAge,
      whenFull: r.whenFull,
      ackedIdRetentionMs: r.ackedIdRetention,
    }),
  );

const storeSection = z.strictObject({
  key: secretRef('the store key', ['file', 'credential', 'env']),
  retention: retentionSection,
});

const tlsSection = z
  .strictObject({
    ca: pathSetting('the CA certificate (PEM) that signed the broker'),
    cert: pathSetting("this hub's certificate (PEM)"),
    key: secretRef("this hub's private key", ['file', 'credential']),
    clinicCa: pathSetting('the clinic CA certificate (PEM) that issued the command signers').optional(),
    commandSigners: z
      .array(pathSetting('a command-signing certificate (PEM)'))
      .describe('a list of paths of clinic command-signing certificates (PEM)'),
    crl: pathSetting('the certificate revocation list (PEM)').optional(),
  })
  .superRefine((tls, ctx) => {
    if (tls.commandSigners.length > 0 && tls.clinicCa === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['clinicCa'],
        message: 'command signers are checked against the clinic CA: set tls.clinicCa too',
        params: MISSING,
      });
    }
  });

/** The port of MQTT over TLS (IANA service name secure-mqtt, 8883/tcp). */
const MQTTS_PORT = 8883;

export interface BrokerEndpoint {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly servername?: string;
}

const brokerUrl = z
  .string()
  .transform((text, ctx) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not a URL; expected mqtts://<host>:<port>' });
      return z.NEVER;
    }
    const problem =
      url.protocol !== 'mqtts:'
        ? 'the scheme must be mqtts: the hub talks to its broker over mutual TLS only'
        : url.username || url.password
          ? 'a user name or password in the URL is a secret written inline; the hub authenticates with its certificate'
          : url.hostname === ''
            ? 'the host is missing'
            : (url.pathname !== '' && url.pathname !== '/') || url.search || url.hash
              ? 'a broker URL has no path, query or fragment'
              : undefined;
    if (problem) {
      ctx.addIssue({
        code: 'custom',
        message: `${problem}; expected mqtts://<host>:<port>`,
        ...(url.username || url.password ? { params: INLINE } : {}),
      });
      return z.NEVER;
    }
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = url.port === '' ? MQTTS_PORT : Number(url.port);
    return { url: `mqtts://${url.host}${url.port === '' ? `:${MQTTS_PORT}` : ''}`, host, port };
  })
  .describe('mqtts://<host>:<port> (port 8883 when left out)');

const brokerEntry = z
  .strictObject({
    url: brokerUrl,
    servername: hostName()
      .optional()
      .describe('the name to check the broker certificate against, when it is not the URL host'),
  })
  .transform(
    ({ url, servername }): BrokerEndpoint => (servername === undefined ? url : { ...url, servername }),
  );

const backoffSection = z
  .strictObject({
    base: duration({ min: 10, minText: '10ms' }),
    cap: duration({ min: 10, minText: '10ms' }),
    stableAfter: duration({ min: 0, minText: '0s' }),
  })
  .superRefine((b, ctx) => {
    if (b.cap < b.base) ctx.addIssue({ code: 'custom', path: ['cap'], message: 'must not be below base' });
  })
  .transform((b): BackoffPolicy => ({ baseMs: b.base, capMs: b.cap, stableAfterMs: b.stableAfter }));

const uplinkSection = z
  .strictObject({
    brokers: kind(
      z
        .array(brokerEntry)
        .min(1)
        .describe('a list of brokers tried in order, each "- url: mqtts://<host>:<port>"'),
      'brokers',
    ),
    protocolVersion: z.literal([4, 5]).describe('the MQTT version: 4 (3.1.1) or 5'),
    backoff: backoffSection,
    window: count(1, 1024, 'batches awaiting PUBACK at once'),
    maxBatchRows: count(1, 100_000, 'readings per batch at most'),
    liveBatchBytes: size({ min: 1024, minText: '1KiB' }),
    backlogBatchBytes: size({ min: 1024, minText: '1KiB' }),
    connectTimeout: duration({ min: 1_000, max: 600_000, minText: '1s', maxText: '10min' }),
    // MQTT's Keep Alive is a 16-bit number of seconds (MQTT 3.1.1 section 3.1.2.10; MQTT 5 section 3.1.2.10).
    keepalive: duration({ min: 1_000, max: 65_535_000, minText: '1s', maxText: '65535s' }),
  })
  .superRefine((u, ctx) => {
    if (u.keepalive % 1000 !== 0) {
      ctx.addIssue({ code: 'custom', path: ['keepalive'], message: 'MQTT keeps alive in whole seconds' });
    }
  })
  .transform((u) => ({
    brokers: u.brokers,
    protocolVersion: u.protocolVersion,
    backoff: u.backoff,
    window: u.window,
    maxBatchRows: u.maxBatchRows,
    liveBatchBytes: u.liveBatchBytes,
    backlogBatchBytes: u.backlogBatchBytes,
    connectTimeoutMs: u.connectTimeout,
    keepaliveSeconds: u.keepalive / 1000,
  }));

const bleSection = z.strictObject({
  backend: z
    .enum(['bluez', 'noble', 'sim'])
    .describe('bluez (BlueZ over D-Bus), noble (raw HCI) or sim (simulated devices)'),
  adapter: z
    .string()
    .regex(/^hci\d{1,3}$/)
    .describe('the Bluetooth adapter, hci0, hci1, ...'),
});

const lanesSection = z
  .strictObject({ backlogAfter: duration({ min: 1_000, minText: '1s' }) })
  .transform((l) => ({ backlogAfterMs: l.backlogAfter }));

const UNITS = Object.keys(UCUM_UNITS) as [keyof typeof UCUM_UNITS, ...(keyof typeof UCUM_UNITS)[]];

/** One alert-lane rule as the file writes it; the clinic's per-patient limits are checked by it too. */
export const alertRuleSchema = z
  .strictObject({
    code: z
      .string()
      .superRefine((code, ctx) => {
        if (!isMdcCode(code)) {
          ctx.addIssue({
            code: 'custom',
            message: `not an MDC code the gateway knows${didYouMean(code, Object.keys(MDC_CODES))}; expected a name from src/model/codes.ts such as MDC_PULS_OXIM_SAT_O2`,
          });
        }
      })
      .describe('an MDC code from src/model/codes.ts, e.g. MDC_PULS_OXIM_SAT_O2'),
    unit: z.enum(UNITS).describe(`a UCUM unit: ${UNITS.join(', ')}`),
    below: z.number().optional().describe('a number in the unit: alert while the value is below it'),
    above: z.number().optional().describe('a number in the unit: alert while the value is above it'),
    for: duration({ min: 0, minText: '0s' }).optional(),
    hysteresis: z
      .number()
      .min(0)
      .optional()
      .describe('a number in the unit, 0 or more: how far back past the limit a value must come to clear'),
  })
  .superRefine((rule, ctx) => {
    if (rule.below === undefined && rule.above === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: 'a rule needs a limit: below, above, or both',
        params: MISSING,
      });
    } else if (rule.below !== undefined && rule.above !== undefined && rule.below >= rule.above) {
      ctx.addIssue({ code: 'custom', path: ['above'], message: 'must be greater than below' });
    }
  })
  .transform((rule) => ({
    code: rule.code as keyof typeof MDC_CODES,
    unit: rule.unit,
    ...(rule.below === undefined ? {} : { below: rule.below }),
    ...(rule.above === undefined ? {} : { above: rule.above }),
    forMs: rule.for ?? 0,
    hysteresis: rule.hysteresis ?? 0,
  }));

/** The list of alert-lane rules: at most one per code (below and above go in one rule). */
export const alertRulesSchema = z
  .array(alertRuleSchema)
  .superRefine((rules, ctx) => {
    const seen = new Set<string>();
    rules.forEach((rule, index) => {
      if (seen.has(rule.code)) {
        ctx.addIssue({
          code: 'custom',
          path: [index, 'code'],
          message: 'a second rule for this code; put below and above in one rule',
        });
      }
      seen.add(rule.code);
    });
  })
  .describe('a list of rules, each { code, unit, below and/or above, for, hysteresis }');

const alertsSection = z.strictObject({ rules: alertRulesSchema });

/** pino's levels (https://getpino.io/#/docs/api?id=level-string), and silent to log nothing. */
const logSection = z.strictObject({
  level: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .describe('fatal, error, warn, info, debug, trace or silent'),
  redact: z.boolean().describe('true or false: leave readings, addresses, names and keys out of the logs'),
});

function listenerSection(what: string) {
  return z
    .strictObject({
      enabled: z.boolean().describe(`true or false: serve ${what}`),
      host: listenHost(),
      port: port(),
      allowLan: z.boolean().describe(`true or false: allow ${what} on an address other than loopback`),
    })
    .superRefine((s, ctx) => {
      if (s.enabled && !isLoopback(s.host) && !s.allowLan) {
        ctx.addIssue({
          code: 'custom',
          path: ['host'],
          message: `${s.host} is not a loopback address, so ${what} would be reachable from the network; set allowLan: true if that is meant`,
        });
      }
    });
}

const clockSection = z.strictObject({
  requireSync: z
    .boolean()
    .describe('true or false: hold wall-clock stamping until the system clock is synchronised'),
  check: z
    .enum(['auto', 'timedatectl', 'adjtimex'])
    .describe(
      "auto, timedatectl (systemd-timedated's NTPSynchronized) or adjtimex (the kernel's clock status)",
    ),
});

const shutdownSection = z
  .strictObject({ deadline: duration({ min: 1_000, max: 600_000, minText: '1s', maxText: '10min' }) })
  .transform((s) => ({ deadlineMs: s.deadline }));

export const configSchema = z.strictObject({
  gateway: gatewaySection,
  paths: pathsSection,
  store: storeSection,
  tls: tlsSection,
  uplink: uplinkSection,
  ble: bleSection,
  lanes: lanesSection,
  alerts: alertsSection,
  log: logSection,
  metrics: listenerSection('the Prometheus metrics'),
  patientPage: listenerSection('the patient page'),
  clock: clockSection,
  shutdown: shutdownSection,
});

/** The parsed configuration, as the runtime reads it. */
export type GatewayConfig = z.output<typeof configSchema>;
export type AlertRule = GatewayConfig['alerts']['rules'][number];
