import type { AuditLog } from '../audit/audit-log.js';
import type { CommandEvent } from './commands.js';

/**
 * Sends every downlink command, accepted or refused, to the audit log (docs/wire-format.md section 9.3: a
 * `config` change MUST be audited; NIST SP 1800-30: log authorization failures). A refusal keeps its stable
 * code (docs/errors.md) and its reason, which names fields, certificate serial numbers and config keys, never
 * a value from a payload.
 */
export function auditCommandEvents(audit: AuditLog, actor = 'gateway'): (event: CommandEvent) => void {
  return (event) => {
    switch (event.type) {
      case 'command.accepted':
        audit.record('command.accepted', actor, { id: event.id, cmd: event.cmd, ok: event.ok });
        return;
      case 'command.refused':
        audit.record('command.refused', actor, {
          code: event.code,
          reason: event.reason,
          ...(event.id === undefined ? {} : { id: event.id }),
        });
        return;
    }
  };
}
