import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ClinicIntake } from '../../src/clinic/intake/index.js';
import { POSTGRES_COMMITS_IN_FLIGHT } from '../../src/clinic/service/intake-from-config.js';
import type { ClinicStore } from '../../src/clinic/storage/clinic-store.js';
import { SqliteClinicStore } from '../../src/clinic/storage/sqlite/sqlite-clinic-store.js';
import { openPgStore } from './clinic-bench-pg.js';
import { type BenchPlan, type PhaseName, phaseTotals, planPhase, probeId } from './clinic-bench-plan.js';
import { startWaitSampler, type WaitSampler } from './pg-wait-sampler.js';

/**
 * The intake process of bench:clinic (forked with IPC; the process whose CPU, RSS and throughput are measured):
 * one ClinicIntake, as `rpm-gateway clinic intake` runs it, connected to the broker over mutual TLS, storing into
 * a fresh SQLite file or PostgreSQL database.
 *
 * Commit times are stamped when the store's `commit()` resolves in the intake (the moment the intake may send
 * the messages' PUBACKs): the store is wrapped so that its commit outcome, which lists the measurement ids it
 * stored, is seen here; the stamp is `performance.timeOrigin + performance.now()` (wall-clock milliseconds with
 * sub-millisecond resolution; the publisher process stamps its publish times the same way, on the same machine)
 * for the first reading of every message of the phase. The intake does not subscribe to the store's live feed, as
 * `rpm-gateway clinic intake` does not: on PostgreSQL a subscriber reads every committed row back by id
 * (LISTEN/NOTIFY, then SELECT), load that belongs to the dashboard process, not to the intake measured here
 * (until 2026-12-05 the benchmark stamped from that feed, and its PostgreSQL figures carried that read).
 *
 * argv[2]: JSON Config. Messages in: { type: 'phase', phase } (answered 'armed'), { type: 'acknowledged' } (the
 * broker has PUBACKed every message of the phase), { type: 'stop' }.
 * Messages out: 'ready', 'armed', 'phase-done' with the phase's figures, 'error' (also when the phase stalls).
 */
interface Config {
  readonly store:
    | { readonly kind: 'sqlite'; readonly path: string }
    | { readonly kind: 'pg'; readonly url: string };
  readonly port: number;
  readonly ca: string;
  readonly clinic: string;
  readonly clinicKey: string;
  readonly clientId: string;
  readonly inventoryDir: string;
  readonly gatewayIds: readonly string[];
  readonly plan: BenchPlan;
  /** Sample the PostgreSQL backends' wait events during each phase (pg-wait-sampler.ts). */
  readonly pgWaits?: boolean;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const send = (message: object) => process.send?.(message);

function now(): number {
  return performance.timeOrigin + performance.now();
}

async function openStore(): Promise<ClinicStore> {
  if (config.store.kind === 'sqlite') {
    return SqliteClinicStore.open({ path: config.store.path, key: randomBytes(32) });
  }
  return openPgStore(config.store.url);
}

interface Running {
  readonly phase: PhaseName;
  readonly probes: Map<string, number>;
  readonly commitAt: Float64Array;
  readonly readings: number;
  readonly duplicates: number;
  inserted: number;
  firstCommitAt: number;
  lastCommitAt: number;
  readonly cpu: NodeJS.CpuUsage;
  readonly startStats: ReturnType<ClinicIntake['snapshot']>;
  rssMax: number;
  readonly sampler: NodeJS.Timeout;
  /** When the broker had PUBACKed every message of the phase (now()), once the orchestrator said so. */
  acknowledgedAt: number;
  readonly waits: Promise<WaitSampler> | undefined;
}

/**
 * A phase whose messages the broker has all acknowledged, and which commits nothing for this long, will not
 * finish: the rest of its messages are not reaching the intake. It fails with the counts instead of waiting
 * forever (a broker that left acknowledged messages in the intake's queue once looked like a hang here).
 */
const STALL_MS = 60_000;

let running: Running | undefined;
const store = stampingCommits(await openStore());
const intake = new ClinicIntake({
  broker: { host: '127.0.0.1', port: config.port, servername: 'localhost' },
  tls: {
    ca: readFileSync(config.ca),
    cert: readFileSync(config.clinic),
    key: readFileSync(config.clinicKey),
  },
  clientId: config.clientId,
  store,
  gateways: { caPem: readFileSync(config.ca), folder: config.inventoryDir },
  defaultTimeZone: 'UTC',
  // As `rpm-gateway clinic intake` runs it (src/clinic/service/intake-from-config.ts).
  group: { maxConcurrent: config.store.kind === 'pg' ? POSTGRES_COMMITS_IN_FLIGHT : 1 },
  onEvent: (event) => {
    if (event.type === 'rejected' || event.type === 'commit-failed' || event.type === 'mqtt-error') {
      send({ type: 'event', event });
    }
  },
});

/**
 * The store, with `commit()` reporting what it stored once it has committed. A Proxy forwards everything else
 * unchanged (methods bound to the real store, whose private fields a Proxy receiver could not reach).
 */
function stampingCommits(inner: ClinicStore): ClinicStore {
  return new Proxy(inner, {
    get(target, key) {
      if (key === 'commit') {
        return async (write: Parameters<ClinicStore['commit']>[0]) => {
          const outcome = await target.commit(write);
          committed(outcome.inserted);
          return outcome;
        };
      }
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function committed(ids: readonly string[]): void {
  const phase = running;
  if (phase === undefined || ids.length === 0) return;
  const at = now();
  for (const id of ids) {
    const slot = phase.probes.get(id);
    if (slot !== undefined) phase.commitAt[slot] = at;
  }
  if (phase.inserted === 0) phase.firstCommitAt = at;
  phase.inserted += ids.length;
  phase.lastCommitAt = at;
  check(phase);
}

/** Done when every new reading was stored and every duplicate counted (the intake counts after the commit resolves: hence setImmediate). */
function check(phase: Running): void {
  setImmediate(async () => {
    if (running !== phase) return;
    const stats = intake.snapshot();
    const duplicates = stats.measurementDuplicates - phase.startStats.measurementDuplicates;
    if (phase.inserted < phase.readings || duplicates < phase.duplicates) {
      const since = Math.max(phase.acknowledgedAt, Number.isNaN(phase.lastCommitAt) ? 0 : phase.lastCommitAt);
      if (now() - since < STALL_MS) return;
      running = undefined;
      clearInterval(phase.sampler);
      send({
        type: 'error',
        message:
          `${phase.phase}: the broker acknowledged every message, but the intake committed ${phase.inserted} of ` +
          `${phase.readings} readings (duplicates counted ${duplicates} of ${phase.duplicates}) and nothing ` +
          `in the last ${STALL_MS / 1000} s: the rest are not reaching the intake`,
      });
      return;
    }
    running = undefined;
    clearInterval(phase.sampler);
    const cpu = process.cpuUsage(phase.cpu);
    const probes = [...phase.probes.keys()];
    // A sampler that failed (the server went away) only costs the phase its wait table.
    const waits = await phase.waits?.then((sampler) => sampler.stop()).catch(() => undefined);
    send({
      type: 'phase-done',
      phase: phase.phase,
      inserted: phase.inserted,
      duplicates,
      firstCommitAt: phase.firstCommitAt,
      lastCommitAt: phase.lastCommitAt,
      commitAt: probes.map((id, i) => [id, phase.commitAt[i]]),
      cpuUserMs: cpu.user / 1000,
      cpuSystemMs: cpu.system / 1000,
      rssMax: Math.max(phase.rssMax, process.memoryUsage.rss()),
      rssEnd: process.memoryUsage.rss(),
      commits: stats.commits - phase.startStats.commits,
      messagesCommitted: stats.messagesCommitted - phase.startStats.messagesCommitted,
      maxMessagesPerCommit: stats.maxMessagesPerCommit,
      rejected: stats.rejected,
      waits,
    });
  });
}

// Duplicates are never stored, so a phase that only had some left would never be told by a commit: poll too.
setInterval(() => {
  if (running) check(running);
}, 200).unref();

process.on('message', (message: { type: string; phase?: PhaseName }) => {
  if (message.type === 'phase' && message.phase) {
    const messages = planPhase(config.plan, message.phase).filter((m) => !m.duplicate);
    const probes = new Map<string, number>();
    for (const m of messages) probes.set(probeId(config.gatewayIds, m), probes.size);
    const totals = phaseTotals(planPhase(config.plan, message.phase));
    const phase: Running = {
      phase: message.phase,
      probes,
      commitAt: new Float64Array(probes.size).fill(Number.NaN),
      readings: totals.readings,
      duplicates: totals.duplicates,
      inserted: 0,
      firstCommitAt: Number.NaN,
      lastCommitAt: Number.NaN,
      cpu: process.cpuUsage(),
      startStats: intake.snapshot(),
      rssMax: process.memoryUsage.rss(),
      sampler: setInterval(() => {
        if (running) running.rssMax = Math.max(running.rssMax, process.memoryUsage.rss());
      }, 100),
      acknowledgedAt: Number.POSITIVE_INFINITY,
      waits:
        config.pgWaits === true && config.store.kind === 'pg'
          ? startWaitSampler(config.store.url)
          : undefined,
    };
    running = phase;
    send({ type: 'armed' });
  } else if (message.type === 'acknowledged') {
    if (running) running.acknowledgedAt = now();
  } else if (message.type === 'stop') {
    void intake
      .stop()
      .then(() => store.close())
      .finally(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));

try {
  await intake.start();
  send({ type: 'ready', rss: process.memoryUsage.rss() });
} catch (error) {
  send({ type: 'error', message: (error as Error).message });
  process.exit(1);
}
