import { z } from 'zod';
import { brokerEntry, count, duration, INCOMPATIBLE, kind, pathSetting, secretRef, size } from '../fields.js';

/**
 * `intake:` the receiver as a service (`rpm-gateway clinic intake`): where it subscribes, as whom, and how
 * it commits. Absent on a machine that runs only the broker.
 */

const DAY = 86_400_000;

/**
 * An MQTT 5 shared subscription's ShareName: at least one character, no "/", "+" or "#" (MQTT 5.0 section
 * 4.8.2).
 */
const shareName = () =>
  z
    .string()
    .regex(/^[^/+#\s]{1,64}$/)
    .describe('a shared subscription group name: 1 to 64 characters, no "/", "+", "#" or spaces');

export const intakeSection = z
  .strictObject({
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
      .describe('the MQTT client id: clinic-<clinic.name> or clinic-<clinic.name>-<suffix>'),
    cert: pathSetting("the intake's client certificate (PEM), issued to the clinic"),
    key: secretRef("the intake's private key", ['file', 'credential']),
    ca: pathSetting(
      "the CA certificate (PEM) that signed the broker's certificate, when it is not pki.ca",
    ).optional(),
    protocolVersion: z.literal([4, 5]).describe('the MQTT version: 4 (3.1.1) or 5'),
    sharedGroup: shareName().optional(),
    groupCommit: z.strictObject({
      maxMessages: count(1, 65_535, 'messages committed in one transaction at most'),
      maxDelay: duration({ min: 0, max: 1_000, minText: '0ms', maxText: '1s' }),
    }),
    signerGrace: duration({ min: 0, max: 30 * DAY, minText: '0s', maxText: '30d' }),
    rejected: z.strictObject({
      maxRows: count(1, Number.MAX_SAFE_INTEGER, 'rejected messages kept at most'),
      maxQuarantineBytes: size({ min: 1024 * 1024, minText: '1MiB' }),
    }),
  })
  .superRefine((intake, ctx) => {
    if (intake.sharedGroup !== undefined && intake.protocolVersion !== 5) {
      ctx.addIssue({
        code: 'custom',
        path: ['sharedGroup'],
        message:
          'shared subscriptions ($share/<group>/...) are MQTT 5 (MQTT 5.0 section 4.8.2): set intake.protocolVersion: 5, or remove sharedGroup',
        params: INCOMPATIBLE,
      });
    }
  })
  .transform((i) => ({
    brokers: i.brokers,
    clientId: i.clientId,
    cert: i.cert,
    key: i.key,
    ...(i.ca === undefined ? {} : { ca: i.ca }),
    protocolVersion: i.protocolVersion,
    ...(i.sharedGroup === undefined ? {} : { sharedGroup: i.sharedGroup }),
    groupCommit: { maxMessages: i.groupCommit.maxMessages, maxDelayMs: i.groupCommit.maxDelay },
    signerGraceMs: i.signerGrace,
    rejected: { maxRows: i.rejected.maxRows, maxQuarantineBytes: i.rejected.maxQuarantineBytes },
  }));
