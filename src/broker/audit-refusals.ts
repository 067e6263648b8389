import type { AuditLog } from '../audit/audit-log.js';
import type { Refusal } from './clinical-broker.js';

/**
 * Sends every broker refusal to the audit log (NIST SP 1800-30: log authentication and authorization
 * failures). Refusals carry certificate identities and topic names, never payloads. A TLS failure storm from
 * one scanner must not fill the disk, so identical TLS refusals are recorded at most once per `windowMs`.
 */
export function auditBrokerRefusals(
  audit: AuditLog,
  now: () => number,
  windowMs = 60_000,
): (refusal: Refusal) => void {
  const lastTls = new Map<string, number>();
  let suppressed = 0;
  return (refusal) => {
    if (refusal.stage === 'tls') {
      const last = lastTls.get(refusal.reason);
      if (last !== undefined && now() - last < windowMs) {
        suppressed++;
        return;
      }
      lastTls.set(refusal.reason, now());
    }
    audit.record(`broker.refused.${refusal.stage}`, refusal.identity ?? 'unauthenticated', {
      reason: refusal.reason,
      ...(refusal.detail === undefined ? {} : { detail: refusal.detail }),
      ...(suppressed > 0 ? { suppressedSimilar: suppressed } : {}),
    });
    suppressed = 0;
  };
}
