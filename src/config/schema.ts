import { z } from 'zod';
import { isMdcCode, MDC_CODES } from '../model/codes.js';
import { UCUM_UNITS } from '../model/units.js';
import { ID_PATTERN } from '../pki/identity.js';
import type { RetentionPolicy } from '../store/retention.js';
import {
  backoffSection,
  brokerEntry,
  count,
  duration,
  isLoopback,
  kind,
  listenHost,
  logSection,
  MISSING,
  pathSetting,
  port,
  secretRef,
  size,
} from './fields.js';
import { didYouMean } from './suggest.js';

// The building blocks moved to fields.ts so the clinic's schema shares them; these names are still read
// from here by the rest of the hub.
export {
  type BrokerEndpoint,
  type IssueParams,
  isLoopback,
  type LeafKind,
  leafKindOf,
  looksLikeSecret,
  type SecretRef,
  type SecretWay,
  secretWaysOf,
} from './fields.js';

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
