import { GatewayError } from '../errors.js';

/** Stable codes for the gateway's configuration and state folder (docs/errors.md, "Configuration"). */
export type ConfigErrorCode =
  /** The data directory is a file, or a part of its path is. */
  | 'CONFIG_NOT_A_DIRECTORY'
  /** The data directory (or another configured path) cannot be created or entered: no permission, read-only. */
  | 'CONFIG_NO_ACCESS'
  /** The configuration has problems; each is a ConfigIssue with its own code (below), all listed at once. */
  | 'CONFIG_INVALID'
  /** The configuration file is not valid YAML (or a key appears twice). */
  | 'CONFIG_SYNTAX'
  /** A configuration file named by --config or $RPM_CONFIG does not exist or cannot be read. */
  | 'CONFIG_FILE_MISSING'
  /** A key (in the file, an RPM_* variable or --set) that the schema does not have: usually a typo. */
  | 'CONFIG_UNKNOWN_KEY'
  /** A required setting has no value in any layer. */
  | 'CONFIG_MISSING_KEY'
  /** A value of the wrong type or outside what the setting allows. */
  | 'CONFIG_BAD_VALUE'
  /** A key, certificate or other secret written inline where a path or a credential name belongs. */
  | 'CONFIG_INLINE_SECRET'
  /** Two settings of one layer give one key different values (e.g. --key-file and --credential). */
  | 'CONFIG_CONFLICT'
  /** Two settings that cannot go together (an MQTT 5 shared subscription with MQTT 3.1.1). */
  | 'CONFIG_INCOMPATIBLE'
  /** A path the configuration names does not exist (and is not one that `init` is about to create). */
  | 'CONFIG_PATH_MISSING'
  /** A path the configuration names as a file is something else (a directory, a device). */
  | 'CONFIG_NOT_A_FILE';

/** Where a value came from: the layer, and within it the place a person can go and fix. */
export type ConfigSource =
  | { readonly kind: 'default'; readonly note?: string }
  | { readonly kind: 'file'; readonly file: string; readonly line?: number; readonly col?: number }
  | { readonly kind: 'env'; readonly variable: string }
  | { readonly kind: 'flag'; readonly flag: string };

/**
 * One problem in the configuration. `path` is dotted with list indices (`alerts.rules[0].code`); empty for a
 * problem with a whole file.
 */
export interface ConfigIssue {
  readonly code: Exclude<ConfigErrorCode, 'CONFIG_INVALID'>;
  readonly path: string;
  readonly message: string;
  /** Absent where no layer gave a value (a required key nobody set). */
  readonly source?: ConfigSource;
}

export class ConfigError extends GatewayError {
  declare readonly code: ConfigErrorCode;
  /** Every problem found, for CONFIG_INVALID; empty for the others. */
  readonly issues: readonly ConfigIssue[];

  constructor(
    code: ConfigErrorCode,
    message: string,
    options?: { cause?: unknown; issues?: readonly ConfigIssue[] },
  ) {
    super(code, message, options);
    this.issues = options?.issues ?? [];
  }
}

/** "env RPM_LOG_LEVEL", "flag --data-dir", "/etc/rpm-gateway/gateway.yaml:12:3", "default". */
export function describeSource(source: ConfigSource): string {
  switch (source.kind) {
    case 'default':
      return source.note ? `default (${source.note})` : 'default';
    case 'file':
      return source.line === undefined ? source.file : `${source.file}:${source.line}:${source.col ?? 1}`;
    case 'env':
      return `env ${source.variable}`;
    case 'flag':
      return `flag ${source.flag}`;
  }
}

/** One line per issue: where, which key, what is wrong and what is allowed, and the code. */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.source ? `${describeSource(issue.source)}: ` : '';
  return `${where}${issue.path ? `${issue.path}: ` : ''}${issue.message} [${issue.code}]`;
}

/** The error that carries every issue at once; its message lists them, one per line. */
export function invalidConfig(issues: readonly ConfigIssue[]): ConfigError {
  const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
  return new ConfigError(
    'CONFIG_INVALID',
    `the configuration has ${count}:\n${issues.map((i) => `  ${formatIssue(i)}`).join('\n')}`,
    { issues },
  );
}
