import { type Html, html } from './html.js';
import type { PageDevice, PatientPageSnapshot } from './source.js';
import {
  duration,
  observationName,
  observationValue,
  plural,
  profileName,
  relative,
  stateWords,
} from './words.js';

export interface RenderOptions {
  /** Epoch ms: "5 minutes ago" is measured from it. */
  readonly now: number;
  /** The IANA time zone to show times in; default the hub's own (the patient's). */
  readonly timeZone?: string;
  /** Seconds between automatic reloads (`<meta http-equiv="refresh">`). */
  readonly refreshSeconds: number;
}

/** How many acknowledged batches the page lists. */
export const SENT_SHOWN = 10;

/** A certificate with fewer days left than this is called out (src/pki/expiry.ts warns at the same 30 days). */
const CERTIFICATE_WARN_DAYS = 30;
const DAY = 86_400_000;

/**
 * The patient page: server-rendered, no script, one local stylesheet (so the Content-Security-Policy can be
 * `default-src 'none'; style-src 'self'`), large text that reflows on a phone. It reloads itself every
 * `refreshSeconds`. It only shows; there is nothing to press.
 */
export function renderPage(s: PatientPageSnapshot, options: RenderOptions): string {
  const at = timeFormatter(options.timeZone);
  const when = (ms: number) => html`${at(ms)} <span class="muted">(${relative(ms, options.now)})</span>`;
  const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="${options.refreshSeconds}">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">
<title>Your health hub</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<main>
<h1>Your health hub</h1>
<p class="muted">${s.hubName} · shown ${at(options.now)}. This page only shows; it changes nothing.</p>
${s.clockSynchronised ? '' : html`<p class="warn">The hub's clock is not set yet (it waits for the time from the internet), so the times below may be wrong.</p>`}

<section>
<h2>Connection to your clinic</h2>
${connection(s, when)}
${certificate(s, options.now, at)}
</section>

<section>
<h2>Your devices</h2>
${s.devices.length === 0 ? html`<p>No devices are set up on this hub yet.</p>` : s.devices.map((d) => device(d, when, at))}
</section>

<section>
<h2>Waiting to be sent</h2>
${backlog(s)}
</section>

<section>
<h2>Sent to your clinic</h2>
${
  s.sent.length === 0
    ? html`<p>Nothing has been sent since the hub started.</p>`
    : html`<ul class="sent">${s.sent
        .slice(0, SENT_SHOWN)
        .map((b) => html`<li>${when(b.atMs)}: ${plural(b.readings, 'reading')} to ${b.clinic}</li>`)}</ul>`
}
</section>
</main>
</body>
</html>
`;
  return page.text;
}

type When = (ms: number) => Html;

function connection(s: PatientPageSnapshot, when: When): Html {
  const c = s.connection;
  const since = c.sinceMs === null ? '' : html`, since ${when(c.sinceMs)}`;
  switch (c.state) {
    case 'connected':
      return html`<p class="good">Connected to ${c.clinic ?? 'your clinic'}${since}.</p>`;
    case 'connecting':
      return html`<p>Trying to reach ${c.clinic ?? 'your clinic'}${since}. Your readings are kept safely on the hub meanwhile.</p>`;
    case 'offline':
      return html`<p class="warn">Not connected to your clinic${since}. Your readings are kept safely on the hub and sent when the connection is back.</p>`;
  }
}

function certificate(s: PatientPageSnapshot, now: number, at: (ms: number) => string): Html {
  if (s.certificateNotAfterMs === null) {
    return html`<p class="warn">The hub cannot read its security certificate. Please tell your care team.</p>`;
  }
  const left = s.certificateNotAfterMs - now;
  if (left < 0) {
    return html`<p class="warn">The hub's security certificate expired on ${at(s.certificateNotAfterMs)}: readings are kept but cannot be sent. Please tell your care team.</p>`;
  }
  const days = Math.floor(left / DAY);
  return days < CERTIFICATE_WARN_DAYS
    ? html`<p class="warn">The hub's security certificate runs out in ${plural(days, 'day')} (${at(s.certificateNotAfterMs)}). Your care team renews it; tell them if this stays.</p>`
    : html`<p>The hub's security certificate is valid until ${at(s.certificateNotAfterMs)}.</p>`;
}

function device(d: PageDevice, when: When, at: (ms: number) => string): Html {
  const kind = profileName(d.profile);
  const state = stateWords(d.state);
  const reading = d.lastReading;
  return html`<article class="device">
<h3>${d.label ?? kind}</h3>
<p class="muted">${d.label === null ? '' : html`${kind} · `}${d.model ?? ''}${d.model === null ? '' : ' · '}device ${d.id}</p>
<p class="${state.tone}">${state.text}</p>
<p>Last heard from: ${d.lastSeenMs === null ? 'not yet' : when(d.lastSeenMs)}${d.batteryPercent === null ? '' : html` · battery ${d.batteryPercent} %`}</p>
${
  reading === null
    ? html`<p>No reading yet.</p>`
    : html`<p>Last reading, ${readingTime(reading.time, at)}:</p>
<dl>${reading.observations.map((o) => html`<dt>${observationName(o.code)}</dt><dd>${observationValue(o)}</dd>`)}</dl>`
}
</article>
`;
}

function backlog(s: PatientPageSnapshot): Html {
  const { pending, oldestPendingAgeMs } = s.backlog;
  const total = pending.alert + pending.live + pending.backlog;
  if (total === 0) return html`<p class="good">Nothing is waiting: everything has reached your clinic.</p>`;
  const oldest = oldestPendingAgeMs === null ? '' : `; the oldest has waited ${duration(oldestPendingAgeMs)}`;
  const urgent = pending.alert > 0 ? html` (${plural(pending.alert, 'is', 'are')} marked urgent)` : '';
  return html`<p>${plural(total, 'item')} waiting to be sent${urgent}${oldest}. They are kept safely on the hub.</p>`;
}

/**
 * A Measurement's time: an instant (with `Z` or an offset) is shown in the hub's time zone; a device's own
 * local time without an offset is shown as the device wrote it.
 */
function readingTime(time: string, at: (ms: number) => string): string {
  if (/(?:Z|[+-]\d{2}:?\d{2})$/.test(time)) {
    const ms = Date.parse(time);
    if (!Number.isNaN(ms)) return at(ms);
  }
  const local = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(time);
  return local ? `${local[1]} ${local[2]} (the device's clock)` : time;
}

/** "28 Nov 2026, 12:03", in the given time zone. */
function timeFormatter(timeZone: string | undefined): (ms: number) => string {
  const format = new Intl.DateTimeFormat('en-GB', {
    dateStyle: 'medium',
    timeStyle: 'short',
    ...(timeZone === undefined ? {} : { timeZone }),
  });
  return (ms) => format.format(ms);
}

/** The same content as data: /status.json. Times as ISO-8601 UTC; values with their UCUM units. */
export function statusJson(s: PatientPageSnapshot, now: number): Record<string, unknown> {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    generatedAt: iso(now),
    hub: s.hubName,
    clockSynchronised: s.clockSynchronised,
    connection: { state: s.connection.state, clinic: s.connection.clinic, since: iso(s.connection.sinceMs) },
    certificate: { notAfter: iso(s.certificateNotAfterMs) },
    devices: s.devices.map((d) => ({
      id: d.id,
      label: d.label,
      profile: d.profile,
      model: d.model,
      state: d.state,
      lastSeen: iso(d.lastSeenMs),
      batteryPercent: d.batteryPercent,
      lastReading: d.lastReading,
    })),
    backlog: { pending: s.backlog.pending, oldestPendingAgeMs: s.backlog.oldestPendingAgeMs },
    sent: s.sent
      .slice(0, SENT_SHOWN)
      .map((b) => ({ at: iso(b.atMs), readings: b.readings, clinic: b.clinic })),
  };
}
