import { MDC_CODES, type MdcCode } from '../../../model/codes.js';
import { UCUM_UNITS } from '../../../model/units.js';
import { type Html, html } from '../../../patient-page/html.js';
import { observationName, relative } from '../../../patient-page/words.js';
import type { Alarm, AlarmKind, AlarmLimit } from '../../alarms/model.js';

/**
 * The alarm lists and the limits form, server-rendered like every dashboard page (no inline script or style:
 * the CSP forbids both; every value escaped by the `html` tag). Colours come from /assets/alarms.css, but a
 * priority is always written out too ("High"), so it is never told by colour alone (WCAG 2.2 success
 * criterion 1.4.1).
 */

/** What escalation this system does not do, on every alarm page (docs/alarms.md, "Out of scope"). */
export function escalationBanner(): Html {
  return html`<p class="alarm-banner" role="note"><strong>Nobody is called for you.</strong> This dashboard only shows alarms: it does not page, phone or repeat an alarm when nobody is watching, and it cannot tell whether anyone is. An alarm stays listed until someone acknowledges it. Escalation when nobody is watching is out of scope.</p>`;
}

export interface AlarmListView {
  readonly alarms: readonly Alarm[];
  readonly now: number;
  readonly timeZone: string;
  /** The session's CSRF token for the acknowledge buttons. */
  readonly csrfToken: string;
  /** Where an acknowledgement returns to: this page's path. */
  readonly returnTo: string;
  /** Whether to show the patient column (the clinic-wide list). */
  readonly showPatient: boolean;
  /**
   * Where the page's script (assets/alarms.js) fetches this list again after each `alarm` event of the live
   * feed; absent: a list that is not kept current.
   */
  readonly liveSource?: string;
  /** The one patient whose alarms the list shows, if it is one patient's: its events only refresh it. */
  readonly patient?: string;
}

const KIND_WORDS: Readonly<Record<AlarmKind, string>> = {
  physiological: 'Past the limit',
  'hub-offline': 'Hub offline',
  'device-silent': 'Device silent',
  'battery-low': 'Battery low',
  gap: 'Readings lost on the hub',
  'cert-expiry': 'Hub certificate ends soon',
  'clock-skew': 'Hub clock ahead',
};

const PRIORITY_WORDS = { high: 'High', medium: 'Medium', low: 'Low' } as const;

const STATE_WORDS = {
  active: 'Active',
  latched: 'Ended, waiting for acknowledgement',
  cleared: 'Over',
} as const;

/**
 * The alarms as a table: open first, then priority, newest first (the store's order, compareAlarms), in a
 * container the live page script replaces as a whole with a fresh rendering from `liveSource` (one renderer,
 * this one, for the first load and every update; and it is stale-marked like the tiles).
 */
export function alarmTable(view: AlarmListView): Html {
  const attributes = view.liveSource
    ? html` data-alarm-list="${view.liveSource}" data-stale-watch${view.patient === undefined ? '' : html` data-alarm-patient="${view.patient}"`}`
    : html``;
  return html`<div class="alarm-list"${attributes}>${alarmRows(view)}</div>`;
}

function alarmRows(view: AlarmListView): Html {
  if (view.alarms.length === 0) return html`<p class="muted">No alarms.</p>`;
  const when = timeFormat(view.timeZone);
  const rows = view.alarms.map((alarm) => {
    const what = describe(alarm);
    // A late alarm describes the past: its time is the reading's own, labelled, never "now".
    const time = alarm.late
      ? html`<span class="alarm-late-label">Late</span> measured ${when(alarm.measuredAt ?? alarm.raisedAt)}${
          alarm.measuredAt === undefined ? '' : html` (${relative(alarm.measuredAt, view.now)})`
        }; reported ${when(alarm.raisedAt)}`
      : alarm.measuredAt !== undefined
        ? html`${when(alarm.measuredAt)} (${relative(alarm.measuredAt, view.now)})`
        : html`${when(alarm.raisedAt)} (${relative(alarm.raisedAt, view.now)})`;
    const ack =
      alarm.acknowledgedBy !== undefined
        ? html`Acknowledged by ${alarm.acknowledgedBy}, ${when(alarm.acknowledgedAt ?? alarm.raisedAt)}`
        : alarm.state === 'cleared'
          ? html`<span class="muted">Not acknowledged</span>`
          : html`<form method="post" action="/alarms/${alarm.id}/ack" class="alarm-ack">
<input type="hidden" name="_csrf" value="${view.csrfToken}">
<input type="hidden" name="return" value="${view.returnTo}">
<button type="submit">Acknowledge</button></form>`;
    const patient = view.showPatient
      ? html`<td><a href="/patients/${encodeURIComponent(alarm.mrn)}/alarms">${alarm.mrn}</a></td>`
      : '';
    return html`<tr class="alarm alarm-${alarm.priority} alarm-${alarm.state}${alarm.late ? ' alarm-late' : ''}" id="alarm-${alarm.id}" data-alarm-id="${alarm.id}">
<td class="alarm-priority">${PRIORITY_WORDS[alarm.priority]}</td>
<td>${STATE_WORDS[alarm.state]}</td>
${patient}<td>${what}</td>
<td>${time}</td>
<td>${ack}</td>
</tr>`;
  });
  return html`<table class="alarms"><thead><tr><th>Priority</th><th>State</th>${
    view.showPatient ? html`<th>Patient</th>` : ''
  }<th>What</th><th>When</th><th>Acknowledgement</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/**
 * The alarm section of a patient's page: the banner and the patient's alarms. Exported so the patient page
 * can include it; `/patients/:mrn/alarms` shows it on its own.
 */
export function patientAlarmsSection(
  view: Omit<AlarmListView, 'showPatient' | 'patient'> & { readonly mrn: string },
): Html {
  return html`<section class="patient-alarms" aria-labelledby="alarms-heading">
<h2 id="alarms-heading">Alarms</h2>
${escalationBanner()}
${alarmTable({ ...view, showPatient: false, patient: view.mrn })}
</section>`;
}

function describe(alarm: Alarm): Html {
  const kind = KIND_WORDS[alarm.kind];
  if (alarm.kind === 'physiological' && alarm.code !== undefined) {
    const side = alarm.details.side;
    const limit = alarm.details.limit;
    const limitText =
      typeof limit === 'number'
        ? ` (${side === 'above' ? 'above' : 'below'} ${valueText(limit, alarm.unit)})`
        : '';
    return html`${codeName(alarm.code)}: ${valueText(alarm.value, alarm.unit)}${limitText}`;
  }
  if (alarm.kind === 'battery-low' && alarm.value !== undefined) {
    return html`${kind}: ${valueText(alarm.value, alarm.unit)} (hub ${alarm.gatewayId}${alarm.deviceId ? html`, device ${alarm.deviceId}` : ''})`;
  }
  return html`${kind} (hub ${alarm.gatewayId}${alarm.deviceId ? html`, device ${alarm.deviceId}` : ''})`;
}

export function codeName(code: string): string {
  return Object.hasOwn(MDC_CODES, code) ? observationName(code as MdcCode) : code;
}

function valueText(value: number | undefined, unit: string | undefined): string {
  if (value === undefined) return 'no value';
  if (unit === undefined) return String(value);
  const display = (UCUM_UNITS as Readonly<Record<string, { display?: string } | undefined>>)[unit]?.display;
  return `${value} ${display ?? unit}`;
}

function timeFormat(timeZone: string): (ms: number) => string {
  const format = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'medium', timeZone });
  return (ms) => format.format(ms);
}

/** The limits form's outcome line after a save. */
export type LimitsOutcome =
  | { readonly kind: 'applied'; readonly gatewayId: string }
  | { readonly kind: 'refused'; readonly gatewayId: string; readonly message: string }
  | { readonly kind: 'no-answer'; readonly gatewayId: string; readonly message: string }
  | { readonly kind: 'no-hub' }
  | { readonly kind: 'not-configured' };

export function outcomeLine(outcome: LimitsOutcome): Html {
  switch (outcome.kind) {
    case 'applied':
      return html`<p class="outcome outcome-ok" role="status">Saved. Hub ${outcome.gatewayId} applied the limits.</p>`;
    case 'refused':
      return html`<p class="outcome outcome-bad" role="alert">Saved at the clinic, but hub ${outcome.gatewayId} refused the limits: ${outcome.message}</p>`;
    case 'no-answer':
      return html`<p class="outcome outcome-bad" role="alert">Saved at the clinic, but hub ${outcome.gatewayId} did not answer: ${outcome.message} The clinic judges the readings by the new limits already; save again later to send them to the hub.</p>`;
    case 'no-hub':
      return html`<p class="outcome" role="status">Saved at the clinic. No hub is assigned to this patient now, so none was sent the limits.</p>`;
    case 'not-configured':
      return html`<p class="outcome" role="status">Saved at the clinic. This dashboard does not send limits to hubs (dashboard.hubCommands is not configured), so the hub keeps its own.</p>`;
  }
}

/** One row of the limits form: a code the patient has a limit for, or one of the defaults' codes. */
export interface LimitRow {
  readonly code: string;
  readonly unit: string;
  readonly on: boolean;
  readonly below?: number | undefined;
  readonly above?: number | undefined;
  readonly forMs: number;
  readonly hysteresis: number;
  readonly priority: AlarmLimit['priority'];
}

export function limitsForm(options: {
  readonly mrn: string;
  readonly rows: readonly LimitRow[];
  readonly defaults: boolean;
  readonly csrfToken: string;
  readonly error?: string;
  readonly outcome?: LimitsOutcome;
  readonly setBy?: string;
}): Html {
  const rows = options.rows.map((row, i) => {
    const n = String(i);
    const unit =
      (UCUM_UNITS as Readonly<Record<string, { display?: string } | undefined>>)[row.unit]?.display ??
      row.unit;
    const priority = (p: AlarmLimit['priority']) =>
      html`<option value="${p}"${row.priority === p ? html` selected` : ''}>${PRIORITY_WORDS[p]}</option>`;
    return html`<tr>
<td><input type="hidden" name="code.${n}" value="${row.code}"><input type="hidden" name="unit.${n}" value="${row.unit}">
<label class="inline"><input type="checkbox" name="on.${n}" value="on"${row.on ? html` checked` : ''}> ${codeName(row.code)}</label></td>
<td>${unit}</td>
<td><input class="number" type="text" inputmode="decimal" name="below.${n}" value="${row.below ?? ''}" aria-label="${codeName(row.code)} below"></td>
<td><input class="number" type="text" inputmode="decimal" name="above.${n}" value="${row.above ?? ''}" aria-label="${codeName(row.code)} above"></td>
<td><input class="number" type="text" inputmode="numeric" name="for.${n}" value="${row.forMs / 1000}" aria-label="${codeName(row.code)} for seconds"></td>
<td><input class="number" type="text" inputmode="decimal" name="hysteresis.${n}" value="${row.hysteresis}" aria-label="${codeName(row.code)} hysteresis"></td>
<td><select name="priority.${n}" aria-label="${codeName(row.code)} priority">${priority('high')}${priority('medium')}${priority('low')}</select></td>
</tr>`;
  });
  const source = options.defaults
    ? html`<p class="muted">This patient has the default limits: nobody has set any yet.</p>`
    : html`<p class="muted">Set by ${options.setBy ?? 'an administrator'}.</p>`;
  return html`<p><a href="/patients/${encodeURIComponent(options.mrn)}">Patient ${options.mrn}</a> · <a href="/patients/${encodeURIComponent(options.mrn)}/alarms">Alarms</a></p>
<h1>Alarm limits of ${options.mrn}</h1>
${escalationBanner()}
${options.outcome ? outcomeLine(options.outcome) : ''}
${options.error ? html`<p class="error" role="alert">${options.error}</p>` : ''}
${source}
<p>A reading past a limit for at least the given seconds raises an alarm of the given priority; it ends once a reading is back past the limit by the hysteresis. Leave below or above empty for no limit on that side; untick a row for no alarm for that measurement. Saving sends the limits to the patient's hub too, in a signed command.</p>
<form method="post" action="/patients/${encodeURIComponent(options.mrn)}/limits">
<input type="hidden" name="_csrf" value="${options.csrfToken}">
<input type="hidden" name="rows" value="${options.rows.length}">
<table class="limits"><thead><tr><th>Measurement</th><th>Unit</th><th>Below</th><th>Above</th><th>For (s)</th><th>Hysteresis</th><th>Priority</th></tr></thead>
<tbody>${rows}</tbody></table>
<button type="submit">Save limits</button>
</form>`;
}

/** The alarm pages' own styles (served at /assets/alarms.css; the CSP allows no inline style). */
export const ALARMS_CSS = `.alarm-banner { border: 2px solid var(--line); padding: 0.5rem 0.8rem; }
table.alarms { width: 100%; }
tr.alarm td { vertical-align: top; }
tr.alarm-high td.alarm-priority { background: #b00020; color: #fff; font-weight: 700; }
tr.alarm-medium td.alarm-priority { background: #f2c200; color: #111; font-weight: 700; }
tr.alarm-low td.alarm-priority { background: #0b4f8a; color: #fff; }
tr.alarm-high.alarm-active { outline: 3px solid #b00020; outline-offset: -3px; }
tr.alarm-cleared { opacity: 0.7; }
.alarm-list.stale { border: 2px solid #b3261e; }
.alarm-list.stale::before { content: "NOT LIVE: this list may be out of date"; display: block; color: #b3261e; font-weight: 700; padding: 0.2rem 0.4rem; }
.alarm-late-label { display: inline-block; border: 1px solid currentColor; padding: 0 0.3rem; font-weight: 700; text-transform: uppercase; font-size: 0.85em; }
form.alarm-ack button { margin: 0; }
table.limits input.number { width: 5rem; }
label.inline { display: inline; font-weight: normal; margin: 0; }
.outcome { font-weight: 600; }
.outcome-ok { color: var(--accent); }
.outcome-bad { color: var(--warn); }
`;
