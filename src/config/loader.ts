import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { z } from 'zod';
import type { LayerEntry, RawTree, RawValue } from './defaults.js';
import type { ConfigDefinition } from './definition.js';
import { type ConfigIssue, type ConfigSource, describeSource, invalidConfig } from './errors.js';
import { translateIssues } from './issues.js';
import { envLayer, type FileLayer, type FlagSetting, fileLayer, flagLayer, isTree } from './layers.js';
import { pathKey, settingsOf } from './walk.js';

/**
 * The loader every configuration shares (the hub's, src/config/load.ts; the clinic's,
 * src/config/clinic/load.ts): it layers defaults < file < environment < flags as its definition says, then
 * validates the result with the definition's one schema.
 */

export interface LoadOptions {
  /** The environment (its settings, the file variable, and the systemd and XDG folders defaults come from). */
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

export interface LoadedConfigOf<T> extends ConfigView {
  readonly config: T;
  /** Things that are allowed but should be said out loud (log redaction off, a key in a variable). */
  readonly warnings: readonly string[];
}

export interface ConfigReportOf<T> extends ConfigView {
  /** Undefined when there are issues. */
  readonly config: T | undefined;
  readonly issues: readonly ConfigIssue[];
  readonly warnings: readonly string[];
}

/** Loads and checks a configuration; throws CONFIG_INVALID listing every problem. */
export function loadWith<T>(definition: ConfigDefinition<T>, options: LoadOptions = {}): LoadedConfigOf<T> {
  const report = inspectWith(definition, options);
  if (report.config === undefined) throw invalidConfig(report.issues);
  return { ...report, config: report.config };
}

/**
 * Layers defaults < file < environment < flags, then validates the result with the definition's schema.
 * Never throws for a problem in the configuration: every problem of every layer is in `issues`, in file
 * order first.
 */
export function inspectWith<T>(
  definition: ConfigDefinition<T>,
  options: LoadOptions = {},
): ConfigReportOf<T> {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const root: z.ZodType = definition.schema;
  const prefix = definition.variables.prefix;
  const settings = settingsOf(root, prefix);
  const tree = new Tree();

  for (const [path, value] of leaves(definition.defaults)) tree.set(path, value, { kind: 'default' });
  for (const entry of definition.environmentDefaults(env)) tree.set(entry.path, entry.value, entry.source);

  const issues: ConfigIssue[] = [];
  let file: FileLayer | undefined;
  const variable = definition.fileVariable;
  const named: { path: string; by: ConfigSource } | undefined = options.configFile
    ? { path: resolve(cwd, options.configFile), by: { kind: 'flag', flag: '--config' } }
    : env[variable]
      ? { path: resolve(cwd, env[variable]), by: { kind: 'env', variable } }
      : undefined;
  const defaultFile = options.defaultConfigFile ?? definition.defaultFile;
  if (named || existsSync(defaultFile)) {
    file = fileLayer(
      named?.path ?? defaultFile,
      named?.by ?? { kind: 'default' },
      root,
      definition.sectionsHint,
    );
    apply(tree, file.entries);
    issues.push(...file.issues);
  }
  const fromEnv = envLayer(env, settings, root, cwd, definition.variables);
  apply(tree, fromEnv.entries);
  const fromFlags = flagLayer(options.flags ?? [], settings, root, cwd);
  apply(tree, fromFlags.entries);

  definition.derivedDefaults?.({
    get: (path) => tree.get(path),
    sourceOf: (path) => tree.sourceOf(path),
    setDefault: (path, value, note) => {
      if (tree.get(path) === undefined)
        tree.set(path, value, note ? { kind: 'default', note } : { kind: 'default' });
    },
  });

  const sourceOf = (path: readonly (string | number)[], options: { key?: boolean } = {}) => {
    const source = tree.sourceOf(path);
    if (source?.kind !== 'file' || !file) return source;
    const position = file.locate(path, options);
    return position ? { ...source, ...position } : source;
  };

  // A variable the configuration names as a secret's holder is not a misspelt setting.
  const holders = new Set(definition.namedVariables?.((path) => tree.get(path)) ?? []);
  const envIssues = fromEnv.issues.filter(
    (i) => !(i.code === 'CONFIG_UNKNOWN_KEY' && i.source?.kind === 'env' && holders.has(i.source.variable)),
  );
  // reportInput: the translation says what kind of value was given (never the value itself).
  const parsed = definition.schema.safeParse(tree.root, { reportInput: true });
  // A file that is not valid YAML was read as something else than meant: what the schema says about that
  // reading would be noise next to the syntax error, which is the one to fix first.
  const unreadable = issues.some((i) => i.code === 'CONFIG_SYNTAX');
  const schemaIssues =
    parsed.success || unreadable ? [] : translateIssues(parsed.error.issues, root, sourceOf, prefix);
  issues.push(...envIssues, ...fromFlags.issues, ...schemaIssues);

  const raw = tree.root;
  const view = { raw, file: file?.file, sourceOf: (path: readonly (string | number)[]) => sourceOf(path) };
  const get = (path: readonly (string | number)[]) => tree.get(path);
  const from = (path: readonly string[]) => {
    const source = view.sourceOf(path);
    return source ? ` (${describeSource(source)})` : '';
  };
  const warnings = definition.warnings?.(get, from) ?? [];
  const ordered = sortIssues(issues);
  if (!parsed.success || unreadable || ordered.length > 0) {
    return { ...view, config: undefined, issues: ordered, warnings };
  }
  return { ...view, config: parsed.data, issues: [], warnings };
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

function apply(tree: Tree, entries: readonly LayerEntry[]): void {
  for (const entry of entries) tree.set(entry.path, entry.value, entry.source);
}

/** Every leaf of a tree of defaults: objects are walked into, lists and scalars are leaves. */
export function leaves(tree: RawTree, prefix: string[] = []): [string[], RawValue][] {
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
