import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { z } from 'zod';
import { CLINIC_DEFAULTS, SECTION_DEFAULTS } from '../../src/config/clinic/defaults.js';
import { loadClinicConfig } from '../../src/config/clinic/load.js';
import { clinicConfigSchema } from '../../src/config/clinic/schema.js';
import type { RawTree, RawValue } from '../../src/config/defaults.js';
import { childSchema, objectKeys, settingsOf, shapeOf } from '../../src/config/walk.js';

const root = join(import.meta.dirname, '../..');
const examplePath = join(root, 'config/clinic.example.yaml');
const example = parse(readFileSync(examplePath, 'utf8')) as RawValue;

/**
 * Keys the example cannot show set, since it must be valid: the FHIR target's alternative to baseUrl, and
 * the MQTT 5 shared group next to the embedded broker's MQTT 3.1.1. Both are shown in comments.
 */
const SHOWN_IN_COMMENTS = ['fhir.target.folder', 'intake.sharedGroup', 'dashboard.hubCommands.clientId'];

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

const at = (path: readonly string[]) =>
  path.reduce<RawValue | undefined>(
    (node, key) =>
      node && typeof node === 'object' && !Array.isArray(node) ? (node as RawTree)[key] : undefined,
    example,
  );

describe('config/clinic.example.yaml', () => {
  it('is a valid configuration, without warnings', () => {
    const loaded = loadClinicConfig({ configFile: examplePath, env: {}, defaultConfigFile: '/nonexistent' });
    expect(loaded.config.clinic.name).toBe('st-mary');
    expect(loaded.config.database.kind).toBe('sqlite');
    expect(loaded.config.intake?.groupCommit).toEqual({ maxMessages: 256, maxDelayMs: 5 });
    expect(loaded.config.dashboard).toMatchObject({
      publicOrigin: 'https://localhost:8443',
      session: { idleMs: 15 * 60_000, absoluteMs: 12 * 3_600_000 },
      staleAfterMs: 30_000,
    });
    expect(loaded.warnings).toEqual([]);
  });

  it('shows every key of the schema, so the documentation cannot drift from it', () => {
    const inExample = new Set(documentKeys(example));
    const missing = schemaKeys(clinicConfigSchema).filter(
      (key) => !inExample.has(key) && !SHOWN_IN_COMMENTS.includes(key),
    );
    expect(missing).toEqual([]);
    const text = readFileSync(examplePath, 'utf8');
    for (const key of SHOWN_IN_COMMENTS) expect(text).toContain(`${key.split('.').at(-1)}:`);
    const known = new Set(schemaKeys(clinicConfigSchema));
    const secretParts =
      /^(broker\.key|broker\.persistence\.key|intake\.key|dashboard\.key|dashboard\.hubCommands\.key|database\.sqlite\.key|database\.postgres\.password|fhir\.token)\./;
    expect([...inExample].filter((key) => !known.has(key) && !secretParts.test(key))).toEqual([]);
  });

  it('shows every default as the default is', () => {
    const defaults: [string[], RawValue][] = [
      ...leaves(CLINIC_DEFAULTS),
      ...leaves(SECTION_DEFAULTS.broker, ['broker']),
      ...leaves(SECTION_DEFAULTS.intake, ['intake']),
      ...leaves(SECTION_DEFAULTS.postgres, ['database', 'postgres']),
      ...leaves(SECTION_DEFAULTS.dashboard, ['dashboard']),
    ];
    // The example's broker listens on the network, as a clinic's does; the default is loopback only.
    const shownOtherwise = new Set(['broker.host', 'broker.allowNetwork', 'fhir.enabled']);
    const differ = defaults
      .filter(
        ([path, value]) =>
          !shownOtherwise.has(path.join('.')) && JSON.stringify(at(path)) !== JSON.stringify(value),
      )
      .map(([path]) => path.join('.'));
    expect(differ).toEqual([]);
  });
});

describe('the intake sessions the broker provisions', () => {
  it('default to the two lanes of the intake: obs and status as its client id, alerts as <id>-a', () => {
    const text = readFileSync(examplePath, 'utf8').replace(/ {2}durableSubscribers:\n( {4}.*\n)+/, '');
    const file = join(mkdtempSync(join(tmpdir(), 'rpm-clinic-example-')), 'clinic.yaml');
    writeFileSync(file, text);
    const defaulted = loadClinicConfig({ configFile: file, env: {}, defaultConfigFile: '/nonexistent' });
    const expected = [
      { clientId: 'clinic-st-mary-in', topics: ['rpm/v1/+/obs', 'rpm/v1/+/status'] },
      { clientId: 'clinic-st-mary-in-a', topics: ['rpm/v1/+/alert'] },
    ];
    expect(defaulted.config.broker?.durableSubscribers).toEqual(expected);
    // The example shows exactly the default.
    const example = loadClinicConfig({ configFile: examplePath, env: {}, defaultConfigFile: '/nonexistent' });
    expect(example.config.broker?.durableSubscribers).toEqual(expected);
  });

  it('follow intake.clientId, and refuse one whose alert id (<id>-a) the broker would not accept', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rpm-clinic-example-'));
    const base = readFileSync(examplePath, 'utf8').replace(/ {2}durableSubscribers:\n( {4}.*\n)+/, '');
    const file = join(dir, 'clinic.yaml');
    writeFileSync(file, base.replace('clientId: clinic-st-mary-in\n', 'clientId: clinic-st-mary-in2\n'));
    const loaded = loadClinicConfig({ configFile: file, env: {}, defaultConfigFile: '/nonexistent' });
    expect(loaded.config.broker?.durableSubscribers.map((s) => s.clientId)).toEqual([
      'clinic-st-mary-in2',
      'clinic-st-mary-in2-a',
    ]);
    // 22 characters pass, but the alert id is 24: over the 23 of MQTT 3.1.1 section 3.1.3.1.
    writeFileSync(file, base.replace('clientId: clinic-st-mary-in\n', 'clientId: clinic-st-mary-intake\n'));
    expect(() =>
      loadClinicConfig({ configFile: file, env: {}, defaultConfigFile: '/nonexistent' }),
    ).not.toThrow();
    writeFileSync(file, base.replace('clientId: clinic-st-mary-in\n', 'clientId: clinic-st-mary-intake1\n'));
    expect(() => loadClinicConfig({ configFile: file, env: {}, defaultConfigFile: '/nonexistent' })).toThrow(
      /intake\.clientId.*alerts connect on their own as clinic-st-mary-intake1-a.*24 characters.*at most 23.*set a shorter intake\.clientId, e\.g\. clinic-st-mary-in\b/s,
    );
    // A suffix of 23 characters is the longest the broker's rule takes (src/broker/acl.ts), but the id is 38.
    const long = 'a'.repeat(23);
    writeFileSync(file, base.replace('clientId: clinic-st-mary-in\n', `clientId: clinic-st-mary-${long}\n`));
    expect(() => loadClinicConfig({ configFile: file, env: {}, defaultConfigFile: '/nonexistent' })).toThrow(
      /intake\.clientId.*clinic-st-mary-a{23} is 38 characters.*set a shorter intake\.clientId/s,
    );
  });

  it('default to an intake id that fits for a clinic name of up to 11 characters, and say so past that', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rpm-clinic-example-'));
    const base = readFileSync(examplePath, 'utf8')
      .replace(/ {2}durableSubscribers:\n( {4}.*\n)+/, '')
      .replace(/\n {2}clientId: clinic-st-mary-in\n/, '\n');
    const file = join(dir, 'clinic.yaml');
    const withName = (name: string) => {
      writeFileSync(file, base.replace('name: st-mary', `name: ${name}`));
      return () => loadClinicConfig({ configFile: file, env: {}, defaultConfigFile: '/nonexistent' });
    };
    // The old default, clinic-<name>-intake, with "-a" was over 23 characters from an 8-character name on.
    expect(withName('northfield')().config.intake?.clientId).toBe('clinic-northfield-in');
    expect(withName('northfields')().config.broker?.durableSubscribers.map((s) => s.clientId)).toEqual([
      'clinic-northfields-in',
      'clinic-northfields-in-a',
    ]);
    expect(withName('northfieldsx')).toThrow(
      /intake\.clientId.*clinic-northfieldsx-in-a.*24 characters.*e\.g\. clinic-northfieldsx-1\b/s,
    );
  });
});

describe('docs/configuration.md', () => {
  const docs = readFileSync(join(root, 'docs/configuration.md'), 'utf8');

  it('lists the RPM_CLINIC_ variable of every clinic setting, and they are all different', () => {
    const settings = settingsOf(clinicConfigSchema, 'RPM_CLINIC_');
    expect(new Set(settings.map((s) => s.env)).size).toBe(settings.length);
    expect(settings.filter((s) => !docs.includes(`\`${s.env}\``)).map((s) => s.env)).toEqual([]);
  });
});
