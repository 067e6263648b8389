import type { z } from 'zod';
import type { ConfigIssue, ConfigSource } from './errors.js';
import type { IssueParams } from './fields.js';
import { didYouMean } from './suggest.js';
import { childSchema, descriptionOf, envName, objectKeys, pathKey, schemaAt, shapeOf } from './walk.js';

type SourceOf = (path: readonly (string | number)[], options?: { key?: boolean }) => ConfigSource | undefined;

/**
 * Zod's issues in the configuration's words: the dotted key, what is wrong, what is allowed (the schema's own
 * description of the setting), and where the value came from. Values themselves are not repeated: a wrong
 * value may be a secret pasted into the wrong key.
 */
export function translateIssues(
  issues: readonly z.core.$ZodIssue[],
  root: z.ZodType,
  sourceOf: SourceOf,
  envPrefix = 'RPM_',
): ConfigIssue[] {
  return issues.flatMap((issue) => translate(issue, root, sourceOf, envPrefix));
}

function translate(
  issue: z.core.$ZodIssue,
  root: z.ZodType,
  sourceOf: SourceOf,
  envPrefix: string,
): ConfigIssue[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  const schema = schemaAt(root, path);
  const allowed = schema ? allowedText(schema) : undefined;
  const expected = allowed ? `; expected ${allowed}` : '';
  const at = (code: ConfigIssue['code'], message: string, where = path, key = false): ConfigIssue => {
    const source = sourceOf(where, { key });
    return { code, path: pathKey(where), message, ...(source ? { source } : {}) };
  };
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const known = (schema && objectKeys(schema)) ?? [];
        return at(
          'CONFIG_UNKNOWN_KEY',
          `unknown key${didYouMean(key, known)}; the keys here are ${known.join(', ')}`,
          [...path, key],
          true,
        );
      });
    case 'invalid_type': {
      if (issue.input === undefined) return missing(schema, path, envPrefix);
      const quote =
        issue.expected === 'string' && typeof issue.input === 'number' ? ' (put text in quotes: "0042")' : '';
      return [at('CONFIG_BAD_VALUE', `${kindOf(issue.input)} given${expected}${quote}`)];
    }
    case 'invalid_value':
      return [at('CONFIG_BAD_VALUE', `not one of ${issue.values.map((v) => String(v)).join(', ')}`)];
    case 'too_small':
      return [at('CONFIG_BAD_VALUE', `${tooSmall(issue)}${expected}`)];
    case 'too_big':
      return [
        at(
          'CONFIG_BAD_VALUE',
          `${issue.origin === 'string' ? `longer than ${issue.maximum} characters` : `above ${issue.maximum}`}${expected}`,
        ),
      ];
    case 'custom': {
      const params = issue.params as Partial<IssueParams> | undefined;
      return [
        at(
          params?.configCode ?? 'CONFIG_BAD_VALUE',
          issue.message,
          path,
          params?.configCode === 'CONFIG_UNKNOWN_KEY',
        ),
      ];
    }
    default:
      return [at('CONFIG_BAD_VALUE', allowed ? `expected ${allowed}` : 'not allowed here')];
  }
}

/** A required key nobody set; for a whole section, each required key in it. */
function missing(
  schema: z.ZodType | undefined,
  path: readonly (string | number)[],
  envPrefix: string,
): ConfigIssue[] {
  const keys = schema && objectKeys(schema);
  if (schema && keys) {
    return keys.flatMap((key) => {
      const child = childSchema(schema, key);
      return child && !child.isOptional() ? missing(child, [...path, key], envPrefix) : [];
    });
  }
  const allowed = schema ? allowedText(schema) : undefined;
  const settable = path.every((p) => typeof p === 'string');
  const how = settable
    ? `; set it in the file, as ${envName(path as string[], envPrefix)}, or with --set ${pathKey(path)}=...`
    : '';
  return [
    {
      code: 'CONFIG_MISSING_KEY',
      path: pathKey(path),
      message: `required${allowed ? `: ${allowed}` : ''}${how}`,
    },
  ];
}

function tooSmall(issue: z.core.$ZodIssueTooSmall): string {
  switch (issue.origin) {
    case 'array':
      return `needs at least ${issue.minimum} item${Number(issue.minimum) === 1 ? '' : 's'}`;
    case 'string':
      return 'empty';
    default:
      return `below ${issue.minimum}`;
  }
}

/** What a setting allows: its description, or for a section, its keys. */
function allowedText(schema: z.ZodType): string | undefined {
  const keys = objectKeys(schema);
  if (keys) return `a mapping with the keys ${keys.join(', ')}`;
  const description = descriptionOf(schema);
  if (description) return description;
  const shape = shapeOf(schema);
  return shape.type === 'choice' ? `one of ${shape.choices.join(', ')}` : undefined;
}

function kindOf(value: unknown): string {
  if (value === null) return 'nothing (null)';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return 'text';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'true/false';
    case 'object':
      return 'a mapping';
    default:
      return typeof value;
  }
}
