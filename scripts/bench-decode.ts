/**
 * `npm run bench:decode`: decode throughput per characteristic on one core, from the drivers' own fixtures
 * (every passing-case payload of each characteristic, round robin). Measures the full decoder a session
 * calls: bytes -> codec -> Reading with coded observations. Prints a table; it is a measurement, not a test.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BUNDLED_DEVICES_DIR } from '../src/drivers/default-registry.js';
import { sourceDirOf } from '../src/drivers/fixture-paths.js';
import { fixturePayloads, readFixtureFile } from '../src/drivers/fixtures.js';
import { loadDriverModules } from '../src/drivers/loader.js';
import type { Decoder } from '../src/drivers/sdk/define-driver.js';
import { createFramer } from '../src/drivers/sdk/framing.js';
import { parseHex } from '../src/gatt/hex.js';
import { decodeSfloat } from '../src/gatt/mder-float.js';
import { normalizeUuid } from '../src/gatt/uuid.js';

const { values } = parseArgs({
  options: { ms: { type: 'string', default: '400' }, help: { type: 'boolean', short: 'h' } },
});
if (values.help) {
  console.log('Usage: npm run bench:decode [-- --ms <milliseconds per characteristic, default 400>]');
  process.exit(0);
}
const budgetMs = Number(values.ms);

interface Row {
  readonly name: string;
  readonly driver: string;
  readonly payloads: readonly Uint8Array[];
  readonly decode: Decoder;
  readonly characteristic: string;
}

const rows: Row[] = [];
const seen = new Set<string>();
for (const { driver, dir } of await loadDriverModules(BUNDLED_DEVICES_DIR)) {
  const file = await readFixtureFile(join(sourceDirOf(dir), 'fixtures.json'));
  for (const spec of driver.characteristics) {
    const uuid = normalizeUuid(spec.uuid);
    const key = `${driver.id.startsWith('sig/') ? 'sig' : driver.id}:${uuid}`;
    if (seen.has(key)) continue; // device-information characteristics are shared by every SIG driver
    seen.add(key);
    // A framed characteristic's decoder takes one frame: its fixtures' notifications are cut into frames first.
    const framesOf = (hex: string) =>
      spec.framing === undefined
        ? [parseHex(hex)]
        : createFramer(spec.framing)
            .push(parseHex(hex))
            .flatMap((e) => (e.frame ? [e.frame] : []));
    const payloads = file.fixtures
      .filter((f) => f.expect !== undefined && f.deviceState === undefined && normalizeUuid(f.char) === uuid)
      .flatMap((f) => fixturePayloads(f).flatMap(framesOf));
    if (payloads.length > 0)
      rows.push({ name: spec.name, driver: driver.id, payloads, decode: spec.decode, characteristic: uuid });
  }
}

/** Runs `work` in rounds of `batch` until the budget is spent; returns operations per second. */
function measure(batch: number, work: (i: number) => unknown): number {
  let sink = 0;
  for (let i = 0; i < batch * 20; i++) sink += work(i) === undefined ? 0 : 1; // warm up (JIT)
  let operations = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(budgetMs) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < batch; i++) sink += work(i) === undefined ? 0 : 1;
    operations += batch;
    now = process.hrtime.bigint();
  }
  if (sink < 0) console.log(sink); // keeps the work observable so it is not optimised away
  return operations / (Number(now - start) / 1e9);
}

const table: string[][] = [['characteristic', 'name', 'driver', 'payloads', 'avg bytes', 'decodes/s']];
const raw = Uint16Array.from({ length: 4096 }, (_, i) => (i * 7919) & 0xffff);
table.push([
  '(SFLOAT)',
  'decodeSfloat alone',
  '-',
  '4096',
  '2',
  fmt(measure(4096, (i) => decodeSfloat(raw[i] as number))),
]);
for (const row of rows) {
  const n = row.payloads.length;
  const ctx = { characteristic: row.characteristic };
  const rate = measure(1000, (i) => row.decode(row.payloads[i % n] as Uint8Array, ctx));
  const avg = row.payloads.reduce((s, p) => s + p.length, 0) / n;
  table.push([row.characteristic, row.name, row.driver, String(n), avg.toFixed(1), fmt(rate)]);
}

function fmt(rate: number): string {
  return rate >= 1e6 ? `${(rate / 1e6).toFixed(2)} M` : `${(rate / 1e3).toFixed(0)} k`;
}

const widths = (table[0] as string[]).map((_, c) => Math.max(...table.map((r) => (r[c] as string).length)));
console.log(`decode throughput, one core, Node ${process.version}, ${budgetMs} ms per row`);
for (const [i, r] of table.entries()) {
  console.log(
    r
      .map((cell, c) => (c >= 3 ? cell.padStart(widths[c] as number) : cell.padEnd(widths[c] as number)))
      .join('  '),
  );
  if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
}
