import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { ControlServer } from '../../src/control/server.js';
import { type HubStatus, renderStatus } from '../../src/control/status.js';
import { StoreControl } from '../../src/control/store-control.js';
import { KeyFileProvider } from '../../src/store/keys.js';
import { runCli } from '../support/cli.js';

let dir: string;
let dataDir: string;
let runtimeDir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-cli-status-'));
  dataDir = join(dir, 'data');
  runtimeDir = join(dir, 'run');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  runCli(['status', ...args], { env: { RPM_GATEWAY_DATA_DIR: dataDir, ...env } });

describe('rpm-gateway status', () => {
  it('exits 3 when no hub runs, creating nothing when there is no store', async () => {
    const none = await cli(['--runtime-dir', runtimeDir]);
    expect(none.code).toBe(3);
    expect(none.stdout).toMatch(/^hub +not running, and no store yet/);
    const json = await cli(['--json', '--runtime-dir', runtimeDir]);
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).toEqual({
      hub: { running: false, gatewayId: null, since: null },
      store: null,
    });
    expect((await runCli(['devices'], { env: { RPM_GATEWAY_DATA_DIR: dataDir } })).code).toBe(0);
    await expect(mkdir(dataDir)).resolves.toBeUndefined(); // still not there: nothing was created
  });

  it('reads the store when no hub runs, and asks the hub through the socket named by RPM_PATHS_RUNTIME_DIR', async () => {
    expect((await runCli(['store', 'status'], { env: { RPM_GATEWAY_DATA_DIR: dataDir } })).code).toBe(0);
    const offline = await cli(['--runtime-dir', runtimeDir]);
    expect(offline.code).toBe(3);
    expect(offline.stdout).toContain('not running (what follows is read from the store)');
    expect(offline.stdout).toMatch(/^backlog +alert 0, live 0, backlog 0$/m);
    expect(offline.stdout).toMatch(/^devices +none enrolled/m);

    const store = await StoreControl.open({
      store: join(dataDir, 'outbox.db'),
      keys: new KeyFileProvider(join(dataDir, 'store.key')),
      audit: new AuditLog(join(dataDir, 'audit.log')),
      backend: 'sim',
    });
    const server = await ControlServer.listen({ runtimeDir, control: store });
    try {
      // The runtime directory from the configuration's variable: the same socket the hub listens on.
      const viaHub = await cli(['--json'], { RPM_PATHS_RUNTIME_DIR: runtimeDir });
      expect(viaHub.stderr).toBe('');
      expect(JSON.parse(viaHub.stdout)).toMatchObject({ store: { path: join(dataDir, 'outbox.db') } });
    } finally {
      await server.close();
      store.close();
    }
  });

  it('has --help', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: rpm-gateway status \[--json\]/);
    expect(help.stdout).toContain('exits 3');
  });
});

describe('renderStatus', () => {
  it('shows a running hub in readable columns', () => {
    const status: HubStatus = {
      hub: { running: true, gatewayId: 'gw-0042', since: '2025-01-01T08:00:00.000Z' },
      devices: [
        {
          id: 'd1-0123456789abcdef',
          label: 'Kitchen',
          profile: 'glucose-meter',
          driver: 'sig/glucose',
          state: 'streaming',
          lastSeen: '2025-01-01T09:00:00.000Z',
          batteryPercent: 80,
        },
        {
          id: 'd1-fedcba9876543210',
          label: null,
          profile: 'blood-pressure',
          driver: 'sig/blood-pressure',
          state: 'backoff',
          lastSeen: null,
          batteryPercent: null,
        },
      ],
      backlog: {
        alert: { pending: 0, oldestAgeMs: null },
        live: { pending: 3, oldestAgeMs: 1_200 },
        backlog: { pending: 140, oldestAgeMs: 3 * 3_600_000 },
      },
      broker: { state: 'connected', url: 'mqtts://clinic.example:8883', since: '2025-01-01T08:00:01.000Z' },
      clock: {
        synchronised: true,
        source: 'timesyncd',
        detail: '/run/systemd/timesync/synchronized exists',
        held: 0,
      },
      certificate: { notAfter: '2026-01-01T00:00:00.000Z', daysLeft: 300, status: 'ok' },
      store: { path: '/var/lib/rpm-gateway/outbox.db', bytes: 2 * 1024 * 1024, rows: 143 },
      gaps: 1,
      alertReadings: 2,
      alertRules: [
        { id: 'MDC_PULS_OXIM_SAT_O2:below', source: 'clinic' },
        { id: 'MDC_PRESS_BLD_NONINV_SYS:above', source: 'configuration' },
      ],
    };
    expect(renderStatus(status)).toBe(
      [
        'hub          running as gw-0042 since 2025-01-01T08:00:00.000Z',
        'broker       connected mqtts://clinic.example:8883 since 2025-01-01T08:00:01.000Z',
        'clock        synchronised (timesyncd: /run/systemd/timesync/synchronized exists)',
        'certificate  ok, 300 days left (not after 2026-01-01T00:00:00.000Z)',
        'backlog      alert 0, live 3 (oldest 1 s), backlog 140 (oldest 3.0 h)',
        'store        /var/lib/rpm-gateway/outbox.db: 2048 KiB, 143 rows',
        'gaps         1',
        'alert lane   2 readings',
        'alert rules  2 in force (1 set by the clinic)',
        '',
        'DEVICE               PROFILE         DRIVER              STATE      LAST SEEN                 BATTERY  LABEL',
        'd1-0123456789abcdef  glucose-meter   sig/glucose         streaming  2025-01-01T09:00:00.000Z  80 %     Kitchen',
        'd1-fedcba9876543210  blood-pressure  sig/blood-pressure  backoff    never                     -',
        '',
      ].join('\n'),
    );
  });
});
