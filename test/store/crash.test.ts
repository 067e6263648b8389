import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../scripts/support/measurements.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { Outbox, type StoreEvent } from '../../src/store/outbox.js';

/**
 * Crash safety with real power-cut semantics for the process: a child appends and acknowledges in a loop and
 * is killed with SIGKILL at random moments, 200 times over one store file. After each kill every reading the
 * child reported as committed and did not report as acknowledged must be there exactly once, every
 * acknowledged one gone, the file must pass integrity_check, and no damage may be reported (the high-water
 * mark, src/store/high-water.ts, is written after each commit, so a kill can only leave it behind the store).
 */
const KILLS = 200;
const KEY = '3c'.repeat(32);
const child = join(import.meta.dirname, '../../dist/test/support/outbox-crash-child.js');
const dir = await mkdtemp(join(tmpdir(), 'rpm-crash-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

function runUntilKilled(path: string, start: number, seed: number, delayMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const proc: ChildProcess = spawn(process.execPath, [child, path, String(start), String(seed)], {
      env: { ...process.env, RPM_TEST_STORE_KEY: KEY },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines: string[] = [];
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      if (line === 'READY') setTimeout(() => proc.kill('SIGKILL'), delayMs);
      else lines.push(line);
    });
    proc.on('error', reject);
    proc.on('close', (_code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`child ended without being killed (${signal})`));
      else resolve(lines);
    });
  });
}

describe('outbox crash safety', () => {
  it('is built (npm test builds first; run `npm run build` when calling vitest directly)', () => {
    expect(existsSync(child)).toBe(true);
  });

  it(`keeps every committed, unacknowledged reading exactly once across ${KILLS} SIGKILLs`, async () => {
    const path = join(dir, 'outbox.db');
    const pending = new Set<string>(); // committed, never handed to ack: must be there
    const acking = new Set<string>(); // handed to ack, not yet reported done: may be either
    const acked = new Set<string>(); // acknowledgement committed: must be gone
    let committed = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      const start = kill * 1_000_000;
      const lines = await runUntilKilled(path, start, kill + 1, 5 + ((kill * 37) % 60));
      for (const line of lines) {
        const [type, ...rest] = line.split(' ');
        if (type === 'C') {
          for (let n = Number(rest[0]); n <= Number(rest[1]); n++) {
            pending.add(spo2Measurement(n).id);
            committed++;
          }
        } else if (type === 'L') {
          for (const id of rest) {
            pending.delete(id);
            acking.add(id);
          }
        } else if (type === 'A') {
          for (const id of rest) {
            acking.delete(id);
            acked.add(id);
          }
        }
      }
      const events: StoreEvent[] = [];
      const outbox = new Outbox({
        path,
        keys: new EnvKeyProvider('K', { K: KEY }),
        onEvent: (e) => events.push(e),
      });
      await outbox.open();
      try {
        // a crash is not damage: the high-water mark never claims more than the store committed
        expect(
          events.filter((e) => e.type === 'store.damaged'),
          `after kill ${kill}`,
        ).toEqual([]);
        const db = outbox.database;
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
        const ids = db.prepare('SELECT id FROM outbox').pluck().all() as string[];
        const stored = new Set(ids);
        expect(stored.size).toBe(ids.length); // exactly once
        const missing = [...pending].filter((id) => !stored.has(id));
        expect(missing, `after kill ${kill}`).toEqual([]);
        const resurrected = [...acked].filter((id) => stored.has(id));
        expect(resurrected, `after kill ${kill}`).toEqual([]);
        // an acknowledgement the child did not live to report either committed (gone) or not (pending again)
        for (const id of acking) {
          acking.delete(id);
          if (stored.has(id)) pending.add(id);
          else acked.add(id);
        }
      } finally {
        outbox.close();
      }
    }
    expect(committed).toBeGreaterThan(KILLS); // the children did real work before dying
  }, 300_000);
});
