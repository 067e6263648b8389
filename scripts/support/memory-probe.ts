/**
 * A memory probe for a running hub, loaded with `--import`: where its resident memory goes, from the inside.
 * Build first (`npx tsc -p tsconfig.build.json`), then, e.g.
 *
 *     NODE_OPTIONS="--import ./dist/scripts/support/memory-probe.js" \
 *       node dist/scripts/bench-runtime.js --only live --minutes 12
 *
 * (`bench:runtime` passes NODE_OPTIONS on to the hub, which it starts with the unit's node options; V8 options
 * that Node refuses in NODE_OPTIONS go in its `--node-flags="..."`, which replaces the unit's.)
 * It acts only in the `rpm-gateway start` process. Every 5 s it appends a line to
 * `<tmpdir>/rpm-memory-probe-<pid>.csv`: VmRSS, RssAnon, RssFile (proc(5)), the V8 heap (committed, used, old
 * space used and committed), `external` and `arrayBuffers` (process.memoryUsage()), the count of minor and
 * major collections so far (PerformanceObserver 'gc' entries), and the young generation's size (new_space,
 * which V8 grows up to --max-semi-space-size while many objects survive). "native" (RssAnon - heapTotal -
 * external) is roughly what neither V8 nor ArrayBuffers hold (SQLite, OpenSSL, malloc): roughly, because
 * heapTotal is what V8 committed, not all of it touched yet (early samples can even be negative); its trend is
 * what tells.
 *
 * A first SIGUSR2 starts V8's sampling heap profiler, keeping objects a major collection frees and dropping
 * those a minor (young) one frees (Chrome DevTools protocol, HeapProfiler.startSampling:
 * includeObjectsCollectedByMajorGC); a second one runs two young collections (see there), then
 * writes `<tmpdir>/rpm-memory-probe-<pid>.heapprofile` and stops it. So the profile shows where the objects
 * that reached the old generation since the first signal were allocated, garbage included: what makes the old
 * generation grow between major collections. It opens in
 * Chrome DevTools (Memory, load profile). The profiler keeps its samples, so it costs memory (about 10 MB of
 * RSS after a few minutes in the live benchmark): read RSS trends from a run without it.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const EVERY_MS = 5_000;

function statusKib(status: string, field: string): number {
  return Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN);
}

function startProbe(): void {
  const base = join(tmpdir(), `rpm-memory-probe-${process.pid}`);
  const started = performance.now();
  const collections = { minor: 0, major: 0 };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      // Node 20 puts the collection's kind in `detail` (perf_hooks, PerformanceNodeEntry).
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) collections.minor++;
      else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) collections.major++;
    }
  }).observe({ entryTypes: ['gc'] });

  const kib = (bytes: number) => Math.round(bytes / 1024);
  appendFileSync(
    `${base}.csv`,
    's,vmrss_kib,rssanon_kib,rssfile_kib,heap_total_kib,heap_used_kib,old_used_kib,old_size_kib,' +
      'external_kib,array_buffers_kib,native_kib,minor_gcs,major_gcs,new_size_kib\n',
  );
  setInterval(() => {
    const status = readFileSync('/proc/self/status', 'utf8');
    const memory = process.memoryUsage();
    const spaces = getHeapSpaceStatistics();
    const old = spaces.find((space) => space.space_name === 'old_space');
    const young = spaces.find((space) => space.space_name === 'new_space');
    const anon = statusKib(status, 'RssAnon');
    const line = [
      Math.round((performance.now() - started) / 1000),
      statusKib(status, 'VmRSS'),
      anon,
      statusKib(status, 'RssFile'),
      kib(memory.heapTotal),
      kib(memory.heapUsed),
      kib(old?.space_used_size ?? Number.NaN),
      kib(old?.space_size ?? Number.NaN),
      kib(memory.external),
      kib(memory.arrayBuffers),
      anon - kib(memory.heapTotal) - kib(memory.external),
      collections.minor,
      collections.major,
      kib(young?.space_size ?? Number.NaN),
    ];
    appendFileSync(`${base}.csv`, `${line.join(',')}\n`);
  }, EVERY_MS).unref();

  const session = new Session();
  session.connect();
  let sampling = false;
  let gc: ((options: { type: 'minor' }) => void) | undefined;
  process.on('SIGUSR2', () => {
    if (!sampling) {
      sampling = true;
      // Looked up before sampling starts: it makes a vm context, which would be in the profile.
      gc ??= exposedGc();
      session.post('HeapProfiler.startSampling', {
        samplingInterval: 1024,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: false,
      });
      return;
    }
    sampling = false;
    // Two young collections first: what the young generation still holds at this moment is mostly garbage
    // that no collection has freed yet, and the profiler would count it as if it had reached the old
    // generation (up to a semi-space of it, several MB). Collected now, it drops out; what survives twice is
    // promoted, as it would be anyway.
    gc?.({ type: 'minor' });
    gc?.({ type: 'minor' });
    session.post('HeapProfiler.stopSampling', (error, result) => {
      if (!error) writeFileSync(`${base}.heapprofile`, JSON.stringify(result.profile));
    });
  });
}

/** V8's gc() (with `{ type: 'minor' }`, a young-generation collection), made available at run time. */
function exposedGc(): (options: { type: 'minor' }) => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as (options: { type: 'minor' }) => void;
}

// Only the hub: the benchmark's other processes (and `rpm-gateway init`) get the same NODE_OPTIONS.
if (process.argv.includes('start')) startProbe();
