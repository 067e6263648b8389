// node:test's t.assert is node:assert's top-level (legacy, loose) API: deepEqual ignores prototypes, which the
// suite relies on (it compares structuredClone'd packets, whose Buffers become Uint8Arrays, with Buffers).
import assert from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { openLevelPersistence } from '../../src/broker/persistence.js';

/**
 * aedes-persistence's own abstract suite (the spec every aedes persistence must pass, shipped as
 * `aedes-persistence/abstract`), run against the persistence the broker uses: aedes-persistence-level over
 * classic-level with every write synced and every value sealed (encrypted-values.ts). The suite is written for node:test; `nodeTest` gives each case the
 * parts of node:test's context it uses (t.plan, t.assert, t.diagnostic) and checks the plan as node:test does.
 */
type Case = (t: TestContext) => Promise<void>;
interface TestContext {
  plan(count: number): void;
  assert: Pick<typeof assert, 'equal' | 'deepEqual' | 'notEqual' | 'ok'>;
  diagnostic(message: string): void;
}

const require = createRequire(import.meta.url);
const abstractSuite = require('aedes-persistence/abstract') as (options: {
  test: (name: string, body: Case) => void;
  persistence: () => Promise<unknown>;
  waitForReady: boolean;
}) => void;

const root = await mkdtemp(join(tmpdir(), 'rpm-broker-abstract-'));
afterAll(() => rm(root, { recursive: true, force: true }));
let stores = 0;

function nodeTest(name: string, body: Case): void {
  it(name, async () => {
    let planned: number | undefined;
    let made = 0;
    const counted =
      <A extends unknown[]>(check: (...args: A) => void) =>
      (...args: A) => {
        made++;
        check(...args);
      };
    await body({
      plan: (count) => {
        planned = count;
      },
      assert: {
        equal: counted(assert.equal),
        deepEqual: counted(assert.deepEqual),
        notEqual: counted(assert.notEqual),
        ok: counted(assert.ok),
      },
      diagnostic: () => undefined,
    });
    if (planned !== undefined)
      assert.strictEqual(made, planned, `planned ${planned} assertions, made ${made}`);
  });
}

const key = randomBytes(32);
const corrupt: unknown[] = [];
afterAll(() => {
  // every value the suite wrote was read back through the cipher: none failed to open
  assert.deepStrictEqual(corrupt, []);
});

describe('aedes-persistence abstract suite on the synced, encrypted LevelDB persistence', () => {
  abstractSuite({
    test: nodeTest,
    persistence: () =>
      openLevelPersistence({ dir: join(root, `store-${++stores}`), sync: true, key }, (error) =>
        corrupt.push(error),
      ),
    waitForReady: true,
  });
});
