import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { SIM_PASSKEY } from '../../src/ble/backends.js';
import { SimCentral, simulatedDevice } from '../../src/ble/sim/index.js';
import { loadBundledRegistry } from '../../src/drivers/default-registry.js';
import type { DriverRegistry } from '../../src/drivers/registry.js';
import { PairingAgent, type PairingPrompts } from '../../src/enrolment/pairing-agent.js';
import { EnrolmentWorkflow } from '../../src/enrolment/workflow.js';
import { DeviceRegistry } from '../../src/store/device-registry.js';
import { EnvKeyProvider } from '../../src/store/keys.js';
import { Outbox } from '../../src/store/outbox.js';
import { VirtualScheduler } from '../../src/util/scheduler.js';

/**
 * The enrolment workflow without a terminal, as the control socket will drive it: simulated devices in virtual
 * time, a real encrypted store and a real audit log.
 */
const ADDRESS = /[0-9A-F]{2}([:-][0-9A-F]{2}){5}/i;
const METER_ADDRESS = 'D0:5E:00:00:00:05';
const THERMOMETER_ADDRESS = 'D0:5E:00:00:00:03';

let drivers: DriverRegistry;
beforeAll(async () => {
  drivers = await loadBundledRegistry();
});

let dir: string;
let outbox: Outbox;
let audit: AuditLog;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-enrolment-'));
  outbox = new Outbox({
    path: join(dir, 'outbox.db'),
    keys: new EnvKeyProvider('K', { K: '9d'.repeat(32) }),
  });
  await outbox.open();
  audit = new AuditLog(join(dir, 'audit.log'));
});
afterEach(async () => {
  outbox.close();
  await rm(dir, { recursive: true, force: true });
});

async function auditLines(): Promise<{ type: string; actor: string; details: Record<string, unknown> }[]> {
  const text = await readFile(join(dir, 'audit.log'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line));
}

/** A hub with a glucose meter (bonds with a passkey) and a thermometer (needs no bond) nearby. */
async function rig(options: { devices?: boolean } = {}) {
  const scheduler = new VirtualScheduler();
  const agent = new PairingAgent();
  const { passkey } = agent.hooks;
  const central = new SimCentral({
    scheduler,
    peripherals:
      options.devices === false
        ? []
        : [
            simulatedDevice('sig/glucose', { scheduler, address: METER_ADDRESS }).peripheral,
            simulatedDevice('sig/thermometer', { scheduler, address: THERMOMETER_ADDRESS }).peripheral,
          ],
    // As createCentral wires the simulator: every passkey request goes through the agent.
    passkeyProvider: async (address) => String(await passkey({ address })).padStart(6, '0'),
  });
  await central.start();
  const registry = new DeviceRegistry(outbox.database);
  const workflow = new EnrolmentWorkflow({ central, agent, drivers, registry, audit, actor: 'control' });
  const scan = async () => {
    const found = workflow.scan(1_000);
    found.catch(() => undefined); // awaited below; a rejection must not count as unhandled meanwhile
    await scheduler.advanceAsync(1_000);
    return found;
  };
  return { scheduler, agent, central, registry, workflow, scan };
}

function prompts(passkey: () => Promise<number>): PairingPrompts & { asked: number } {
  const p = {
    asked: 0,
    passkey: () => {
      p.asked++;
      return passkey();
    },
    confirm: async () => false,
    display: () => undefined,
  };
  return p;
}

describe('EnrolmentWorkflow', () => {
  it('scans, picks by number, bonds with the passkey, enrols and audits by id', async () => {
    const { workflow, registry, scan } = await rig();
    const candidates = await scan();
    expect(candidates.map((c) => [c.number, c.driver.category])).toEqual([
      [1, 'glucose-meter'],
      [2, 'thermometer'],
    ]);
    const meter = workflow.pick(candidates, 1);
    const steps: string[] = [];
    const answer = prompts(async () => SIM_PASSKEY);
    const result = await workflow.enrol(meter, {
      prompts: answer,
      label: ' Kitchen meter ',
      onStep: (s) => steps.push(s),
    });
    expect(answer.asked).toBe(1);
    expect(steps).toEqual(['connecting', 'bonding', 'checking']);
    expect(result).toMatchObject({ created: true, bondedNow: true, driver: { id: 'sig/glucose' } });
    expect(registry.findByAddress(METER_ADDRESS)).toMatchObject({
      id: result.device.id,
      bonded: true,
      label: 'Kitchen meter',
      driverId: 'sig/glucose',
    });
    const lines = await auditLines();
    expect(lines.map((l) => [l.type, l.actor])).toEqual([
      ['device.paired', 'control'],
      ['device.enrolled', 'control'],
    ]);
    expect(lines[0]?.details).toEqual({
      device: result.device.id,
      driver: 'sig/glucose',
      profile: 'glucose-meter',
      method: 'passkey',
    });
    const text = await readFile(join(dir, 'audit.log'), 'utf8');
    expect(text).not.toMatch(ADDRESS);
    expect(text).not.toContain('Kitchen');
  });

  it('re-enrols a device under its id, and enrols one that needs no bond without asking for a passkey', async () => {
    const { workflow, scan } = await rig();
    const first = await workflow.enrol(workflow.pick(await scan(), 2), { prompts: prompts(async () => 1) });
    expect(first).toMatchObject({ created: true, bondedNow: false, device: { bonded: false } });
    const again = await scan();
    expect(again[1]?.enrolled?.id).toBe(first.device.id);
    const answer = prompts(async () => 1);
    const second = await workflow.enrol(workflow.pick(again, 2), { prompts: answer });
    expect(second).toMatchObject({ created: false, device: { id: first.device.id } });
    expect(answer.asked).toBe(0);
    expect((await auditLines()).map((l) => l.type)).toEqual(['device.enrolled', 'device.re-enrolled']);
  });

  it('a refused passkey enrols nothing and is audited as such', async () => {
    const { workflow, registry, scan } = await rig();
    const meter = workflow.pick(await scan(), 1);
    await expect(workflow.enrol(meter, { prompts: prompts(async () => 0) })).rejects.toMatchObject({
      code: 'BLE_AUTH_FAILED',
      message: expect.stringMatching(/the passkey was refused/),
    });
    expect(registry.findByAddress(METER_ADDRESS)).toBeUndefined();
    expect(await auditLines()).toEqual([
      expect.objectContaining({
        type: 'device.pairing-failed',
        details: { driver: 'sig/glucose', profile: 'glucose-meter', reason: 'passkey-refused' },
      }),
    ]);
  });

  it('a passkey the user does not give is DEVICE_NOT_CHOSEN, and nothing is enrolled', async () => {
    const { workflow, registry, scan } = await rig();
    const meter = workflow.pick(await scan(), 1);
    const cancelled = prompts(async () => {
      throw new Error('the user closed the dialogue');
    });
    await expect(workflow.enrol(meter, { prompts: cancelled })).rejects.toMatchObject({
      code: 'DEVICE_NOT_CHOSEN',
      message: 'no passkey was entered; nothing was paired',
    });
    expect(registry.findByAddress(METER_ADDRESS)).toBeUndefined();
    expect(await auditLines()).toEqual([]);
  });

  it('refuses a number not on the list, and says so when nothing is nearby', async () => {
    const { workflow, scan } = await rig();
    const candidates = await scan();
    for (const number of [0, 3, 1.5]) {
      expect(() => workflow.pick(candidates, number)).toThrow(
        expect.objectContaining({
          code: 'DEVICE_NOT_CHOSEN',
          message: expect.stringMatching(/found 2 devices/),
        }),
      );
    }
    const empty = await rig({ devices: false });
    await expect(empty.scan()).rejects.toMatchObject({ code: 'DEVICE_NONE_NEARBY' });
  });
});

describe('PairingAgent', () => {
  it('answers only the device being enrolled, only while it is, and one enrolment at a time', async () => {
    const agent = new PairingAgent();
    const { passkey } = agent.hooks;
    const { confirm } = agent.hooks.agent;
    const answer: PairingPrompts = {
      passkey: async () => 424242,
      confirm: async () => true,
      display: () => {},
    };
    // Nothing under way: every request is refused.
    await expect(passkey({ address: METER_ADDRESS })).rejects.toMatchObject({ code: 'DEVICE_NOT_CHOSEN' });
    expect(await confirm({ address: METER_ADDRESS })).toBe(false);
    await agent.during(METER_ADDRESS.toLowerCase(), answer, async () => {
      // The enrolled device, in any spelling of its address: answered.
      expect(await passkey({ address: METER_ADDRESS })).toBe(424242);
      expect(await confirm({ address: 'd0-5e-00-00-00-05', passkey: 1 })).toBe(true);
      expect(await confirm({ address: METER_ADDRESS })).toBe(true); // Just Works for the picked device
      // A neighbour's device, or a request that does not say who asks: refused.
      await expect(passkey({ address: THERMOMETER_ADDRESS })).rejects.toMatchObject({
        code: 'DEVICE_NOT_CHOSEN',
      });
      expect(await confirm({ address: THERMOMETER_ADDRESS })).toBe(false);
      expect(await confirm({ address: undefined })).toBe(false);
      // A second enrolment while this one runs.
      await expect(agent.during(THERMOMETER_ADDRESS, answer, async () => 1)).rejects.toMatchObject({
        code: 'DEVICE_PAIRING_BUSY',
      });
    });
    expect(agent.busy).toBe(false);
    expect(await confirm({ address: METER_ADDRESS })).toBe(false);
  });
});
