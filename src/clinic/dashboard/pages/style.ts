/**
 * The dashboard's only stylesheet, served by the dashboard itself at /assets/dashboard.css (never a CDN: the
 * CSP allows `style-src 'self'` only, and a clinic's network may not reach the internet). Contrast as WCAG 2.2
 * success criterion 1.4.3 asks.
 */
export const DASHBOARD_CSS = `:root { color-scheme: light dark; --fg: #111; --bg: #fff; --muted: #555; --warn: #8a1c00; --line: #ccc; --accent: #0b4f8a; }
@media (prefers-color-scheme: dark) { :root { --fg: #f2f2f2; --bg: #111; --muted: #bbb; --warn: #ffb199; --line: #444; --accent: #8cc4ff; } }
body { margin: 0; background: var(--bg); color: var(--fg); font-family: system-ui, sans-serif; line-height: 1.5; }
header { display: flex; justify-content: space-between; align-items: center; padding: 0.5rem 1rem; border-bottom: 2px solid var(--line); }
header form { margin: 0; }
header nav a { margin-right: 1rem; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.6rem; margin: 0.5rem 0; }
h2 { font-size: 1.2rem; margin: 1.5rem 0 0.5rem; }
a { color: var(--accent); }
label { display: block; margin: 0.75rem 0 0.25rem; font-weight: 600; }
input[type=text], input[type=password] { font-size: 1.1rem; padding: 0.4rem; width: 100%; max-width: 20rem; box-sizing: border-box; }
button { font-size: 1rem; padding: 0.4rem 1rem; margin-top: 1rem; }
header button { margin: 0; }
.error { color: var(--warn); font-weight: 600; }
.muted { color: var(--muted); }
.secret { font-family: ui-monospace, monospace; font-size: 1.1rem; letter-spacing: 0.1em; overflow-wrap: anywhere; }
ul.patients { list-style: none; padding: 0; }
ul.patients li { padding: 0.4rem 0; border-bottom: 1px solid var(--line); }
table { border-collapse: collapse; }
th, td { text-align: left; padding: 0.3rem 0.8rem 0.3rem 0; border-bottom: 1px solid var(--line); }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
main:has(#tiles), main:has(#charts) { max-width: 90rem; }
.live-state { margin: 0; padding: 0.4rem 1rem; font-weight: 600; background: #e6f4ea; color: #0d4a1f; }
body[data-live="connecting"] .live-state, body[data-live="stale"] .live-state { background: #fde2dc; color: #7a1600; }
body[data-live="stale"] .live-state { font-size: 1.15rem; border-bottom: 3px solid #b3261e; }
ul.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(19rem, 1fr)); gap: 0.8rem; }
ul.patients li.tile { border: 2px solid var(--line); border-radius: 6px; padding: 0.5rem 0.8rem; }
li.tile h2 { margin: 0 0 0.3rem; font-size: 1.15rem; }
ul.patients li.tile.stale { border-color: #b3261e; background: repeating-linear-gradient(135deg, transparent 0 12px, rgba(179, 38, 30, 0.07) 12px 24px); }
.tile-live { margin: 0; font-size: 0.8rem; font-weight: 700; letter-spacing: 0.05em; }
.tile-live .live-yes { color: #1e7b34; }
.tile-live .live-no { color: #b3261e; }
li.tile.stale .live-yes, li.tile:not(.stale) .live-no { display: none; }
li.tile.stale .vitals .value { color: var(--muted); text-decoration: line-through 1px; }
.since { margin: 0.2rem 0; }
.tile-alarms { margin: 0.2rem 0; font-weight: 700; }
.tile-alarms a { color: inherit; }
.tile-alarms.alarm-high { background: #b3261e; color: #fff; padding: 0.1rem 0.4rem; border-radius: 4px; }
.tile-alarms.alarm-medium { background: #f2c94c; color: #111; padding: 0.1rem 0.4rem; border-radius: 4px; }
.tile-alarms.alarm-low { border: 1px solid #0b4f8a; color: var(--accent); padding: 0.1rem 0.4rem; border-radius: 4px; }
.tile-alarms.alarm-none { font-weight: 400; color: var(--muted); }
.since.old, .vital.old .value { color: var(--muted); }
dl.vitals { display: grid; grid-template-columns: 1fr 1fr; gap: 0.2rem 0.8rem; margin: 0.3rem 0; }
.vital dt { font-size: 0.8rem; color: var(--muted); }
.vital dd { margin: 0; }
.vital .value { font-size: 1.25rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.vital .age { display: block; font-size: 0.75rem; color: var(--muted); }
.tile-foot { display: flex; flex-wrap: wrap; gap: 0.4rem 0.8rem; margin: 0.3rem 0 0; font-size: 0.85rem; }
.hub { padding: 0 0.4rem; border-radius: 4px; border: 1px solid var(--line); }
.hub-online { border-color: #1e7b34; color: #1e7b34; }
.hub-offline { border-color: #b3261e; color: #b3261e; font-weight: 700; }
.ranges button { margin: 0 0.3rem 0.5rem 0; }
.ranges button[aria-pressed="true"] { font-weight: 700; outline: 2px solid var(--accent); }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(34rem, 1fr)); gap: 0 1rem; }
section.chart { min-width: 0; border: 2px solid var(--line); border-radius: 6px; padding: 0.3rem 0.8rem; margin: 0 0 1rem; }
section.chart.stale { border-color: #b3261e; }
section.chart.stale h3::after { content: " (NOT LIVE)"; color: #b3261e; }
section.chart h3 { margin: 0.3rem 0; font-size: 1.05rem; }
.key-stored { color: #b35c00; }
.key-gap { background: rgba(190, 30, 30, 0.14); padding: 0 0.3rem; }
.provenance { min-height: 1.5em; font-size: 0.9rem; }
.gap-list { font-size: 0.85rem; color: var(--warn); }
section.export form { display: flex; flex-wrap: wrap; align-items: end; gap: 0 1rem; }
section.export input, section.export select { font-size: 1rem; padding: 0.3rem; }
`;
