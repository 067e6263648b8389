import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkPaths, findPathProblems } from '../../src/config/check-paths.js';
import { ConfigError, formatIssue } from '../../src/config/errors.js';
import { type LoadOptions, loadConfig } from '../../src/config/load.js';
import { configFlags } from '../../src/config/options.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rpm-config-paths-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A configuration whose TLS files exist in <dir>/tls; the data directory is given by each test. */
function load(options: LoadOptions & { text?: string } = {}) {
  mkdirSync(join(dir, 'tls'), { recursive: true });
  for (const name of ['ca.crt', 'gateway.crt', 'gateway.key']) writeFileSync(join(dir, 'tls', name), 'x');
  const path = join(dir, 'gateway.yaml');
  writeFileSync(
    path,
    options.text ??
      `gateway: { id: hub-0001 }
tls:
  ca: tls/ca.crt
  cert: tls/gateway.crt
  key: { file: tls/gateway.key }
uplink:
  brokers: [{ url: 'mqtts://b.example' }]
`,
  );
  return loadConfig({
    defaultConfigFile: join(dir, 'absent'),
    env: {},
    cwd: dir,
    configFile: path,
    ...options,
  });
}

describe('paths the configuration names must exist', () => {
  it('refuses a typo in --data-dir, naming the path and the flag, and creates nothing', () => {
    const typo = join(dir, 'stte');
    const loaded = load({ flags: configFlags({ 'data-dir': typo }) });
    const issues = findPathProblems(loaded, { creating: false });
    expect(issues.map(formatIssue)).toEqual([
      `flag --data-dir: paths.dataDir: ${typo} does not exist; check it for a typo (nothing was created); a new store is made only by rpm-gateway init [CONFIG_PATH_MISSING]`,
    ]);
    expect(() => checkPaths(loaded, { creating: false })).toThrow(ConfigError);
    expect(existsSync(typo)).toBe(false);
  });

  it('lets init name a data directory and key file that do not exist yet (it creates them)', () => {
    const fresh = join(dir, 'fresh');
    const loaded = load({ flags: configFlags({ 'data-dir': fresh }) });
    expect(findPathProblems(loaded, { creating: true })).toEqual([]);
    expect(existsSync(fresh)).toBe(false);
  });

  it('refuses a missing key file given by --key-file even when the data directory exists', () => {
    mkdirSync(join(dir, 'state'));
    const loaded = load({ flags: configFlags({ 'data-dir': 'state', 'key-file': 'state/stor.key' }) });
    expect(findPathProblems(loaded, { creating: false })).toEqual([
      expect.objectContaining({
        code: 'CONFIG_PATH_MISSING',
        path: 'store.key',
        source: { kind: 'flag', flag: '--key-file' },
        message: expect.stringContaining(join(dir, 'state/stor.key')),
      }),
    ]);
  });

  it('says once that no store exists yet when the default data directory is missing', () => {
    const loaded = load({ env: { XDG_STATE_HOME: join(dir, 'xdg') } });
    const issues = findPathProblems(loaded, { creating: false });
    expect(issues).toEqual([
      expect.objectContaining({
        code: 'CONFIG_PATH_MISSING',
        path: 'paths.dataDir',
        message: expect.stringContaining('no store has been made here yet: run rpm-gateway init'),
      }),
    ]);
  });

  it('names the file position of a missing TLS file and a data directory that is a file', () => {
    writeFileSync(join(dir, 'not-a-dir'), '');
    const loaded = load({
      text: `gateway: { id: hub-0001 }
paths:
  dataDir: not-a-dir
tls:
  ca: tls/ca.crt
  cert: tls/gatway.crt
  key: { file: tls/gateway.key }
  commandSigners: [tls]
  clinicCa: tls/ca.crt
uplink:
  brokers: [{ url: 'mqtts://b.example' }]
`,
    });
    expect(findPathProblems(loaded, { creating: false }).map((i) => [i.code, i.path, i.source])).toEqual([
      ['CONFIG_NOT_A_DIRECTORY', 'paths.dataDir', expect.objectContaining({ kind: 'file', line: 3 })],
      ['CONFIG_PATH_MISSING', 'tls.cert', expect.objectContaining({ kind: 'file', line: 6 })],
      ['CONFIG_NOT_A_FILE', 'tls.commandSigners[0]', expect.objectContaining({ kind: 'file', line: 8 })],
    ]);
    // init does not need the TLS files (enrolment makes them later), but still refuses a file for a folder.
    expect(findPathProblems(loaded, { creating: true }).map((i) => i.code)).toEqual([
      'CONFIG_NOT_A_DIRECTORY',
    ]);
  });

  it('accepts a configuration whose paths all exist', () => {
    mkdirSync(join(dir, 'state'));
    writeFileSync(join(dir, 'state', 'store.key'), 'x');
    const loaded = load({ flags: configFlags({ 'data-dir': 'state' }) });
    expect(findPathProblems(loaded, { creating: false })).toEqual([]);
  });
});
