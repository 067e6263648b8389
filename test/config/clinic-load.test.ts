import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type ClinicConfigReport,
  inspectClinicConfig,
  loadClinicConfig,
  requireSection,
} from '../../src/config/clinic/load.js';
import type { ClinicConfig } from '../../src/config/clinic/schema.js';
import { ConfigError, type ConfigIssue, formatIssue } from '../../src/config/errors.js';
import { inspectConfig, type LoadOptions } from '../../src/config/load.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rpm-clinic-config-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The smallest valid file: what has no default. */
const MINIMAL = `clinic:
  name: st-mary
pki:
  ca: pki/ca.crt
  gatewayCerts: pki/gateways
`;

const BROKER = `broker:
  cert: pki/broker.crt
  key: { file: pki/broker.key }
`;

const INTAKE = `intake:
  cert: pki/intake.crt
  key: { file: pki/intake.key }
`;

function file(text: string, name = 'clinic.yaml'): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** No /etc file, no stray variables from the machine running the tests. */
function inspect(options: LoadOptions): ClinicConfigReport {
  return inspectClinicConfig({
    defaultConfigFile: join(dir, 'absent.yaml'),
    env: { STATE_DIRECTORY: join(dir, 'state'), TZ: 'UTC' },
    cwd: dir,
    ...options,
  });
}

function loaded(report: ClinicConfigReport): ClinicConfig {
  expect(report.issues.map(formatIssue)).toEqual([]);
  return report.config as ClinicConfig;
}

const where = (i: ConfigIssue) =>
  i.source?.kind === 'file' ? `${i.source.line}:${i.source.col}` : undefined;

describe('defaults for one machine', () => {
  it('fills the data directory, the database and the time zone from where it runs', () => {
    const config = loaded(inspect({ configFile: file(MINIMAL) }));
    const state = join(dir, 'state');
    expect(config.paths.dataDir).toBe(state);
    expect(config.clinic.timeZone).toBe('UTC');
    expect(config.pki).toEqual({ ca: join(dir, 'pki/ca.crt'), gatewayCerts: join(dir, 'pki/gateways') });
    expect(config.database).toEqual({
      kind: 'sqlite',
      sqlite: { path: join(state, 'clinic.db'), key: { source: 'file', path: join(state, 'clinic.key') } },
    });
    expect(config.broker).toBeUndefined();
    expect(config.intake).toBeUndefined();
    expect(config.fhir).toMatchObject({ enabled: false, policy: { continuousIntervalMs: 300_000 } });
    expect(config.log).toEqual({ level: 'info', redact: true });
  });

  it('takes the XDG state folder under rpm-clinic without $STATE_DIRECTORY, and the TZ zone', () => {
    const report = inspectClinicConfig({
      defaultConfigFile: join(dir, 'absent.yaml'),
      env: { XDG_STATE_HOME: join(dir, 'xdg'), TZ: 'America/New_York' },
      configFile: file(MINIMAL),
    });
    const config = loaded(report);
    expect(config.paths.dataDir).toBe(join(dir, 'xdg', 'rpm-clinic'));
    expect(config.clinic.timeZone).toBe('America/New_York');
    expect(report.sourceOf(['paths', 'dataDir'])).toEqual({ kind: 'default', note: '$XDG_STATE_HOME' });
  });

  it('gives a broker and an intake on one machine what they need to find each other', () => {
    const config = loaded(inspect({ configFile: file(MINIMAL + BROKER + INTAKE) }));
    expect(config.broker).toMatchObject({
      host: '127.0.0.1',
      port: 8883,
      maxPayloadBytes: 256 * 1024,
      persistence: {
        dir: join(dir, 'state', 'broker'),
        key: { source: 'file', path: join(dir, 'state', 'broker.key') },
        sync: true,
      },
      durableSubscribers: [
        { clientId: 'clinic-st-mary-in', topics: ['rpm/v1/+/obs', 'rpm/v1/+/status'] },
        { clientId: 'clinic-st-mary-in-a', topics: ['rpm/v1/+/alert'] },
      ],
    });
    expect(config.intake).toMatchObject({
      brokers: [{ url: 'mqtts://127.0.0.1:8883', host: '127.0.0.1', port: 8883, servername: 'localhost' }],
      clientId: 'clinic-st-mary-in',
      protocolVersion: 4,
      groupCommit: { maxMessages: 256, maxDelayMs: 5 },
      signerGraceMs: 7 * 86_400_000,
      rejected: { maxRows: 100_000, maxQuarantineBytes: 64 * 1024 * 1024 },
    });
  });

  it('says which section a command needs when it is absent', () => {
    const report = loadClinicConfig({
      defaultConfigFile: join(dir, 'absent.yaml'),
      env: {},
      configFile: file(MINIMAL),
    });
    expect(() => requireSection(report, 'broker', 'rpm-gateway broker')).toThrow(
      /rpm-gateway broker needs a broker: section/,
    );
  });
});

describe('every problem at once, with its path and place', () => {
  it('lists each mistake of a file with its line and column', () => {
    const path = file(`clinic:
  name: St Mary
  timeZone: Europe/Berlinn
pki:
  ca: pki/ca.crt
  gatewayCerts: pki/gateways
broker:
  port: 70000
  cert: pki/broker.crt
  key: { file: pki/broker.key }
  maxPayload: 256
intake:
  cert: pki/intake.crt
  key: { file: pki/intake.key }
  signerGrace: 60d
  groupCommit:
    maxMesages: 10
database:
  kind: mysql
log:
  level: verbose
`);
    // The intake's default brokers come from the broker section; with its port wrong, they are not made
    // (the port is the problem to report), so the intake says its brokers are missing too.
    const report = inspect({ configFile: path });
    expect(report.config).toBeUndefined();
    expect(report.issues.map((i) => [i.path, where(i), i.code])).toEqual([
      ['clinic.name', '2:9', 'CONFIG_BAD_VALUE'],
      ['clinic.timeZone', '3:13', 'CONFIG_BAD_VALUE'],
      ['broker.port', '8:9', 'CONFIG_BAD_VALUE'],
      ['broker.maxPayload', '11:15', 'CONFIG_BAD_VALUE'],
      ['intake.signerGrace', '15:16', 'CONFIG_BAD_VALUE'],
      ['intake.groupCommit.maxMesages', '17:5', 'CONFIG_UNKNOWN_KEY'],
      ['database.kind', '19:9', 'CONFIG_BAD_VALUE'],
      ['log.level', '21:10', 'CONFIG_BAD_VALUE'],
      ['intake.brokers', undefined, 'CONFIG_MISSING_KEY'],
    ]);
    const text = report.issues.map(formatIssue).join('\n');
    expect(text).toContain('(did you mean maxMessages?)');
    expect(text).toContain('from 0s to 30d');
    expect(text).toContain(`${path}:3:13: clinic.timeZone: not a time zone`);
  });

  it('says what is missing, and how to set it, when the file gives nothing', () => {
    const report = inspect({});
    expect(report.issues.map((i) => [i.path, i.code])).toEqual([
      ['clinic.name', 'CONFIG_MISSING_KEY'],
      ['pki.ca', 'CONFIG_MISSING_KEY'],
      ['pki.gatewayCerts', 'CONFIG_MISSING_KEY'],
    ]);
    expect(report.issues[0]?.message).toContain('as RPM_CLINIC_CLINIC_NAME, or with --set clinic.name=');
  });

  it('suggests the section meant for a misspelt one', () => {
    const report = inspect({ configFile: file(`${MINIMAL}databse:\n  kind: postgres\n`) });
    expect(report.issues.map((i) => [i.path, where(i), i.code])).toEqual([
      ['databse', '6:1', 'CONFIG_UNKNOWN_KEY'],
    ]);
    expect(report.issues[0]?.message).toContain('(did you mean database?)');
  });
});

describe('the environment: RPM_CLINIC_*, never the hub RPM_*', () => {
  it('reads RPM_CLINIC_ variables above the file, and says where each value came from', () => {
    const report = inspect({
      configFile: file(MINIMAL + BROKER),
      env: {
        TZ: 'UTC',
        STATE_DIRECTORY: join(dir, 'state'),
        RPM_CLINIC_BROKER_PORT: '18883',
        RPM_CLINIC_LOG_LEVEL: 'debug',
        RPM_CLINIC_INTAKE_SIGNER_GRACE: '2d',
        RPM_CLINIC_INTAKE_CERT: 'pki/i.crt',
        RPM_CLINIC_INTAKE_KEY_CREDENTIAL: 'intake-key',
        RPM_CLINIC_NAME: 'st-mary',
      },
    });
    const config = loaded(report);
    expect(config.broker?.port).toBe(18883);
    expect(config.log.level).toBe('debug');
    expect(config.intake?.signerGraceMs).toBe(2 * 86_400_000);
    expect(config.intake?.cert).toBe(join(dir, 'pki/i.crt'));
    expect(config.intake?.key).toEqual({ source: 'credential', name: 'intake-key' });
    // The intake reaches the broker at the port the variable gave it.
    expect(config.intake?.brokers[0]?.port).toBe(18883);
    expect(report.sourceOf(['broker', 'port'])).toEqual({ kind: 'env', variable: 'RPM_CLINIC_BROKER_PORT' });
    // RPM_CLINIC_NAME (the short name of RPM_CLINIC_CLINIC_NAME) is above the file.
    expect(report.sourceOf(['clinic', 'name'])).toEqual({ kind: 'env', variable: 'RPM_CLINIC_NAME' });
    expect(report.sourceOf(['pki', 'ca'])).toMatchObject({ kind: 'file', line: 4 });
  });

  it('ignores the hub variables, and reports a misspelt clinic one', () => {
    const report = inspect({
      configFile: file(MINIMAL),
      env: { RPM_LOG_LEVEL: 'verbose', RPM_CONFIG: '/nonexistent', RPM_CLINIC_LOG_LEVLE: 'debug' },
    });
    expect(report.issues.map((i) => [i.code, i.source])).toEqual([
      ['CONFIG_UNKNOWN_KEY', { kind: 'env', variable: 'RPM_CLINIC_LOG_LEVLE' }],
    ]);
    expect(report.issues[0]?.message).toContain('did you mean RPM_CLINIC_LOG_LEVEL?');
  });

  it('reads its file from $RPM_CLINIC_CONFIG, and the hub never reads the clinic variables', () => {
    const path = file(MINIMAL, 'elsewhere.yaml');
    const clinic = inspect({ env: { RPM_CLINIC_CONFIG: path, TZ: 'UTC' } });
    expect(clinic.file).toBe(path);
    expect(loaded(clinic).clinic.name).toBe('st-mary');
    const hub = inspectConfig({
      defaultConfigFile: join(dir, 'absent.yaml'),
      env: { RPM_CLINIC_CONFIG: path, RPM_CLINIC_LOG_LEVEL: 'nonsense', RPM_CLINIC_GATEWAY_ID: 'x' },
    });
    expect(hub.file).toBeUndefined();
    expect(hub.issues.filter((i) => i.source?.kind === 'env')).toEqual([]);
  });

  it('takes flags above the variables', () => {
    const config = loaded(
      inspect({
        configFile: file(MINIMAL),
        env: { TZ: 'UTC', RPM_CLINIC_LOG_LEVEL: 'debug' },
        flags: [{ flag: '--set', text: 'log.level=warn' }],
      }),
    );
    expect(config.log.level).toBe('warn');
  });
});

describe('secrets only by reference', () => {
  const PEM =
    '-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\\n-----END PRIVATE KEY-----';

  it('refuses a key, a password and a token written inline, without repeating them', () => {
    const path = file(`${MINIMAL}broker:
  cert: pki/broker.crt
  key: "${PEM}"
database:
  kind: postgres
  postgres:
    host: db.example
    database: rpm
    user: rpm
    password: { file: "0123456789abcdef0123456789abcdef0123456789abcdef" }
fhir:
  target: { baseUrl: "https://user:secret@fhir.example/r4" }
  token: "ZXlKaGJHY2lPaUpTVXpJMU5pSXNJblI1Y0NJNklrcFhWQ0o5LmV5SnpkV0lpT2lJeE1qTTBOVFkzT0Rr"
`);
    const report = inspect({ configFile: path });
    expect(report.issues.map((i) => [i.path, where(i), i.code])).toEqual([
      ['broker.key', '8:8', 'CONFIG_INLINE_SECRET'],
      ['database.postgres.password.file', '15:23', 'CONFIG_INLINE_SECRET'],
      ['fhir.target.baseUrl', '17:22', 'CONFIG_INLINE_SECRET'],
      ['fhir.token', '18:10', 'CONFIG_INLINE_SECRET'],
    ]);
    const text = report.issues.map(formatIssue).join('\n');
    expect(text).not.toContain('BEGIN');
    expect(text).not.toContain('0123456789abcdef');
    expect(text).not.toContain('secret@');
  });

  it('takes no secret from an environment variable (file or systemd credential only)', () => {
    const report = inspect({
      configFile: file(`${MINIMAL}${BROKER}${INTAKE.replace('{ file: pki/intake.key }', '{ env: KEY }')}`),
    });
    expect(report.issues.map((i) => [i.path, i.code])).toEqual([['intake.key.env', 'CONFIG_UNKNOWN_KEY']]);
  });
});

describe('cross-field checks', () => {
  it('refuses a shared group with MQTT 3.1.1', () => {
    const report = inspect({
      configFile: file(
        `${MINIMAL}${INTAKE}  brokers: [{ url: "mqtts://emqx.example" }]\n  sharedGroup: intake\n`,
      ),
    });
    expect(report.issues.map((i) => [i.path, where(i), i.code])).toEqual([
      ['intake.sharedGroup', '10:16', 'CONFIG_INCOMPATIBLE'],
    ]);
    expect(report.issues[0]?.message).toContain('protocolVersion: 5');
    const v5 = inspect({
      configFile: file(
        `${MINIMAL}${INTAKE}  brokers: [{ url: "mqtts://emqx.example" }]\n  sharedGroup: intake\n  protocolVersion: 5\n`,
      ),
    });
    expect(loaded(v5).intake).toMatchObject({ sharedGroup: 'intake', protocolVersion: 5 });
  });

  it('refuses a broker on a network address unless allowNetwork says so', () => {
    const text = `${MINIMAL}${BROKER}  host: 0.0.0.0\n`;
    const report = inspect({ configFile: file(text) });
    expect(report.issues.map((i) => [i.path, where(i), i.code])).toEqual([
      ['broker.host', '9:9', 'CONFIG_BAD_VALUE'],
    ]);
    expect(report.issues[0]?.message).toContain('allowNetwork: true');
    expect(loaded(inspect({ configFile: file(`${text}  allowNetwork: true\n`) })).broker?.host).toBe(
      '0.0.0.0',
    );
  });

  it('needs the section of the database kind chosen, and only that one', () => {
    const report = inspect({ configFile: file(`${MINIMAL}database:\n  kind: postgres\n`) });
    expect(report.issues.map((i) => [i.path, i.code])).toEqual([['database.postgres', 'CONFIG_MISSING_KEY']]);
    expect(report.issues[0]?.message).toContain('database.kind is postgres');
    const pg = loaded(
      inspect({
        configFile: file(
          `${MINIMAL}database:\n  kind: postgres\n  postgres:\n    host: /var/run/postgresql\n    database: rpm\n    user: rpm\n`,
        ),
      }),
    );
    expect(pg.database).toEqual({
      kind: 'postgres',
      postgres: {
        host: '/var/run/postgresql',
        port: 5432,
        database: 'rpm',
        user: 'rpm',
        ssl: { mode: 'verify-full' },
        poolSize: 10,
      },
    });
  });

  it('refuses an unencrypted PostgreSQL connection over the network', () => {
    const report = inspect({
      configFile: file(
        `${MINIMAL}database:\n  kind: postgres\n  postgres:\n    host: db.example\n    database: rpm\n    user: rpm\n    ssl: { mode: disable }\n`,
      ),
    });
    expect(report.issues.map((i) => [i.path, i.code])).toEqual([
      ['database.postgres.ssl.mode', 'CONFIG_BAD_VALUE'],
    ]);
  });

  it('refuses client ids the broker would refuse for this clinic, together with other problems', () => {
    const report = inspect({
      configFile: file(`${MINIMAL}${BROKER}  durableSubscribers:
    - clientId: clinic-other-intake
    - clientId: clinic-st-mary-Bad
      topics: [rpm/v1/#/obs]
${INTAKE}  clientId: st-mary
log:
  level: loud
`),
    });
    expect(report.issues.map((i) => [i.path, where(i), i.code])).toEqual([
      ['broker.durableSubscribers[1].topics[0]', '12:16', 'CONFIG_BAD_VALUE'],
      ['intake.clientId', '16:13', 'CONFIG_BAD_VALUE'],
      ['log.level', '18:10', 'CONFIG_BAD_VALUE'],
    ]);
    const fixedTopic = inspect({
      configFile: file(`${MINIMAL}${BROKER}  durableSubscribers:
    - clientId: clinic-other-intake
    - clientId: clinic-st-mary-Bad
${INTAKE}  clientId: st-mary
log:
  level: loud
`),
    });
    expect(fixedTopic.issues.map((i) => [i.path, where(i), i.code])).toEqual([
      ['broker.durableSubscribers[0].clientId', '10:17', 'CONFIG_BAD_VALUE'],
      ['broker.durableSubscribers[1].clientId', '11:17', 'CONFIG_BAD_VALUE'],
      ['intake.clientId', '15:13', 'CONFIG_BAD_VALUE'],
      ['log.level', '17:10', 'CONFIG_BAD_VALUE'],
    ]);
    expect(fixedTopic.issues[0]?.message).toContain('clinic-st-mary or clinic-st-mary-<suffix>');
  });

  it('needs a target, the MRN system and the system base when the FHIR export is on, and refuses plain http off this machine', () => {
    const report = inspect({
      configFile: file(
        `${MINIMAL}fhir:\n  enabled: true\n  backoff: { base: 10s, cap: 1s, stableAfter: 0s }\n`,
      ),
    });
    expect(report.issues.map((i) => [i.path, i.code])).toEqual([
      ['fhir.backoff.cap', 'CONFIG_BAD_VALUE'],
      ['fhir.target', 'CONFIG_MISSING_KEY'],
      ['fhir.patientIdentifierSystem', 'CONFIG_MISSING_KEY'],
      ['fhir.systemBase', 'CONFIG_MISSING_KEY'],
    ]);
    const noTarget = inspect({ configFile: file(`${MINIMAL}fhir:\n  enabled: true\n`) });
    expect(noTarget.issues.map((i) => [i.path, i.code])).toEqual([
      ['fhir.target', 'CONFIG_MISSING_KEY'],
      ['fhir.patientIdentifierSystem', 'CONFIG_MISSING_KEY'],
      ['fhir.systemBase', 'CONFIG_MISSING_KEY'],
    ]);
    const http = inspect({
      configFile: file(
        `${MINIMAL}fhir:\n  target: { baseUrl: "http://fhir.example/r4" }\n  patientIdentifierSystem: urn:oid:1.2.3\n`,
      ),
    });
    expect(http.issues.map((i) => [i.path, i.code])).toEqual([['fhir.target.baseUrl', 'CONFIG_BAD_VALUE']]);
    const local = loaded(
      inspect({
        configFile: file(
          `${MINIMAL}fhir:\n  enabled: true\n  target: { baseUrl: "http://127.0.0.1:8103/fhir/R4/" }\n  patientIdentifierSystem: urn:oid:1.2.3\n  systemBase: https://clinic.example/rpm/\n`,
        ),
      }),
    );
    expect(local.fhir.target).toEqual({ baseUrl: 'http://127.0.0.1:8103/fhir/R4' });
    expect(local.fhir.systemBase).toBe('https://clinic.example/rpm');
    const folder = inspect({
      configFile: file(
        `${MINIMAL}fhir:\n  enabled: true\n  target: { folder: /var/lib/rpm-clinic/bundles }\n  ca: /etc/ca.crt\n  patientIdentifierSystem: urn:oid:1.2.3\n  systemBase: "urn:oid:1.2"\n`,
      ),
    });
    expect(folder.issues.map((i) => [i.path, i.code])).toEqual([
      ['fhir.ca', 'CONFIG_INCOMPATIBLE'],
      ['fhir.systemBase', 'CONFIG_BAD_VALUE'],
    ]);
  });

  it('throws one CONFIG_INVALID listing every problem from loadClinicConfig', () => {
    expect(() =>
      loadClinicConfig({
        defaultConfigFile: join(dir, 'absent.yaml'),
        env: {},
        configFile: file('clinic: {}\n'),
      }),
    ).toThrow(ConfigError);
  });
});
