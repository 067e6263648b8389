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
    entry: new UniqueResources().add(mapped).map((c) => ({
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
 * The entries are the resources the transaction export sends (one mapping, mapping.ts), so a reader of the
 * file finds the identifiers the EHR holds. First the Patient, with only the identifier every Observation's
 * subject names (a logical reference, R4 references.html#logical: the exporter never creates Patients, and the
 * file names the patient the same way); then, batch after batch, the hubs' and sensors' Devices (PhgDevice,
 * PhdDevice) and coincident time stamps not written yet, and the Observations, which refer to those entries
 * by their urn:uuid fullUrl (R4 bundle.html#references: resolved within the Bundle, in any order). Each
 * resource is written once: a collection may not hold two entries with one fullUrl (bdl-7). `timestamp` is
 * when the file was assembled.
 *
 * Written as text, batch by batch (`open`, `add`..., `close`), so a large Bundle goes out while it is made and
 * is never one object in memory; the pieces concatenated are one JSON document.
 */
export class CollectionBundleWriter {
  readonly #unique = new UniqueResources();

  constructor(
    private readonly patient: { readonly system: string; readonly mrn: string },
    private readonly assembledAt: number,
  ) {}

  /** The Bundle's opening and the Patient entry. */
  open(): string {
    const head: Bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      timestamp: new Date(this.assembledAt).toISOString(),
    };
    const resource: Patient = {
      resourceType: 'Patient',
      identifier: [{ system: this.patient.system, value: this.patient.mrn }],
    };
    const entry: BundleEntry = { fullUrl: uuidUrn(`${this.patient.system}|${this.patient.mrn}`), resource };
    return `${JSON.stringify(head).slice(0, -1)},"entry":[${JSON.stringify(entry)}`;
  }

  /** The entries of these measurements' resources not written before; `entries` counts them. */
  add(mapped: readonly MappedMeasurement[]): { readonly text: string; readonly entries: number } {
    const fresh = this.#unique.add(mapped);
    const text = fresh
      .map((c) => `,${JSON.stringify({ fullUrl: c.fullUrl, resource: c.resource })}`)
      .join('');
    return { text, entries: fresh.length };
  }

  close(): string {
    return ']}';
  }
}

/**
 * The resources of mapped measurements, each once over every `add`: per call the new devices first, then new
 * coincident time stamps, then the Observations that reference them. A resource shared by several
 * measurements (the hub, a sensor, one coincident time stamp) appears once: two conditional creates of the
 * same identifier in one transaction would both find nothing and both create, and a collection may not hold
 * two entries with one fullUrl. Of two resources with one fullUrl (one identifier) the later one wins, as the
 * server's conditional create would keep only one.
 */
class UniqueResources {
  readonly #written = new Set<string>();

  add(mapped: readonly MappedMeasurement[]): ConditionalResource<Device | Observation>[] {
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
    const fresh = [...devices.values(), ...coincident.values(), ...observations.values()].filter(
      (c) => !this.#written.has(c.fullUrl),
    );
    for (const c of fresh) this.#written.add(c.fullUrl);
    return fresh;
  }
}
