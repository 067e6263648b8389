import { type Html, html } from '../../../patient-page/html.js';
import type { StaffRole } from '../../staff/staff-store.js';

/**
 * The staff administration pages, server-rendered like every dashboard page: no script at all, every value
 * escaped by the `html` tag, each form with the session's CSRF token. A username is `a-z 0-9 . _ -` only
 * (src/clinic/staff/rules.ts), so it is a path segment as it is; an MRN goes through encodeURIComponent.
 */

/** One row of the staff list. */
export interface StaffRow {
  readonly username: string;
  readonly role: StaffRole;
  readonly disabled: boolean;
  /** Where the second factor stands (mfaState): none (the next login enrols), pending, enrolled. */
  readonly mfa: 'none' | 'pending' | 'enrolled';
  readonly failedLogins: number;
  readonly lockedUntil?: number;
  /** How many patients are in the user's care team (a clinician's; an admin sees every patient). */
  readonly patients: number;
  readonly createdAt: number;
  readonly createdBy: string;
}

/** What a change answered, shown above the list: a plain sentence, or the new user's one-time password. */
export type AdminNotice =
  | { readonly kind: 'done'; readonly text: string }
  | {
      readonly kind: 'added';
      readonly username: string;
      readonly role: StaffRole;
      readonly password: string;
    };

const MFA_WORDS = {
  none: 'not enrolled (enrols at the next login)',
  pending: 'enrolment begun, not confirmed',
  enrolled: 'enrolled',
} as const;

export function staffListBody(view: {
  readonly rows: readonly StaffRow[];
  /** The signed-in admin: their own row offers no disable or reset (ADMIN_SELF_CHANGE). */
  readonly self: string;
  readonly csrfToken: string;
  readonly timeZone: string;
  readonly notice?: AdminNotice;
}): Html {
  const when = timeFormat(view.timeZone);
  const rows = view.rows.map((row) => {
    const actions =
      row.username === view.self
        ? html`<span class="muted">(you)</span>`
        : html`${
            row.disabled
              ? ''
              : html`<form method="post" action="/admin/staff/${row.username}/disable" class="inline-form">
<input type="hidden" name="_csrf" value="${view.csrfToken}"><button type="submit">Disable</button></form>`
          }<form method="post" action="/admin/staff/${row.username}/reset-mfa" class="inline-form">
<input type="hidden" name="_csrf" value="${view.csrfToken}"><button type="submit">Reset second factor</button></form>`;
    const care =
      row.role === 'admin'
        ? html`all patients`
        : html`<a href="/admin/staff/${row.username}">${row.patients === 1 ? '1 patient' : `${row.patients} patients`}</a>`;
    const state = row.disabled
      ? 'disabled'
      : row.lockedUntil !== undefined
        ? `active, locked until ${when(row.lockedUntil)}`
        : 'active';
    return html`<tr id="user-${row.username}" data-username="${row.username}">
<td>${row.username}</td>
<td>${row.role}</td>
<td>${state}</td>
<td>${MFA_WORDS[row.mfa]}</td>
<td class="number">${row.failedLogins}</td>
<td>${care}</td>
<td>${when(row.createdAt)} by ${row.createdBy}</td>
<td>${actions}</td>
</tr>`;
  });
  return html`<p><a href="/">All patients</a></p>
<h1>Staff</h1>
${view.notice ? noticeLine(view.notice) : ''}
<table class="staff"><thead><tr><th>Username</th><th>Role</th><th>State</th><th>Second factor</th><th>Failed logins</th><th>Care team</th><th>Added</th><th></th></tr></thead>
<tbody>${rows}</tbody></table>
<p class="muted">Disabling a user ends their sessions at once; they keep their username and cannot log in. Resetting a second factor ends their sessions too, and their next login enrols a new one. Every change is recorded in the clinic's audit log. Last logins are in the audit log (login.ok), not here.</p>
<h2>Add a user</h2>
<form method="post" action="/admin/staff">
<input type="hidden" name="_csrf" value="${view.csrfToken}">
<label for="new-username">Username</label>
<input id="new-username" name="username" type="text" autocomplete="off" autocapitalize="none" spellcheck="false" required minlength="3" maxlength="64">
<label for="new-role">Role</label>
<select id="new-role" name="role"><option value="clinician" selected>clinician (sees their care team's patients)</option><option value="admin">admin (every patient, staff, limits)</option></select>
<div><button type="submit">Add user</button></div>
</form>
<p class="muted">A username is 3 to 64 characters: lower-case letters, digits, dot, underscore or hyphen. The new user gets a random password, shown once on the next page; their first login asks them to set up a second factor.</p>`;
}

function noticeLine(notice: AdminNotice): Html {
  if (notice.kind === 'done') return html`<p class="outcome outcome-ok" role="status">${notice.text}</p>`;
  return html`<section class="new-user" role="status">
<p class="outcome outcome-ok">User ${notice.username} added (${notice.role}).</p>
<p>Initial password, shown this once and stored nowhere (only its argon2id hash is): give it to ${notice.username} in person or by another safe channel.</p>
<p class="secret" id="initial-password">${notice.password}</p>
<p>At their first login ${notice.username} sets up a second factor (TOTP) before anything else.</p>
</section>`;
}

/** A clinician's care team: the patients they may see, with a form to add and a button per patient to remove. */
export function careTeamBody(view: {
  readonly username: string;
  readonly disabled: boolean;
  readonly patients: readonly string[];
  /** Patients the clinic knows (hub assignments) not in the team yet: the add field's suggestions. */
  readonly others: readonly string[];
  readonly csrfToken: string;
  readonly notice?: string;
}): Html {
  const action = `/admin/staff/${view.username}/care`;
  const list =
    view.patients.length === 0
      ? html`<p class="muted">${view.username} is in no care team: they see no patient.</p>`
      : html`<table class="care"><thead><tr><th>Patient (MRN)</th><th></th></tr></thead><tbody>${view.patients.map(
          (
            mrn,
          ) => html`<tr data-mrn="${mrn}"><td><a href="/patients/${encodeURIComponent(mrn)}">${mrn}</a></td>
<td><form method="post" action="${action}" class="inline-form">
<input type="hidden" name="_csrf" value="${view.csrfToken}"><input type="hidden" name="action" value="remove"><input type="hidden" name="mrn" value="${mrn}">
<button type="submit">Remove</button></form></td></tr>`,
        )}</tbody></table>`;
  return html`<p><a href="/admin/staff">Staff</a></p>
<h1>Care team of ${view.username}</h1>
${view.disabled ? html`<p class="muted">${view.username} is disabled and cannot log in.</p>` : ''}
${view.notice ? html`<p class="outcome outcome-ok" role="status">${view.notice}</p>` : ''}
<p>${view.username} sees these patients (pages, live feed, alarms and exports) and no other.</p>
${list}
<h2>Add a patient</h2>
<form method="post" action="${action}">
<input type="hidden" name="_csrf" value="${view.csrfToken}">
<input type="hidden" name="action" value="add">
<label for="care-mrn">MRN</label>
<input id="care-mrn" name="mrn" type="text" list="known-mrns" autocomplete="off" spellcheck="false" required maxlength="64">
<datalist id="known-mrns">${view.others.map((mrn) => html`<option value="${mrn}">`)}</datalist>
<div><button type="submit">Add to care team</button></div>
</form>
<p class="muted">The MRN must be one the clinic database knows: a patient a hub is or was assigned to.</p>`;
}

/** The admin pages' own styles (served at /assets/admin.css; the CSP allows no inline style). */
export const ADMIN_CSS = `form.inline-form { display: inline; margin: 0 0.4rem 0 0; }
form.inline-form button { margin: 0; font-size: 0.9rem; padding: 0.2rem 0.6rem; }
table.staff { width: 100%; }
table.staff td { vertical-align: top; }
section.new-user { border: 2px solid var(--accent); padding: 0.5rem 1rem; margin: 0.5rem 0 1rem; }
.outcome { font-weight: 600; }
.outcome-ok { color: var(--accent); }
`;

function timeFormat(timeZone: string): (ms: number) => string {
  const format = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone });
  return (ms) => format.format(ms);
}
