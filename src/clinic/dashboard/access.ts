import type { StaffStore, StaffUser } from '../staff/staff-store.js';
import type { ClinicStore } from '../storage/clinic-store.js';

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
