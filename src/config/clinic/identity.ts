import { z } from 'zod';
import { ID_PATTERN } from '../../pki/identity.js';
import { pathSetting } from '../fields.js';

/** `clinic:` the clinic's own name (its certificate's) and the time zone its device times are read in. */

/**
 * An IANA time zone name (tz database: "Area/Location", or UTC), as ECMA-402's Intl.DateTimeFormat
 * accepts it. Offsets ("+02:00") are refused: a clinic's wall clock follows daylight saving time, an
 * offset does not.
 */
export const timeZone = () =>
  z
    .string()
    .superRefine((name, ctx) => {
      if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(name) || !isTimeZone(name)) {
        ctx.addIssue({
          code: 'custom',
          message: 'not a time zone this machine knows; expected an IANA name such as Europe/Berlin or UTC',
        });
      }
    })
    .describe('an IANA time zone name, e.g. Europe/Berlin, America/New_York, UTC');

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

export const clinicSection = z.strictObject({
  name: z
    .string()
    .regex(ID_PATTERN)
    .describe(
      "the clinic's name in its certificate (urn:rpm-gateway:clinic:<name>): 3 to 63 lower-case letters, digits or '-', starting with a letter or digit",
    ),
  timeZone: timeZone(),
});

export const pathsSection = z.strictObject({
  dataDir: pathSetting('the data directory (the clinic database, the broker queues)'),
});

/** `pki:` what the clinic checks the hubs' certificates and signatures against. */
export const pkiSection = z.strictObject({
  ca: pathSetting('the clinic CA certificate (PEM) that issued the gateways and this clinic'),
  crl: pathSetting('the certificate revocation list (PEM), reloaded when it changes').optional(),
  gatewayCerts: pathSetting("the folder of issued gateway certificates (PEM), the signers' inventory"),
});
