import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spo2Measurement } from '../../scripts/support/measurements.js';
import { KeyFileProvider } from '../../src/store/keys.js';
import { Outbox } from '../../src/store/outbox.js';
import { runCli } from '../support/cli.js';

/** Issue 9, defect 1 and the matching item of defect 9: a damaged store is said, not passed over. */
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-cli-damage-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const cli = (args: string[]) => runCli(args, { env: { RPM_GATEWAY_DATA_DIR: dir } });

async function storeReadings(count: number): Promise<void> {
  const outbox = new Outbox({
    path: join(dir, 'outbox.db'),
    keys: new KeyFileProvider(join(dir, 'store.key')),
  });
  await outbox.open();
  for (let n = 0; n < count; n++) await outbox.append(spo2Measurement(n));
  outbox.close();
}

const noStackTrace = (text: string) => expect(text).not.toMatch(/\n\s+at /);

describe('rpm-gateway store and damage', () => {
  it('status says so on stderr and exits 1 until the damage is acknowledged', async () => {
    await storeReadings(20);
    await truncate(join(dir, 'outbox.db'), 0); // what a file system repair can leave
    const first = await cli(['store', 'status']);
    expect(first.code).toBe(1);
    expect(first.stderr).toContain('[STORE_DAMAGED]');
    expect(first.stderr).toContain('up to 20 stored, unacknowledged records were lost');
    expect(first.stderr).toContain('store acknowledge-damage');
    noStackTrace(first.stderr);
    expect(first.stdout).toMatch(/DAMAGED .*the store file was missing or empty/);
    // still unacknowledged at the next status (found once, reported until acknowledged)
    const json = await cli(['store', 'status', '--json']);
    expect(json.code).toBe(1);
    const status = JSON.parse(json.stdout) as { damage: { kind: string; lost: number; keptAt: string }[] };
    expect(status.damage).toEqual([
      expect.objectContaining({ kind: 'store-missing', lost: 20, firstSeq: 1, lastSeq: 20 }),
    ]);
    expect(status.damage[0]?.keptAt).toContain('outbox.db.damaged-');
    const ack = await cli(['store', 'acknowledge-damage']);
    expect(ack.code).toBe(0);
    expect(ack.stdout).toContain('acknowledged 1 damage report');
    const after = await cli(['store', 'status']);
    expect(after.code).toBe(0);
    expect(after.stdout).toContain('damage       none');
    // found, then acknowledged: both in the audit log
    const types = (await readFile(join(dir, 'audit.log'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { type: string }).type);
    expect(types).toContain('store.damaged');
    expect(types).toContain('store.damage-acknowledged');
  });

  it('an enrolment command that opens a damaged store says so on stderr', async () => {
    await storeReadings(5);
    const bytes = await readFile(join(dir, 'outbox.db'));
    for (let at = 4096; at < bytes.length; at += 97) bytes[at] = (bytes[at] as number) ^ 0xff; // card rot
    await writeFile(join(dir, 'outbox.db'), bytes);
    const result = await cli(['devices']);
    expect(result.stderr).toContain('moved aside to');
    expect(result.stderr).toContain('[STORE_CORRUPT]');
    expect(result.stderr).toContain('up to 5 stored, unacknowledged records were lost');
    expect(result.stderr).toContain('[STORE_DAMAGED]');
    noStackTrace(result.stderr);
  });
});
