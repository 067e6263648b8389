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
`;
