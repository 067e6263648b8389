import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { z } from 'zod';
import { DEFAULTS, environmentDefaults, type LayerEntry, type RawTree, type RawValue } from './defaults.js';
import { type ConfigIssue, type ConfigSource, describeSource, invalidConfig } from './errors.js';
import { translateIssues } from './issues.js';
import { envLayer, type FileLayer, type FlagSetting, fileLayer, flagLayer, isTree } from './layers.js';
import { statePaths } from './paths.js';
import { configSchema, type GatewayConfig, isLoopback } from './schema.js';
import { pathKey, settingsOf } from './walk.js';

/** Where the service's configuration lives when neither --config nor $RPM_CONFIG names one. */
export const DEFAULT_CONFIG_FILE = '/etc/rpm-gateway/gateway.yaml';

export interface LoadOptions {
  /** The environment (RPM_* settings, $RPM_CONFIG, and the systemd and XDG folders defaults come from). */
  readonly env?: NodeJS.ProcessEnv;
  /** Relative paths in variables and flags are taken from here. */
  readonly cwd?: string;
  /** --config: the file to read; it must exist. */
  readonly configFile?: string;
  /** The flags, in the order given. */
  readonly flags?: readonly FlagSetting[];
  /** Read when it exists and no file is named (tests point it elsewhere). */
  readonly defaultConfigFile?: string;
}

/** The effective configuration and, for every value, where it came from. */
export interface ConfigView {
  /** The values as written (durations as "60s"), defaults filled in: what `config print` shows. */
  readonly raw: RawTree;
  /** The file read, if any. */
  readonly file: string | undefined;
  /** Where the value at a path came from (a file position where the file has one); undefined if unset. */
  sourceOf(path: readonly (string | number)[]): ConfigSource | undefined;
}

export interface LoadedConfig extends ConfigView {
  readonly config: GatewayConfig;
  /** Things that are allowed but should be said out loud (log redaction off, a key in a variable). */
  readonly warnings: readonly string[];
}

export interface ConfigReport extends ConfigView {
  /** Undefined when there are issues. */
  readonly config: GatewayConfig | undefined;
  readonly issues: readonly ConfigIssue[];
  readonly warnings: readonly string[];
}

/** Loads and checks the configuration; throws CONFIG_INVALID listing every problem. */
export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const report = inspectConfig(options);
  if (report.config === undefined) throw invalidConfig(report.issues);
  return { ...report, config: report.config };
}

/**
 * Layers defaults < file < RPM_* environment < flags, then validates the result with the one schema. Never
 * throws for a problem in the configuration: every problem of every layer is in `issues`, in file order
 * first.
 */
export function inspectConfig(options: LoadOptions = {}): ConfigReport {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const root: z.ZodType = configSchema;
  const settings = settingsOf(root);
  const tree = new Tree();

  for (const [path, value] of leaves(DEFAULTS)) tree.set(path, value, { kind: 'default' });
  for (const entry of environmentDefaults(env)) tree.set(entry.path, entry.value, entry.source);

  const issues: ConfigIssue[] = [];
  let file: FileLayer | undefined;
  const named: { path: string; by: ConfigSource } | undefined = options.configFile
    ? { path: resolve(cwd, options.configFile), by: { kind: 'flag', flag: '--config' } }
    : env.RPM_CONFIG
      ? { path: resolve(cwd, env.RPM_CONFIG), by: { kind: 'env', variable: 'RPM_CONFIG' } }
      : undefined;
  const defaultFile = options.defaultConfigFile ?? DEFAULT_CONFIG_FILE;
  if (named || existsSync(defaultFile)) {
    file = fileLayer(named?.path ?? defaultFile, named?.by ?? { kind: 'default' }, root);
    apply(tree, file.entries);
    issues.push(...file.issues);
  }
  const fromEnv = envLayer(env, settings, root, cwd);
  apply(tree, fromEnv.entries);
  const fromFlags = flagLayer(options.flags ?? [], settings, root, cwd);
  apply(tree, fromFlags.entries);

  // The store key sits in the data directory unless said otherwise, wherever the data directory ended up.
  const dataDir = tree.get(['paths', 'dataDir']);
  if (tree.get(['store', 'key']) === undefined && typeof dataDir === 'string') {
    tree.set(
      ['store', 'key'],
      { file: statePaths(dataDir).keyFile },
      { kind: 'default', note: 'in paths.dataDir' },
    );
  }

  const sourceOf = (path: readonly (string | number)[], options: { key?: boolean } = {}) => {
    const source = tree.sourceOf(path);
    if (source?.kind !== 'file' || !file) return source;
    const position = file.locate(path, options);
    return position ? { ...source, ...position } : source;
  };

  // A variable named as the store key's holder (store.key.env) is not a misspelt setting.
  const keyVariable = (tree.get(['store', 'key']) as { env?: unknown } | undefined)?.env;
  const envIssues = fromEnv.issues.filter(
    (i) =>
      !(i.code === 'CONFIG_UNKNOWN_KEY' && i.source?.kind === 'env' && i.source.variable === keyVariable),
  );
  // reportInput: the translation says what kind of value was given (never the value itself).
  const parsed = configSchema.safeParse(tree.root, { reportInput: true });
  // A file that is not valid YAML was read as something else than meant: what the schema says about that
  // reading would be noise next to the syntax error, which is the one to fix first.
  const unreadable = issues.some((i) => i.code === 'CONFIG_SYNTAX');
  const schemaIssues =
    parsed.success || unreadable ? [] : translateIssues(parsed.error.issues, root, sourceOf);
  issues.push(...envIssues, ...fromFlags.issues, ...schemaIssues);

  const raw = tree.root;
  const view = { raw, file: file?.file, sourceOf: (path: readonly (string | number)[]) => sourceOf(path) };
  const ordered = sortIssues(issues);
  if (!parsed.success || unreadable || ordered.length > 0) {
    return { ...view, config: undefined, issues: ordered, warnings: warningsFor(raw, view) };
  }
  return { ...view, config: parsed.data, issues: [], warnings: warningsFor(raw, view) };
}

/** Problems in the file in the order of its lines, then the rest in the order found. */
function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const line = (i: ConfigIssue) =>
    i.source?.kind === 'file' && i.source.line !== undefined
      ? i.source.line * 10_000 + (i.source.col ?? 0)
      : 0;
  const inFile = (i: ConfigIssue) => (i.source?.kind === 'file' ? 0 : 1);
  return issues
    .map((issue, index) => ({ issue, index }))
    .sort((a, b) => inFile(a.issue) - inFile(b.issue) || line(a.issue) - line(b.issue) || a.index - b.index)
    .map(({ issue }) => issue);
}

function warningsFor(raw: RawTree, view: ConfigView): string[] {
  const warnings: string[] = [];
  const get = (path: string[]) =>
    path.reduce<RawValue | undefined>((v, k) => (isTree(v) ? v[k] : undefined), raw);
  const from = (path: string[]) => {
    const source = view.sourceOf(path);
    return source ? ` (${describeSource(source)})` : '';
  };
  if (get(['log', 'redact']) === false) {
    warnings.push(
      `log.redact is false${from(['log', 'redact'])}: reading values, Bluetooth addresses, device names and keys will be written to the logs`,
    );
  }
  const key = get(['store', 'key']);
  if (isTree(key) && typeof key.env === 'string') {
    warnings.push(
      `the store key comes from the environment variable ${key.env}${from(['store', 'key'])}: for tests and demos only, since the environment leaks easily (child processes, /proc)`,
    );
  }
  for (const section of ['metrics', 'patientPage']) {
    const host = get([section, 'host']);
    if (get([section, 'enabled']) === true && typeof host === 'string' && !isLoopback(host)) {
      warnings.push(`${section} is served on ${host}${from([section, 'host'])}: reachable from the network`);
    }
  }
  return warnings;
}

function apply(tree: Tree, entries: readonly LayerEntry[]): void {
  for (const entry of entries) tree.set(entry.path, entry.value, entry.source);
}

/** Every leaf of a tree of defaults: objects are walked into, lists and scalars are leaves. */
function leaves(tree: RawTree, prefix: string[] = []): [string[], RawValue][] {
  return Object.entries(tree).flatMap(([key, value]) =>
    isTree(value) && !isSecretRef(value) ? leaves(value, [...prefix, key]) : [[[...prefix, key], value]],
  );
}

const isSecretRef = (value: RawTree) => 'file' in value || 'credential' in value || 'env' in value;

/**
 * The merged tree with the source of every value set. A later layer replaces a value whole (a list of
 * brokers from a variable replaces the file's list; a store key given by --credential replaces the file's
 * { file: ... }); objects are merged key by key.
 */
class Tree {
  readonly root: Record<string, RawValue> = {};
  private readonly sources = new Map<string, ConfigSource>();

  set(path: readonly (string | number)[], value: RawValue, source: ConfigSource): void {
    let node: Record<string, RawValue> = this.root;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      if (!isTree(next)) node[key] = {};
      node = node[key] as Record<string, RawValue>;
    }
    node[path.at(-1) as string] = structuredClone(value);
    const key = pathKey(path);
    for (const existing of [...this.sources.keys()]) {
      if (existing.startsWith(`${key}.`) || existing.startsWith(`${key}[`)) this.sources.delete(existing);
    }
    this.sources.set(key, source);
  }

  get(path: readonly (string | number)[]): RawValue | undefined {
    let node: RawValue | undefined = this.root;
    for (const key of path) {
      if (isTree(node) && typeof key === 'string') node = node[key];
      else if (Array.isArray(node) && typeof key === 'number') node = node[key];
      else return undefined;
    }
    return node;
  }

  /** The source of the value at `path`, or of the nearest enclosing value set as a whole. */
  sourceOf(path: readonly (string | number)[]): ConfigSource | undefined {
    for (let n = path.length; n > 0; n--) {
      const source = this.sources.get(pathKey(path.slice(0, n)));
      if (source) return source;
    }
    return undefined;
  }
}
