/**
 * Child process for the outbox crash test (test/store/crash.test.ts). Appends bursts and acknowledges leases
 * in a loop, and reports on stdout (synchronous for pipes on Linux) what has committed: "C <first> <last>" after
 * a burst is durable, "L <id>..." before acknowledging a lease (those may be gone after a kill) and "A <id>..."
 * after the acknowledgement committed. The parent kills it with SIGKILL at a random moment.
 */

import { spo2Measurement } from '../../scripts/support/measurements.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { Outbox } from '../../src/store/outbox.js';

const [path, startText, seedText] = process.argv.slice(2);
let n = Number(startText);
let seed = Number(seedText) || 1;
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};

const outbox = new Outbox({ path: path as string, keys: new EnvKeyProvider('RPM_TEST_STORE_KEY') });
await outbox.open();
process.stdout.write('READY\n');
for (;;) {
  const first = n;
  const count = 1 + Math.floor(random() * 40);
  const appends = [];
  for (let i = 0; i < count; i++) {
    const lane = (['alert', 'live', 'backlog'] as const)[Math.floor(random() * 3)];
    appends.push(outbox.append(spo2Measurement(n++), lane));
  }
  await Promise.all(appends);
  process.stdout.write(`C ${first} ${n - 1}\n`);
  if (random() < 0.5) {
    const lease = outbox.lease({ maxRows: 1 + Math.floor(random() * 30) });
    if (random() < 0.2) outbox.release(lease.leaseId);
    else {
      process.stdout.write(`L ${lease.records.map((r) => r.id).join(' ')}\n`);
      outbox.ack(lease.records.map((r) => r.seq));
      process.stdout.write(`A ${lease.records.map((r) => r.id).join(' ')}\n`);
    }
  }
}
