import { describe, expect, it } from 'vitest';
import {
  type ClientIdentity,
  clinicClientId,
  mayConnect,
  mayPublish,
  maySubscribe,
} from '../../src/broker/acl.js';
import { gatewayProfile } from '../../src/pki/ca.js';

const gw: ClientIdentity = { role: 'gateway', id: 'gw-0001' };
const clinic: ClientIdentity = { role: 'clinic', id: 'clinic-a' };

describe('broker ACL', () => {
  it('lets a gateway connect only under its certificate id', () => {
    expect(mayConnect(gw, 'gw-0001').allowed).toBe(true);
    expect(mayConnect(gw, 'gw-0002')).toMatchObject({ allowed: false });
    expect(mayConnect(undefined, 'gw-0001')).toMatchObject({ allowed: false });
    expect(mayConnect({ role: 'server', id: 'broker' }, 'broker')).toMatchObject({ allowed: false });
    expect(mayConnect({ role: 'gateway', id: 'GW/+' }, 'GW/+')).toMatchObject({ allowed: false });
    // a gateway named like a clinic client id would collide with the clinic's session
    expect(mayConnect({ role: 'gateway', id: 'clinic-a' }, 'clinic-a')).toMatchObject({ allowed: false });
    // and the CA never issues one (certs sign, certs init)
    expect(() => gatewayProfile('clinic-a')).toThrow(expect.objectContaining({ code: 'PKI_INVALID_ID' }));
  });

  it("never lets a clinic take a gateway's client id (its session): only clinic-<name>[-<suffix>]", () => {
    expect(mayConnect(clinic, 'gw-0001')).toEqual({
      allowed: false,
      reason: 'client id "gw-0001" is not clinic-a or clinic-a-<suffix>',
    });
    expect(mayConnect(clinic, 'any-receiver-id')).toMatchObject({ allowed: false });
    expect(mayConnect(clinic, 'clinic-b')).toMatchObject({ allowed: false }); // another clinic's session
    expect(mayConnect(clinic, 'clinic-a-')).toMatchObject({ allowed: false });
    expect(mayConnect(clinic, 'clinic-a-Receiver')).toMatchObject({ allowed: false });
    expect(mayConnect(clinic, `clinic-a-${'x'.repeat(24)}`)).toMatchObject({ allowed: false });
    expect(mayConnect(clinic, 'clinic-a').allowed).toBe(true);
    expect(mayConnect(clinic, 'clinic-a-receiver-2').allowed).toBe(true);
    // a name that already starts with clinic- is not prefixed twice
    const demo: ClientIdentity = { role: 'clinic', id: 'clinic-demo' };
    expect(clinicClientId('clinic-demo')).toBe('clinic-demo');
    expect(clinicClientId('north', 'rx1')).toBe('clinic-north-rx1');
    expect(mayConnect(demo, 'clinic-demo').allowed).toBe(true);
    expect(mayConnect(demo, 'clinic-demo-v4').allowed).toBe(true);
    expect(mayConnect(demo, 'clinic-clinic-demo')).toMatchObject({ allowed: false });
  });

  it('keeps a long client id out of the audit text', () => {
    const refusal = mayConnect(gw, 'x'.repeat(5000));
    expect(refusal.allowed).toBe(false);
    expect(refusal.allowed === false && refusal.reason.length).toBeLessThan(200);
  });

  it.each([
    ['rpm/v1/gw-0001/obs', false, true],
    ['rpm/v1/gw-0001/alert', false, true],
    ['rpm/v1/gw-0001/status', true, true],
    ['rpm/v1/gw-0001/cmd/res', false, true],
    ['rpm/v1/gw-0002/obs', false, false], // another hub's topic
    ['rpm/v1/gw-0001/cmd', false, false], // gateways do not command
    ['rpm/v1/gw-0001/obs', true, false], // readings are not retained
    ['$SYS/broker', false, false],
    ['other/topic', false, false],
  ])('gateway publish %s (retain %s) -> %s', (topic, retain, allowed) => {
    expect(mayPublish(gw, topic, retain).allowed).toBe(allowed);
  });

  it.each([
    ['rpm/v1/gw-0001/cmd', true],
    ['rpm/v1/gw-0001/#', false],
    ['rpm/v1/gw-0002/cmd', false],
    ['rpm/v1/+/obs', false],
    ['#', false],
  ])('gateway subscribe %s -> %s', (filter, allowed) => {
    expect(maySubscribe(gw, filter).allowed).toBe(allowed);
  });

  it('lets a clinic read everything under rpm/v1 and only send commands', () => {
    expect(maySubscribe(clinic, 'rpm/v1/#').allowed).toBe(true);
    expect(maySubscribe(clinic, 'rpm/v1/+/obs').allowed).toBe(true);
    expect(maySubscribe(clinic, '#').allowed).toBe(false);
    expect(mayPublish(clinic, 'rpm/v1/gw-0001/cmd', false).allowed).toBe(true);
    expect(mayPublish(clinic, 'rpm/v1/gw-0001/obs', false).allowed).toBe(false); // no forged readings
    expect(mayPublish(clinic, 'rpm/v1/+/cmd', false).allowed).toBe(false);
    expect(mayPublish(clinic, 'rpm/v1/gw-0001/cmd', true).allowed).toBe(false);
  });
});
