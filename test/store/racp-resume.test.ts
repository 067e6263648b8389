import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../scripts/support/measurements.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { Outbox } from '../../src/store/outbox.js';
import { DEVICE, record } from '../support/racp-records.js';

/**
 * The RACP resume point (src/store/racp-resume.ts) is committed in the same transaction as the records it
 * covers. A child appends a meter's records with their resume points and is killed with SIGKILL at random
 * moments; after each kill the reopened store's resume point must be exactly the newest record it holds: never
 * behind it (the next download would send stored records again) and never ahead of it (a hole).
 */
const KILLS = 25;
const KEY = '4d'.repeat(32);
const child = join(import.meta.dirname, '../../dist/test/support/racp-crash-child.js');
const dir = await mkdtemp(join(tmpdir(), 'rpm-racp-crash-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

const open = (path: string) => new Outbox({ path, keys: new EnvKeyProvider('K', { K: KEY }) });

function runUntilKilled(path: string, start: number, seed: number, delayMs: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const proc: ChildProcess = spawn(process.execPath, [child, path, String(start), String(seed)], {
      env: { ...process.env, RPM_TEST_STORE_KEY: KEY },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const committed: number[] = [];
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      if (line === 'READY') setTimeout(() => proc.kill('SIGKILL'), delayMs);
      else if (line.startsWith('C ')) committed.push(Number(line.slice(2)));
    });
    proc.on('error', reject);
    proc.on('close', (_code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`child ended without being killed (${signal})`));
      else resolve(committed);
    });
  });
}

describe('RACP resume point', () => {
  it('is built (npm test builds first; run `npm run build` when calling vitest directly)', () => {
    expect(existsSync(child)).toBe(true);
  });

  it(`equals the newest stored record after each of ${KILLS} SIGKILLs, across the 16-bit wrap`, async () => {
    const path = join(dir, 'outbox.db');
    // Start just below the wrap so that the kills land on both sides of 65535 -> 0.
    let next = 65_000;
    for (let kill = 0; kill < KILLS; kill++) {
      const committed = await runUntilKilled(path, next, kill + 1, 20 + ((kill * 37) % 80));
      const outbox = open(path);
      await outbox.open();
      const point = outbox.racpResumePoint(DEVICE);
      const lease = outbox.lease({ maxRows: 1_000_000 });
      const ids = new Set(lease.records.map((r) => r.id));
      outbox.close();
      const reported = committed.at(-1);
      if (point === undefined) {
        // Killed before its first commit: nothing stored, nothing to resume from.
        expect(reported).toBeUndefined();
        expect(ids.size).toBe(0);
        continue;
      }
      // The newest record in the store is the one the point names (its anchor), and none after it.
      const newest = Math.max(...[...ids].map((id) => Number.parseInt(id.slice(3), 16)));
      expect(point).toEqual({ sequence: newest & 0xffff, anchor: record(newest).id });
      expect(ids.has(record(newest + 1).id)).toBe(false);
      // Every burst the child reported durable is in, and the point is not behind it.
      if (reported !== undefined) expect(newest).toBeGreaterThanOrEqual(reported);
      next = newest + 1;
    }
    expect(next).toBeGreaterThan(65_536); // the run really crossed the wrap
  });

  it('moves with a duplicate too, and a bad sequence number is refused before anything is queued', async () => {
    const outbox = open(join(dir, 'dup.db'));
    await outbox.open();
    const m = spo2Measurement(1, { deviceId: DEVICE, deviceTime: '2026-11-28T08:00:00' });
    await outbox.append(m, 'backlog', { deviceId: DEVICE, sequence: 7, anchor: m.id });
    expect(await outbox.append(m, 'backlog', { deviceId: DEVICE, sequence: 8, anchor: m.id })).toBe(
      'duplicate',
    );
    expect(outbox.racpResumePoint(DEVICE)).toEqual({ sequence: 8, anchor: m.id });
    expect(() => outbox.append(m, 'backlog', { deviceId: DEVICE, sequence: 65_536, anchor: null })).toThrow(
      RangeError,
    );
    outbox.forgetRacpResumePoint(DEVICE);
    expect(outbox.racpResumePoint(DEVICE)).toBeUndefined();
    outbox.close();
  });
});
