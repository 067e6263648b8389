import type { Bundle, BundleEntry, Device, Observation, Patient } from 'fhir/r4.js';
import { type ConditionalResource, type MappedMeasurement, uuidUrn } from './mapping.js';

/**
 * One FHIR transaction Bundle (R4 http.html#transaction) for a set of mapped measurements. Every entry is a
 * conditional create (`request.ifNoneExist`): the server creates a resource only when none carries its
 * identifier, so posting the same Bundle again creates nothing (R4 http.html#ccreate). Entries refer to each
 * other by their urn:uuid fullUrl, which the server rewrites to the ids it assigns or finds (R4
 * bundle.html#references).
 */
export function transactionBundle(mapped: readonly MappedMeasurement[]): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: uniqueResources(mapped).map((c) => ({
      fullUrl: c.fullUrl,
      resource: c.resource,
      request: { method: 'POST', url: c.resource.resourceType, ifNoneExist: c.ifNoneExist },
    })),
  };
}

/**
 * A patient's readings as a downloaded file (the dashboard's FHIR export): a `collection` Bundle, "a set of
 * resources collected into a single package for ease of distribution" (R4 codesystem-bundle-type). Not a
 * `transaction` or `batch`: those are instructions to a server (each entry a request), and a download asks
 * nobody to create anything. Not a `document`: that needs a Composition as its first entry, with an author
 * and attester, a clinical statement this export does not make. Not a `searchset`: it is not the answer to a
 * search of a server.
 *
 * The entries are the same resources the transaction export sends (one mapping, mapping.ts), so a reader of
 * the file finds the identifiers the EHR has. First the Patient, with only the identifier every Observation's
 * subject names (a logical reference, R4 references.html#logical: the exporter never creates Patients, and the
 * file names the patient the same way), then the hubs' and sensors' Devices (PhgDevice, PhdDevice), the
 * coincident time stamps, and the Observations, which refer to those entries by their urn:uuid fullUrl (R4
 * bundle.html#references: resolved within the Bundle). `timestamp` is when the file was assembled (bdl-10
 * allows it on any type).
 */
export function collectionBundle(
  mapped: readonly MappedMeasurement[],
  patient: { readonly system: string; readonly mrn: string },
  assembledAt: number,
): Bundle {
  const resource: Patient = {
    resourceType: 'Patient',
    identifier: [{ system: patient.system, value: patient.mrn }],
  };
  const patientEntry: BundleEntry = { fullUrl: uuidUrn(`${patient.system}|${patient.mrn}`), resource };
  return {
    resourceType: 'Bundle',
    type: 'collection',
    timestamp: new Date(assembledAt).toISOString(),
    entry: [
      patientEntry,
      ...uniqueResources(mapped).map((c) => ({ fullUrl: c.fullUrl, resource: c.resource })),
    ],
  };
}

/**
 * The resources of the mapped measurements, each once: devices first, then coincident time stamps, then the
 * Observations that reference them. A resource shared by several measurements (the hub, a sensor, one
 * coincident time stamp) appears once: two conditional creates of the same identifier in one transaction
 * would both find nothing and both create, and a collection may not hold two entries with one fullUrl (bdl-7).
 */
function uniqueResources(mapped: readonly MappedMeasurement[]): ConditionalResource<Device | Observation>[] {
  const devices = new Map<string, ConditionalResource<Device>>();
  const coincident = new Map<string, ConditionalResource<Observation>>();
  const observations = new Map<string, ConditionalResource<Observation>>();
  for (const m of mapped) {
    devices.set(m.gateway.fullUrl, m.gateway);
    devices.set(m.device.fullUrl, m.device);
    if (m.coincidentTimeStamp !== undefined)
      coincident.set(m.coincidentTimeStamp.fullUrl, m.coincidentTimeStamp);
    for (const o of m.observations) observations.set(o.fullUrl, o);
  }
  return [...devices.values(), ...coincident.values(), ...observations.values()];
}
