import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ClinicConfigReport, inspectClinicConfig } from '../../src/config/clinic/load.js';
import { formatIssue } from '../../src/config/errors.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rpm-clinic-dashboard-config-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const MINIMAL = `clinic:
  name: st-mary
pki:
  ca: pki/ca.crt
  gatewayCerts: pki/gateways
`;

function inspect(text: string, env: NodeJS.ProcessEnv = {}): ClinicConfigReport {
  const path = join(dir, 'clinic.yaml');
  writeFileSync(path, `${MINIMAL}${text}`);
  return inspectClinicConfig({
    configFile: path,
    defaultConfigFile: join(dir, 'absent.yaml'),
    env: { STATE_DIRECTORY: join(dir, 'state'), TZ: 'UTC', ...env },
    cwd: dir,
  });
}

const DASHBOARD = `dashboard:
  cert: pki/dashboard.crt
  key: { file: pki/dashboard.key }
`;

describe('the dashboard section', () => {
  it('is absent unless given, and takes its defaults when it is', () => {
    expect(inspect('').config?.dashboard).toBeUndefined();
    const report = inspect(DASHBOARD);
    expect(report.issues.map(formatIssue)).toEqual([]);
    expect(report.config?.dashboard).toEqual({
      host: '127.0.0.1',
      port: 8443,
      allowNetwork: false,
      cert: join(dir, 'pki/dashboard.crt'),
      key: { source: 'file', path: join(dir, 'pki/dashboard.key') },
      publicOrigin: 'https://localhost:8443',
      session: { idleMs: 15 * 60_000, absoluteMs: 12 * 3_600_000 },
      lockout: { maxFailures: 5, lockForMs: 15 * 60_000 },
      loginsPerMinute: 10,
      staleAfterMs: 30_000,
    });
  });

  it('refuses a network address without allowNetwork, and then wants the public origin', () => {
    const noOrigin = inspect(`${DASHBOARD}  host: 0.0.0.0\n`);
    expect(noOrigin.issues.map((i) => [i.path, i.code])).toEqual([
      ['dashboard.publicOrigin', 'CONFIG_MISSING_KEY'],
    ]);
    const report = inspect(`${DASHBOARD}  host: 0.0.0.0\n  publicOrigin: https://rpm.st-mary.example\n`);
    expect(report.issues.map((i) => [i.path, i.code])).toEqual([['dashboard.host', 'CONFIG_BAD_VALUE']]);
    const meant = inspect(
      `${DASHBOARD}  host: 0.0.0.0\n  allowNetwork: true\n  publicOrigin: https://rpm.st-mary.example/\n`,
    );
    expect(meant.issues).toEqual([]);
    expect(meant.config?.dashboard?.publicOrigin).toBe('https://rpm.st-mary.example');
  });

  it('refuses an origin that is not https or carries a path, and an idle timeout beyond the absolute one', () => {
    const report = inspect(
      `${DASHBOARD}  publicOrigin: http://localhost:8443\n  session: { idle: 13h, absolute: 12h }\n`,
    );
    expect(report.issues.map((i) => [i.path, i.message])).toEqual([
      ['dashboard.publicOrigin', 'the scheme must be https'],
      ['dashboard.session.idle', 'longer than dashboard.session.absolute, so it would never apply'],
    ]);
    const path = inspect(`${DASHBOARD}  publicOrigin: https://localhost:8443/dashboard\n`);
    expect(path.issues.map((i) => i.path)).toEqual(['dashboard.publicOrigin']);
  });

  it('is set by RPM_CLINIC_DASHBOARD_* variables like every section', () => {
    const report = inspect(DASHBOARD, {
      RPM_CLINIC_DASHBOARD_PORT: '9443',
      RPM_CLINIC_DASHBOARD_SESSION_IDLE: '5min',
    });
    expect(report.config?.dashboard).toMatchObject({
      port: 9443,
      publicOrigin: 'https://localhost:9443',
      session: { idleMs: 5 * 60_000 },
    });
  });
});
