import type { Bundle, BundleEntry, Device, Observation } from 'fhir/r4.js';
import type { ConditionalResource, MappedMeasurement } from './mapping.js';

/**
 * One FHIR transaction Bundle (R4 http.html#transaction) for a set of mapped measurements. Every entry is a
 * conditional create (`request.ifNoneExist`): the server creates a resource only when none carries its
 * identifier, so posting the same Bundle again creates nothing (R4 http.html#ccreate). Entries refer to each
 * other by their urn:uuid fullUrl, which the server rewrites to the ids it assigns or finds (R4
 * bundle.html#references).
 *
 * A resource shared by several measurements (the hub, a sensor, one coincident time stamp) appears once: two
 * conditional creates of the same identifier in one transaction would both find nothing and both create.
 * Devices come first, then coincident time stamps, then the Observations that reference them.
 */
export function transactionBundle(mapped: readonly MappedMeasurement[]): Bundle {
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
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [...devices.values(), ...coincident.values(), ...observations.values()].map(entry),
  };
}

function entry(c: ConditionalResource<Device | Observation>): BundleEntry {
  return {
    fullUrl: c.fullUrl,
    resource: c.resource,
    request: { method: 'POST', url: c.resource.resourceType, ifNoneExist: c.ifNoneExist },
  };
}
