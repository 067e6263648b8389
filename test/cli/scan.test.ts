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

  it('refuses an unknown backend and a silly duration', async () => {
    expect((await runCli(['scan', '--backend', 'carrier-pigeon'])).code).toBe(2);
    expect((await runCli(['scan', '--seconds', '0'])).code).toBe(2);
  });
});
