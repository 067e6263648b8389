import { beforeAll, describe, expect, it } from 'vitest';
import {
  type CertificateAuthority,
  checkExpiry,
  createDevelopmentCa,
  type IssuedCredentials,
  issueGatewayCertificate,
} from '../../src/pki/index.js';
import { DAY, MINUTE, testClock } from './pki-fixtures.js';

const clock = testClock();
const ISSUED = clock.now();
let ca: CertificateAuthority;
let cert: IssuedCredentials;

beforeAll(async () => {
  ca = await createDevelopmentCa({ clock });
  cert = await issueGatewayCertificate(ca, { clock, gatewayId: 'gw-demo-0001', validityDays: 100 });
});

describe('checkExpiry (RFC 5280 4.1.2.5: notBefore and notAfter are both inside the validity)', () => {
  const notBefore = ISSUED - 5 * MINUTE;
  const notAfter = ISSUED + 100 * DAY;

  it.each([
    ['one ms before notBefore', notBefore - 1, 'not-yet-valid', 100],
    ['at notBefore', notBefore, 'ok', 100],
    ['at issuance', ISSUED, 'ok', 100],
    ['31 days left', notAfter - 31 * DAY, 'ok', 31],
    ['exactly 30 days left', notAfter - 30 * DAY, 'ok', 30],
    ['one ms under 30 days left', notAfter - 30 * DAY + 1, 'expiring', 29],
    ['one day left', notAfter - DAY, 'expiring', 1],
    ['at notAfter', notAfter, 'expiring', 0],
    ['one ms after notAfter', notAfter + 1, 'expired', -1],
    ['ten days after', notAfter + 10 * DAY, 'expired', -10],
  ] as const)('%s: %s', (_label, now, status, daysLeft) => {
    const expiry = checkExpiry(cert.certificatePem, now);
    expect(expiry.status).toBe(status);
    expect(expiry.daysLeft).toBe(daysLeft);
    expect(expiry.notAfter.getTime()).toBe(notAfter);
  });

  it('takes a Date, a ManualClock reading and a custom warning window', () => {
    clock.set(notAfter - 45 * DAY);
    expect(checkExpiry(cert.certificatePem, new Date(clock.now())).status).toBe('ok');
    expect(checkExpiry(cert.certificatePem, clock.now(), { warnDays: 60 }).status).toBe('expiring');
    expect(checkExpiry(cert.certificatePem, clock.now(), { warnDays: 0 }).status).toBe('ok');
  });
});
