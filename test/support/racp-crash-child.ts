/**
 * Child process for the RACP resume-point crash test (test/store/racp-resume.test.ts). Appends a glucose
 * meter's stored records in bursts, each with its resume point (Outbox.append's `progress`), numbering them
 * from `start` with 16-bit sequence numbers, and reports "C <n>" on stdout once the burst up to record n is
 * durable. The parent kills it with SIGKILL at a random moment.
 */

import { EnvKeyProvider } from '../../src/store/keys.js';
import { Outbox } from '../../src/store/outbox.js';
import { DEVICE, record } from './racp-records.js';

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
  const count = 1 + Math.floor(random() * 40);
  const appends = [];
  for (let i = 0; i < count; i++, n++) {
    const m = record(n);
    appends.push(outbox.append(m, 'backlog', { deviceId: DEVICE, sequence: n & 0xffff, anchor: m.id }));
  }
  await Promise.all(appends);
  process.stdout.write(`C ${n - 1}\n`);
}
