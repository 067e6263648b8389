import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { ControlServer } from '../../src/control/server.js';
import { StoreControl } from '../../src/control/store-control.js';
import { KeyFileProvider } from '../../src/store/keys.js';

/**
 * Who may use the control socket: the runtime directory (0700, the hub's user) decides, since Node cannot ask
 * the kernel who connected (docs/control-socket.md). The hub here runs as root, the test's user, so root is
 * its service user; `nobody` is any other local account. The command under test is the built one
 * (dist/src/cli/bin.js), run by `runuser`, as an operator would run it. Needs root (runuser, and a second
 * user); skipped otherwise, saying so.
 */
const root = process.getuid?.() === 0;
const BIN = join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli', 'bin.js');
const RUNUSER = ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser'].find((p) => existsSync(p));

let dir: string;
let runtimeDir: string;
let dataDir: string;
let store: StoreControl;
let server: ControlServer;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-ctl-perm-'));
  // The temporary folder itself is 0700; opened to all so that the runtime directory is the only barrier.
  await chmod(dir, 0o755);
  runtimeDir = join(dir, 'run');
  dataDir = join(dir, 'data');
  await mkdir(dataDir, { mode: 0o700 });
  store = await StoreControl.open({
    store: join(dataDir, 'outbox.db'),
    keys: new KeyFileProvider(join(dataDir, 'store.key')),
    audit: new AuditLog(join(dataDir, 'audit.log')),
    backend: 'sim',
  });
  server = await ControlServer.listen({ runtimeDir, control: store });
});
afterEach(async () => {
  await server.close();
  store.close();
  await rm(dir, { recursive: true, force: true });
});

function run(
  user: string | undefined,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const command = user === undefined ? process.execPath : (RUNUSER as string);
  const argv = user === undefined ? [BIN, ...args] : ['-u', user, '--', process.execPath, BIN, ...args];
  return new Promise((resolve) => {
    execFile(
      command,
      argv,
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', RPM_GATEWAY_DATA_DIR: dataDir }, cwd: dir },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('the control socket and users', () => {
  it.skipIf(!root || RUNUSER === undefined || !existsSync(BIN))(
    'is refused to a user other than the service user (CONTROL_NO_ACCESS), and served to root',
    async () => {
      for (const args of [
        ['status'],
        ['devices'],
        ['forget', 'd1-0123456789abcdef', '--yes'],
        ['store', 'status'],
      ]) {
        const refused = await run('nobody', [...args, '--runtime-dir', runtimeDir]);
        expect(refused.code, args.join(' ')).toBe(1);
        expect(refused.stderr).toMatch(
          new RegExp(
            `control socket in ${runtimeDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is open to the service user and root only: run this as root \\(sudo rpm-gateway \\.\\.\\.\\).*\\[CONTROL_NO_ACCESS\\]`,
          ),
        );
      }
      // The socket file's own mode is not what keeps them out: opened to all (as a umask of 0 would make it),
      // the directory still does.
      await chmod(server.path, 0o666);
      const stillRefused = await run('nobody', ['devices', '--runtime-dir', runtimeDir]);
      expect(stillRefused.stderr).toMatch(/\[CONTROL_NO_ACCESS\]/);
      const served = await run(undefined, ['devices', '--json', '--runtime-dir', runtimeDir]);
      expect(served).toEqual({ code: 0, stdout: '', stderr: '' });
      const status = await run(undefined, ['status', '--json', '--runtime-dir', runtimeDir]);
      expect(JSON.parse(status.stdout)).toMatchObject({ store: { path: join(dataDir, 'outbox.db') } });
    },
    // Eight commands, each a fresh Node process: on a busy 2-core machine a few seconds each.
    120_000,
  );
});
