import { isIP } from 'node:net';
import { z } from 'zod';
import type { BackoffPolicy } from '../uplink/backoff.js';
import type { ConfigErrorCode } from './errors.js';
import { DURATION_HELP, parseDuration, parseSize, SIZE_HELP } from './quantities.js';
import { didYouMean } from './suggest.js';

/**
 * The building blocks of the configuration schemas (the hub's, src/config/schema.ts, and the clinic's,
 * src/config/clinic/): paths, durations, sizes, ports, hosts, secrets by reference, MQTT broker lists, backoff
 * and logging. Each marks how its setting is written in a variable or a flag (its LeafKind), which the
 * loader reads off the schema (src/config/walk.ts), so one schema says everything about a setting.
 */

/**
 * How a setting is written in an RPM_* variable or a flag, for the settings that are not plain text, numbers,
 * booleans or choices (those are read off the schema itself).
 */
export type LeafKind = 'path' | 'duration' | 'size' | 'secret' | 'brokers';

const KINDS = new WeakMap<z.ZodType, LeafKind>();
const SECRET_WAYS = new WeakMap<z.ZodType, readonly SecretWay[]>();

export function kind<T extends z.ZodType>(schema: T, leafKind: LeafKind): T {
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

export const INLINE: IssueParams = { configCode: 'CONFIG_INLINE_SECRET' };
export const UNKNOWN: IssueParams = { configCode: 'CONFIG_UNKNOWN_KEY' };
export const MISSING: IssueParams = { configCode: 'CONFIG_MISSING_KEY' };
export const INCOMPATIBLE: IssueParams = { configCode: 'CONFIG_INCOMPATIBLE' };

/**
 * Text that is a secret rather than the name of one: PEM (RFC 7468 section 2: "-----BEGIN"), a store key
 * (64 hex digits, src/store/keys.ts) or another long run of hex or base64.
 */
export function looksLikeSecret(text: string): boolean {
  if (text.includes('-----BEGIN')) return true;
  if (/^[0-9a-fA-F]{32,}$/.test(text.trim())) return true;
  return /^[A-Za-z0-9+/=\s]{40,}$/.test(text) && !/^[./]/.test(text);
}

export function pathSetting(what: string) {
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

export function duration(options: { min: number; max?: number; minText: string; maxText?: string }) {
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

export function size(options: { min: number; minText: string }) {
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

export const count = (min: number, max: number, what: string) =>
  z.number().int().min(min).max(max).describe(`${what}: a whole number from ${min} to ${max}`);

export const port = () => z.number().int().min(1).max(65_535).describe('a TCP port, 1 to 65535');

/** RFC 1123 section 2.1 host names (labels of letters, digits and '-'), or an IP address. */
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export const hostName = () =>
  z
    .string()
    .refine((h) => isIP(h) !== 0 || HOST_NAME.test(h))
    .describe('a host name (RFC 1123) or an IP address');

/** An address to listen on: an IP address, or "localhost". */
export const listenHost = () =>
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

export function secretRef(what: string, ways: readonly SecretWay[]) {
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

// --- brokers, backoff, logging ------------------------------------------------------------------------

/** The port of MQTT over TLS (IANA service name secure-mqtt, 8883/tcp). */
export const MQTTS_PORT = 8883;

export interface BrokerEndpoint {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly servername?: string;
}

export const brokerUrl = z
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

export const brokerEntry = z
  .strictObject({
    url: brokerUrl,
    servername: hostName()
      .optional()
      .describe('the name to check the broker certificate against, when it is not the URL host'),
  })
  .transform(
    ({ url, servername }): BrokerEndpoint => (servername === undefined ? url : { ...url, servername }),
  );

export const backoffSection = z
  .strictObject({
    base: duration({ min: 10, minText: '10ms' }),
    cap: duration({ min: 10, minText: '10ms' }),
    stableAfter: duration({ min: 0, minText: '0s' }),
  })
  .superRefine((b, ctx) => {
    if (b.cap < b.base) ctx.addIssue({ code: 'custom', path: ['cap'], message: 'must not be below base' });
  })
  .transform((b): BackoffPolicy => ({ baseMs: b.base, capMs: b.cap, stableAfterMs: b.stableAfter }));

/** pino's levels (https://getpino.io/#/docs/api?id=level-string), and silent to log nothing. */
export const logSection = z.strictObject({
  level: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .describe('fatal, error, warn, info, debug, trace or silent'),
  redact: z.boolean().describe('true or false: leave readings, addresses, names and keys out of the logs'),
});
