import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClinicIntake,
  type ClinicIntakeOptions,
  sharedIntakeOptions,
} from '../../../src/clinic/intake/index.js';
import { createDevelopmentPki, type DevelopmentPki } from '../../../src/pki/index.js';

/**
 * The options of the shared-subscription path (MQTT 5.0 section 4.8.2). The path itself runs against a real
 * Mosquitto in test/clinic/scale-out.test.ts; what is checked here is what must be refused before connecting,
 * because a broker need not refuse it: a ShareName with "/" moves the rest into the topic filter
 * (`$share/a/b/rpm/v1/+/obs` is group "a" on filter `b/rpm/v1/+/obs`, which no gateway publishes to), and on
 * MQTT 3.1.1 `$share/...` is an ordinary filter to a broker without the extension. Wherever the broker's ACL
 * let the clinic read such a filter, the intake would start subscribed to nothing while hubs are PUBACKed.
 */
let dir: string;
let pki: DevelopmentPki;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-shared-'));
  pki = await createDevelopmentPki(dir);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function options(overrides: Partial<ClinicIntakeOptions>): ClinicIntakeOptions {
  return {
    broker: { host: '127.0.0.1', port: 8883 },
    tls: { ca: pki.pem.ca, cert: pki.pem.clinic, key: pki.pem.clinicKey },
    clientId: 'clinic-test-a',
    gateways: { caPem: pki.pem.ca },
    store: undefined as never, // never reached: the options are refused (or accepted) at construction
    defaultTimeZone: 'UTC',
    protocolVersion: 5,
    ...overrides,
  };
}

const refused = expect.objectContaining({ code: 'INTAKE_BAD_OPTIONS' });

describe('shared subscription options', () => {
  it.each(['a/b', 'in+take', 'in#take', '', 'two words'])('refuses the ShareName %j', (sharedGroup) => {
    expect(() => new ClinicIntake(options({ subscription: { sharedGroup } }))).toThrow(refused);
  });

  it('refuses a shared group on MQTT 3.1.1 (shared subscriptions are MQTT 5) and an empty list of kinds', () => {
    expect(
      () => new ClinicIntake(options({ protocolVersion: 4, subscription: { sharedGroup: 'intake' } })),
    ).toThrow(refused);
    expect(
      () =>
        new ClinicIntake(options({ protocolVersion: undefined, subscription: { sharedGroup: 'intake' } })),
    ).toThrow(refused);
    expect(() => new ClinicIntake(options({ subscription: { sharedGroup: 'intake', kinds: [] } }))).toThrow(
      refused,
    );
  });

  it('accepts a valid group', () => {
    expect(
      () => new ClinicIntake(options({ subscription: { sharedGroup: 'intake-1.eu_west' } })),
    ).not.toThrow();
  });

  it('sharedIntakeOptions: obs and status under the client id, alerts on their own connection and group', () => {
    const [main, alert] = sharedIntakeOptions(options({ subscription: { sharedGroup: 'intake' } }));
    expect(main.clientId).toBe('clinic-test-a');
    expect(main.subscription).toEqual({ sharedGroup: 'intake', kinds: ['obs', 'status'] });
    expect(alert.clientId).toBe('clinic-test-a-alert');
    expect(alert.subscription).toEqual({ sharedGroup: 'intake-alert', kinds: ['alert'] });
    expect(() => sharedIntakeOptions(options({}))).toThrow(refused);
    expect(() =>
      sharedIntakeOptions(options({ subscription: { sharedGroup: 'intake', kinds: ['obs'] } })),
    ).toThrow(refused);
  });
});
