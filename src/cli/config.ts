import { findPathProblems } from '../config/check-paths.js';
import { type ConfigIssue, describeSource, formatIssue } from '../config/errors.js';
import { type ConfigReport, inspectConfig } from '../config/load.js';
import { CONFIG_OPTIONS, CONFIG_OPTIONS_HELP, configFlags } from '../config/options.js';
import { printJson, printYaml } from '../config/print.js';
import type { GatewayConfig, SecretRef } from '../config/schema.js';
import { UsageError } from '../errors.js';
import { parseCommandArgs } from './args.js';
import type { CommandIo } from './io.js';

export const CONFIG_HELP = `Usage: rpm-gateway config <check|print> [options]

  check   validate the configuration (every layer, and that the paths it names exist): prints "ok" and a
          summary, or every problem with where it is (exit status 1)
  print   the effective configuration as YAML, each value with where it came from (# default, # file:12,
          # env RPM_LOG_LEVEL, # flag --data-dir); secrets appear as their reference only

Layers, lowest first: defaults < the file < RPM_* environment variables < flags (docs/configuration.md).

Options:
${CONFIG_OPTIONS_HELP}
  --json                 machine-readable output
  -h, --help             show this help`;

export async function configCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: [...argv],
    allowPositionals: true,
    options: { ...CONFIG_OPTIONS, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.stdout.write(`${CONFIG_HELP}\n`);
    return 0;
  }
  const [action, ...extra] = positionals;
  if (!action || extra.length > 0) throw new UsageError('name one action: check or print');
  if (action !== 'check' && action !== 'print') throw new UsageError(`unknown config action "${action}"`);

  const report = inspectConfig({
    env: io.env,
    ...(values.config === undefined ? {} : { configFile: values.config }),
    flags: configFlags(values),
  });
  const issues: ConfigIssue[] = [...report.issues];
  if (action === 'check' && report.config) {
    issues.push(...findPathProblems({ ...report, config: report.config }, { creating: false }));
  }
  for (const warning of report.warnings) io.stderr.write(`rpm-gateway config: warning: ${warning}\n`);

  if (action === 'print') {
    io.stdout.write(values.json ? `${printJson(report)}\n` : printYaml(report));
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
    io.stderr.write(`rpm-gateway config: ${count}:\n${issues.map((i) => `  ${formatIssue(i)}\n`).join('')}`);
  }
  return issues.length === 0 ? 0 : 1;
}

function summary(config: GatewayConfig, report: ConfigReport): string {
  const brokers = config.uplink.brokers;
  return [
    `gateway ${config.gateway.id}`,
    `${brokers.length} broker${brokers.length === 1 ? '' : 's'} (first ${(brokers[0] as { url: string }).url})`,
    `data ${config.paths.dataDir}`,
    `store key from ${secretText(config.store.key)}`,
    report.file ? `file ${report.file}` : 'no file',
  ].join(', ');
}

function secretText(ref: SecretRef): string {
  switch (ref.source) {
    case 'file':
      return `key file ${ref.path}`;
    case 'credential':
      return `systemd credential ${ref.name}`;
    case 'env':
      return `environment variable ${ref.variable}`;
  }
}

function jsonIssue(issue: ConfigIssue) {
  return {
    code: issue.code,
    path: issue.path,
    message: issue.message,
    ...(issue.source ? { source: describeSource(issue.source) } : {}),
  };
}
