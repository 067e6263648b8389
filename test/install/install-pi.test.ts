// scripts/install-pi.sh under --dry-run: the commands it would run, in order, and what it leaves alone on a
// second run. The system it looks at is a temporary DESTDIR; the few commands it asks about the host (getent,
// systemd-creds has-tpm2, node's version) are stubs first on PATH. The real install (npm, native builds) is
// test/install/pack-install.test.ts.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = join(ROOT, 'scripts/install-pi.sh');
const UNIT = readFileSync(join(ROOT, 'config/systemd/rpm-gateway.service'), 'utf8');
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

/** The store key's credential as the unit loads it (LoadCredentialEncrypted=ID:PATH, systemd.exec(5)). */
const [CRED_NAME, CRED_PATH] = ((): [string, string] => {
  const line = /^LoadCredentialEncrypted=(.+)$/m.exec(UNIT)?.[1];
  if (!line) throw new Error('the unit loads no encrypted credential');
  const [id = '', path] = line.split(/:(.*)/s);
  return [id, path ?? `/etc/credstore.encrypted/${id}`];
})();

let dir: string;
let tarball: string;
let stubs: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rpm-install-pi-'));
  // A release tarball as npm pack lays it out (package/...), with the files the script reads.
  const pkg = join(dir, 'pkg', 'package');
  mkdirSync(join(pkg, 'config/systemd'), { recursive: true });
  writeFileSync(join(pkg, 'package.json'), readFileSync(join(ROOT, 'package.json')));
  writeFileSync(join(pkg, 'npm-shrinkwrap.json'), readFileSync(join(ROOT, 'package-lock.json')));
  writeFileSync(join(pkg, 'config/systemd/rpm-gateway.service'), UNIT);
  tarball = join(dir, `rpm-gateway-${PACKAGE.version}.tgz`);
  const tar = spawnSync('tar', ['-czf', tarball, '-C', join(dir, 'pkg'), 'package']);
  expect(tar.status).toBe(0);

  stubs = join(dir, 'stubs');
  mkdirSync(stubs);
  const stub = (name: string, body: string) => {
    writeFileSync(join(stubs, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(stubs, name), 0o755);
  };
  stub(
    'getent',
    '[ "$1 $2" = "passwd rpm-gateway" ] && [ -n "$STUB_USER_EXISTS" ] && echo "rpm-gateway:x:999:999::/nonexistent:/usr/sbin/nologin" && exit 0\nexit 2',
  );
  stub(
    'systemd-creds',
    '[ "$1" = has-tpm2 ] && { [ -n "$STUB_TPM2" ]; exit $?; }\necho "systemd-creds stub: $*" >&2; exit 99',
  );
  // node's version as the test says; everything else runs the real node.
  stub(
    'node',
    `if [ -n "$STUB_NODE_VERSION" ] && [ "$1" = -p ] && [ "$2" = process.versions.node ]; then echo "$STUB_NODE_VERSION"; exit 0; fi\nexec '${process.execPath}' "$@"`,
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  /** The commands it would run ("+ ..." lines, without the "+ "). */
  commands: string[];
  destdir: string;
}

function install(
  args: string[],
  env: Record<string, string> = {},
  destdir = mkdtempSync(join(dir, 'root-')),
): Run {
  const result = spawnSync('bash', [SCRIPT, '--dry-run', '--tarball', tarball, ...args], {
    encoding: 'utf8',
    env: { PATH: `${stubs}:${process.env.PATH}`, HOME: dir, DESTDIR: destdir, ...env },
  });
  const commands = result.stdout
    .split('\n')
    .filter((line) => line.startsWith('+ '))
    .map((line) => line.slice(2));
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, commands, destdir };
}

/** The index of the one command matching `pattern`; fails when none or several match. */
function indexOf(run: Run, pattern: RegExp): number {
  const found = run.commands.flatMap((command, i) => (pattern.test(command) ? [i] : []));
  expect(found, `${pattern} in:\n${run.commands.join('\n')}`).toHaveLength(1);
  return found[0] as number;
}

function filesUnder(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(root.length));
}

describe('install-pi.sh --dry-run on a fresh host', () => {
  let run: Run;
  beforeAll(() => {
    run = install([]);
  });

  it('succeeds and changes nothing', () => {
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(filesUnder(run.destdir)).toEqual([]);
  });

  it('installs the pinned tree without dev dependencies or lifecycle scripts, then builds only the allowed native modules', () => {
    const d = run.destdir;
    const unpack = indexOf(
      run,
      new RegExp(`^tar -xzf ${tarball} -C ${d}/opt/\\.rpm-gateway\\.new --strip-components=1`),
    );
    const ci = indexOf(run, /npm ci --prefix \S+\/opt\/\.rpm-gateway\.new --omit=dev --ignore-scripts /);
    const rebuild = indexOf(run, /npm rebuild --prefix \S+\/opt\/\.rpm-gateway\.new --foreground-scripts /);
    // The package's allowScripts, minus what only development installs (better-sqlite3, cbor-extract) and
    // what it denies (usb, usocket, noble's own script).
    expect(run.commands[rebuild]?.split('--foreground-scripts ')[1]?.split(' ').sort()).toEqual(
      [
        '@abandonware/bluetooth-hci-socket',
        'better-sqlite3-multiple-ciphers',
        'argon2',
        'classic-level',
        'unix-dgram',
      ].sort(),
    );
    const swap = indexOf(run, new RegExp(`^mv -T ${d}/opt/\\.rpm-gateway\\.new ${d}/opt/rpm-gateway$`));
    const link = indexOf(
      run,
      new RegExp(`^ln -sfn /opt/rpm-gateway/dist/src/cli/bin\\.js ${d}/usr/local/bin/rpm-gateway$`),
    );
    expect([unpack, ci, rebuild, swap, link]).toEqual(
      [...[unpack, ci, rebuild, swap, link]].sort((a, b) => a - b),
    );
  });

  it('creates the system user with no login shell and no home, and does not put it in the bluetooth group', () => {
    const useradd = indexOf(run, /^useradd --system /);
    expect(run.commands[useradd]).toMatch(
      /--no-create-home --home-dir \/nonexistent --shell \/usr\/sbin\/nologin .*rpm-gateway$/,
    );
    expect(run.commands.join('\n')).not.toMatch(/bluetooth rpm-gateway|-G bluetooth|usermod/);
    const etc = indexOf(run, /^install -d -m 0750 -o root -g rpm-gateway \S+\/etc\/rpm-gateway$/);
    const state = indexOf(
      run,
      /^install -d -m 0700 -o rpm-gateway -g rpm-gateway \S+\/var\/lib\/rpm-gateway$/,
    );
    const config = indexOf(
      run,
      new RegExp(
        `^install -m 0640 -o root -g rpm-gateway ${run.destdir}/opt/rpm-gateway/config/gateway\\.example\\.yaml ${run.destdir}/etc/rpm-gateway/gateway\\.yaml$`,
      ),
    );
    expect(useradd).toBeLessThan(etc);
    expect(etc).toBeLessThan(state);
    expect(etc).toBeLessThan(config);
  });

  it('seals a new store key with systemd-creds under the name and path the unit loads, without overwriting', () => {
    const d = run.destdir;
    const encrypt = indexOf(run, /systemd-creds encrypt/);
    expect(run.commands[encrypt]).toContain('head -c 32 /dev/urandom');
    expect(run.commands[encrypt]).toContain(`--with-key=auto --name=${CRED_NAME} - ${d}${CRED_PATH}.tmp`);
    // link(2), not a rename: it fails if a key appeared meanwhile.
    const link = indexOf(run, new RegExp(`^ln ${d}${CRED_PATH}\\.tmp ${d}${CRED_PATH}$`));
    expect(encrypt).toBeLessThan(link);
    expect(run.stdout).toContain('no TPM2: sealing the store key with the host key');
    expect(install([], { STUB_TPM2: '1' }).stdout).toContain(
      'sealing the store key with the TPM2 and the host key',
    );
  });

  it('installs the D-Bus policy and the unit, reloads systemd last, and prints the next steps', () => {
    const dbus = indexOf(
      run,
      /^install -D -m 0644 \S+\/config\/dbus\/rpm-gateway-bluetooth\.conf \S+\/etc\/dbus-1\/system\.d\/rpm-gateway-bluetooth\.conf$/,
    );
    const unit = indexOf(
      run,
      /^install -D -m 0644 \S+\/opt\/rpm-gateway\/config\/systemd\/rpm-gateway\.service \S+\/usr\/local\/lib\/systemd\/system\/rpm-gateway\.service$/,
    );
    const reload = indexOf(run, /^systemctl daemon-reload$/);
    expect(reload).toBe(run.commands.length - 1);
    expect(dbus).toBeLessThan(reload);
    expect(unit).toBeLessThan(reload);
    expect(run.commands.join('\n')).not.toMatch(/systemctl (enable|start|restart)/);
    expect(run.stdout).toMatch(
      /Next steps[\s\S]*rpm-gateway init[\s\S]*enable --now rpm-gateway[\s\S]*rpm-gateway pair/,
    );
  });
});

describe('install-pi.sh --dry-run again, on an installed host', () => {
  it('keeps the user, the configuration and the store key', () => {
    const destdir = mkdtempSync(join(dir, 'root-'));
    mkdirSync(join(destdir, 'etc/rpm-gateway'), { recursive: true });
    writeFileSync(join(destdir, 'etc/rpm-gateway/gateway.yaml'), 'gateway: {}\n');
    mkdirSync(join(destdir, CRED_PATH, '..'), { recursive: true });
    writeFileSync(join(destdir, CRED_PATH), 'sealed\n');
    mkdirSync(join(destdir, 'opt/rpm-gateway'), { recursive: true });

    const run = install([], { STUB_USER_EXISTS: '1' }, destdir);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const all = run.commands.join('\n');
    expect(all).not.toMatch(/useradd|gateway\.example\.yaml|systemd-creds|\/dev\/urandom/);
    expect(run.stdout).toContain('user rpm-gateway exists');
    expect(run.stdout).toContain(`${destdir}/etc/rpm-gateway/gateway.yaml exists: kept`);
    expect(run.stdout).toContain(`store key ${destdir}${CRED_PATH} exists: kept`);
    // The program itself is replaced whole: the old copy moves aside, the new one in, the old one goes.
    const aside = indexOf(
      run,
      new RegExp(`^mv -T ${destdir}/opt/rpm-gateway ${destdir}/opt/\\.rpm-gateway\\.old$`),
    );
    const swap = indexOf(
      run,
      new RegExp(`^mv -T ${destdir}/opt/\\.rpm-gateway\\.new ${destdir}/opt/rpm-gateway$`),
    );
    expect(aside).toBeLessThan(swap);
    expect(readFileSync(join(destdir, CRED_PATH), 'utf8')).toBe('sealed\n');
  });

  it('refuses to make a new key beside a store whose key is missing', () => {
    const destdir = mkdtempSync(join(dir, 'root-'));
    mkdirSync(join(destdir, 'var/lib/rpm-gateway'), { recursive: true });
    writeFileSync(join(destdir, 'var/lib/rpm-gateway/outbox.db'), '');
    const run = install([], { STUB_USER_EXISTS: '1' }, destdir);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/outbox\.db exists but its key .* does not: a new key cannot open that store/);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.commands.join('\n')).not.toMatch(/systemd-creds|daemon-reload/);
  });
});

describe('install-pi.sh refuses what it cannot do', () => {
  it('stops before changing anything when node is older than the release needs, and says where to get 20', () => {
    const run = install([], { STUB_NODE_VERSION: '18.19.0' });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/Node\.js 18\.19\.0; rpm-gateway \d+\.\d+\.\d+ needs 20\.19 or later/);
    expect(run.stderr).toMatch(/NodeSource or nodejs\.org/);
    expect(run.commands).toEqual([]);
    expect(install([], { STUB_NODE_VERSION: '20.19.0' }).status).toBe(0);
    expect(install([], { STUB_NODE_VERSION: '20.18.9' }).status).toBe(1);
    expect(install([], { STUB_NODE_VERSION: '22.0.0' }).status).toBe(0);
  });

  it('a tarball that is not a release, a relative prefix and an unknown option are one-line errors', () => {
    const junk = join(dir, 'junk.tgz');
    writeFileSync(junk, 'not a tarball');
    for (const args of [['--tarball', junk], ['--prefix', 'opt/x'], ['--bogus']]) {
      const result = spawnSync('bash', [SCRIPT, '--dry-run', '--tarball', tarball, ...args], {
        encoding: 'utf8',
        env: { PATH: `${stubs}:${process.env.PATH}`, HOME: dir, DESTDIR: join(dir, 'never') },
      });
      expect(result.status, args.join(' ')).toBe(1);
      expect(result.stderr.trim().split('\n').at(-1)).toMatch(/^install-pi: /);
      expect(result.stdout).not.toMatch(/^\+ /m);
    }
  });
});

describe('install-pi.sh --prefix', () => {
  it('points the link and the unit at the other directory', () => {
    const run = install(['--prefix', '/srv/rpm']);
    expect(run.status).toBe(0);
    indexOf(run, /^ln -sfn \/srv\/rpm\/dist\/src\/cli\/bin\.js \S+\/usr\/local\/bin\/rpm-gateway$/);
    const rewrite = indexOf(
      run,
      /^sed 's#\/opt\/rpm-gateway\/#\/srv\/rpm\/#g' \S+\/srv\/rpm\/config\/systemd\/rpm-gateway\.service > /,
    );
    const unit = indexOf(
      run,
      /^install -D -m 0644 \S+\/srv\/rpm\/config\/systemd\/rpm-gateway\.service\.local \S+\/rpm-gateway\.service$/,
    );
    expect(rewrite).toBeLessThan(unit);
  });
});
