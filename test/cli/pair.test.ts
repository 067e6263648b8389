import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SIM_PASSKEY } from '../../src/ble/backends.js';
import { KeyFileProvider } from '../../src/store/keys.js';
import { Outbox } from '../../src/store/outbox.js';
import { runCli } from '../support/cli.js';

/** Any Bluetooth address, in any case: none may ever be printed unless asked for. */
const ADDRESS = /[0-9A-F]{2}(:[0-9A-F]{2}){5}/i;
const SIM_GLUCOSE_ADDRESS = 'D0:5E:00:00:00:05';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-cli-pair-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const cli = (args: string[], stdin = '') => runCli(args, { env: { RPM_GATEWAY_DATA_DIR: dir }, stdin });
const pair = (args: string[], stdin = '') =>
  cli(['pair', '--backend', 'sim', '--seconds', '0.3', ...args], stdin);

async function enrolled(): Promise<Record<string, unknown>[]> {
  const result = await cli(['devices', '--json']);
  expect(result.code).toBe(0);
  return result.stdout
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function auditEntries(): Promise<{ type: string; details: Record<string, unknown> }[]> {
  const text = await readFile(join(dir, 'audit.log'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as { type: string; details: Record<string, unknown> });
}

/**
 * The list numbers of the simulated SIG devices, by profile, and how many devices the list has, read off a
 * pairing the user cancels: every driver folder with a simulator model adds a device, so nothing here counts them.
 */
let numbers: Record<string, number>;
let listed: number;
beforeAll(async () => {
  const scratch = await mkdtemp(join(tmpdir(), 'rpm-cli-pair-list-'));
  try {
    const listing = await runCli(['pair', '--backend', 'sim', '--seconds', '0.3'], {
      env: { RPM_GATEWAY_DATA_DIR: scratch },
    });
    listed = [...listing.stdout.matchAll(/^ *\d+\. \S+ .*\((?:sig|vendor)\/[a-z0-9-]+\) /gm)].length;
    numbers = {};
    for (const match of listing.stdout.matchAll(/^ *(\d+)\. (\S+) .*\((sig\/[a-z-]+)\)/gm)) {
      numbers[match[2] as string] = Number(match[1]);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
});

describe('rpm-gateway pair', () => {
  it('lists nearby devices by profile, never by address, and changes nothing when none is chosen', async () => {
    const result = await pair([]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no device chosen; nothing was paired \[DEVICE_NOT_CHOSEN\]/);
    expect(result.stdout).toMatch(
      /^ 1\. blood-pressure +Bluetooth SIG Blood Pressure Service \(sig\/blood-pressure\)/m,
    );
    expect(result.stdout).toMatch(/glucose-meter/);
    expect(`${result.stdout}${result.stderr}`).not.toMatch(ADDRESS);
    expect(await enrolled()).toEqual([]);
  });

  it('pairs the glucose meter with its passkey typed at the prompt, enrols it, and audits it by id', async () => {
    const result = await pair(
      ['--label', 'Kitchen meter'],
      `${numbers['glucose-meter']}\ny\n${SIM_PASSKEY}\n`,
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Pair which device? [1-${listed}, Enter to cancel]`);
    expect(result.stdout).toContain(
      `\nabout to enrol ${numbers['glucose-meter']}. glucose-meter, Bluetooth SIG Glucose Service (sig/glucose), label "Kitchen meter"\nEnrol device ${numbers['glucose-meter']}? [y/N] \n`,
    );
    expect(result.stdout).toMatch(
      /the device asks for a passkey \(the simulated devices show 123456\)\nPasskey: /,
    );
    expect(result.stdout).toMatch(
      /enrolled d1-[0-9a-f]{16}: glucose-meter, sig\/glucose, .*bonded, label "Kitchen meter"/,
    );
    expect(`${result.stdout}${result.stderr}`).not.toMatch(ADDRESS);

    const [device, ...others] = await enrolled();
    expect(others).toEqual([]);
    expect(device).toMatchObject({
      label: 'Kitchen meter',
      driver: 'sig/glucose',
      profile: 'glucose-meter',
      model: expect.stringContaining('rpm-gateway simulator'),
      bonded: true,
      lastSeenAt: null,
    });
    expect(device?.id).toMatch(/^d1-[0-9a-f]{16}$/);
    expect(device).not.toHaveProperty('address');

    const audit = await auditEntries();
    expect(audit.map((e) => e.type)).toEqual(['device.paired', 'device.enrolled']);
    expect(audit[0]?.details).toEqual({
      device: device?.id,
      driver: 'sig/glucose',
      profile: 'glucose-meter',
      method: 'passkey',
    });
    expect(audit[1]?.details).toMatchObject({ device: device?.id, bonded: true });
    const raw = await readFile(join(dir, 'audit.log'), 'utf8');
    expect(raw).not.toMatch(ADDRESS);
    expect(raw).not.toContain('Kitchen meter'); // a label may name the patient
    const verify = await cli(['store', 'verify-audit', '--json']);
    expect(JSON.parse(verify.stdout)).toMatchObject({ entries: 2, torn: 0 });
  });

  it('says the passkey was refused when it is wrong, enrols nothing, and audits the failure', async () => {
    const result = await pair([], `${numbers['glucose-meter']}\ny\n654321\n`);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'rpm-gateway pair: the passkey was refused; try again (rpm-gateway pair), typing the 6 digits the device shows [BLE_AUTH_FAILED]\n',
    );
    expect(await enrolled()).toEqual([]);
    const audit = await auditEntries();
    expect(audit).toEqual([
      expect.objectContaining({
        type: 'device.pairing-failed',
        details: { driver: 'sig/glucose', profile: 'glucose-meter', reason: 'passkey-refused' },
      }),
    ]);
  });

  it('asks again for a passkey that is not 6 digits, and gives up when the input ends', async () => {
    const result = await pair([], `${numbers['glucose-meter']}\ny\n12ab\n`);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/a passkey is 6 digits/);
    expect(result.stderr).toMatch(/no passkey was entered; nothing was paired \[DEVICE_NOT_CHOSEN\]/);
    expect(await enrolled()).toEqual([]);
  });

  it('shows what it is about to enrol, and enrols nothing when the user says no', async () => {
    const oximeter = numbers['pulse-oximeter'] as number;
    const result = await pair(['--label', 'bedroom cuff'], `${oximeter}\nn\n`);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      new RegExp(
        `about to enrol ${oximeter}\\. pulse-oximeter, .*\\(sig/pulse-oximeter\\), label "bedroom cuff"\\n`,
      ),
    );
    expect(result.stdout).not.toMatch(/connecting/);
    expect(result.stderr).toMatch(/nothing was paired \[DEVICE_NOT_CHOSEN\]/);
    expect(await enrolled()).toEqual([]);
    expect(await auditEntries()).toEqual([]);
  });

  it('enrols a device that needs no bond with --pick, shows it as enrolled, and re-pairs it under the same id', async () => {
    const cuff = String(numbers['blood-pressure']);
    const first = await pair(['--pick', cuff]);
    expect(first.code).toBe(0);
    expect(first.stdout).not.toMatch(/Passkey|Pair which device/);
    expect(first.stdout).toMatch(/enrolled d1-.*not bonded/);
    const [device] = await enrolled();
    expect(device).toMatchObject({ profile: 'blood-pressure', bonded: false, label: null });

    const declined = await pair(['--pick', cuff], 'n\n');
    expect(declined.code).toBe(1);
    expect(declined.stdout).toContain(`blood-pressure`);
    expect(declined.stdout).toContain(`[enrolled: ${device?.id}]`);
    expect(declined.stderr).toMatch(/nothing was changed \[DEVICE_NOT_CHOSEN\]/);

    const again = await pair(['--pick', cuff, '--yes', '--label', 'cuff']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`updated ${device?.id}`);
    expect(await enrolled()).toEqual([expect.objectContaining({ id: device?.id, label: 'cuff' })]);
    expect((await auditEntries()).map((e) => e.type)).toEqual(['device.enrolled', 'device.re-enrolled']);
  });

  it('refuses a --pick beyond the list, and a bad label before scanning', async () => {
    const beyond = await pair(['--pick', '99']);
    expect(beyond.code).toBe(1);
    expect(beyond.stderr).toContain(
      `--pick 99: the scan found ${listed} devices; nothing was paired [DEVICE_NOT_CHOSEN]`,
    );
    const label = await pair(['--pick', '1', '--label', 'x'.repeat(65)]);
    expect(label.code).toBe(1);
    expect(label.stderr).toMatch(/at most 64 characters \[DEVICE_INVALID\]/);
    expect(label.stdout).toBe(''); // no scan was started
  });

  it('has --help and usage errors', async () => {
    for (const command of ['pair', 'devices', 'forget']) {
      const help = await cli([command, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^Usage: rpm-gateway ${command}`));
    }
    expect((await cli(['pair', '--seconds', '0'])).code).toBe(2);
    expect((await cli(['pair', '--backend', 'carrier-pigeon'])).code).toBe(2);
    expect((await cli(['pair', '--pick', 'two'])).code).toBe(2);
    expect((await cli(['forget'])).code).toBe(2);
    expect((await cli(['devices', 'extra'])).code).toBe(2);
  });
});

describe('rpm-gateway devices and forget', () => {
  it('lists nothing, and creates no store, before anything was paired', async () => {
    const result = await cli(['devices']);
    expect(result).toMatchObject({
      code: 0,
      stdout: 'no devices enrolled (pair one with: rpm-gateway pair)\n',
    });
    expect(existsSync(join(dir, 'outbox.db'))).toBe(false);
    expect(existsSync(join(dir, 'store.key'))).toBe(false);
  });

  it('shows addresses only when asked, and audits that they were shown', async () => {
    expect((await pair(['--pick', String(numbers['glucose-meter'])], `${SIM_PASSKEY}\n`)).code).toBe(0);
    const [device] = await enrolled();
    const table = await cli(['devices']);
    expect(table.stdout).toMatch(/^ID +PROFILE +DRIVER +BONDED +ENROLLED +LABEL\n/);
    expect(table.stdout).toContain(`${device?.id}  glucose-meter  sig/glucose  yes`);
    expect(table.stdout).not.toMatch(ADDRESS);

    const shown = await cli(['devices', '--show-addresses']);
    expect(shown.stdout).toContain(SIM_GLUCOSE_ADDRESS);
    expect(shown.stderr).toMatch(/treat this output as health data/);
    const json = await cli(['devices', '--json', '--show-addresses']);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: device?.id, address: SIM_GLUCOSE_ADDRESS });
    const audit = await auditEntries();
    expect(audit.filter((e) => e.type === 'device.addresses-shown').map((e) => e.details)).toEqual([
      { devices: [device?.id] },
      { devices: [device?.id] },
    ]);
    expect(await readFile(join(dir, 'audit.log'), 'utf8')).not.toMatch(ADDRESS);
  });

  it('forgets a device after confirmation, says how to drop the bond without printing the address, and audits it', async () => {
    expect((await pair(['--pick', String(numbers['glucose-meter'])], `${SIM_PASSKEY}\n`)).code).toBe(0);
    const [device] = await enrolled();
    const id = device?.id as string;

    const declined = await cli(['forget', id], 'no\n');
    expect(declined.code).toBe(1);
    expect(declined.stderr).toMatch(/nothing was changed \[DEVICE_NOT_CHOSEN\]/);
    expect(await enrolled()).toHaveLength(1);

    const forgot = await cli(['forget', id], 'y\n');
    expect(forgot.code).toBe(0);
    expect(forgot.stdout).toMatch(/Forget d1-[0-9a-f]{16} \(glucose-meter, sig\/glucose\)\? .*\[y\/N\]/);
    expect(forgot.stdout).toContain(`forgot ${id}`);
    expect(forgot.stdout).toMatch(/still in the outbox will be sent as usual/);
    expect(forgot.stdout).toMatch(/bluetoothctl remove <address>/);
    expect(forgot.stdout).not.toMatch(ADDRESS);
    expect(await enrolled()).toEqual([]);

    const audit = await auditEntries();
    expect(audit.at(-1)).toMatchObject({
      type: 'device.forgotten',
      details: { device: id, driver: 'sig/glucose', profile: 'glucose-meter', bonded: true },
    });
    const verify = await cli(['store', 'verify-audit', '--json']);
    expect(JSON.parse(verify.stdout)).toMatchObject({ entries: audit.length, torn: 0 });

    const again = await cli(['forget', id, '--yes']);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(
      `rpm-gateway forget: no enrolled device has the id ${id} (see: rpm-gateway devices) [DEVICE_NOT_ENROLLED]\n`,
    );
  });

  it('prints the bluetoothctl command with the address only with --show-address', async () => {
    expect((await pair(['--pick', String(numbers['glucose-meter'])], `${SIM_PASSKEY}\n`)).code).toBe(0);
    const [device] = await enrolled();
    const forgot = await cli(['forget', device?.id as string, '--yes', '--show-address']);
    expect(forgot.code).toBe(0);
    expect(forgot.stdout).toContain(`bluetoothctl remove ${SIM_GLUCOSE_ADDRESS}`);
    expect((await auditEntries()).slice(-2).map((e) => e.type)).toEqual([
      'device.forgotten',
      'device.addresses-shown',
    ]);
  });

  it('never echoes an address typed where an id belongs', async () => {
    const result = await cli(['forget', SIM_GLUCOSE_ADDRESS, '--yes']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/that is not a device id .*\[DEVICE_NOT_ENROLLED\]/);
    expect(result.stderr).not.toMatch(ADDRESS);
  });

  it('says to stop the running gateway when it holds the store', async () => {
    expect((await cli(['store', 'status'])).code).toBe(0); // creates the store and its key
    const gateway = new Outbox({
      path: join(dir, 'outbox.db'),
      keys: new KeyFileProvider(join(dir, 'store.key')),
    });
    await gateway.open();
    try {
      for (const args of [
        ['devices'],
        ['forget', 'd1-0123456789abcdef', '--yes'],
        ['pair', '--backend', 'sim'],
      ]) {
        const result = await cli(args);
        expect(result.code).toBe(1);
        expect(result.stderr).toMatch(
          /in use by the running gateway: stop the service first .*\[STORE_LOCKED\]\n$/,
        );
      }
    } finally {
      gateway.close();
    }
  });
});
