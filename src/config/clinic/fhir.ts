import { z } from 'zod';
import {
  backoffSection,
  duration,
  INCOMPATIBLE,
  isLoopback,
  MISSING,
  pathSetting,
  secretRef,
} from '../fields.js';

/**
 * `fhir:` the export of committed readings as FHIR R4 transaction Bundles (HL7 Personal Health Device IG),
 * to a server or a folder, with the export policy for continuous streams.
 */

/**
 * A FHIR server's base URL (FHIR R4, section 3.1.0.1.2 "Service Base URL"). https only, since the Bundles
 * hold patient data; plain http only to this machine (a local server or proxy).
 */
const baseUrl = () =>
  z
    .string()
    .superRefine((text, ctx) => {
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not a URL; expected https://<host>/<path>' });
        return;
      }
      const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
      if (url.username || url.password) {
        ctx.addIssue({
          code: 'custom',
          message: 'a user name or password in the URL is a secret written inline; use fhir.token',
          params: { configCode: 'CONFIG_INLINE_SECRET' },
        });
      } else if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(host))) {
        ctx.addIssue({
          code: 'custom',
          message: 'the scheme must be https (http only to this machine: the Bundles hold patient data)',
        });
      } else if (url.search || url.hash) {
        ctx.addIssue({ code: 'custom', message: 'a base URL has no query or fragment' });
      }
    })
    .describe('the FHIR server base URL, https://<host>/<path>');

/**
 * An absolute URI, as FHIR R4's Identifier.system is (a URL, or urn:oid: / urn:uuid: per RFC 3001 and
 * RFC 4122).
 */
const systemUri = () =>
  z
    .string()
    .refine((text) => /^(https?:\/\/[^\s]+|urn:oid:[0-2](\.\d+)+|urn:uuid:[0-9a-f-]{36})$/.test(text))
    .describe(
      'an absolute URI naming the MRN system: https://<clinic>/mrn, urn:oid:<oid> or urn:uuid:<uuid>',
    );

/**
 * The URI under which the exporter names its own identifier and tag systems (`<base>/gateway-id`,
 * `<base>/measurement-id`, ...; docs/fhir.md): an http(s) URL the clinic owns, so the names are its own.
 */
const systemBase = () =>
  z
    .string()
    .refine((text) => /^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(text))
    .describe('an https URL the clinic owns, e.g. https://<clinic>/fhir/rpm');

const targetSection = z
  .strictObject({
    baseUrl: baseUrl().optional(),
    folder: pathSetting('the folder the Bundles are written to').optional(),
  })
  .superRefine((t, ctx) => {
    if ((t.baseUrl === undefined) === (t.folder === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: 'give exactly one of baseUrl (a FHIR server) or folder (Bundles written as files)',
        params: t.baseUrl === undefined ? MISSING : INCOMPATIBLE,
      });
    }
  });

export type FhirTarget = { readonly baseUrl: string } | { readonly folder: string };

export const fhirSection = z
  .strictObject({
    enabled: z.boolean().describe('true or false: export committed readings as FHIR R4 Bundles'),
    target: targetSection.optional(),
    token: secretRef('the bearer token of the FHIR server', ['file', 'credential']).optional(),
    ca: pathSetting(
      "the CA certificate (PEM) that signed the FHIR server's certificate, when it is not in the system's store",
    ).optional(),
    patientIdentifierSystem: systemUri().optional(),
    systemBase: systemBase().optional(),
    policy: z.strictObject({
      // A 1 Hz stream is 86,400 readings a day per code; one per interval is what a record wants.
      continuousInterval: duration({ min: 1_000, max: 86_400_000, minText: '1s', maxText: '1d' }),
    }),
    backoff: backoffSection,
  })
  .superRefine((f, ctx) => {
    if (f.enabled && f.target === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['target'],
        message: 'fhir.enabled is true: set fhir.target.baseUrl or fhir.target.folder',
        params: MISSING,
      });
    }
    if (f.enabled && f.patientIdentifierSystem === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['patientIdentifierSystem'],
        message:
          "fhir.enabled is true: set the URI of the clinic's MRN system, which every Patient reference carries",
        params: MISSING,
      });
    }
    if (f.enabled && f.systemBase === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['systemBase'],
        message:
          'fhir.enabled is true: set a URL the clinic owns, under which the exported resources name their identifiers (<base>/measurement-id, ...)',
        params: MISSING,
      });
    }
    for (const [key, value] of [
      ['token', f.token],
      ['ca', f.ca],
    ] as const) {
      if (value !== undefined && f.target?.folder !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `a ${key === 'ca' ? 'CA' : key} is for a FHIR server; the target is a folder`,
          params: INCOMPATIBLE,
        });
      }
    }
  })
  .transform((f) => ({
    enabled: f.enabled,
    target: (f.target?.baseUrl !== undefined
      ? { baseUrl: f.target.baseUrl.replace(/\/+$/, '') }
      : f.target?.folder !== undefined
        ? { folder: f.target.folder }
        : undefined) as FhirTarget | undefined,
    ...(f.token === undefined ? {} : { token: f.token }),
    ...(f.ca === undefined ? {} : { ca: f.ca }),
    ...(f.patientIdentifierSystem === undefined
      ? {}
      : { patientIdentifierSystem: f.patientIdentifierSystem }),
    ...(f.systemBase === undefined ? {} : { systemBase: f.systemBase.replace(/\/+$/, '') }),
    policy: { continuousIntervalMs: f.policy.continuousInterval },
    backoff: f.backoff,
  }));
