import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { z } from 'zod';
import { DEFAULTS, type RawTree, type RawValue } from '../../src/config/defaults.js';
import { loadConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { childSchema, objectKeys, settingsOf, shapeOf } from '../../src/config/walk.js';

const root = join(import.meta.dirname, '../..');
const examplePath = join(root, 'config/gateway.example.yaml');
const example = parse(readFileSync(examplePath, 'utf8')) as RawValue;

/** Every key the schema has: sections walked, list items as "[]"; a secret's reference counts as one key. */
function schemaKeys(schema: z.ZodType, prefix = ''): string[] {
  const keys = objectKeys(schema);
  if (keys) {
    return keys.flatMap((key) => {
      const path = prefix ? `${prefix}.${key}` : key;
      return [path, ...schemaKeys(childSchema(schema, key) as z.ZodType, path)];
    });
  }
  if (shapeOf(schema).type === 'secret') return [];
  const item = childSchema(schema, 0);
  return item ? schemaKeys(item, `${prefix}[]`) : [];
}

function documentKeys(value: RawValue | undefined, prefix = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((item: RawValue) => documentKeys(item, `${prefix}[]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, child]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    return [path, ...documentKeys(child, path)];
  });
}

function leaves(value: RawValue, prefix: string[] = []): [string[], RawValue][] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [[prefix, value]];
  return Object.entries(value).flatMap(([key, child]) => leaves(child, [...prefix, key]));
}

describe('config/gateway.example.yaml', () => {
  it('is a valid configuration', () => {
    const loaded = loadConfig({ configFile: examplePath, env: {}, defaultConfigFile: '/nonexistent' });
    expect(loaded.config.gateway.id).toBe('hub-0001');
    expect(loaded.config.uplink.brokers).toHaveLength(2);
    expect(loaded.warnings).toEqual([]);
  });

  it('shows every key of the schema, so the documentation cannot drift from it', () => {
    const inExample = new Set(documentKeys(example));
    const missing = schemaKeys(configSchema).filter((key) => !inExample.has(key));
    expect(missing).toEqual([]);
    // ...and nothing the schema does not have (it would not load anyway, but say which).
    const known = new Set(schemaKeys(configSchema));
    expect([...inExample].filter((key) => !known.has(key) && !/^store\.key\.|^tls\.key\./.test(key))).toEqual(
      [],
    );
  });

  it('shows every default as the default is', () => {
    const differ = leaves(DEFAULTS)
      .filter(([path, value]) => {
        const shown = path.reduce<RawValue | undefined>(
          (node, key) =>
            node && typeof node === 'object' && !Array.isArray(node) ? (node as RawTree)[key] : undefined,
          example,
        );
        // The example lists a command signer to show the key; the default is none.
        return path.join('.') !== 'tls.commandSigners' && JSON.stringify(shown) !== JSON.stringify(value);
      })
      .map(([path]) => path.join('.'));
    expect(differ).toEqual([]);
  });
});

describe('docs/configuration.md', () => {
  const docs = readFileSync(join(root, 'docs/configuration.md'), 'utf8');

  it('lists the variable of every setting, and the variables are all different', () => {
    const settings = settingsOf(configSchema);
    expect(new Set(settings.map((s) => s.env)).size).toBe(settings.length);
    expect(settings.filter((s) => !docs.includes(`\`${s.env}\``)).map((s) => s.env)).toEqual([]);
  });
});
