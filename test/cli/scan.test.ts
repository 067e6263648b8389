import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SIMULATED_DRIVER_IDS } from '../../src/ble/sim/index.js';
import { runCli } from '../support/cli.js';

describe('rpm-gateway scan', () => {
  it('lists every simulated health device by profile and driver, never by address', async () => {
    const { code, stdout } = await runCli(['scan', '--backend', 'sim', '--seconds', '1', '--json']);
    expect(code).toBe(0);
    const rows = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(new Set(rows.map((r) => r.driver))).toEqual(new Set(SIMULATED_DRIVER_IDS));
    for (const row of rows)
      expect(Object.keys(row).sort()).toEqual(['category', 'driver', 'name', 'number', 'rssi']);
    expect(stdout).not.toMatch(/[0-9A-F]{2}(:[0-9A-F]{2}){5}/i); // no Bluetooth address anywhere
  });

  it('numbers the devices exactly as pair does, so a number read off scan is the same device in pair', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'rpm-cli-scan-'));
    try {
      const scan = await runCli(['scan', '--backend', 'sim', '--seconds', '0.3']);
      const pair = await runCli(['pair', '--backend', 'sim', '--seconds', '0.3'], {
        env: { RPM_GATEWAY_DATA_DIR: dataDir },
      });
      const rows = (text: string) =>
        [...text.matchAll(/^ *(\d+)\. +(\S+) +.*\(([a-z]+\/[a-z0-9-]+)\)/gm)].map((m) => [
          Number(m[1]),
          m[2],
          m[3],
        ]);
      expect(rows(scan.stdout)).toHaveLength(SIMULATED_DRIVER_IDS.length);
      expect(rows(pair.stdout)).toEqual(rows(scan.stdout));
      // One order: by profile, then driver (the simulated devices have one device per driver).
      const sorted = [...rows(scan.stdout)].sort(([, a, x], [, b, y]) =>
        `${a} ${x}` < `${b} ${y}` ? -1 : 1,
      );
      expect(rows(scan.stdout)).toEqual(sorted.map(([, ...rest], index) => [index + 1, ...rest]));
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('refuses an unknown backend and a silly duration', async () => {
    expect((await runCli(['scan', '--backend', 'carrier-pigeon'])).code).toBe(2);
    expect((await runCli(['scan', '--seconds', '0'])).code).toBe(2);
  });
});
