import type { AuditLog } from '../audit/audit-log.js';
import { auditStoreEvents } from '../store/audit-events.js';
import type { StoreEvent } from '../store/outbox.js';
import type { CommandIo } from './io.js';

/**
 * The store's events for a command line: audited as the gateway audits them, and damage found while opening
 * the store (readings lost, files moved aside) said on stderr, so no command passes over it in silence. The
 * messages hold counts and file names only, no PHI.
 */
export function cliStoreEvents(
  audit: AuditLog,
  io: Pick<CommandIo, 'stderr'>,
  command?: string,
): (event: StoreEvent) => void {
  const prefix = command === undefined ? 'rpm-gateway' : `rpm-gateway ${command}`;
  const toAudit = auditStoreEvents(audit, 'cli');
  return (event) => {
    toAudit(event);
    if (event.type === 'store.damaged') {
      io.stderr.write(`${prefix}: ${event.message} [${event.code}]\n`);
    } else if (event.type === 'store.moved-aside') {
      io.stderr.write(
        `${prefix}: the store ${event.path} was damaged and moved aside to ${event.to}; a new store was created [STORE_CORRUPT]\n`,
      );
    }
  };
}
