import { describe, expect, it } from 'vitest';
import { type ClientIdentity, mayConnect, mayPublish, maySubscribe } from '../../src/broker/acl.js';

const gw: ClientIdentity = { role: 'gateway', id: 'gw-0001' };
const clinic: ClientIdentity = { role: 'clinic', id: 'clinic-a' };

describe('broker ACL', () => {
  it('lets a gateway connect only under its certificate id', () => {
    expect(mayConnect(gw, 'gw-0001').allowed).toBe(true);
    expect(mayConnect(gw, 'gw-0002')).toMatchObject({ allowed: false });
    expect(mayConnect(undefined, 'gw-0001')).toMatchObject({ allowed: false });
    expect(mayConnect({ role: 'server', id: 'broker' }, 'broker')).toMatchObject({ allowed: false });
    expect(mayConnect({ role: 'gateway', id: 'GW/+' }, 'GW/+')).toMatchObject({ allowed: false });
    expect(mayConnect(clinic, 'any-receiver-id').allowed).toBe(true);
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
