import { ago, BATTERY, el, newer, valueText } from './format.js';
import { connectLive } from './live.js';

/**
 * The tile wall: per patient the latest vitals (from /api/tiles, then the live feed), how long ago the last
 * reading was, battery, whether each hub's last status said online, and, when the dashboard has an alarm
 * engine, the patient's open alarms (without one the server sends no count, and the tile shows none rather
 * than a "no alarms" nobody checked). Built with textContent only.
 */
const SLOTS = [
  { label: 'SpO2', codes: ['MDC_PULS_OXIM_SAT_O2'] },
  { label: 'Pulse', codes: ['MDC_PULS_OXIM_PULS_RATE', 'MDC_PULS_RATE_NON_INV', 'MDC_ECG_HEART_RATE'] },
  { label: 'Blood pressure', codes: ['MDC_PRESS_BLD_NONINV_SYS', 'MDC_PRESS_BLD_NONINV_DIA'], bp: true },
  { label: 'Temperature', prefix: 'MDC_TEMP_' },
  { label: 'Weight', codes: ['MDC_MASS_BODY_ACTUAL'] },
  {
    label: 'Glucose',
    // Not MDC_CONC_GLU_CONTROL (a control solution, not the patient) nor HbA1c (a lab value).
    codes: [
      'MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD',
      'MDC_CONC_GLU_CAPILLARY_PLASMA',
      'MDC_CONC_GLU_VENOUS_WHOLEBLOOD',
      'MDC_CONC_GLU_VENOUS_PLASMA',
      'MDC_CONC_GLU_ARTERIAL_WHOLEBLOOD',
      'MDC_CONC_GLU_ARTERIAL_PLASMA',
      'MDC_CONC_GLU_UNDETERMINED_WHOLEBLOOD',
      'MDC_CONC_GLU_UNDETERMINED_PLASMA',
      'MDC_CONC_GLU_ISF',
    ],
  },
];
/** A value older than this is shown greyed, with its age. */
const OLD_AFTER_MS = 3_600_000;

const patients = new Map();
for (const tile of document.querySelectorAll('li.tile')) {
  tile.dataset.staleWatch = '';
  patients.set(tile.dataset.mrn, { tile, points: new Map(), hubs: new Map() });
}

const inSlot = (slot, code) => (slot.prefix ? code.startsWith(slot.prefix) : slot.codes.includes(code));

function merge(patient, points, hubs) {
  for (const p of points) {
    if (newer(p, patient.points.get(p.code))) patient.points.set(p.code, p);
  }
  for (const h of hubs) {
    const held = patient.hubs.get(h.gatewayId);
    if (held === undefined || (h.statusAt ?? 0) >= (held.statusAt ?? 0)) {
      patient.hubs.set(h.gatewayId, { ...held, ...h });
    }
  }
}

function newest(patient, slot) {
  let best;
  for (const p of patient.points.values()) if (inSlot(slot, p.code) && newer(p, best)) best = p;
  return best;
}

function vital(slot, patient, now) {
  const row = el('div', 'vital');
  row.append(el('dt', '', slot.label));
  const p = newest(patient, slot);
  const dd = el('dd');
  if (p === undefined) {
    dd.append(el('span', 'muted', '—'));
  } else {
    let text = valueText(p);
    if (slot.bp) {
      const sys = patient.points.get('MDC_PRESS_BLD_NONINV_SYS');
      const dia = patient.points.get('MDC_PRESS_BLD_NONINV_DIA');
      if (sys && dia) text = `${sys.v ?? '?'}/${dia.v ?? '?'} ${sys.unit}`;
    }
    dd.append(el('span', 'value', text));
    dd.append(el('span', 'age', `${ago(p.t, now)}${p.stored ? ', stored by the device' : ''}`));
    if (now - p.t > OLD_AFTER_MS) row.classList.add('old');
  }
  row.dataset.code = p?.code ?? '';
  row.append(dd);
  return row;
}

function alarmLine(patient) {
  const { open, high, medium, low, unacknowledged } = patient.alarms;
  const line = el(
    'p',
    `tile-alarms ${high > 0 ? 'alarm-high' : medium > 0 ? 'alarm-medium' : low > 0 ? 'alarm-low' : 'alarm-none'}${
      open > 0 ? (unacknowledged > 0 ? ' alarm-unacknowledged' : ' alarm-acknowledged') : ''
    }`,
  );
  // An acknowledged alarm whose condition is still present stays open: the line says whether anyone has.
  const acknowledgement = unacknowledged === 0 ? 'all acknowledged' : `${unacknowledged} not acknowledged`;
  const link = el(
    'a',
    '',
    open === 0
      ? 'No open alarms'
      : `${open} open alarm${open === 1 ? '' : 's'}: ${[high && `${high} high`, medium && `${medium} medium`, low && `${low} low`].filter(Boolean).join(', ')}; ${acknowledgement}`,
  );
  link.href = `/patients/${encodeURIComponent(patient.tile.dataset.mrn)}/alarms`;
  line.append(link);
  return line;
}

function render(patient, now = Date.now()) {
  const { tile } = patient;
  for (const old of tile.querySelectorAll('.tile-body')) old.remove();
  const body = el('div', 'tile-body');
  const live = el('p', 'tile-live');
  live.append(el('span', 'live-yes', 'LIVE'), el('span', 'live-no', 'NOT LIVE: values may be out of date'));
  body.append(live);

  const readings = [...patient.points.values()].filter((p) => p.code !== BATTERY);
  const last = readings.reduce((a, p) => (a === undefined || p.t > a ? p.t : a), undefined);
  const since = el('p', 'since', last === undefined ? 'No readings yet' : `Last reading ${ago(last, now)}`);
  if (last === undefined || now - last > OLD_AFTER_MS) since.classList.add('old');
  body.append(since);
  if (patient.alarms !== undefined) body.append(alarmLine(patient));

  const list = el('dl', 'vitals');
  for (const slot of SLOTS) list.append(vital(slot, patient, now));
  body.append(list);

  const foot = el('p', 'tile-foot');
  const battery = patient.points.get(BATTERY);
  foot.append(
    el(
      'span',
      'battery',
      battery === undefined ? 'Battery: not reported' : `Battery ${valueText(battery)} (${battery.device})`,
    ),
  );
  for (const hub of patient.hubs.values()) {
    const state = hub.state === 'unknown' ? 'no status yet' : hub.state;
    const badge = el('span', `hub hub-${hub.state}`, `Hub ${hub.gatewayId}: ${state}`);
    if (hub.statusAt !== undefined) badge.title = `status received ${ago(hub.statusAt, now)}`;
    foot.append(badge);
  }
  if (patient.hubs.size === 0) foot.append(el('span', 'hub hub-unknown', 'No hub assigned'));
  body.append(foot);
  tile.append(body);
}

async function load() {
  const response = await fetch('/api/tiles', { headers: { accept: 'application/json' } });
  if (response.status === 401) {
    location.assign('/login');
    return;
  }
  const { tiles } = await response.json();
  for (const t of tiles) {
    const patient = patients.get(t.mrn);
    if (patient === undefined) continue;
    merge(patient, t.points, t.hubs);
    if (t.alarms !== undefined) patient.alarms = t.alarms;
    render(patient);
  }
  document.body.dataset.tilesLoaded = String(Date.now());
}

connectLive({
  onOpen: () => {
    void load();
  },
  onReading: (event) => {
    const patient = patients.get(event.mrn);
    if (patient === undefined) return;
    merge(patient, event.points, event.hubs);
    render(patient);
  },
  onAlarm: (event) => {
    const patient = patients.get(event.mrn);
    if (patient === undefined) return;
    patient.alarms = event.counts;
    render(patient);
  },
});
// Ages ("4 min ago") move on without new readings.
setInterval(() => {
  for (const patient of patients.values())
    if (patient.points.size > 0 || patient.hubs.size > 0) render(patient);
}, 5_000);
