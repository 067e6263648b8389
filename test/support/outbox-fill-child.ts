/**
 * Child process for the WAL damage test (test/store/wal-damage.test.ts): opens the outbox, appends `count`
 * readings one at a time (each awaited, so each is reported stored before the next), prints "STORED <count>"
 * and waits to be killed with SIGKILL, so the readings sit in the WAL as a power cut would leave them.
 * Arguments: <store> <count> [WAL checkpoint pages] (a large bound keeps every reading in the WAL alone).
 */

import { spo2Measurement } from '../../scripts/support/measurements.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { Outbox } from '../../src/store/outbox.js';

const [path, countText, pagesText] = process.argv.slice(2);
const outbox = new Outbox({
  path: path as string,
  keys: new EnvKeyProvider('RPM_TEST_STORE_KEY'),
  ...(pagesText ? { walCheckpointPages: Number(pagesText) } : {}),
});
await outbox.open();
const count = Number(countText);
for (let n = 0; n < count; n++) await outbox.append(spo2Measurement(n));
process.stdout.write(`STORED ${count}\n`);
setInterval(() => {}, 60_000); // stay alive (and the store open) until the parent kills this process
