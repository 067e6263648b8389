import type { z } from 'zod';
import { type LeafKind, leafKindOf, type SecretWay, secretWaysOf } from './fields.js';

/**
 * Reading the schema itself: which settings exist (for RPM_* variables, --set and "did you mean"), what each
 * looks like (to read a variable's text as a number, a list, ...) and what it allows (for error messages).
 * Zod 4 keeps each schema's definition in `_zod.def`; only the few fields used here are read.
 */
interface Def {
  readonly type: string;
  readonly innerType?: z.ZodType;
  readonly in?: z.ZodType;
  readonly shape?: Readonly<Record<string, z.ZodType>>;
  readonly element?: z.ZodType;
  readonly entries?: Readonly<Record<string, string | number>>;
  readonly values?: readonly unknown[];
}

function def(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

const WRAPPERS = new Set(['optional', 'default', 'nullable', 'readonly', 'nonoptional', 'catch', 'prefault']);

/**
 * The schema under wrappers (optional, a transform's input, ...), stopping at one of the schema's own kinds
 * unless `through` (a list of brokers is a kind of its own for variables, and still a list of objects).
 */
function unwrap(schema: z.ZodType, through = false): z.ZodType {
  let current = schema;
  for (;;) {
    if (!through && leafKindOf(current)) return current;
    const d = def(current);
    if (WRAPPERS.has(d.type) && d.innerType) current = d.innerType;
    else if (d.type === 'pipe' && d.in) current = d.in;
    else return current;
  }
}

/** The text a schema (or one it wraps) was described with: the "allowed values" of an error message. */
export function descriptionOf(schema: z.ZodType): string | undefined {
  let current: z.ZodType | undefined = schema;
  while (current) {
    if (current.description) return current.description;
    const d = def(current);
    current = WRAPPERS.has(d.type) ? d.innerType : d.type === 'pipe' ? d.in : undefined;
  }
  return undefined;
}

/** The keys of an object schema, or undefined when `schema` is not one. */
export function objectKeys(schema: z.ZodType): string[] | undefined {
  const d = def(unwrap(schema));
  return d.type === 'object' && d.shape && !leafKindOf(unwrap(schema)) ? Object.keys(d.shape) : undefined;
}

/** The schema of a key or list item under `schema`. */
export function childSchema(schema: z.ZodType, segment: string | number): z.ZodType | undefined {
  if (leafKindOf(unwrap(schema)) === 'secret') return undefined; // checked whole, by its own transform
  const d = def(unwrap(schema, true));
  if (d.type === 'object' && d.shape && typeof segment === 'string') {
    return Object.hasOwn(d.shape, segment) ? d.shape[segment] : undefined;
  }
  if (d.type === 'array' && d.element && typeof segment === 'number') return d.element;
  return undefined;
}

export function schemaAt(root: z.ZodType, path: readonly (string | number)[]): z.ZodType | undefined {
  let current: z.ZodType | undefined = root;
  for (const segment of path) {
    if (!current) return undefined;
    current = childSchema(current, segment);
  }
  return current;
}

/** How a setting's text (from a variable or a flag) is read. */
export type Shape =
  | { readonly type: 'text' | 'number' | 'boolean' | 'list' | 'structured' }
  | { readonly type: 'choice'; readonly choices: readonly (string | number)[] }
  | { readonly type: LeafKind };

export function shapeOf(schema: z.ZodType): Shape {
  const inner = unwrap(schema);
  const leafKind = leafKindOf(inner);
  if (leafKind) return { type: leafKind };
  const d = def(inner);
  switch (d.type) {
    case 'string':
      return { type: 'text' };
    case 'number':
      return { type: 'number' };
    case 'boolean':
      return { type: 'boolean' };
    case 'enum':
      return { type: 'choice', choices: Object.values(d.entries ?? {}) };
    case 'literal':
      return { type: 'choice', choices: (d.values ?? []) as (string | number)[] };
    case 'array': {
      const element = d.element ? shapeOf(d.element).type : 'structured';
      return { type: element === 'text' || element === 'path' ? 'list' : 'structured' };
    }
    default:
      return { type: 'structured' };
  }
}

/** One key that a variable or --set can give. */
export interface Setting {
  /** Where the value goes in the tree (for a secret: the secret's key, e.g. store.key). */
  readonly path: readonly string[];
  /** The name used in --set and in messages: store.key.file, log.level. */
  readonly dotted: string;
  /** The variable: RPM_STORE_KEY_FILE, RPM_LOG_LEVEL (the hub's); RPM_CLINIC_LOG_LEVEL (the clinic's). */
  readonly env: string;
  readonly shape: Shape;
  /** For a secret: which way of naming it this setting is. */
  readonly secretWay?: SecretWay;
}

const upperSnake = (name: string) => name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

/** The variable of a setting: the configuration's prefix (RPM_ for the hub) and the key in UPPER_SNAKE. */
export function envName(path: readonly string[], prefix = 'RPM_'): string {
  return `${prefix}${path.map(upperSnake).join('_')}`;
}

/** Every setting of the schema, in the schema's order; `prefix` starts their variables' names. */
export function settingsOf(root: z.ZodType, prefix = 'RPM_'): Setting[] {
  const out: Setting[] = [];
  const visit = (schema: z.ZodType, path: string[]) => {
    const keys = objectKeys(schema);
    if (keys) {
      for (const key of keys) visit(childSchema(schema, key) as z.ZodType, [...path, key]);
      return;
    }
    const ways = secretWaysOf(unwrap(schema));
    if (ways) {
      for (const way of ways) {
        out.push({
          path,
          dotted: [...path, way].join('.'),
          env: envName([...path, way], prefix),
          shape: { type: 'secret' },
          secretWay: way,
        });
      }
      return;
    }
    out.push({ path, dotted: path.join('.'), env: envName(path, prefix), shape: shapeOf(schema) });
  };
  visit(root, []);
  return out;
}

/** alerts.rules[0].code */
export const pathKey = (path: readonly (string | number)[]): string =>
  path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
