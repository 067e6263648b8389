import { clock, el, valueText } from './format.js';
import { connectLive } from './live.js';

/**
 * A patient's charts: one uPlot chart per code (uPlot is loaded before this module, from /assets/uplot.js),
 * over the chosen range, from /api/patients/:mrn/series and then the live feed.
 *  - Gaps are drawn as gaps: where two readings are further apart than three times the usual (median)
 *    interval, a null point goes between them and the line breaks; uPlot never joins across a null
 *    (spanGaps false). Gap records (readings the hub dropped) are shaded and listed under the chart.
 *  - Stored readings (back-filled: the device kept them and sent them later) get their own marker series.
 *  - Pointing at a reading shows its time, device, driver and hub (uPlot's setCursor hook).
 */
const uPlot = globalThis.uPlot;
const GAP_FACTOR = 3;
const LINE = '#0b4f8a';
const STORED = '#b35c00';
const GAP_FILL = 'rgba(190, 30, 30, 0.14)';

const container = document.getElementById('charts');
const mrn = container.dataset.mrn;
let range =
  Number(document.querySelector('.ranges button[aria-pressed="true"]')?.dataset.range) || 21_600_000;
let window_ = { from: Date.now() - range, to: Date.now() };
const charts = [...container.querySelectorAll('section.chart')].map((section) => {
  section.dataset.staleWatch = '';
  return {
    section,
    code: section.dataset.code,
    name: section.dataset.name,
    points: [],
    allGaps: [],
    gaps: [],
    plot: undefined,
  };
});

/** uPlot's data (seconds on x) and, per index, the reading there (undefined where a gap's null point is). */
function build(chart) {
  const points = [...chart.points].sort((a, b) => a.t - b.t || (a.id < b.id ? -1 : 1));
  const steps = [];
  for (let i = 1; i < points.length; i++) steps.push(points[i].t - points[i - 1].t);
  steps.sort((a, b) => a - b);
  const usual = steps.length >= 2 ? steps[Math.floor(steps.length / 2)] : undefined;
  const xs = [];
  const ys = [];
  const stored = [];
  const meta = [];
  points.forEach((p, i) => {
    const before = points[i - 1];
    if (before !== undefined && usual !== undefined && usual > 0 && p.t - before.t > GAP_FACTOR * usual) {
      xs.push((before.t + p.t) / 2000);
      ys.push(null);
      stored.push(null);
      meta.push(undefined);
    }
    xs.push(p.t / 1000);
    ys.push(p.v);
    stored.push(p.stored ? p.v : null);
    meta.push(p);
  });
  return { data: [xs, ys, stored], meta, count: points.length };
}

function showProvenance(chart, idx) {
  const line = chart.section.querySelector('.provenance');
  const p = idx === null || idx === undefined ? undefined : chart.meta?.[idx];
  line.textContent =
    p === undefined
      ? 'Point at a reading to see its device and hub.'
      : `${clock(p.t)}: ${valueText(p)}; device ${p.device} (${p.driver}) via hub ${p.hub}${p.stored ? '; stored by the device and sent later' : '; sent live'}`;
}

function shadeGaps(chart, u) {
  const { ctx, bbox } = u;
  ctx.save();
  ctx.fillStyle = GAP_FILL;
  for (const g of chart.gaps) {
    const x0 = u.valToPos(g.from / 1000, 'x', true);
    const x1 = u.valToPos(g.to / 1000, 'x', true);
    const left = Math.max(bbox.left, Math.min(x0, x1));
    const right = Math.min(bbox.left + bbox.width, Math.max(x0, x1));
    if (right >= bbox.left && left <= bbox.left + bbox.width) {
      ctx.fillRect(left, bbox.top, Math.max(right - left, 3), bbox.height);
    }
  }
  ctx.restore();
}

function listGaps(chart) {
  const list = chart.section.querySelector('.gap-list');
  list.replaceChildren(
    ...chart.gaps.map((g) =>
      el(
        'li',
        'gap',
        `Gap record: ${g.count} reading(s) from device ${g.device} on hub ${g.hub} were dropped (${g.reason}) between ${clock(g.from)} and ${clock(g.to)}.`,
      ),
    ),
  );
}

function draw(chart) {
  const devices = new Set(chart.points.map((p) => p.device));
  // A gap record names a device: it shows on the charts of the codes that device sends ('*': every chart).
  chart.gaps = chart.allGaps.filter((g) => g.device === '*' || devices.has(g.device));
  const { data, meta, count } = build(chart);
  chart.meta = meta;
  chart.section.dataset.points = String(count);
  listGaps(chart);
  const plotEl = chart.section.querySelector('.plot');
  const width = Math.max(300, plotEl.clientWidth || 500);
  const scale = () => [window_.from / 1000, window_.to / 1000];
  if (chart.plot === undefined) {
    chart.plot = new uPlot(
      {
        width,
        height: 180,
        scales: { x: { time: true, range: scale } },
        series: [
          {},
          { label: chart.name, stroke: LINE, width: 1.5, spanGaps: false, points: { show: true, size: 4 } },
          {
            label: 'stored, sent later',
            stroke: STORED,
            paths: () => null,
            points: { show: true, size: 9, width: 2, stroke: STORED, fill: '#ffffff' },
          },
        ],
        hooks: {
          setCursor: [(u) => showProvenance(chart, u.cursor.idx)],
          draw: [(u) => shadeGaps(chart, u)],
        },
      },
      data,
      plotEl,
    );
  } else {
    chart.plot.setData(data);
  }
  chart.section.dataset.drawnAt = String(Date.now());
}

async function loadChart(chart) {
  const query = new URLSearchParams({ code: chart.code, from: String(window_.from), to: String(window_.to) });
  const response = await fetch(`/api/patients/${encodeURIComponent(mrn)}/series?${query}`, {
    headers: { accept: 'application/json' },
  });
  if (response.status === 401) {
    location.assign('/login');
    return;
  }
  if (!response.ok) {
    chart.section.querySelector('.chart-note').textContent = 'The readings could not be loaded.';
    return;
  }
  const body = await response.json();
  chart.points = body.points;
  chart.allGaps = body.gaps;
  chart.section.querySelector('.chart-note').textContent = body.truncated
    ? `Too many readings in this range to draw them all: the chart ends at ${clock(body.points.at(-1).t)}. Choose a shorter range.`
    : '';
  draw(chart);
}

function loadAll() {
  window_ = { from: Date.now() - range, to: Date.now() };
  return Promise.all(charts.map(loadChart));
}

for (const button of document.querySelectorAll('.ranges button')) {
  button.addEventListener('click', () => {
    range = Number(button.dataset.range);
    for (const b of document.querySelectorAll('.ranges button')) {
      b.setAttribute('aria-pressed', String(b === button));
    }
    void loadAll();
  });
}

connectLive({
  onOpen: () => {
    void loadAll();
  },
  onReading: (event) => {
    if (event.mrn !== mrn) return;
    window_.to = Math.max(window_.to, Date.now());
    for (const chart of charts) {
      const fresh = event.points.filter(
        (p) =>
          p.code === chart.code &&
          p.t >= window_.from &&
          !chart.points.some((q) => q.id === p.id && q.code === p.code),
      );
      chart.allGaps.push(...event.gaps.filter((g) => g.from !== undefined));
      if (fresh.length === 0 && event.gaps.length === 0) continue;
      chart.points.push(...fresh);
      if (chart.plot !== undefined) draw(chart);
    }
  },
});
