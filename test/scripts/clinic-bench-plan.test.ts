import { describe, expect, it } from 'vitest';
import {
  type BenchPlan,
  type PhaseName,
  phaseTotals,
  planPhase,
} from '../../scripts/support/clinic-bench-plan.js';

/**
 * bench:clinic's phases (scripts/support/clinic-bench-plan.ts). Each phase must add only readings new to the
 * database: a reading the warm-up (or an earlier phase) had already stored would be a duplicate in the measured
 * phase, which would then wait for readings that never come, or count too few.
 */
const plan: BenchPlan = {
  gateways: 7,
  batchSize: 5,
  backlogBatches: 2,
  live: 3,
  duplicateEvery: 4,
  mixedRate: 20,
  mixedSeconds: 2,
  mixedBacklogGateways: 3,
  warmupGateways: 4,
};

/** Every reading a phase sends, as gateway:number (the reading id is derived from these two). */
function readings(phase: PhaseName): string[] {
  return planPhase(plan, phase)
    .filter((m) => !m.duplicate)
    .flatMap((m) => Array.from({ length: m.count }, (_, i) => `${m.gateway}:${m.first + i}`));
}

describe('bench:clinic plan', () => {
  it('the warm-up sends a backlog batch and a one-reading message from each of its gateways', () => {
    const warmup = planPhase(plan, 'warmup');
    expect(warmup.map((m) => [m.gateway, m.count])).toEqual(
      [0, 1, 2, 3].flatMap((g) => [
        [g, plan.batchSize],
        [g, 1],
      ]),
    );
    expect(warmup.every((m) => m.dueMs === undefined && !m.duplicate)).toBe(true);
    expect(phaseTotals(warmup)).toEqual({ readings: 4 * (plan.batchSize + 1), duplicates: 0 });
    // Never more gateways than the fleet has.
    expect(planPhase({ ...plan, warmupGateways: 50 }, 'warmup')).toHaveLength(2 * plan.gateways);
    expect(planPhase({ ...plan, warmupGateways: 0 }, 'warmup')).toEqual([]);
  });

  it('no two phases send the same reading, and no phase sends one twice except as a marked duplicate', () => {
    const phases: PhaseName[] = ['warmup', 'backlog', 'live', 'mixed'];
    const seen = new Map<string, PhaseName>();
    for (const phase of phases) {
      for (const reading of readings(phase)) {
        expect(seen.get(reading), `${reading} in ${phase}`).toBeUndefined();
        seen.set(reading, phase);
      }
    }
    expect(seen.size).toBe(
      phases.reduce((sum, phase) => sum + phaseTotals(planPhase(plan, phase)).readings, 0),
    );
  });
});
