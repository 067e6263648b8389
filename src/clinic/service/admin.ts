import { join } from 'node:path';
import { AuditLog } from '../../audit/audit-log.js';
import type { Clock } from '../../util/clock.js';
import type { Assignment, ClinicStore } from '../storage/clinic-store.js';

/**
 * What an administrator changes in the clinic database (`rpm-gateway clinic assign|unassign`), each change
 * recorded in the clinic's hash-chained audit log with who and when (HIPAA 164.312(b) audit controls), after
 * the database accepted it.
 *
 * The MRN is written to the audit log as it is, not hashed. The audit log is an access-controlled record
 * (mode 0600, readable by the same service user that reads the database, which holds the MRN anyway), and
 * an audit of a patient assignment must be able to say which patient record a gateway's readings were
 * attributed to: that is the change being audited (HIPAA 164.312(b); 164.308(a)(1)(ii)(D) information
 * system activity review). A hash would not protect it either: MRNs are short numbers, so an unsalted hash is
 * reversed by trying them all, and a salted one could no longer be matched to the record during a review.
 * The MRN is never in the operational log (stdout, journald), which more people and tools read.
 */
export const CLINIC_AUDIT_LOG = 'clinic-audit.log';

/** The clinic's audit log of administrative changes, in paths.dataDir (the broker keeps its own). */
export function clinicAuditLog(dataDir: string, clock?: Clock): AuditLog {
  return new AuditLog(join(dataDir, CLINIC_AUDIT_LOG), clock);
}

export interface AdminContext {
  readonly store: ClinicStore;
  readonly audit: AuditLog;
  /** Who: the OS user running the command, or --by. */
  readonly actor: string;
  readonly clock: Clock;
}

export async function assignGateway(
  context: AdminContext,
  request: {
    readonly gatewayId: string;
    readonly mrn: string;
    readonly from: number;
    readonly timeZone?: string;
  },
): Promise<Assignment> {
  // Assigning ends the gateway's open assignment (a hub reissued to the next patient): the audit says which.
  const open = (await context.store.assignments(request.gatewayId)).find((a) => a.to === undefined);
  const assignment = await context.store.assign({
    gatewayId: request.gatewayId,
    mrn: request.mrn,
    from: request.from,
    ...(request.timeZone === undefined ? {} : { timeZone: request.timeZone }),
    createdBy: context.actor,
    at: context.clock.now(),
  });
  context.audit.record('clinic.assignment.created', context.actor, {
    assignment: assignment.id,
    gatewayId: assignment.gatewayId,
    mrn: assignment.mrn,
    from: new Date(assignment.from).toISOString(),
    ...(assignment.timeZone === undefined ? {} : { timeZone: assignment.timeZone }),
    ...(open === undefined ? {} : { ended: open.id, endedMrn: open.mrn }),
  });
  return assignment;
}

export async function unassignGateway(
  context: AdminContext,
  request: { readonly gatewayId: string; readonly at: number },
): Promise<Assignment | undefined> {
  const ended = await context.store.unassign(request.gatewayId, request.at);
  if (ended !== undefined) {
    context.audit.record('clinic.assignment.ended', context.actor, {
      assignment: ended.id,
      gatewayId: ended.gatewayId,
      mrn: ended.mrn,
      from: new Date(ended.from).toISOString(),
      to: new Date(request.at).toISOString(),
    });
  }
  return ended;
}
