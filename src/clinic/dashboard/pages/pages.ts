import { MDC_CODES, type MdcCode } from '../../../model/codes.js';
import { UCUM_UNITS } from '../../../model/units.js';
import { type Html, html } from '../../../patient-page/html.js';
import { observationName, relative } from '../../../patient-page/words.js';
import type { Assignment } from '../../storage/clinic-store.js';

/**
 * The dashboard's server-rendered pages. Every value goes through the `html` tag, which escapes it (a username
 * or MRN holding `<script>` is text), and no page has inline script or style: the CSP forbids both
 * (`script-src 'self'`, `style-src 'self'`, no 'unsafe-inline'). Forms post to this origin only
 * (`form-action 'self'`) and each carries its CSRF token.
 */

export interface PageChrome {
  readonly title: string;
  /** The signed-in user, for the header with its logout button. */
  readonly user?: { readonly username: string; readonly role: string; readonly csrfToken: string };
}

export function page(chrome: PageChrome, body: Html): string {
  const header = chrome.user
    ? html`<header><span>${chrome.user.username} (${chrome.user.role})</span>
<form method="post" action="/logout"><input type="hidden" name="_csrf" value="${chrome.user.csrfToken}"><button type="submit">Log out</button></form></header>`
    : html``;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${chrome.title} · rpm-gateway clinic</title>
<link rel="stylesheet" href="/assets/dashboard.css">
</head>
<body>
${header}
<main>
${body}
</main>
</body>
</html>
`.text;
}

const errorLine = (error: string | undefined) =>
  error ? html`<p class="error" role="alert">${error}</p>` : '';

/** One message for every login failure: it never says which part was wrong, or that an account exists. */
export const LOGIN_FAILED =
  'The username or password is not right, or the account is locked for a while. Try again, or ask an administrator.';
export const CODE_FAILED =
  'That code is not right, or was used already. Wait for the next code and try again.';

export function loginPage(options: { readonly formToken: string; readonly error?: string }): string {
  return page(
    { title: 'Log in' },
    html`<h1>Clinic dashboard</h1>
${errorLine(options.error)}
<form method="post" action="/login">
<input type="hidden" name="_csrf" value="${options.formToken}">
<label for="username">Username</label>
<input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button>
</form>`,
  );
}

export function enrolPage(options: {
  readonly qrDataUrl: string;
  readonly secret: string;
  readonly csrfToken: string;
  readonly error?: string;
}): string {
  return page(
    { title: 'Set up your second factor' },
    html`<h1>Set up your second factor</h1>
<p>Every login needs a code from an authenticator app on your phone (any app for TOTP codes). Scan this code with the app:</p>
<p><img src="${options.qrDataUrl}" alt="QR code of your authenticator secret" width="240" height="240"></p>
<p>Or type this key into the app (time-based, 6 digits, every 30 seconds):</p>
<p class="secret" id="totp-secret">${options.secret}</p>
${errorLine(options.error)}
<form method="post" action="/mfa/enrol">
<input type="hidden" name="_csrf" value="${options.csrfToken}">
<label for="code">The 6-digit code the app shows now</label>
<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,8}" required autofocus>
<button type="submit">Confirm</button>
</form>`,
  );
}

export function codePage(options: { readonly csrfToken: string; readonly error?: string }): string {
  return page(
    { title: 'Enter your code' },
    html`<h1>Enter your code</h1>
${errorLine(options.error)}
<form method="post" action="/mfa">
<input type="hidden" name="_csrf" value="${options.csrfToken}">
<label for="code">The 6-digit code from your authenticator app</label>
<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,8}" required autofocus>
<button type="submit">Continue</button>
</form>`,
  );
}

export function patientListPage(chrome: PageChrome, patients: readonly string[]): string {
  const list =
    patients.length === 0
      ? html`<p class="muted">No patients to show: none is assigned to you yet.</p>`
      : html`<ul class="patients">${patients.map(
          (mrn) => html`<li><a href="/patients/${encodeURIComponent(mrn)}">${mrn}</a></li>`,
        )}</ul>`;
  return page(chrome, html`<h1>Patients</h1>${list}`);
}

/** The latest reading of one code in the window, with how many there were. */
export interface LatestReading {
  readonly code: string;
  readonly value: number | null;
  readonly unit: string;
  readonly at: number;
  readonly count: number;
}

export function patientPage(
  chrome: PageChrome,
  data: {
    readonly mrn: string;
    readonly assignments: readonly Assignment[];
    readonly latest: readonly LatestReading[];
    readonly now: number;
    readonly timeZone: string;
  },
): string {
  const when = (ms: number) =>
    new Intl.DateTimeFormat('en-GB', {
      dateStyle: 'medium',
      timeStyle: 'medium',
      timeZone: data.timeZone,
    }).format(ms);
  const current = data.assignments.filter((a) => a.to === undefined || a.to > data.now);
  const hubs =
    current.length === 0
      ? html`<p class="muted">No hub is assigned to this patient now.</p>`
      : html`<table><thead><tr><th>Hub</th><th>Since</th></tr></thead><tbody>${current.map(
          (a) => html`<tr><td>${a.gatewayId}</td><td>${when(a.from)}</td></tr>`,
        )}</tbody></table>`;
  const readings =
    data.latest.length === 0
      ? html`<p class="muted">No readings in the last 24 hours.</p>`
      : html`<table><thead><tr><th>Measurement</th><th>Latest</th><th>Taken</th><th>Readings in 24 h</th></tr></thead><tbody>${data.latest.map(
          (r) =>
            html`<tr><td>${codeName(r.code)}</td><td class="number">${valueText(r)}</td><td>${when(r.at)} (${relative(r.at, data.now)})</td><td class="number">${r.count}</td></tr>`,
        )}</tbody></table>`;
  return page(
    chrome,
    html`<p><a href="/">All patients</a></p>
<h1>Patient ${data.mrn}</h1>
<h2>Hub</h2>
${hubs}
<h2>Latest readings (last 24 hours)</h2>
${readings}`,
  );
}

function codeName(code: string): string {
  return Object.hasOwn(MDC_CODES, code) ? observationName(code as MdcCode) : code;
}

function valueText(r: LatestReading): string {
  if (r.value === null) return 'no value';
  const unit = (UCUM_UNITS as Readonly<Record<string, { display?: string } | undefined>>)[r.unit]?.display;
  return `${r.value} ${unit ?? r.unit}`;
}

/** The one answer for a patient who does not exist and for one the user may not see: they must look the same. */
export function notFoundPage(chrome: PageChrome): string {
  return page(chrome, html`<h1>Not found</h1><p>There is no such page. <a href="/">All patients</a></p>`);
}

export function messagePage(title: string, text: string): string {
  return page({ title }, html`<h1>${title}</h1><p>${text}</p><p><a href="/login">Log in</a></p>`);
}
