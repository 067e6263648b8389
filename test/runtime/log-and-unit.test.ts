import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { unitNodeFlags } from '../../scripts/support/unit-node-flags.js';
import { DEFAULTS, environmentDefaults } from '../../src/config/defaults.js';
import { parseDuration } from '../../src/config/quantities.js';
import { createLog, fieldsOf, type LogFields } from '../../src/runtime/log.js';
import { LogCapture } from './hub-rig.js';

describe('the runtime log', () => {
  it('keeps only the listed fields of their type, and scrubs address-shaped text', () => {
    const planted = {
      deviceId: 'd1-0011223344556677',
      detail: 'link to C0:FF:EE:12:34:56 (dev_C0_FF_EE_12_34_57) lost',
      value: 87.123,
      passkey: '907153',
      label: 'Grandma',
      address: 'C0:FF:EE:12:34:56',
      count: '3',
    } as unknown as LogFields;
    expect(fieldsOf(planted, true)).toEqual({
      deviceId: 'd1-0011223344556677',
      detail: 'link to <address> (dev_<address>) lost',
    });
    // With redaction off a technician may see the address and label; still never a value or a passkey.
    expect(fieldsOf(planted, false)).toEqual({
      deviceId: 'd1-0011223344556677',
      detail: 'link to C0:FF:EE:12:34:56 (dev_C0_FF_EE_12_34_57) lost',
      label: 'Grandma',
      address: 'C0:FF:EE:12:34:56',
    });
  });

  it('writes one JSON object per line with the event, level, time and gateway id', () => {
    const capture = new LogCapture();
    const log = createLog({
      level: 'info',
      redact: true,
      destination: capture,
      now: () => Date.UTC(2026, 11, 5, 15, 0, 0),
      base: { gatewayId: 'hub-0001' },
    });
    log.info('hub.started', { devices: 2 });
    log.debug('not.shown');
    expect(capture.events).toEqual([
      {
        level: 'info',
        time: '2026-12-05T15:00:00.000Z',
        gatewayId: 'hub-0001',
        devices: 2,
        event: 'hub.started',
      },
    ]);
  });
});

describe('config/systemd/rpm-gateway.service', () => {
  const unit = readFileSync(join(import.meta.dirname, '../../config/systemd/rpm-gateway.service'), 'utf8');
  const value = (key: string) => unit.match(new RegExp(`^${key}=(.*)$`, 'm'))?.[1];

  it('is a notify service with a watchdog, whose stop timeout outlasts the hub deadline', () => {
    expect(value('Type')).toBe('notify');
    expect(value('NotifyAccess')).toBe('main');
    expect(Number(value('WatchdogSec'))).toBeGreaterThan(0);
    const deadline = parseDuration(String((DEFAULTS.shutdown as { deadline: string }).deadline)) as number;
    expect(Number(value('TimeoutStopSec')) * 1000).toBeGreaterThan(deadline);
    expect(value('ExecStart')).toMatch(/ start --config \/etc\/rpm-gateway\/gateway\.yaml$/);
    expect(value('RestartPreventExitStatus')).toBe('2');
  });

  it('bounds the V8 heap on the command line, as the benchmark reads it (a Pi Zero 2 W has 512 MB for everything)', () => {
    const flags = ['--max-old-space-size=128', '--max-semi-space-size=4'];
    expect(value('ExecStart')).toBe(
      `/usr/bin/node ${flags.join(' ')} /opt/rpm-gateway/dist/src/cli/bin.js start --config /etc/rpm-gateway/gateway.yaml`,
    );
    expect(unitNodeFlags()).toEqual(flags);
    // One place: the benchmark reads the command line only.
    expect(unit).not.toMatch(/^Environment=.*NODE_OPTIONS/m);
  });

  it("starts a node whose heap is bounded, with the unit's options", () => {
    const probe = spawnSync(
      process.execPath,
      [
        ...unitNodeFlags(),
        '-e',
        `const v8 = require('node:v8');
        const young = v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
        console.log(JSON.stringify({ young: young.space_size, limit: v8.getHeapStatistics().heap_size_limit }));`,
      ],
      { encoding: 'utf8', env: { PATH: process.env.PATH } },
    );
    expect(probe.stderr).toBe('');
    const { young, limit } = JSON.parse(probe.stdout) as { young: number; limit: number };
    // The young generation starts at its 1 MiB minimum and may grow to 4 MiB per semi-space.
    expect(young).toBe(1024 * 1024);
    // 128 MiB of old space plus the young generation's reservation.
    expect(limit / (1024 * 1024)).toBeGreaterThanOrEqual(128);
    expect(limit / (1024 * 1024)).toBeLessThan(160);
  });

  it('gives the hub its control socket directory, 0700, where paths.runtimeDir defaults to', () => {
    // systemd.exec(5) RuntimeDirectory=: /run/rpm-gateway, owned by the service user, removed at stop.
    expect(value('RuntimeDirectory')).toBe('rpm-gateway');
    expect(value('RuntimeDirectoryMode')).toBe('0700');
    expect(environmentDefaults({ RUNTIME_DIRECTORY: '/run/rpm-gateway' })).toContainEqual(
      expect.objectContaining({ path: ['paths', 'runtimeDir'], value: '/run/rpm-gateway' }),
    );
  });
});
