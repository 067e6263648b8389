/**
 * The page's only stylesheet, served from the hub itself at /style.css (never a CDN: the page works without
 * the internet and the CSP allows `style-src 'self'` only). Large type and high contrast for older eyes
 * (WCAG 2.2 success criteria 1.4.3 contrast and 1.4.4 resize text); one column that fits a phone.
 */
export const PAGE_CSS = `:root { color-scheme: light dark; --fg: #111; --bg: #fff; --muted: #555; --good: #0a5c2b; --warn: #8a1c00; --line: #ccc; }
@media (prefers-color-scheme: dark) { :root { --fg: #f2f2f2; --bg: #111; --muted: #bbb; --good: #7ddc9d; --warn: #ffb199; --line: #444; } }
html { font-size: 125%; }
body { margin: 0; background: var(--bg); color: var(--fg); font-family: system-ui, sans-serif; line-height: 1.5; }
main { max-width: 40rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.8rem; margin: 0.5rem 0; }
h2 { font-size: 1.4rem; margin: 1.5rem 0 0.5rem; border-bottom: 2px solid var(--line); }
h3 { font-size: 1.2rem; margin: 0; }
.device { border: 2px solid var(--line); border-radius: 0.5rem; padding: 0.75rem; margin: 0.75rem 0; }
.muted { color: var(--muted); }
.good { color: var(--good); font-weight: 600; }
.warn { color: var(--warn); font-weight: 600; }
dl { display: grid; grid-template-columns: 1fr auto; gap: 0.25rem 1rem; margin: 0.5rem 0; }
dt { margin: 0; }
dd { margin: 0; font-weight: 600; text-align: right; }
ul.sent { padding-left: 1.2rem; }
p { margin: 0.4rem 0; overflow-wrap: anywhere; }
`;
