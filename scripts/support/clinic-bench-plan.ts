import { fleetMeasurement } from './gateway-fleet.js';

/**
 * What bench:clinic sends in each phase, shared by the publisher process (which signs and sends it) and the
 * intake process (which waits for it and times its commits), so neither has to ship the other a list.
 *
 * Readings are numbered per gateway; each phase has its own range of numbers, so every phase's readings are new
 * to the database (fleetMeasurement derives the id from gateway and number).
 *
 *   backlog  every gateway sends `backlogBatches` batches of `batchSize` readings (a hub draining its outbox)
 *   live     every gateway sends `live` messages of one reading each; every `duplicateEvery`-th is sent twice
 *            (a redelivery after a lost PUBACK): the copy is a message the intake must store nowhere
 *   mixed    live messages at a fixed total rate (`mixedRate`/s, round-robin over the gateways) for
 *            `mixedSeconds`, while the first `mixedBacklogGateways` gateways send one backlog batch each as fast
 *            as they can; latency is reported for the live messages only
 *   warmup   before the measured phases, not reported: the first `warmupGateways` gateways send one backlog
 *            batch and one one-reading message each, so the measured phases run the intake's code compiled, as
 *            in a process that has been running, not interpreted as in a process that has just started
 */
export type PhaseName = 'warmup' | 'backlog' | 'live' | 'mixed';

export interface BenchPlan {
  readonly gateways: number;
  readonly batchSize: number;
  readonly backlogBatches: number;
  readonly live: number;
  readonly duplicateEvery: number;
  readonly mixedRate: number;
  readonly mixedSeconds: number;
  readonly mixedBacklogGateways: number;
  readonly warmupGateways: number;
}

export interface PlannedMessage {
  readonly gateway: number;
  readonly seq: number;
  readonly first: number;
  readonly count: number;
  /** Live in the mixed phase (sent at the fixed rate), or a copy of an earlier message. */
  readonly lane: 'backlog' | 'live';
  readonly duplicate: boolean;
  /** For the mixed phase's live messages: when to send it, ms after the phase starts. */
  readonly dueMs?: number;
}

const RANGE: Record<PhaseName, number> = {
  backlog: 0,
  live: 10_000_000,
  mixed: 20_000_000,
  warmup: 30_000_000,
};

export function planPhase(plan: BenchPlan, phase: PhaseName): PlannedMessage[] {
  const base = RANGE[phase];
  const messages: PlannedMessage[] = [];
  if (phase === 'backlog') {
    for (let b = 0; b < plan.backlogBatches; b++) {
      for (let g = 0; g < plan.gateways; g++) {
        const first = base + b * plan.batchSize;
        messages.push({
          gateway: g,
          seq: first,
          first,
          count: plan.batchSize,
          lane: 'backlog',
          duplicate: false,
        });
      }
    }
    return messages;
  }
  if (phase === 'warmup') {
    for (let g = 0; g < Math.min(plan.warmupGateways, plan.gateways); g++) {
      messages.push({
        gateway: g,
        seq: base,
        first: base,
        count: plan.batchSize,
        lane: 'backlog',
        duplicate: false,
      });
      const one = base + plan.batchSize;
      messages.push({ gateway: g, seq: one, first: one, count: 1, lane: 'backlog', duplicate: false });
    }
    return messages;
  }
  if (phase === 'live') {
    for (let j = 0; j < plan.live; j++) {
      for (let g = 0; g < plan.gateways; g++) {
        const message = {
          gateway: g,
          seq: base + j,
          first: base + j,
          count: 1,
          lane: 'backlog',
          duplicate: false,
        };
        messages.push(message as PlannedMessage);
        if ((j * plan.gateways + g) % plan.duplicateEvery === plan.duplicateEvery - 1) {
          messages.push({ ...(message as PlannedMessage), duplicate: true });
        }
      }
    }
    return messages;
  }
  const total = Math.round(plan.mixedRate * plan.mixedSeconds);
  for (let i = 0; i < total; i++) {
    const g = i % plan.gateways;
    const n = base + Math.floor(i / plan.gateways);
    messages.push({
      gateway: g,
      seq: n,
      first: n,
      count: 1,
      lane: 'live',
      duplicate: false,
      dueMs: (i * 1000) / plan.mixedRate,
    });
  }
  for (let g = 0; g < Math.min(plan.mixedBacklogGateways, plan.gateways); g++) {
    const first = base + 1_000_000;
    messages.push({
      gateway: g,
      seq: first,
      first,
      count: plan.batchSize,
      lane: 'backlog',
      duplicate: false,
    });
  }
  return messages;
}

/** The readings a phase adds to the database and the duplicate readings it sends. */
export function phaseTotals(messages: readonly PlannedMessage[]): { readings: number; duplicates: number } {
  let readings = 0;
  let duplicates = 0;
  for (const m of messages) {
    if (m.duplicate) duplicates += m.count;
    else readings += m.count;
  }
  return { readings, duplicates };
}

/** The id of a message's first reading: how the two processes name a message to each other. */
export function probeId(gatewayIds: readonly string[], message: PlannedMessage): string {
  return fleetMeasurement(gatewayIds[message.gateway] as string, message.first).id;
}
