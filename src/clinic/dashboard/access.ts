import { MDC_CODES } from '../../model/codes.js';
import type { StaffStore, StaffUser } from '../staff/staff-store.js';
import type { Assignment, ClinicStore } from '../storage/clinic-store.js';
import type { LatestReading } from './pages/pages.js';

/**
 * Who may see which patient: an admin every patient the clinic has assigned a hub to (ClinicStore
 * assignments), a clinician the patients of their care team (StaffStore.patientsOf) and nothing else. Every
 * page, feed and export asks here, and a patient the user may not see is answered exactly like one that does
 * not exist (404), so the answer does not tell which MRNs exist.
 */
export async function patientsVisibleTo(
  user: StaffUser,
  staff: StaffStore,
  clinic: ClinicStore,
): Promise<string[]> {
  const mrns =
    user.role === 'admin' ? (await clinic.assignments()).map((a) => a.mrn) : await staff.patientsOf(user.id);
  return [...new Set(mrns)].sort();
}

export async function mayView(
  user: StaffUser,
  mrn: string,
  staff: StaffStore,
  clinic: ClinicStore,
): Promise<boolean> {
  return (await patientsVisibleTo(user, staff, clinic)).includes(mrn);
}

export const READINGS_WINDOW_MS = 24 * 3_600_000;

/** What the patient page shows: the patient's hub assignments and the latest reading per code of the last day. */
export async function patientSummary(
  clinic: ClinicStore,
  mrn: string,
  now: number,
): Promise<{ assignments: Assignment[]; latest: LatestReading[] }> {
  const assignments = (await clinic.assignments()).filter((a) => a.mrn === mrn);
  const latest: LatestReading[] = [];
  for (const code of Object.keys(MDC_CODES)) {
    const points = await clinic.series({ mrn, code, from: now - READINGS_WINDOW_MS, to: now + 1 });
    const last = points.at(-1);
    if (last) {
      latest.push({ code, value: last.value, unit: last.unit, at: last.measuredAt, count: points.length });
    }
  }
  return { assignments, latest };
}
