import { createRequire } from 'node:module';
import { collectDefaultMetrics, type Registry } from 'prom-client';

/** One of prom-client's default metric collectors (prom-client 15 lib/metrics/<name>.js). */
type DefaultCollector = (registry: Registry, config: { eventLoopMonitoringPrecision: number }) => void;

/**
 * The one default collector left out: `nodejs_gc_duration_seconds` (prom-client lib/metrics/gc.js).
 *
 * Why: it watches every garbage collection with a PerformanceObserver of type 'gc', and while any such observer
 * exists Node 20 builds an entry for each collection with deprecated accessors defined on the entry itself
 * (`kind`, `flags`: `deprecate()` wrappers, DEP0152; lib/internal/perf/observe.js). V8 allocates each object's
 * own accessor pair in the old generation (`Factory::NewAccessorPair`, src/heap/factory.cc), which keeps the
 * entry and its wrappers alive until a major collection: about 0.1 MB/min of old-generation garbage in the
 * live benchmark (some 30 young collections a minute), a fifth of what the hub still made once the lease
 * bookkeeping made none (docs/runtime.md, "Memory"). A hub's memory is watched by
 * `process_resident_memory_bytes` and the `nodejs_heap_*` gauges, which remain; pause times are a profiling
 * question, not a service-health one.
 */
const LEFT_OUT = 'gc';

/**
 * Registers prom-client's process metrics (`process_*`, `nodejs_*`: CPU, resident memory, heap, open files,
 * event-loop lag, ...) on `registry`, as `collectDefaultMetrics` does, except the GC-duration histogram.
 * prom-client has no option to leave one out, so its collectors are called one by one, from the list it
 * publishes (`collectDefaultMetrics.metricsList`), with its own default configuration.
 */
export function collectProcessMetrics(registry: Registry): void {
  const require = createRequire(import.meta.url);
  for (const name of collectDefaultMetrics.metricsList) {
    if (name === LEFT_OUT) continue;
    const collector = require(`prom-client/lib/metrics/${name}.js`) as DefaultCollector;
    collector(registry, { eventLoopMonitoringPrecision: 10 });
  }
}
