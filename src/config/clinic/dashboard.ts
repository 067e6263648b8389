import { z } from 'zod';
import {
  brokerEntry,
  count,
  duration,
  isLoopback,
  kind,
  listenHost,
  pathSetting,
  port,
  secretRef,
} from '../fields.js';

/**
 * `dashboard:` the clinic's web dashboard (`rpm-gateway clinic serve`): HTTPS with a certificate from the
 * clinic's PKI, staff logins with a second factor, server-side sessions. Absent on a machine that serves no
 * dashboard.
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/**
 * The origin browsers reach the dashboard under (RFC 6454 section 4: scheme, host and port), what the
 * Origin header of every state-changing request must equal. https only: the session cookie is a `__Host-`
 * cookie, which browsers set only from a secure origin (RFC 6265bis section 4.1.3.2).
 */
const httpsOrigin = () =>
  z
    .string()
    .superRefine((text, ctx) => {
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not a URL; expected https://<host>[:<port>]' });
        return;
      }
      if (url.protocol !== 'https:') {
        ctx.addIssue({ code: 'custom', message: 'the scheme must be https' });
      } else if (url.username || url.password || url.search || url.hash || url.pathname !== '/') {
        ctx.addIssue({
          code: 'custom',
          message: 'an origin is https://<host>[:<port>] only: no path, query, fragment or user name',
        });
      }
    })
    .transform((text) => new URL(text).origin)
    .describe('the https origin browsers use, https://<host>[:<port>]');

/**
 * `dashboard.hubCommands:` how the dashboard sends a patient's alarm limits to their hub (the signed `config`
 * command, docs/wire-format.md 9.3.1; src/clinic/alarms/limits-publisher.ts). `cert` is the clinic's
 * command-signing certificate, the one the hubs list in their tls.commandSigners: a clinic certificate
 * (urn:rpm-gateway:clinic:<name>, clientAuth) from pki.ca. It is also the identity of the dashboard's own
 * broker connection, which the broker lets a clinic use to publish commands (src/broker/acl.ts). Absent: limits
 * apply at the clinic only, and the limits page says they were not sent.
 */
const hubCommandsSection = z.strictObject({
  cert: pathSetting("the clinic's command-signing certificate (PEM), a clinic certificate from pki.ca"),
  key: secretRef("the command-signing certificate's private key", ['file', 'credential']),
  brokers: kind(
    z
      .array(brokerEntry)
      .min(1)
      .describe('a list of brokers tried in order, each "- url: mqtts://<host>:<port>" (and servername)'),
    'brokers',
  ),
  clientId: z
    .string()
    .min(1)
    .describe("the MQTT client id: clinic-<clinic.name>-<suffix>, apart from the intake's"),
  ca: pathSetting(
    "the CA certificate (PEM) that signed the broker's certificate, when it is not pki.ca",
  ).optional(),
});

export const dashboardSection = z
  .strictObject({
    host: listenHost(),
    port: port(),
    allowNetwork: z
      .boolean()
      .describe(
        "true or false: listen on an address other than loopback (staff reach the dashboard over the clinic's network)",
      ),
    cert: pathSetting("the dashboard's server certificate (PEM)"),
    key: secretRef("the dashboard's private key", ['file', 'credential']),
    publicOrigin: httpsOrigin(),
    session: z.strictObject({
      idle: duration({ min: MINUTE, max: 24 * HOUR, minText: '1min', maxText: '24h' }),
      absolute: duration({ min: 5 * MINUTE, max: 7 * 24 * HOUR, minText: '5min', maxText: '7d' }),
    }),
    lockout: z.strictObject({
      maxFailures: count(1, 100, 'failed logins in a row before the account is locked'),
      lockFor: duration({ min: MINUTE, max: 24 * HOUR, minText: '1min', maxText: '24h' }),
    }),
    rateLimit: count(1, 10_000, 'login requests per IP address per minute at most'),
    staleAfter: duration({ min: 1_000, max: HOUR, minText: '1s', maxText: '1h' }),
    hubCommands: hubCommandsSection.optional(),
  })
  .superRefine((d, ctx) => {
    if (!isLoopback(d.host) && !d.allowNetwork) {
      ctx.addIssue({
        code: 'custom',
        path: ['host'],
        message: `${d.host} is not a loopback address, so the dashboard would be reachable from the network; set dashboard.allowNetwork: true if that is meant`,
      });
    }
    if (d.session.idle > d.session.absolute) {
      ctx.addIssue({
        code: 'custom',
        path: ['session', 'idle'],
        message: 'longer than dashboard.session.absolute, so it would never apply',
      });
    }
  })
  .transform((d) => ({
    host: d.host,
    port: d.port,
    allowNetwork: d.allowNetwork,
    cert: d.cert,
    key: d.key,
    publicOrigin: d.publicOrigin,
    session: { idleMs: d.session.idle, absoluteMs: d.session.absolute },
    lockout: { maxFailures: d.lockout.maxFailures, lockForMs: d.lockout.lockFor },
    loginsPerMinute: d.rateLimit,
    staleAfterMs: d.staleAfter,
    ...(d.hubCommands === undefined ? {} : { hubCommands: d.hubCommands }),
  }));
