/** Shared by the tile wall and the patient page: DOM building with textContent only, and words for times. */

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** "just now", "4 min ago", "3 h ago", "2 days ago". */
export function ago(t, now = Date.now()) {
  const s = Math.round((now - t) / 1000);
  if (s < 0) return 'in the future (device clock?)';
  if (s < 10) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400 * 2) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} days ago`;
}

export function clock(t) {
  return new Date(t).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'medium' });
}

export function valueText(p) {
  return p.v === null ? `no value (${p.invalid ?? 'invalid'})` : `${p.v} ${p.unit}`;
}

/** Newer by measurement time, then measurement id: the order the server's latest() uses. */
export function newer(a, b) {
  return b === undefined || a.t > b.t || (a.t === b.t && a.id >= b.id);
}

export const BATTERY = 'MDC_ATTR_VAL_BATT_CHARGE';
