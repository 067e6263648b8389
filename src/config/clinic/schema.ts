import { z } from 'zod';
import { clinicClientId } from '../../broker/acl.js';
import { alertClientId, INTAKE_CLIENT_ID_SUFFIX } from '../../clinic/service/intake-lanes.js';
import { logSection } from '../fields.js';
import { brokerSection, clinicClientIdProblem, MAX_PORTABLE_CLIENT_ID } from './broker.js';
import { dashboardSection } from './dashboard.js';
import { databaseSection } from './database.js';
import { fhirSection } from './fhir.js';
import { clinicSection, pathsSection, pkiSection } from './identity.js';
import { intakeSection } from './intake.js';

/**
 * The one schema of the clinic's configuration (config/clinic.example.yaml shows every key), read by
 * `rpm-gateway broker`, `rpm-gateway clinic intake` and `rpm-gateway clinic config`. Written like the hub's
 * (src/config/schema.ts): lowerCamelCase keys, durations and sizes with their unit; the parsed
 * configuration holds milliseconds under names ending in `Ms` and bytes under names ending in `Bytes`.
 * Defaults are the lowest layer (src/config/clinic/defaults.ts), not in the schema.
 *
 * `broker`, `intake` and `dashboard` are optional: a machine may run any of them. The commands that need one say so
 * (requireSection in src/config/clinic/load.ts).
 */
export const clinicConfigSchema = z
  .strictObject({
    clinic: clinicSection,
    paths: pathsSection,
    pki: pkiSection,
    broker: brokerSection.optional(),
    intake: intakeSection.optional(),
    database: databaseSection,
    fhir: fhirSection,
    dashboard: dashboardSection.optional(),
    log: logSection,
  })
  // Client ids against the clinic's name (the broker's rule, src/broker/acl.ts): each checked whenever the
  // sections it reads are valid, so a mistake elsewhere does not hide it.
  .check(
    z.superRefine(
      (config, ctx) => {
        config.broker?.durableSubscribers.forEach((subscriber, i) => {
          const problem = clinicClientIdProblem(config.clinic.name, subscriber.clientId);
          if (problem) {
            ctx.addIssue({
              code: 'custom',
              path: ['broker', 'durableSubscribers', i, 'clientId'],
              message: problem,
            });
          }
        });
      },
      { when: validIn('clinic', 'broker') },
    ),
    z.superRefine(
      (config, ctx) => {
        const problem = config.intake && clinicClientIdProblem(config.clinic.name, config.intake.clientId);
        if (problem) {
          const tooLong = (config.intake?.clientId.length ?? 0) > MAX_PORTABLE_CLIENT_ID;
          ctx.addIssue({
            code: 'custom',
            path: ['intake', 'clientId'],
            message: tooLong
              ? `${problem}; set a shorter intake.clientId, e.g. ${shortIntakeId(config.clinic.name)}`
              : problem,
          });
        }
        // The alert lane connects as <clientId>-a (src/clinic/service/intake-lanes.ts): it must pass too.
        const alert = config.intake && alertClientId(config.intake.clientId);
        const alertProblem = !problem && alert && clinicClientIdProblem(config.clinic.name, alert);
        if (alertProblem) {
          ctx.addIssue({
            code: 'custom',
            path: ['intake', 'clientId'],
            message: `alerts connect on their own as ${alert} (intake.clientId with "-a"), which the broker refuses: ${alertProblem}; set a shorter intake.clientId, e.g. ${shortIntakeId(config.clinic.name)}`,
          });
        }
      },
      { when: validIn('clinic', 'intake') },
    ),
    z.superRefine(
      (config, ctx) => {
        const commands = config.dashboard?.hubCommands;
        if (commands === undefined) return;
        const problem = clinicClientIdProblem(config.clinic.name, commands.clientId);
        if (problem) {
          ctx.addIssue({ code: 'custom', path: ['dashboard', 'hubCommands', 'clientId'], message: problem });
        }
        // The intake's sessions are durable: a second connection under one of their ids would take it over.
        const intakeId = config.intake?.clientId;
        if (intakeId !== undefined && [intakeId, alertClientId(intakeId)].includes(commands.clientId)) {
          ctx.addIssue({
            code: 'custom',
            path: ['dashboard', 'hubCommands', 'clientId'],
            message: `${commands.clientId} is the intake's; the broker would hand the intake's session to the dashboard. Leave it out for the default clinic-<name>-cmd`,
          });
        }
      },
      { when: validIn('clinic', 'dashboard', 'intake') },
    ),
  );

/**
 * A short intake id to suggest: the default (clinic-<name>-in) when it fits with its alert id, else the shortest
 * the broker's rule allows with one, clinic-<name>-1 (too long only for a clinic name no id can carry).
 */
function shortIntakeId(clinicName: string): string {
  const standard = clinicClientId(clinicName, INTAKE_CLIENT_ID_SUFFIX);
  return alertClientId(standard).length <= MAX_PORTABLE_CLIENT_ID
    ? standard
    : clinicClientId(clinicName, '1');
}

/** A check's condition: no problem so far in these sections. */
function validIn(...sections: string[]) {
  return (payload: { readonly issues: readonly { readonly path?: readonly PropertyKey[] }[] }) =>
    payload.issues.every((issue) => !sections.includes(String(issue.path?.[0])));
}

/** The parsed clinic configuration, as the broker, the intake and the FHIR export read it. */
export type ClinicConfig = z.output<typeof clinicConfigSchema>;
export type ClinicBrokerSettings = NonNullable<ClinicConfig['broker']>;
export type ClinicIntakeSettings = NonNullable<ClinicConfig['intake']>;
export type ClinicDatabaseSettings = ClinicConfig['database'];
export type ClinicFhirSettings = ClinicConfig['fhir'];
export type ClinicDashboardSettings = NonNullable<ClinicConfig['dashboard']>;
