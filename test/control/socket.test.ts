import { spawn } from 'node:child_process';
import { chmod, chown, lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { SIM_PASSKEY } from '../../src/ble/backends.js';
import { connectControl } from '../../src/control/client.js';
import { MAX_LINE_BYTES, SOCKET_NAME } from '../../src/control/protocol.js';
import { RemoteHubControl } from '../../src/control/remote.js';
import { ControlServer } from '../../src/control/server.js';
import { StoreControl } from '../../src/control/store-control.js';
import type { CandidateView, EnrolmentEvent, EnrolmentInteraction } from '../../src/enrolment/guided.js';
import { KeyFileProvider } from '../../src/store/keys.js';
import { runCli } from '../support/cli.js';

/**
 * The control socket end to end: a real ControlServer on a unix socket in a temporary runtime directory, in
 * front of StoreControl over a real encrypted store (the implementation commands use when no hub runs; here it
 * stands in for the running hub: it holds the store's lock as the hub does), reached by the real client.
 */
const ADDRESS = /[0-9A-F]{2}([:-][0-9A-F]{2}){5}/i;

let dir: string;
let dataDir: string;
let runtimeDir: string;
let store: StoreControl | undefined;
let server: ControlServer | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-ctl-'));
  dataDir = join(dir, 'data');
  runtimeDir = join(dir, 'run');
  await mkdir(dataDir, { mode: 0o700 });
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  store?.close();
  store = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function startHub(): Promise<ControlServer> {
  store = await StoreControl.open({
    store: join(dataDir, 'outbox.db'),
    keys: new KeyFileProvider(join(dataDir, 'store.key')),
    audit: new AuditLog(join(dataDir, 'audit.log')),
    backend: 'sim',
  });
  server = await ControlServer.listen({ runtimeDir, control: store });
  return server;
}

async function remote(): Promise<{ hub: RemoteHubControl; close(): void }> {
  const client = await connectControl(runtimeDir);
  if (!client) throw new Error('no hub answered');
  return { hub: new RemoteHubControl(client), close: () => client.close() };
}

/** A person at the other end of the socket: picks the glucose meter, approves, types the passkey. */
function person(choice: (list: readonly CandidateView[]) => number | undefined) {
  const events: EnrolmentEvent[] = [];
  const asked: string[] = [];
  const interaction: EnrolmentInteraction = {
    notify: (event) => events.push(event),
    choose: async (list) => {
      asked.push('choose');
      return choice(list);
    },
    approve: async () => {
      asked.push('approve');
      return true;
    },
    passkey: async () => {
      asked.push('passkey');
      return SIM_PASSKEY;
    },
    confirm: async () => {
      asked.push('confirm');
      return true;
    },
    display: () => asked.push('display'),
  };
  return { interaction, events, asked };
}

async function auditLines(): Promise<{ type: string; actor: string }[]> {
  const text = await readFile(join(dataDir, 'audit.log'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l));
}

describe('the control socket', () => {
  it('pairs over the socket with the sim radio, the passkey answered by the client, then lists, reports and forgets', async () => {
    await startHub();
    const { hub, close } = await remote();
    try {
      const meter = person((list) => list.find((c) => c.profile === 'glucose-meter')?.number);
      const outcome = await hub.enrol({ seconds: 0.3 }, meter.interaction);
      expect(outcome.created).toBe(true);
      expect(outcome.device).toMatchObject({ profile: 'glucose-meter', bonded: true });
      expect(outcome.device.address).toBeUndefined();
      // The hub asked which device, whether to go ahead, and for the passkey: each answered over the socket.
      expect(meter.asked).toEqual(['choose', 'approve', 'passkey']);
      expect(meter.events.map((e) => e.kind)).toEqual(['scanning', 'candidates', 'step', 'step', 'step']);
      expect(JSON.stringify(meter.events)).not.toMatch(ADDRESS);

      const listed = await hub.devices({ addresses: false });
      expect(listed.map((d) => d.id)).toEqual([outcome.device.id]);
      expect(JSON.stringify(listed)).not.toMatch(ADDRESS);
      const withAddresses = await hub.devices({ addresses: true });
      expect(withAddresses[0]?.address).toMatch(ADDRESS);

      const status = await hub.status();
      expect(status.devices).toEqual([
        expect.objectContaining({ id: outcome.device.id, profile: 'glucose-meter' }),
      ]);
      expect(status.backlog.alert).toEqual({ pending: 0, oldestAgeMs: null });
      expect(status.store.path).toBe(join(dataDir, 'outbox.db'));

      const storeStatus = await hub.storeStatus();
      expect(storeStatus.stats.rows).toBe(0);
      expect(storeStatus.damage).toEqual([]);

      const forgotten = await hub.forget(outcome.device.id, { showAddress: false });
      expect(forgotten.id).toBe(outcome.device.id);
      expect(await hub.devices({ addresses: false })).toEqual([]);
      // A hub's own error code comes through as it is.
      await expect(hub.forget(outcome.device.id, { showAddress: false })).rejects.toMatchObject({
        code: 'DEVICE_NOT_ENROLLED',
      });
    } finally {
      close();
    }
    // The hub names who acted: "control", whatever the client would claim.
    const audit = await auditLines();
    expect(audit.map((e) => `${e.type} ${e.actor}`)).toEqual(
      expect.arrayContaining([
        'device.paired control',
        'device.enrolled control',
        'device.addresses-shown control',
        'device.forgotten control',
      ]),
    );
  });

  it('cancels a pairing whose client gives no passkey, and enrols nothing', async () => {
    await startHub();
    const { hub, close } = await remote();
    try {
      const meter = person((list) => list.find((c) => c.profile === 'glucose-meter')?.number);
      const giveUp: EnrolmentInteraction = {
        ...meter.interaction,
        passkey: async () => {
          throw new Error('the user pressed Ctrl-D');
        },
      };
      await expect(hub.enrol({ seconds: 0.3 }, giveUp)).rejects.toThrow('the user pressed Ctrl-D');
      expect(await hub.devices({ addresses: false })).toEqual([]);
    } finally {
      close();
    }
  });

  it('pair, devices and forget from the command line go through the socket while the hub holds the store', async () => {
    const env = { RPM_GATEWAY_DATA_DIR: dataDir };
    const cli = (args: string[], stdin = '') =>
      runCli([...args, '--runtime-dir', runtimeDir], { env, stdin });
    await startHub();
    // Without the socket the store's lock is all a command meets (what every command got before).
    const locked = await runCli(['devices', '--runtime-dir', join(dir, 'elsewhere')], { env });
    expect(locked.code).toBe(1);
    expect(locked.stderr).toMatch(/in use by the running gateway.*\[STORE_LOCKED\]/);

    const numbers = await cli(['pair', '--backend', 'sim', '--seconds', '0.3']);
    const meter = /^ *(\d+)\. glucose-meter/m.exec(numbers.stdout)?.[1] as string;
    const paired = await cli(
      ['pair', '--seconds', '0.3', '--label', 'Kitchen'],
      `${meter}\ny\n${SIM_PASSKEY}\n`,
    );
    expect(paired.stderr).toBe('');
    expect(paired.code).toBe(0);
    expect(paired.stdout).toContain("(the running hub's radio)");
    expect(paired.stdout).toMatch(
      /enrolled d1-[0-9a-f]{16}: glucose-meter, sig\/glucose.*bonded, label "Kitchen"/,
    );
    expect(paired.stdout).toContain('the running hub reads it from now on');
    expect(paired.stdout).not.toMatch(ADDRESS);

    const listed = await cli(['devices', '--json']);
    expect(listed.code).toBe(0);
    const [device] = listed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; label: string });
    expect(device?.label).toBe('Kitchen');

    const status = await cli(['store', 'status']);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('via the running hub');

    const forgot = await cli(['forget', device?.id as string, '--yes']);
    expect(forgot.stderr).toBe('');
    expect(forgot.code).toBe(0);
    expect(forgot.stdout).toContain('the running hub has stopped reading it');
    expect((await cli(['devices', '--json'])).stdout).toBe('');
  });

  it('answers garbage with typed errors and goes on serving the same connection', async () => {
    await startHub();
    const socket = connect(join(runtimeDir, SOCKET_NAME));
    const replies: Record<string, unknown>[] = [];
    let buffered = '';
    const done = new Promise<void>((resolve) => {
      socket.on('data', (chunk) => {
        buffered += chunk;
        for (let n = buffered.indexOf('\n'); n !== -1; n = buffered.indexOf('\n')) {
          const reply = JSON.parse(buffered.slice(0, n)) as Record<string, unknown>;
          buffered = buffered.slice(n + 1);
          replies.push(reply);
          if (reply.id === 99) resolve();
        }
      });
    });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write('not json\n');
    socket.write('[1,2,3]\n');
    socket.write('{"v":1,"id":1,"method":"reboot","params":{}}\n');
    socket.write('{"v":2,"id":2,"method":"status","params":{}}\n');
    socket.write('{"v":1,"id":3,"method":"forget","params":{"id":5}}\n');
    socket.write('{"v":1,"id":4,"method":"devices","params":{"addresses":true,"extra":1}}\n');
    socket.write(`${'x'.repeat(MAX_LINE_BYTES + 10)}\n`);
    socket.write('{"v":1,"id":5,"answer":1}\n');
    socket.write('\u0000\u00ff\n');
    socket.write('{"v":1,"id":99,"method":"devices","params":{}}\n');
    await done;
    socket.destroy();
    const codes = replies.map((r) => [r.id, (r.error as { code?: string } | undefined)?.code ?? 'result']);
    expect(codes).toEqual([
      [null, 'CONTROL_BAD_MESSAGE'],
      [null, 'CONTROL_BAD_MESSAGE'],
      [1, 'CONTROL_BAD_MESSAGE'],
      [2, 'CONTROL_VERSION'],
      [3, 'CONTROL_BAD_MESSAGE'],
      [4, 'CONTROL_BAD_MESSAGE'],
      [null, 'CONTROL_BAD_MESSAGE'],
      [null, 'CONTROL_BAD_MESSAGE'],
      [null, 'CONTROL_BAD_MESSAGE'],
      [99, 'result'],
    ]);
    expect(replies.at(-1)).toEqual({ id: 99, result: [] });
    // And a new client is served as well.
    const { hub, close } = await remote();
    expect(await hub.devices({ addresses: false })).toEqual([]);
    close();
  });
});

describe('the runtime directory and the socket file', () => {
  it('makes a missing runtime directory 0700 and removes the socket when stopped', async () => {
    const hub = await startHub();
    expect((await lstat(runtimeDir)).mode & 0o777).toBe(0o700);
    expect((await lstat(hub.path)).isSocket()).toBe(true);
    await hub.close();
    server = undefined;
    await expect(lstat(hub.path)).rejects.toMatchObject({ code: 'ENOENT' });
    // No hub: the client says so (undefined), and commands open the store themselves.
    expect(await connectControl(runtimeDir)).toBeUndefined();
  });

  it('refuses a runtime directory that others may enter, a symbolic link, or one owned by another user', async () => {
    await mkdir(runtimeDir, { mode: 0o700 });
    await chmod(runtimeDir, 0o755);
    await expect(startHub()).rejects.toMatchObject({ code: 'CONTROL_DIR_UNSAFE', message: /mode is 0755/ });
    store?.close();
    await chmod(runtimeDir, 0o700);
    const link = join(dir, 'link');
    await symlink(runtimeDir, link);
    await expect(
      ControlServer.listen({ runtimeDir: link, control: store as StoreControl }),
    ).rejects.toMatchObject({ code: 'CONTROL_DIR_UNSAFE', message: /symbolic link/ });
    if (process.getuid?.() === 0) {
      await chown(runtimeDir, 65534, 65534);
      await expect(
        ControlServer.listen({ runtimeDir, control: store as StoreControl }),
      ).rejects.toMatchObject({ code: 'CONTROL_DIR_UNSAFE', message: /owned by uid 65534/ });
    }
  });

  it('replaces the socket of a hub that was killed, but never takes over one that answers', async () => {
    await mkdir(runtimeDir, { mode: 0o700 });
    const path = join(runtimeDir, SOCKET_NAME);
    // A listener killed with SIGKILL leaves its socket file behind, with nobody answering on it.
    const child = spawn(
      process.execPath,
      ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect((await lstat(path)).isSocket()).toBe(true);

    await startHub();
    const { hub, close } = await remote();
    expect(await hub.devices({ addresses: false })).toEqual([]);
    close();

    // A second hub finds this one answering and leaves its socket alone.
    await expect(ControlServer.listen({ runtimeDir, control: store as StoreControl })).rejects.toMatchObject({
      code: 'CONTROL_IN_USE',
    });
    const again = await remote();
    expect(await again.hub.devices({ addresses: false })).toEqual([]);
    again.close();
  });

  it('leaves a file that is not a socket alone', async () => {
    await mkdir(runtimeDir, { mode: 0o700 });
    await writeFile(join(runtimeDir, SOCKET_NAME), 'not a socket');
    await expect(startHub()).rejects.toMatchObject({
      code: 'CONTROL_DIR_UNSAFE',
      message: /is not a socket/,
    });
    expect(await readFile(join(runtimeDir, SOCKET_NAME), 'utf8')).toBe('not a socket');
  });
});
