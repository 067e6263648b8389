import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, type ConfigIssue, formatIssue } from '../../src/config/errors.js';
import { inspectConfig, type LoadOptions, loadConfig } from '../../src/config/load.js';
import { configFlags } from '../../src/config/options.js';
import { parseDuration, parseSize } from '../../src/config/quantities.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import { DEFAULT_RETENTION } from '../../src/store/outbox.js';
import { DEFAULT_BACKOFF } from '../../src/uplink/backoff.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rpm-config-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The smallest valid file: what has no default. */
const MINIMAL = `gateway:
  id: hub-0001
tls:
  ca: tls/ca.crt
  cert: tls/gateway.crt
  key: { file: tls/gateway.key }
uplink:
  brokers:
    - url: mqtts://broker.example:8883
`;

function file(text: string, name = 'gateway.yaml'): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** No /etc file, no stray variables from the machine running the tests. */
function inspect(options: LoadOptions) {
  return inspectConfig({ defaultConfigFile: join(dir, 'absent.yaml'), env: {}, cwd: dir, ...options });
}

function loaded(report: ReturnType<typeof inspect>): GatewayConfig {
  expect(report.issues).toEqual([]);
  return report.config as GatewayConfig;
}

const where = (i: ConfigIssue) =>
  i.source?.kind === 'file' ? `${i.source.line}:${i.source.col}` : undefined;

describe('every problem at once, with its path and place', () => {
  it('gives five messages with paths and line numbers for a file with five mistakes', () => {
    const path = file(`gateway:
  id: Hub_1
tls:
  ca: tls/ca.crt
  cert: tls/gateway.crt
  key: { file: tls/gateway.key }
uplink:
  brokers:
    - url: mqtts://broker.example:8883
  window: 0
log:
  level: verbose
metrics:
  port: 70000
alerts:
  rules:
    - code: MDC_PULS_OXIM_SAT_02
      unit: '%'
      below: 90
`);
    const report = inspect({ configFile: path });
    expect(report.config).toBeUndefined();
    expect(report.issues.map((i) => [i.path, where(i), i.code])).toEqual([
      ['gateway.id', '2:7', 'CONFIG_BAD_VALUE'],
      ['uplink.window', '10:11', 'CONFIG_BAD_VALUE'],
      ['log.level', '12:10', 'CONFIG_BAD_VALUE'],
      ['metrics.port', '14:9', 'CONFIG_BAD_VALUE'],
      ['alerts.rules[0].code', '17:13', 'CONFIG_BAD_VALUE'],
    ]);
    const lines = report.issues.map(formatIssue);
    expect(lines[0]).toBe(
      `${path}:2:7: gateway.id: expected the gateway id of this hub's certificate: 3 to 63 lower-case letters, digits or '-', starting with a letter or digit [CONFIG_BAD_VALUE]`,
    );
    // What is allowed is in the message.
    expect(lines[1]).toContain('from 1 to 1024');
    expect(lines[2]).toContain('not one of fatal, error, warn, info, debug, trace, silent');
    expect(lines[3]).toContain('a TCP port, 1 to 65535');
    expect(lines[4]).toContain('did you mean MDC_PULS_OXIM_SAT_O2?');
    // loadConfig throws one error that lists them all.
    let error: unknown;
    try {
      loadConfig({ configFile: path, env: {}, defaultConfigFile: join(dir, 'absent.yaml') });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('CONFIG_INVALID');
    expect((error as ConfigError).issues).toHaveLength(5);
    expect((error as ConfigError).message).toContain('the configuration has 5 problems');
  });

  it('reports problems from the file, the environment and the flags together', () => {
    const report = inspect({
      configFile: file(`${MINIMAL}log:\n  level: loud\n`),
      env: { RPM_METRICS_PORT: 'ninety', RPM_LOG_LEVLE: 'debug' },
      flags: [{ flag: '--set', text: 'shutdown.deadline=forever' }],
    });
    expect(report.issues.map((i) => [i.path, i.source && formatIssue(i).split(': ')[0]])).toEqual([
      ['log.level', `${join(dir, 'gateway.yaml')}:11:10`],
      ['', 'env RPM_LOG_LEVLE'],
      ['metrics.port', 'env RPM_METRICS_PORT'],
      ['shutdown.deadline', 'flag --set'],
    ]);
  });

  it('reports YAML syntax errors and duplicate keys with their line', () => {
    const report = inspect({ configFile: file(`${MINIMAL}log:\n  level: info\n  level: warn\n`) });
    expect(report.issues).toHaveLength(1);
    expect(report.issues[0]).toMatchObject({ code: 'CONFIG_SYNTAX', source: { kind: 'file', line: 12 } });
    // Only the syntax error: what the schema would say of a misread file is noise.
    const broken = inspect({ configFile: file('gateway: [unclosed\n', 'broken.yaml') });
    expect(broken.config).toBeUndefined();
    expect(broken.issues).toEqual([
      expect.objectContaining({
        code: 'CONFIG_SYNTAX',
        source: expect.objectContaining({ line: 2, col: 1 }),
      }),
    ]);
  });

  it('names every required key nobody set, with the variable and flag that would set it', () => {
    const report = inspect({});
    expect(report.issues.map((i) => [i.code, i.path])).toEqual([
      ['CONFIG_MISSING_KEY', 'gateway.id'],
      ['CONFIG_MISSING_KEY', 'tls.ca'],
      ['CONFIG_MISSING_KEY', 'tls.cert'],
      ['CONFIG_MISSING_KEY', 'tls.key'],
      ['CONFIG_MISSING_KEY', 'uplink.brokers'],
    ]);
    expect(report.issues[0]?.message).toContain('RPM_GATEWAY_ID');
    expect(report.issues[0]?.message).toContain('--set gateway.id=');
  });

  it('refuses a missing file named by --config or $RPM_CONFIG, naming it and who named it', () => {
    const missing = join(dir, 'gatewy.yaml');
    const byFlag = inspect({ configFile: missing });
    expect(byFlag.issues.map(formatIssue)).toContain(
      `flag --config: the configuration file ${missing} does not exist [CONFIG_FILE_MISSING]`,
    );
    const byEnv = inspect({ env: { RPM_CONFIG: missing } });
    expect(byEnv.issues[0]).toMatchObject({
      code: 'CONFIG_FILE_MISSING',
      source: { kind: 'env', variable: 'RPM_CONFIG' },
    });
  });
});

describe('unknown keys', () => {
  it('are errors with a suggestion when one is close, in the file, the environment and --set', () => {
    const report = inspect({
      configFile: file(`${MINIMAL}  brokrs: []\nlogs:\n  level: info\nstore:\n  key: { fiel: k }\n`),
      env: { RPM_UPLINK_WINDOWS: '4' },
      flags: [{ flag: '--set', text: 'metrics.enabld=false' }],
    });
    const messages = report.issues.map(formatIssue);
    expect(messages).toEqual([
      expect.stringMatching(
        /:10:3: uplink\.brokrs: unknown key \(did you mean brokers\?\).* \[CONFIG_UNKNOWN_KEY\]$/,
      ),
      expect.stringMatching(/:11:1: logs: unknown key \(did you mean log\?\).* \[CONFIG_UNKNOWN_KEY\]$/),
      expect.stringMatching(
        /:14:10: store\.key\.fiel: unknown key \(did you mean file\?\).* \[CONFIG_UNKNOWN_KEY\]$/,
      ),
      expect.stringMatching(/^env RPM_UPLINK_WINDOWS: .*did you mean RPM_UPLINK_WINDOW\?/),
      expect.stringMatching(
        /^flag --set: metrics\.enabld: not a setting \(did you mean metrics\.enabled\?\)/,
      ),
    ]);
  });

  it('leaves alone RPM_ variables that belong to other programs, and the one holding the store key', () => {
    const report = inspect({
      configFile: file(MINIMAL),
      env: { RPM_BUILD_ROOT: '/tmp/x', RPM_ARCH: 'aarch64', RPM_TEST_KEY: 'a'.repeat(64) },
      flags: [{ flag: '--set', text: 'store.key.env=RPM_TEST_KEY' }],
    });
    expect(report.issues).toEqual([]);
    expect(report.config?.store.key).toEqual({ source: 'env', variable: 'RPM_TEST_KEY' });
    expect(report.warnings.join('\n')).toContain('RPM_TEST_KEY');
  });
});

describe('layering: defaults < file < RPM_* environment < flags', () => {
  const layered = (layers: { file?: string; env?: NodeJS.ProcessEnv; flags?: string[] }) => {
    const values = { set: layers.flags ?? [] };
    return inspect({
      ...(layers.file === undefined ? {} : { configFile: file(`${MINIMAL}${layers.file}`) }),
      env: layers.env ?? {},
      flags: configFlags(values),
    });
  };

  // [key, file text, variable, variable text, --set text, read it, default, value from file, env, flag]
  it.each([
    [
      'log.level',
      'log:\n  level: warn\n',
      'RPM_LOG_LEVEL',
      'error',
      'debug',
      (c: GatewayConfig) => c.log.level,
      ['info', 'warn', 'error', 'debug'],
    ],
    [
      'metrics.port',
      'metrics:\n  port: 9100\n',
      'RPM_METRICS_PORT',
      '9200',
      '9300',
      (c: GatewayConfig) => c.metrics.port,
      [9464, 9100, 9200, 9300],
    ],
    [
      'lanes.backlogAfter',
      'lanes:\n  backlogAfter: 5min\n',
      'RPM_LANES_BACKLOG_AFTER',
      '2min',
      '90s',
      (c: GatewayConfig) => c.lanes.backlogAfterMs,
      [600_000, 300_000, 120_000, 90_000],
    ],
    [
      'log.redact',
      'log:\n  redact: false\n',
      'RPM_LOG_REDACT',
      'yes',
      'off',
      (c: GatewayConfig) => c.log.redact,
      [true, false, true, false],
    ],
  ] as const)('%s', (key, fileText, variable, envValue, flagValue, read, expected) => {
    const fromDefault = layered({ file: '' });
    const fromFile = layered({ file: fileText });
    const fromEnv = layered({ file: fileText, env: { [variable]: envValue } });
    const fromFlag = layered({
      file: fileText,
      env: { [variable]: envValue },
      flags: [`${key}=${flagValue}`],
    });
    expect([fromDefault, fromFile, fromEnv, fromFlag].map((r) => read(loaded(r)))).toEqual(expected);
    const path = key.split('.');
    expect(fromDefault.sourceOf(path)).toEqual({ kind: 'default' });
    expect(fromFile.sourceOf(path)).toMatchObject({ kind: 'file', line: 11 });
    expect(fromEnv.sourceOf(path)).toEqual({ kind: 'env', variable });
    expect(fromFlag.sourceOf(path)).toEqual({ kind: 'flag', flag: '--set' });
  });

  it('takes the named flags over the environment over the file', () => {
    const report = inspect({
      configFile: file(MINIMAL),
      env: {
        RPM_GATEWAY_ID: 'hub-from-env',
        RPM_UPLINK_BROKERS: 'mqtts://env-1.example,mqtts://env-2.example:1883',
      },
      flags: configFlags({ 'gateway-id': 'hub-from-flag', 'data-dir': 'state' }),
    });
    expect(report.issues).toEqual([]);
    expect(report.config?.gateway.id).toBe('hub-from-flag');
    expect(report.sourceOf(['gateway', 'id'])).toEqual({ kind: 'flag', flag: '--gateway-id' });
    // A list from a higher layer replaces the file's list; its items are in order (failover order).
    expect(report.config?.uplink.brokers).toEqual([
      { url: 'mqtts://env-1.example:8883', host: 'env-1.example', port: 8883 },
      { url: 'mqtts://env-2.example:1883', host: 'env-2.example', port: 1883 },
    ]);
    // Relative paths: from the working directory for flags, from the file's folder for the file.
    expect(report.config?.paths.dataDir).toBe(join(dir, 'state'));
    expect(report.config?.tls.ca).toBe(join(dir, 'tls/ca.crt'));
    // The default store key follows the data directory wherever it came from.
    expect(report.config?.store.key).toEqual({ source: 'file', path: join(dir, 'state', 'store.key') });
    expect(report.sourceOf(['store', 'key'])).toMatchObject({ kind: 'default' });
  });

  it('reads the old RPM_GATEWAY_DATA_DIR as paths.dataDir, and refuses two variables that disagree', () => {
    const one = inspect({ configFile: file(MINIMAL), env: { RPM_GATEWAY_DATA_DIR: '/srv/rpm' } });
    expect(one.config?.paths.dataDir).toBe('/srv/rpm');
    const two = inspect({
      configFile: file(MINIMAL),
      env: { RPM_GATEWAY_DATA_DIR: '/a', RPM_DATA_DIR: '/b' },
    });
    expect(two.issues).toEqual([expect.objectContaining({ code: 'CONFIG_CONFLICT', path: 'paths.dataDir' })]);
  });

  it('refuses --key-file together with --credential', () => {
    const report = inspect({
      configFile: file(MINIMAL),
      flags: configFlags({ 'key-file': 'store.key', credential: 'store-key' }),
    });
    expect(report.issues.map(formatIssue)).toEqual([
      'flag --key-file: store.key: set by both --key-file and --credential with different values; keep one [CONFIG_CONFLICT]',
    ]);
  });

  it('reads lists, booleans, numbers and structured values from variable text', () => {
    const report = inspect({
      configFile: file(MINIMAL),
      env: {
        RPM_TLS_CLINIC_CA: '/etc/clinic-ca.crt',
        RPM_TLS_COMMAND_SIGNERS: '/etc/s1.crt, /etc/s2.crt',
        RPM_PATIENT_PAGE_ENABLED: 'no',
        RPM_UPLINK_PROTOCOL_VERSION: '5',
        RPM_ALERTS_RULES: '[{code: MDC_TEMP_BODY, unit: Cel, above: 39.5}]',
      },
    });
    expect(report.issues).toEqual([]);
    expect(report.config?.tls.commandSigners).toEqual(['/etc/s1.crt', '/etc/s2.crt']);
    expect(report.config?.patientPage.enabled).toBe(false);
    expect(report.config?.uplink.protocolVersion).toBe(5);
    expect(report.config?.alerts.rules).toEqual([
      { code: 'MDC_TEMP_BODY', unit: 'Cel', above: 39.5, forMs: 0, hysteresis: 0 },
    ]);
  });
});

describe('the parsed configuration', () => {
  it('holds milliseconds and bytes, and the store and uplink defaults of the code that uses them', () => {
    const { config } = loadConfig({
      configFile: file(MINIMAL),
      env: {},
      defaultConfigFile: join(dir, 'absent'),
    });
    expect(config.store.retention).toEqual(DEFAULT_RETENTION);
    expect(config.uplink.backoff).toEqual(DEFAULT_BACKOFF);
    expect(config.uplink).toMatchObject({
      connectTimeoutMs: 15_000,
      keepaliveSeconds: 30,
      liveBatchBytes: 16_384,
    });
    expect(config.shutdown.deadlineMs).toBe(10_000);
    expect(config.alerts.rules.map((r) => r.code)).toEqual([
      'MDC_PULS_OXIM_SAT_O2',
      'MDC_PRESS_BLD_NONINV_SYS',
      'MDC_PULS_OXIM_PULS_RATE',
      'MDC_PULS_RATE_NON_INV',
      'MDC_ECG_HEART_RATE',
    ]);
    expect(config.alerts.rules[0]).toEqual({
      code: 'MDC_PULS_OXIM_SAT_O2',
      unit: '%',
      below: 90,
      forMs: 60_000,
      hysteresis: 1,
    });
  });

  it('checks alert rules, listeners and brokers for what no single value shows', () => {
    const report = inspect({
      configFile: file(`${MINIMAL}    - url: mqtt://plain.example:1883
alerts:
  rules:
    - { code: MDC_TEMP_BODY, unit: Cel }
    - { code: MDC_PULS_RATE_NON_INV, unit: /min, below: 130, above: 40 }
    - { code: MDC_PULS_RATE_NON_INV, unit: beats, above: 150 }
patientPage:
  host: 0.0.0.0
`),
    });
    expect(report.issues.map((i) => [i.path, i.code, where(i)])).toEqual([
      ['uplink.brokers[1].url', 'CONFIG_BAD_VALUE', '10:12'],
      ['alerts.rules[0]', 'CONFIG_MISSING_KEY', '13:7'],
      ['alerts.rules[1].above', 'CONFIG_BAD_VALUE', '14:69'],
      ['alerts.rules[2].unit', 'CONFIG_BAD_VALUE', '15:44'],
      ['patientPage.host', 'CONFIG_BAD_VALUE', '17:9'],
    ]);
    expect(report.issues[0]?.message).toContain('mutual TLS');
    expect(report.issues[4]?.message).toContain('allowLan: true');
  });
});

describe('secrets are never inline', () => {
  const PEM =
    '-----BEGIN PRIVATE KEY-----\\nMC4CAQAwBQYDK2VwBCIEIJ7lQ7sV2o0fM2cmJmH6j0b0YpPbuI8Y9Ahk2wbU0p3z\\n-----END PRIVATE KEY-----';
  const HEX = 'a1'.repeat(32);

  /** A valid file with some sections replaced. */
  const withSections = (sections: { tls?: string; store?: string; uplink?: string }) =>
    [
      'gateway:\n  id: hub-0001\n',
      sections.tls ?? 'tls:\n  ca: ca.crt\n  cert: c.crt\n  key: { file: k.key }\n',
      sections.store ?? '',
      sections.uplink ?? 'uplink:\n  brokers:\n    - url: mqtts://b.example\n',
    ].join('');

  it.each([
    ['tls.key as PEM text', { tls: `tls:\n  ca: ca.crt\n  cert: c.crt\n  key: "${PEM}"\n` }, 'tls.key'],
    [
      'a certificate as PEM text',
      { tls: `tls:\n  ca: "${PEM}"\n  cert: c.crt\n  key: { file: k }\n` },
      'tls.ca',
    ],
    [
      'a store key in place of its file name',
      { store: `store:\n  key: { file: ${HEX} }\n` },
      'store.key.file',
    ],
    ['a store key as the key itself', { store: `store:\n  key: ${HEX}\n` }, 'store.key'],
    [
      'a password in a broker URL',
      { uplink: 'uplink:\n  brokers:\n    - url: mqtts://hub:s3cret@b.example\n' },
      'uplink.brokers[0].url',
    ],
  ])('refuses %s', (_, sections, path) => {
    const report = inspect({ configFile: file(withSections(sections)) });
    expect(report.issues).toEqual([
      expect.objectContaining({
        path,
        code: 'CONFIG_INLINE_SECRET',
        source: expect.objectContaining({ kind: 'file' }),
      }),
    ]);
    // The secret itself is never repeated.
    const everything = report.issues.map(formatIssue).join('\n');
    expect(everything).not.toContain('MC4CAQAw');
    expect(everything).not.toContain(HEX);
    expect(everything).not.toContain('s3cret');
  });

  it('refuses a key in a variable or flag meant to name its file', () => {
    const report = inspect({
      configFile: file(MINIMAL),
      env: { RPM_TLS_KEY_FILE: HEX },
      flags: configFlags({ 'key-file': HEX }),
    });
    expect(report.issues.map((i) => [i.path, i.code, i.source?.kind]).sort()).toEqual([
      ['store.key.file', 'CONFIG_INLINE_SECRET', 'flag'],
      ['tls.key.file', 'CONFIG_INLINE_SECRET', 'env'],
    ]);
  });
});

describe('durations and sizes', () => {
  it.each([
    ['500ms', 500],
    ['60s', 60_000],
    ['10min', 600_000],
    ['10m', 600_000],
    ['1h 30min', 5_400_000],
    ['0.5s', 500],
    ['30d', 2_592_000_000],
  ])('reads %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['60', '', '10 minutes', 's', '5constructor', '-1s', '1e3s'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it('reads sizes with IEC units only', () => {
    expect(parseSize('64KiB')).toBe(65_536);
    expect(parseSize('1GiB')).toBe(1_073_741_824);
    expect(parseSize('1GB')).toBeUndefined();
    expect(parseSize('1024')).toBeUndefined();
  });
});

describe('bad input never crashes', () => {
  it.each([
    ['an empty file', ''],
    ['a list', '- a\n- b\n'],
    ['a scalar', 'hello\n'],
    ['a binary value', 'gateway: !!binary aGVsbG8=\n'],
    ['an unknown tag', 'gateway: !custom { id: x }\n'],
    ['a complex key', '? [a, b]\n: c\n'],
    ['aliases', 'a: &x [1, 2]\nb: *x\ngateway: *x\n'],
    ['an undefined alias', 'gateway: *nothing\n'],
    ['deep nesting', `${'['.repeat(500)}${']'.repeat(500)}\n`],
    ['NUL bytes', 'gateway:\n  id: "a\\0b"\n'],
  ])('reports %s as issues', (_, text) => {
    const report = inspect({ configFile: file(text) });
    expect(report.config).toBeUndefined();
    expect(report.issues.length).toBeGreaterThan(0);
    for (const issue of report.issues) expect(formatIssue(issue)).toMatch(/\[CONFIG_[A-Z_]+\]$/);
  });
});
