import { type Html, html } from '../../../patient-page/html.js';
import { relative } from '../../../patient-page/words.js';
import type { PatientLatest, SeriesPoint } from '../../storage/clinic-store.js';
import { codeText, unitText } from '../views/points.js';

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
  /** Extra stylesheets and scripts, all from this origin (/assets/...). */
  readonly styles?: readonly string[];
  readonly scripts?: readonly { readonly src: string; readonly module?: boolean }[];
  /** A page fed by the live feed: it shows its connection state and turns stale after this long unheard. */
  readonly live?: { readonly staleAfterMs: number };
}

export function page(chrome: PageChrome, body: Html): string {
  const header = chrome.user
    ? html`<header><span>${chrome.user.username} (${chrome.user.role})</span>
${chrome.user.role === 'admin' ? html`<nav aria-label="Administration"><a href="/">Patients</a><a href="/admin/staff">Staff</a></nav>` : html``}
<form method="post" action="/logout"><input type="hidden" name="_csrf" value="${chrome.user.csrfToken}"><button type="submit">Log out</button></form></header>`
    : html``;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${chrome.title} · rpm-gateway clinic</title>
<link rel="stylesheet" href="/assets/dashboard.css">
${(chrome.styles ?? []).map((href) => html`<link rel="stylesheet" href="${href}">`)}
${(chrome.scripts ?? []).map((s) => (s.module ? html`<script type="module" src="${s.src}"></script>` : html`<script src="${s.src}" defer></script>`))}
</head>
<body${chrome.live ? html` data-live="connecting" data-stale-after="${String(chrome.live.staleAfterMs)}"` : html``}>
${header}
${chrome.live ? html`<p id="live-state" class="live-state" role="status" aria-live="polite">Connecting to the live feed…</p>` : html``}
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

/**
 * The tile wall: one tile per patient the user may see, filled and kept current by /assets/tiles.js from
 * /api/tiles and the live feed. The server writes each tile's frame (the patient's link); the values come
 * from the script, built with textContent only.
 */
export function patientListPage(chrome: PageChrome, patients: readonly string[]): string {
  const list =
    patients.length === 0
      ? html`<p class="muted">No patients to show: none is assigned to you yet.</p>`
      : html`<ul class="patients tiles" id="tiles">${patients.map(
          (mrn) =>
            html`<li class="tile" data-mrn="${mrn}"><h2><a href="/patients/${encodeURIComponent(mrn)}">${mrn}</a></h2><p class="muted tile-body">Loading…</p></li>`,
        )}</ul>`;
  return page(chrome, html`<h1>Patients</h1>${list}`);
}

/** The ranges a patient page's charts offer, the first one shown at first. */
export const CHART_RANGES = [
  { label: '6 h', ms: 6 * 3_600_000 },
  { label: '24 h', ms: 24 * 3_600_000 },
  { label: '7 d', ms: 7 * 24 * 3_600_000 },
] as const;

/**
 * A patient's page: the hubs assigned now with their last status, the latest reading of every code, and one
 * chart per code (drawn by /assets/patient.js with uPlot from /api/patients/:mrn/series, kept current by the
 * live feed).
 */
export function patientPage(
  chrome: PageChrome,
  data: {
    readonly mrn: string;
    readonly latest: PatientLatest;
    readonly now: number;
    readonly timeZone: string;
    /** The dashboard has alarm pages: link the patient's. */
    readonly alarms?: boolean;
    /** The export form (GET /patients/:mrn/export); absent: no form. */
    readonly exports?: ExportForm;
  },
): string {
  const when = (ms: number) =>
    new Intl.DateTimeFormat('en-GB', {
      dateStyle: 'medium',
      timeStyle: 'medium',
      timeZone: data.timeZone,
    }).format(ms);
  const { hubs: current } = data.latest;
  const observations = [...data.latest.observations].sort(
    (a, b) => clinicalRank(a.code) - clinicalRank(b.code),
  );
  const hubs =
    current.length === 0
      ? html`<p class="muted">No hub is assigned to this patient now.</p>`
      : html`<table><thead><tr><th>Hub</th><th>Since</th><th>Last status</th></tr></thead><tbody>${current.map(
          (h) =>
            html`<tr><td>${h.gatewayId}</td><td>${when(h.since)}</td><td>${h.status === undefined ? 'none received' : html`${h.status.status.state}, ${relative(h.status.receivedAt, data.now)}`}</td></tr>`,
        )}</tbody></table>`;
  const readings =
    observations.length === 0
      ? html`<p class="muted">No readings yet.</p>`
      : html`<table><thead><tr><th>Measurement</th><th>Latest</th><th>Taken</th><th>Device</th></tr></thead><tbody>${observations.map(
          (r) =>
            html`<tr><td>${codeText(r.code)}</td><td class="number">${valueText(r)}</td><td>${when(r.measuredAt)} (${relative(r.measuredAt, data.now)})${r.stored ? ' · stored by the device, sent later' : ''}</td><td>${r.deviceId} via ${r.gatewayId}</td></tr>`,
        )}</tbody></table>`;
  const charts = observations.map(
    (r) => html`<section class="chart" data-code="${r.code}" data-name="${codeText(r.code)}">
<h3>${codeText(r.code)} <span class="muted">(${unitText(r.unit)})</span></h3>
<div class="plot"></div>
<p class="provenance muted">Point at a reading to see its device and hub.</p>
<p class="chart-note"></p>
<ul class="gap-list"></ul>
</section>`,
  );
  return page(
    chrome,
    html`<p><a href="/">All patients</a>${data.alarms ? html` · <a href="/patients/${encodeURIComponent(data.mrn)}/alarms">Alarms of this patient</a>` : html``}</p>
<h1>Patient ${data.mrn}</h1>
<h2>Hub</h2>
${hubs}
<h2>Latest readings</h2>
${readings}
<h2>Trends</h2>
<div class="ranges" role="group" aria-label="Time range">${CHART_RANGES.map(
      (r, i) =>
        html`<button type="button" data-range="${String(r.ms)}" aria-pressed="${i === 0 ? 'true' : 'false'}">${r.label}</button>`,
    )}</div>
<p class="muted legend-key">Line: readings as they came. <span class="key-stored">◆</span> stored by the device and sent later (back-filled). A break in the line: no readings for over three times the usual interval. <span class="key-gap">Shaded</span>: readings the hub dropped (gap records).</p>
<div class="charts" id="charts" data-mrn="${data.mrn}">${charts}</div>
${data.exports ? exportSection(data.mrn, data.exports, data.timeZone) : html``}`,
  );
}

/** What the patient page's export form offers. */
export interface ExportForm {
  /** The FHIR download is configured (the clinic's identifier systems are known). */
  readonly fhir: boolean;
  /** The form's first range, as `datetime-local` values in the clinic's zone (YYYY-MM-DDTHH:MM). */
  readonly from: string;
  readonly to: string;
  /** The most measurements a FHIR file holds, for the note. */
  readonly maxFhirMeasurements: number;
}

/**
 * The export form: a plain GET form (no script), the range as two `datetime-local` fields read in the clinic's
 * time zone, and the format. The browser downloads the answer (Content-Disposition: attachment) and stays on
 * the page; a refused range answers a page that says why.
 */
function exportSection(mrn: string, form: ExportForm, timeZone: string): Html {
  return html`<section class="export" id="export">
<h2>Export readings</h2>
<form method="get" action="/patients/${encodeURIComponent(mrn)}/export">
<div><label for="export-from">From</label>
<input id="export-from" name="from" type="datetime-local" value="${form.from}" required></div>
<div><label for="export-to">Until (not included)</label>
<input id="export-to" name="to" type="datetime-local" value="${form.to}" required></div>
<div><label for="export-format">Format</label>
<select id="export-format" name="format">
<option value="csv" selected>CSV (one row per value, for a spreadsheet)</option>
${form.fhir ? html`<option value="fhir">FHIR R4 Bundle (JSON, for an EHR)</option>` : html``}
</select></div>
<div><button type="submit">Download</button></div>
</form>
<p class="muted">Times in ${timeZone}. At most 31 days at a time.${form.fhir ? ` A FHIR file holds at most ${form.maxFhirMeasurements.toLocaleString('en')} readings; the CSV holds every reading of the range.` : ' FHIR downloads are not configured for this clinic.'} Every download is recorded in the audit log.</p>
</section>`;
}

/**
 * The order a patient's measurements are listed and charted in: the vital signs a tile shows first, in the
 * tile's order, then anything else, the device's battery last.
 */
const CLINICAL_ORDER = [
  'MDC_PULS_OXIM_SAT_O2',
  'MDC_PULS_OXIM_PULS_RATE',
  'MDC_PULS_RATE_NON_INV',
  'MDC_ECG_HEART_RATE',
  'MDC_PRESS_BLD_NONINV_SYS',
  'MDC_PRESS_BLD_NONINV_DIA',
  'MDC_PRESS_BLD_NONINV_MEAN',
  'MDC_TEMP_',
  'MDC_MASS_BODY_ACTUAL',
  'MDC_CONC_GLU_',
];

function clinicalRank(code: string): number {
  if (code === 'MDC_ATTR_VAL_BATT_CHARGE') return CLINICAL_ORDER.length + 1;
  for (const [rank, c] of CLINICAL_ORDER.entries()) {
    if (c.endsWith('_') ? code.startsWith(c) : code === c) return rank;
  }
  return CLINICAL_ORDER.length;
}

function valueText(r: SeriesPoint): string {
  if (r.value === null) return 'no value';
  return `${r.value} ${unitText(r.unit)}`;
}

/** The one answer for a patient who does not exist and for one the user may not see: they must look the same. */
export function notFoundPage(chrome: PageChrome): string {
  return page(chrome, html`<h1>Not found</h1><p>There is no such page. <a href="/">All patients</a></p>`);
}

/** A page of a signed-in user that says why something was not done, with the error's code and a way back. */
export function messagePageFor(
  chrome: PageChrome,
  message: {
    readonly heading: string;
    readonly text: string;
    readonly code: string;
    readonly back: { readonly href: string; readonly text: string };
  },
): string {
  return page(
    chrome,
    html`<h1>${message.heading}</h1>
<p class="error" role="alert">${message.text} <span class="muted">[${message.code}]</span></p>
<p><a href="${message.back.href}">${message.back.text}</a></p>`,
  );
}

export function messagePage(title: string, text: string): string {
  return page({ title }, html`<h1>${title}</h1><p>${text}</p><p><a href="/login">Log in</a></p>`);
}
