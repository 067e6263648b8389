import { findClinicPathProblems } from '../config/clinic/check-paths.js';
import { CLINIC_CONFIG, type ClinicConfigReport, inspectClinicConfig } from '../config/clinic/load.js';
import {
  CLINIC_CONFIG_OPTIONS,
  CLINIC_CONFIG_OPTIONS_HELP,
  clinicConfigFlags,
} from '../config/clinic/options.js';
import type { ClinicConfig } from '../config/clinic/schema.js';
import { type ConfigIssue, describeSource, formatIssue } from '../config/errors.js';
import { printJson, printYaml } from '../config/print.js';
import { UsageError } from '../errors.js';
import { parseCommandArgs } from './args.js';
import type { CommandIo } from './io.js';

export const CLINIC_CONFIG_HELP = `Usage: rpm-gateway clinic config <check|print> [options]

  check   validate the clinic configuration (every layer, and that the certificates, keys and folders it
          names exist): prints "ok" and a summary, or every problem with where it is (exit status 1)
  print   the effective configuration as YAML, each value with where it came from (# default, # file:12,
          # env RPM_CLINIC_LOG_LEVEL, # flag --set); secrets appear as their reference only

Layers, lowest first: defaults < the file < RPM_CLINIC_* environment variables < flags
(docs/configuration.md, "The clinic's configuration"; every key in config/clinic.example.yaml).

Options:
${CLINIC_CONFIG_OPTIONS_HELP}
  --json                 machine-readable output
  -h, --help             show this help`;

export async function clinicConfigCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: [...argv],
    allowPositionals: true,
    options: { ...CLINIC_CONFIG_OPTIONS, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.stdout.write(`${CLINIC_CONFIG_HELP}\n`);
    return 0;
  }
  const usage = { help: CLINIC_CONFIG_HELP };
  const [action, ...extra] = positionals;
  if (!action || extra.length > 0) throw new UsageError('name one action: check or print', usage);
  if (action !== 'check' && action !== 'print') {
    throw new UsageError(`unknown clinic config action "${action}"`, usage);
  }

  const report = inspectClinicConfig({
    env: io.env,
    ...(values.config === undefined ? {} : { configFile: values.config }),
    flags: clinicConfigFlags(values),
  });
  const issues: ConfigIssue[] = [...report.issues];
  if (action === 'check' && report.config) {
    issues.push(...findClinicPathProblems({ ...report, config: report.config }));
  }
  const name = 'rpm-gateway clinic config';
  for (const warning of report.warnings) io.stderr.write(`${name}: warning: ${warning}\n`);

  if (action === 'print') {
    io.stdout.write(values.json ? `${printJson(report, CLINIC_CONFIG)}\n` : printYaml(report, CLINIC_CONFIG));
  } else if (values.json) {
    io.stdout.write(
      `${JSON.stringify(
        issues.length === 0 && report.config
          ? { ok: true, summary: summary(report.config, report), warnings: report.warnings }
          : { ok: false, issues: issues.map(jsonIssue), warnings: report.warnings },
      )}\n`,
    );
  } else if (issues.length === 0 && report.config) {
    io.stdout.write(`ok: ${summary(report.config, report)}\n`);
  }
  if (issues.length > 0 && !(action === 'check' && values.json)) {
    const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
    io.stderr.write(`${name}: ${count}:\n${issues.map((i) => `  ${formatIssue(i)}\n`).join('')}`);
  }
  return issues.length === 0 ? 0 : 1;
}

function summary(config: ClinicConfig, report: ClinicConfigReport): string {
  const runs = [
    config.broker ? `broker on ${config.broker.host}:${config.broker.port}` : 'no broker',
    config.intake
      ? `intake as ${config.intake.clientId} (first ${config.intake.brokers[0]?.url})`
      : 'no intake',
  ];
  const database =
    config.database.kind === 'sqlite'
      ? `sqlite ${config.database.sqlite.path}`
      : `postgres ${config.database.postgres.host}/${config.database.postgres.database}`;
  return [
    `clinic ${config.clinic.name} (${config.clinic.timeZone})`,
    ...runs,
    `database ${database}`,
    config.fhir.enabled ? 'FHIR export on' : 'FHIR export off',
    report.file ? `file ${report.file}` : 'no file',
  ].join(', ');
}

function jsonIssue(issue: ConfigIssue) {
  return {
    code: issue.code,
    path: issue.path,
    message: issue.message,
    ...(issue.source ? { source: describeSource(issue.source) } : {}),
  };
}
