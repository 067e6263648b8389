import { X509Certificate as NodeX509 } from 'node:crypto';
import { ManualClock } from '../../src/util/clock.js';

/** The clock every PKI test starts from: 2026-11-28T12:00:00Z (ManualClock's default). */
export function testClock(): ManualClock {
  return new ManualClock(Date.UTC(2026, 10, 28, 12, 0, 0));
}

export const DAY = 86_400_000;
export const MINUTE = 60_000;

/** Node's (OpenSSL's) view of a PEM certificate: an independent parser to check ours against. */
export function openssl(pem: string): NodeX509 {
  return new NodeX509(pem);
}

export const OID = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
} as const;
