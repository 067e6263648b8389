import { type CertificateInput, toCertificate } from './identity.js';

const DAY = 86_400_000;

export type ExpiryStatus = 'ok' | 'expiring' | 'expired' | 'not-yet-valid';

export interface Expiry {
  readonly status: ExpiryStatus;
  /** Whole days until notAfter, rounded down; negative once expired (-1 on the first day after). */
  readonly daysLeft: number;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * Where `now` stands in the certificate's validity. RFC 5280 4.1.2.5: the validity period includes both
 * notBefore and notAfter, so a certificate is still valid at exactly notAfter and expired one millisecond
 * later. 'expiring' means valid with less than `warnDays` days left: time to renew, the uplink keeps working.
 */
export function checkExpiry(
  certificate: CertificateInput,
  now: Date | number,
  options: { warnDays?: number } = {},
): Expiry {
  const cert = toCertificate(certificate);
  const at = typeof now === 'number' ? now : now.getTime();
  const notBefore = cert.notBefore;
  const notAfter = cert.notAfter;
  const remaining = notAfter.getTime() - at;
  const daysLeft = Math.floor(remaining / DAY);
  const warnMs = (options.warnDays ?? 30) * DAY;
  const status: ExpiryStatus =
    at < notBefore.getTime()
      ? 'not-yet-valid'
      : remaining < 0
        ? 'expired'
        : remaining < warnMs
          ? 'expiring'
          : 'ok';
  return { status, daysLeft, notBefore, notAfter };
}
