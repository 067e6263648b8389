import { Document, isCollection, isNode } from 'yaml';
import type { z } from 'zod';
import type { RawTree, RawValue } from './defaults.js';
import type { ConfigDefinition } from './definition.js';
import { type ConfigSource, describeSource } from './errors.js';
import { isTree } from './layers.js';
import { GATEWAY_CONFIG } from './load.js';
import type { ConfigView } from './loader.js';
import { childSchema, objectKeys, pathKey } from './walk.js';

/**
 * `config print`: the effective configuration as YAML a person could save as a file, each value followed by
 * where it came from (`# default`, `# file:12`, `# env RPM_LOG_LEVEL`, `# flag --data-dir`). Secrets are
 * never in the configuration, so what is printed for one is its reference ({ credential: store-key }).
 */
export function printYaml(view: ConfigView, definition: ConfigDefinition<unknown> = GATEWAY_CONFIG): string {
  const doc = new Document(inSchemaOrder(view.raw, definition.schema));
  for (const [path] of leavesOf(view.raw)) {
    const node = doc.getIn(path, true);
    const source = view.sourceOf(path);
    if (isCollection(node) && node.items.length === 0) node.flow = true; // "[]" on the key's line
    if (isNode(node) && source) node.comment = ` ${comment(source)}`;
  }
  const header = [
    ` ${definition.program}: effective configuration`,
    ` layers: defaults < ${view.file ? `file ${view.file}` : 'no file'} < ${definition.variables.prefix}* environment < flags`,
  ].join('\n');
  doc.commentBefore = header;
  return doc.toString({ lineWidth: 0 });
}

/** `config print --json`: the values, and the source of each by dotted key. */
export function printJson(view: ConfigView, definition: ConfigDefinition<unknown> = GATEWAY_CONFIG): string {
  const sources: Record<string, string> = {};
  for (const [path] of leavesOf(view.raw)) {
    const source = view.sourceOf(path);
    if (source) sources[pathKey(path)] = describeSource(source);
  }
  return JSON.stringify(
    { file: view.file ?? null, config: inSchemaOrder(view.raw, definition.schema), sources },
    null,
    2,
  );
}

function comment(source: ConfigSource): string {
  switch (source.kind) {
    case 'default':
      return source.note ? `default (${source.note})` : 'default';
    case 'file':
      return source.line === undefined ? 'file' : `file:${source.line}`;
    case 'env':
      return `env ${source.variable}`;
    case 'flag':
      return `flag ${source.flag}`;
  }
}

/** Every scalar (and every empty list or mapping) with its path. */
function leavesOf(value: RawValue, path: (string | number)[] = []): [(string | number)[], RawValue][] {
  if (Array.isArray(value)) {
    return value.length === 0 ? [[path, value]] : value.flatMap((item, i) => leavesOf(item, [...path, i]));
  }
  if (isTree(value)) {
    const entries = Object.entries(value);
    return entries.length === 0 ? [[path, value]] : entries.flatMap(([k, v]) => leavesOf(v, [...path, k]));
  }
  return [[path, value]];
}

/** The sections and keys in the schema's order (the order of the example file), unknown keys last. */
function inSchemaOrder(value: RawValue, schema: z.ZodType | undefined): RawValue {
  if (Array.isArray(value)) return value.map((item) => inSchemaOrder(item, schema && childSchema(schema, 0)));
  if (!isTree(value)) return value;
  const keys = (schema && objectKeys(schema)) ?? [];
  const ordered: Record<string, RawValue> = {};
  for (const key of [...keys, ...Object.keys(value)]) {
    if (Object.hasOwn(value, key) && !Object.hasOwn(ordered, key)) {
      ordered[key] = inSchemaOrder(value[key] as RawValue, schema && childSchema(schema, key));
    }
  }
  return ordered as RawTree;
}
