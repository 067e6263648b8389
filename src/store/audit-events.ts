import type { AuditLog } from '../audit/audit-log.js';
import type { StoreEvent } from './outbox.js';

/** Sends the store events that matter for security or data loss to the audit log (no PHI in any of them). */
export function auditStoreEvents(audit: AuditLog, actor = 'gateway'): (event: StoreEvent) => void {
  return (event) => {
    switch (event.type) {
      case 'store.moved-aside':
        audit.record('store.moved-aside', actor, { path: event.path, to: event.to, reason: event.reason });
        return;
      case 'store.damaged':
        audit.record('store.damaged', actor, {
          code: event.code,
          path: event.path,
          kind: event.kind,
          lost: event.lost,
          firstSeq: event.firstSeq,
          lastSeq: event.lastSeq,
          keptAt: event.keptAt,
          gapId: event.gapId,
        });
        return;
      case 'store.evicted':
        audit.record('store.evicted', actor, { count: event.count, reason: event.reason, gaps: event.gaps });
        return;
      case 'store.opened':
        return;
    }
  };
}
