import { GATEWAY_ID } from '../../wire/fields.js';
import type { Assignment, NewAssignment } from './clinic-store.js';
import { ClinicStoreError } from './errors.js';

/**
 * The rule for dated assignments, the same for every ClinicStore implementation: the assignments of one
 * gateway never overlap, so every measurement time belongs to at most one patient.
 *
 * - Assigning from T ends the gateway's open assignment at T (a hub reissued to the next patient).
 * - T must be after the open assignment's start, and not before the end of any earlier one: a new assignment
 *   may not rewrite who a time already attributed belonged to. Correcting a wrong assignment is a separate,
 *   audited operation, never a side effect of assigning.
 * - A gap between assignments is allowed (a hub on the shelf); readings measured in it are unassigned.
 * - Ending (unassign) at T requires T after the open assignment's start (no empty or negative interval).
 *
 * Neither the MRN nor other patient data appears in an error message (it is PHI); the gateway id and times do.
 */
export function checkNewAssignment(
  assignment: NewAssignment,
  existing: readonly Assignment[],
): { readonly endOpen?: Assignment } {
  checkFields(assignment);
  const open = existing.find((a) => a.to === undefined);
  if (open !== undefined && assignment.from <= open.from) {
    throw new ClinicStoreError(
      'CLINIC_ASSIGNMENT_CONFLICT',
      `gateway ${assignment.gatewayId}: a new assignment must start after the open one's start ` +
        `(${iso(open.from)}); it starts ${iso(assignment.from)}`,
    );
  }
  for (const closed of existing) {
    if (closed.to !== undefined && assignment.from < closed.to) {
      throw new ClinicStoreError(
        'CLINIC_ASSIGNMENT_CONFLICT',
        `gateway ${assignment.gatewayId}: a new assignment from ${iso(assignment.from)} would overlap ` +
          `assignment ${closed.id} (until ${iso(closed.to)})`,
      );
    }
  }
  return open === undefined ? {} : { endOpen: open };
}

/** Checks an end time for the gateway's open assignment (`unassign`). */
export function checkEnd(open: Assignment, to: number): void {
  checkTime('to', to);
  if (to <= open.from) {
    throw new ClinicStoreError(
      'CLINIC_ASSIGNMENT_CONFLICT',
      `gateway ${open.gatewayId}: an assignment cannot end (${iso(to)}) at or before its start (${iso(open.from)})`,
    );
  }
}

const PRINTABLE = /^[^\p{Cc}]+$/u;

function checkFields(assignment: NewAssignment): void {
  if (!GATEWAY_ID.test(assignment.gatewayId)) {
    throw new ClinicStoreError('CLINIC_ASSIGNMENT_INVALID', 'the gateway id is not a gateway id');
  }
  if (assignment.mrn.trim() === '' || assignment.mrn.length > 128 || !PRINTABLE.test(assignment.mrn)) {
    throw new ClinicStoreError(
      'CLINIC_ASSIGNMENT_INVALID',
      'the MRN must be 1 to 128 printable characters, not all blank',
    );
  }
  if (assignment.createdBy.trim() === '' || !PRINTABLE.test(assignment.createdBy)) {
    throw new ClinicStoreError('CLINIC_ASSIGNMENT_INVALID', 'createdBy must name who assigned');
  }
  checkTime('from', assignment.from);
  checkTime('at', assignment.at);
  if (assignment.timeZone !== undefined && !isTimeZone(assignment.timeZone)) {
    throw new ClinicStoreError('CLINIC_ASSIGNMENT_INVALID', 'the time zone is not an IANA time zone name');
  }
}

function checkTime(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ClinicStoreError('CLINIC_ASSIGNMENT_INVALID', `${name} must be epoch milliseconds`);
  }
}

/** Intl throws a RangeError for a time zone it does not know (ECMA-402, IsValidTimeZoneName). */
function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

const iso = (ms: number) => new Date(ms).toISOString();
