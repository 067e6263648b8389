import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLINIC_STOP_DEADLINE_MS } from '../../../src/clinic/service/run.js';

/** The clinic's systemd units: shaped like the hub's (config/systemd/rpm-gateway.service). */
const hub = readFileSync(join(import.meta.dirname, '../../../config/systemd/rpm-gateway.service'), 'utf8');
const HARDENING = hub
  .slice(hub.indexOf('NoNewPrivileges'))
  .split('\n')
  .filter((line) => /^[A-Z]\w+=/.test(line) && !line.startsWith('WantedBy'));

for (const [name, command] of [
  ['rpm-gateway-broker.service', / broker --config \/etc\/rpm-gateway\/clinic\.yaml$/],
  ['rpm-gateway-intake.service', / clinic intake --config \/etc\/rpm-gateway\/clinic\.yaml$/],
  ['rpm-gateway-dashboard.service', / clinic serve --config \/etc\/rpm-gateway\/clinic\.yaml$/],
] as const) {
  describe(`config/systemd/${name}`, () => {
    const unit = readFileSync(join(import.meta.dirname, '../../../config/systemd', name), 'utf8');
    const value = (key: string) => unit.match(new RegExp(`^${key}=(.*)$`, 'm'))?.[1];

    it('is a notify service whose stop timeout outlasts the ordered stop, not restarted on a config error', () => {
      expect(value('Type')).toBe('notify');
      expect(value('NotifyAccess')).toBe('main');
      expect(Number(value('TimeoutStopSec')) * 1000).toBeGreaterThan(CLINIC_STOP_DEADLINE_MS);
      expect(value('ExecStart')).toMatch(command);
      expect(value('RestartPreventExitStatus')).toBe('2');
      expect(value('StateDirectory')).toBe('rpm-clinic');
    });

    it("has every hardening setting of the hub's unit", () => {
      for (const line of HARDENING) expect(unit).toContain(line);
    });
  });
}

describe('config/systemd/rpm-gateway-dashboard.service', () => {
  it('conflicts with the intake unit: on SQLite it runs the intake itself', () => {
    const unit = readFileSync(
      join(import.meta.dirname, '../../../config/systemd/rpm-gateway-dashboard.service'),
      'utf8',
    );
    expect(unit).toMatch(/^Conflicts=rpm-gateway-intake\.service$/m);
  });
});
