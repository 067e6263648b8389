import type { Device, Observation } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { transactionBundle } from '../../../src/clinic/fhir/bundle.js';
import { mapMeasurement } from '../../../src/clinic/fhir/mapping.js';
import { HttpTarget } from '../../../src/clinic/fhir/targets.js';
import type { IncomingMeasurement } from '../../../src/clinic/storage/clinic-store.js';
import { TestFhirServer } from './fhir-server.js';
import { validate } from './r4.js';
import {
  bloodPressure,
  continuous,
  glucose,
  invalidTemperature,
  MRN,
  PATIENT_SYSTEM,
  SYSTEM_BASE,
  spotCheck,
  T0,
  temperature,
  weight,
} from './samples.js';

const options = { patientIdentifierSystem: PATIENT_SYSTEM, systemBase: SYSTEM_BASE };
const map = (m: IncomingMeasurement) =>
  mapMeasurement({ ...m, committedAt: m.measuredAt + 5_000 }, MRN, options);

describe('replaying the same transaction Bundle against a real FHIR endpoint', () => {
  const server = new TestFhirServer();
  beforeAll(() => server.start());
  afterAll(() => server.stop());

  it('creates everything once; the second replay creates nothing and finds the same resources', async () => {
    const bundle = transactionBundle(
      [
        spotCheck(),
        continuous(T0),
        bloodPressure(),
        bloodPressure({ at: T0 + 60_000, skewMs: -90_000 }),
        temperature(),
        weight(),
        glucose(),
        invalidTemperature(T0 + 120_000),
      ].map(map),
    );
    const entries = bundle.entry ?? [];
    const target = new HttpTarget({ baseUrl: server.url });

    await target.send(bundle);
    const observations = await server.all<Observation>('Observation');
    const devices = await server.all<Device>('Device');
    expect(observations.length + devices.length).toBe(entries.length);
    expect(devices).toHaveLength(7); // one hub, six sensors
    const ids = [...observations, ...devices].map((r) => `${r.resourceType}/${r.id}`).sort();

    await target.send(bundle);
    const again = [
      ...(await server.all<Observation>('Observation')),
      ...(await server.all<Device>('Device')),
    ];
    expect(again.map((r) => `${r.resourceType}/${r.id}`).sort()).toEqual(ids);
    expect(server.requests).toBe(2);

    // The server resolved the urn:uuid references to its own ids: every Observation points at stored Devices.
    const deviceIds = new Set(devices.map((d) => `Device/${d.id}`));
    for (const o of observations) {
      expect(deviceIds).toContain(o.device?.reference);
      const gateway = o.extension?.find((e) => e.url.endsWith('/observation-gatewayDevice'))?.valueReference
        ?.reference;
      if (o.code.coding?.[0]?.code !== '67975') expect(deviceIds).toContain(gateway);
    }
    // And what the server stored is valid R4, vital-sign profiles included.
    const failures = [...observations, ...devices]
      .flatMap((r) => validate(r))
      .filter((v) => v.errors.length > 0);
    expect(failures).toEqual([]);
  });
});
