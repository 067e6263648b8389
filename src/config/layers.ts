import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isMap, isNode, isScalar, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import type { LayerEntry, RawTree, RawValue } from './defaults.js';
import type { ConfigIssue, ConfigSource } from './errors.js';
import { looksLikeSecret } from './fields.js';
import { closest, didYouMean } from './suggest.js';
import { childSchema, envName, objectKeys, type Setting, shapeOf } from './walk.js';

/**
 * The layers above the defaults: the YAML file, the environment (RPM_*), the command line's flags. Each turns
 * what it was given into entries (a path in the tree, the value as written, where it came from) and issues;
 * nothing here stops at the first problem, so `config check` can list them all.
 */
export interface Layer {
  readonly entries: readonly LayerEntry[];
  readonly issues: readonly ConfigIssue[];
}

export interface Position {
  readonly line: number;
  readonly col: number;
}

export interface FileLayer extends Layer {
  readonly file: string;
  /** Where in the file the value at `path` is written (or, with `key`, its key), when it is there. */
  locate(path: readonly (string | number)[], options?: { key?: boolean }): Position | undefined;
}

/** Reads, parses and flattens the configuration file. `namedBy` says who asked for it (for a missing file). */
export function fileLayer(
  file: string,
  namedBy: ConfigSource,
  root: z.ZodType,
  sectionsHint = 'gateway:, paths:, uplink:, ...',
): FileLayer {
  const none = { file, entries: [], locate: () => undefined };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EISDIR'
          ? 'is a directory'
          : `cannot be read (${code})`;
    return {
      ...none,
      issues: [
        {
          code: 'CONFIG_FILE_MISSING',
          path: '',
          message: `the configuration file ${file} ${why}`,
          source: namedBy,
        },
      ],
    };
  }
  const lineCounter = new LineCounter();
  // YAML 1.2 core schema (no "yes"/"no" booleans, no sexagesimal numbers); duplicate keys are errors. No
  // warnings on the process's stderr (logLevel): a complex key becomes an unknown key, reported as such.
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true, logLevel: 'error' });
  const at = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, col };
  };
  const issues: ConfigIssue[] = doc.errors.map((error) => {
    const position = error.linePos?.[0] ?? at(error.pos[0]);
    return {
      code: 'CONFIG_SYNTAX',
      path: '',
      message: `not valid YAML: ${(error.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`,
      source: { kind: 'file', file, line: position.line, col: position.col },
    };
  });
  const locate = (path: readonly (string | number)[], options: { key?: boolean } = {}) => {
    if (options.key && path.length > 0) {
      const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
      if (isMap(parent)) {
        const pair = parent.items.find((item) => isScalar(item.key) && item.key.value === path.at(-1));
        if (pair && isNode(pair.key) && pair.key.range) return at(pair.key.range[0]);
      }
    }
    const node = path.length === 0 ? doc.contents : doc.getIn(path, true);
    return isNode(node) && node.range ? at(node.range[0]) : undefined;
  };
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    issues.push({
      code: 'CONFIG_SYNTAX',
      path: '',
      message: `not valid YAML: ${(error as Error).message}`,
      source: { kind: 'file', file },
    });
    return { file, entries: [], issues, locate };
  }
  if (value === null || value === undefined) return { file, entries: [], issues, locate };
  if (!isTree(value)) {
    issues.push({
      code: 'CONFIG_BAD_VALUE',
      path: '',
      message: `the file must be a mapping of sections (${sectionsHint})`,
      source: { kind: 'file', file, ...locate([]) },
    });
    return { file, entries: [], issues, locate };
  }
  const entries: LayerEntry[] = [];
  const base = dirname(resolve(file));
  const visit = (schema: z.ZodType | undefined, tree: RawTree, path: (string | number)[]) => {
    for (const [key, child] of Object.entries(tree)) {
      const childPath = [...path, key];
      const childSchemaNode = schema ? childSchema(schema, key) : undefined;
      if (childSchemaNode && objectKeys(childSchemaNode) && isTree(child)) {
        visit(childSchemaNode, child, childPath);
      } else {
        entries.push({
          path: childPath,
          value: childSchemaNode ? resolvePaths(childSchemaNode, child, base) : child,
          source: { kind: 'file', file, ...locate(childPath) },
        });
      }
    }
  };
  visit(root, value, []);
  return { file, entries, issues, locate };
}

export function isTree(value: unknown): value is RawTree {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Relative paths are taken relative to where they were written: the configuration file's folder for the
 * file (as nginx and systemd's credential paths do not, but as a config kept next to its certificates
 * expects), the working directory for variables and flags.
 */
export function resolvePaths(schema: z.ZodType, value: RawValue, base: string): RawValue {
  // A key pasted where its path belongs stays as written, so the schema recognises and refuses it.
  const abs = (p: RawValue) =>
    typeof p === 'string' && p !== '' && !isAbsolute(p) && !looksLikeSecret(p) ? resolve(base, p) : p;
  const shape = shapeOf(schema);
  if (shape.type === 'path') return abs(value);
  if (shape.type === 'secret' && isTree(value) && typeof value.file === 'string') {
    return { ...value, file: abs(value.file) };
  }
  if (shape.type === 'list' && Array.isArray(value)) {
    const element = childSchema(schema, 0);
    return element && shapeOf(element).type === 'path' ? value.map(abs) : value;
  }
  return value;
}

// --- text from variables and flags ---------------------------------------------------------------------

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const TRUE = new Set(['true', 'yes', 'on', '1']);
const FALSE = new Set(['false', 'no', 'off', '0']);

/**
 * A variable's or flag's text as the value the setting takes: numbers, booleans (true/false, yes/no, on/off,
 * 1/0), comma-separated lists, brokers as a comma-separated list of URLs, and anything structured (a list of
 * alert rules) as YAML or JSON. Text that does not read as the setting's type is passed on unchanged, so the
 * schema reports it with what is allowed.
 */
export function valueFromText(
  setting: Setting,
  schema: z.ZodType,
  text: string,
  cwd: string,
): { value: RawValue } | { problem: string } {
  const list = () =>
    text
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
  const shape = setting.shape;
  switch (shape.type) {
    case 'number':
      return { value: NUMBER.test(text.trim()) ? Number(text) : text };
    case 'boolean': {
      const word = text.trim().toLowerCase();
      return { value: TRUE.has(word) ? true : FALSE.has(word) ? false : text };
    }
    case 'choice':
      return {
        value:
          shape.choices.every((c) => typeof c === 'number') && NUMBER.test(text.trim()) ? Number(text) : text,
      };
    case 'secret':
      return { value: resolvePaths(schema, { [setting.secretWay as string]: text }, cwd) };
    case 'list':
      return { value: resolvePaths(schema, list(), cwd) };
    case 'brokers':
      return { value: list().map((url) => ({ url })) };
    case 'structured': {
      const doc = parseDocument(text, { logLevel: 'error' });
      if (doc.errors.length > 0) return { problem: 'not a YAML or JSON value (write a list as [ ... ])' };
      return { value: doc.toJS() as RawValue };
    }
    default:
      return { value: resolvePaths(schema, text, cwd) };
  }
}

interface Given {
  readonly setting: Setting;
  readonly text: string;
  readonly source: ConfigSource;
}

/** Turns given texts into entries; two that set one key to different values are a conflict, not a race. */
function entriesFrom(given: readonly Given[], root: z.ZodType, cwd: string): Layer {
  const entries: LayerEntry[] = [];
  const issues: ConfigIssue[] = [];
  const byKey = new Map<string, Given[]>();
  for (const g of given) {
    const key = g.setting.path.join('.');
    byKey.set(key, [...(byKey.get(key) ?? []), g]);
  }
  for (const [key, group] of byKey) {
    const distinct = new Set(group.map((g) => `${g.setting.dotted}=${g.text}`));
    if (distinct.size > 1) {
      const names = group.map(describeGiven).join(' and ');
      issues.push({
        code: 'CONFIG_CONFLICT',
        path: key,
        message: `set by both ${names} with different values; keep one`,
        source: (group[0] as Given).source,
      });
      continue;
    }
    const g = group[0] as Given;
    const schema = schemaOfPath(root, g.setting.path);
    const read = valueFromText(g.setting, schema, g.text, cwd);
    if ('problem' in read) {
      issues.push({
        code: 'CONFIG_BAD_VALUE',
        path: g.setting.dotted,
        message: read.problem,
        source: g.source,
      });
    } else {
      entries.push({ path: g.setting.path, value: read.value, source: g.source });
    }
  }
  return { entries, issues };
}

function schemaOfPath(root: z.ZodType, path: readonly string[]): z.ZodType {
  let schema = root;
  for (const key of path) schema = childSchema(schema, key) as z.ZodType;
  return schema;
}

function describeGiven(g: Given): string {
  const source = g.source;
  if (source.kind === 'env') return source.variable;
  if (source.kind === 'flag') return source.flag === '--set' ? `--set ${g.setting.dotted}` : source.flag;
  return source.kind;
}

/**
 * Which variables a configuration reads. Every variable starting with `prefix` that is a setting is read.
 * `reserved` variables start with the prefix but are not settings (the file's location, a debug switch).
 * `ignored` prefixes belong to another configuration (the hub leaves the clinic's RPM_CLINIC_* alone, so a
 * machine running both never mixes them). A variable that is none of these is reported as a likely typo when
 * it is one slip away from a setting's name or, with `ownsPrefix`, whenever it carries the prefix; otherwise
 * only when it lies under a section's name (RPM_LOG_..., RPM_UPLINK_...), since RPM_ variables outside them
 * may belong to someone else (rpmbuild sets RPM_BUILD_ROOT, RPM_ARCH, ...).
 */
export interface VariableRules {
  readonly prefix: string;
  readonly reserved: Readonly<Record<string, string>>;
  /** Other names of settings, by dotted key. */
  readonly aliases: Readonly<Record<string, string>>;
  readonly ignored?: readonly string[];
  readonly ownsPrefix?: boolean;
  /** Where the variables are documented, for the message about an unknown one. */
  readonly docs?: string;
}

/**
 * Variables that start with RPM_ but are not settings of the hub: the file's location and the debug switch.
 */
export const RESERVED_VARIABLES: Readonly<Record<string, string>> = {
  RPM_CONFIG: 'the configuration file',
  RPM_GATEWAY_DEBUG: 'print stack traces of internal errors',
};

/** Other names of settings: the shorter RPM_DATA_DIR, and RPM_GATEWAY_DATA_DIR that the commands always read. */
export const VARIABLE_ALIASES: Readonly<Record<string, string>> = {
  RPM_DATA_DIR: 'paths.dataDir',
  RPM_GATEWAY_DATA_DIR: 'paths.dataDir',
};

/** The hub's variables: RPM_*, but not the clinic's RPM_CLINIC_* (src/config/clinic/definition.ts). */
export const GATEWAY_VARIABLES: VariableRules = {
  prefix: 'RPM_',
  reserved: RESERVED_VARIABLES,
  aliases: VARIABLE_ALIASES,
  ignored: ['RPM_CLINIC_'],
};

export function envLayer(
  env: NodeJS.ProcessEnv,
  settings: readonly Setting[],
  root: z.ZodType,
  cwd: string,
  rules: VariableRules = GATEWAY_VARIABLES,
): Layer {
  const byName = new Map(settings.map((s) => [s.env, s]));
  const byDotted = new Map(settings.map((s) => [s.dotted, s]));
  const sections = new Set(settings.map((s) => `${envName(s.path.slice(0, 1), rules.prefix)}_`));
  const given: Given[] = [];
  const issues: ConfigIssue[] = [];
  for (const [name, text] of Object.entries(env)) {
    if (!name.startsWith(rules.prefix) || text === undefined || text === '') continue;
    if (Object.hasOwn(rules.reserved, name)) continue;
    if (rules.ignored?.some((prefix) => name.startsWith(prefix))) continue;
    const setting = Object.hasOwn(rules.aliases, name)
      ? byDotted.get(rules.aliases[name] as string)
      : byName.get(name);
    if (setting) {
      given.push({ setting, text, source: { kind: 'env', variable: name } });
      continue;
    }
    const names = [...byName.keys(), ...Object.keys(rules.aliases)];
    const guess = closest(name, names);
    if (guess !== undefined || rules.ownsPrefix || [...sections].some((prefix) => name.startsWith(prefix))) {
      issues.push({
        code: 'CONFIG_UNKNOWN_KEY',
        path: '',
        message: `${name} is not a setting${guess ? ` (did you mean ${guess}?)` : ''}; see ${rules.docs ?? 'docs/configuration.md'} for the variables`,
        source: { kind: 'env', variable: name },
      });
    }
  }
  const layer = entriesFrom(given, root, cwd);
  return { entries: layer.entries, issues: [...issues, ...layer.issues] };
}

/** One setting from the command line: a named flag (--data-dir) or `--set <key>=<value>`. */
export interface FlagSetting {
  /** As typed, for messages: "--data-dir", "--set". */
  readonly flag: string;
  /** The key it sets; absent for --set, whose text is "<key>=<value>". */
  readonly key?: string;
  readonly text: string;
}

export function flagLayer(
  flags: readonly FlagSetting[],
  settings: readonly Setting[],
  root: z.ZodType,
  cwd: string,
): Layer {
  const byDotted = new Map(settings.map((s) => [s.dotted, s]));
  const given: Given[] = [];
  const issues: ConfigIssue[] = [];
  for (const flag of flags) {
    let key = flag.key;
    let text = flag.text;
    const label = flag.flag;
    if (key === undefined) {
      const equals = flag.text.indexOf('=');
      if (equals <= 0) {
        issues.push({
          code: 'CONFIG_BAD_VALUE',
          path: '',
          message: `${flag.flag} ${flag.text}: expected <key>=<value>, e.g. --set log.level=debug`,
          source: { kind: 'flag', flag: flag.flag },
        });
        continue;
      }
      key = flag.text.slice(0, equals).trim();
      text = flag.text.slice(equals + 1);
    }
    const setting = byDotted.get(key);
    if (!setting) {
      issues.push({
        code: 'CONFIG_UNKNOWN_KEY',
        path: key,
        message: `not a setting${didYouMean(key, byDotted.keys())}; see docs/configuration.md`,
        source: { kind: 'flag', flag: label },
      });
      continue;
    }
    given.push({ setting, text, source: { kind: 'flag', flag: label } });
  }
  const layer = entriesFrom(given, root, cwd);
  return { entries: layer.entries, issues: [...issues, ...layer.issues] };
}
