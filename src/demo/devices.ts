import type { AuditLog } from '../audit/audit-log.js';
import { normalizeAddress } from '../ble/address.js';
import { SIM_PASSKEY } from '../ble/backends.js';
import {
  SimCentral,
  type SimulatedDevice,
  type SimulatedDriverId,
  type SubjectProfile,
  simulatedDevice,
} from '../ble/sim/index.js';
import type { DriverRegistry } from '../drivers/registry.js';
import { PairingAgent, type PairingPrompts } from '../enrolment/pairing-agent.js';
import { EnrolmentWorkflow } from '../enrolment/workflow.js';
import type { DeviceRegistry } from '../store/device-registry.js';
import type { Scheduler, TimerHandle } from '../util/scheduler.js';

/**
 * The demo's patient and their five devices: the simulator's models of a pulse oximeter, a BP cuff, a
 * thermometer, a scale and a glucose meter, all measuring one simulated person, on one simulated radio.
 *
 * The cuff, the scale and the glucose meter hold a few earlier measurements in their memory, as devices that
 * were used while the hub was away do: they arrive as stored records (replayed on connection, or read over the
 * glucose meter's Record Access Control Point). The oximeter streams; the others measure when the patient
 * takes a spot measurement (`Patient`).
 */
export interface DemoDevice {
  readonly driverId: SimulatedDriverId;
  /** What the clinic view calls it. */
  readonly kind: string;
  readonly sim: SimulatedDevice;
}

/** One person: the weight is planted (81.35 kg) so its values are easy to look for in files, and must not be. */
export const DEMO_SUBJECT: Partial<SubjectProfile> = {
  systolic: 128,
  diastolic: 84,
  restingPulse: 68,
  weightKg: 81.35,
  heightM: 1.79,
  fastingGlucose: 97,
};

interface DeviceSpec {
  readonly driverId: SimulatedDriverId;
  readonly kind: string;
  /** Earlier measurements in the device's memory, this far apart. */
  readonly stored?: { readonly count: number; readonly everyMs: number };
}

const HOUR = 3_600_000;

export const DEMO_DEVICES: readonly DeviceSpec[] = [
  { driverId: 'sig/pulse-oximeter', kind: 'pulse oximeter' },
  { driverId: 'sig/blood-pressure', kind: 'BP cuff', stored: { count: 3, everyMs: 12 * HOUR } },
  { driverId: 'sig/thermometer', kind: 'thermometer' },
  { driverId: 'sig/weight-scale', kind: 'scale', stored: { count: 3, everyMs: 24 * HOUR } },
  { driverId: 'sig/glucose', kind: 'glucose meter', stored: { count: 4, everyMs: 4 * HOUR } },
];

/** The oximeter's period: a reading every 3 s keeps the clinic view readable. */
const OXIMETER_EVERY_MS = 3_000;

export interface DemoRadio {
  readonly central: SimCentral;
  /** Answers pairing requests during an enrolment (PairingAgent), as `rpm-gateway pair` does. */
  readonly agent: PairingAgent;
  readonly devices: readonly DemoDevice[];
  /** The kind of a device by its address (the clinic view's labels). */
  kindOf(address: string): string | undefined;
}

export function demoRadio(scheduler: Scheduler): DemoRadio {
  const agent = new PairingAgent();
  const { passkey } = agent.hooks;
  const devices = DEMO_DEVICES.map((spec, i) => ({
    driverId: spec.driverId,
    kind: spec.kind,
    sim: simulatedDevice(spec.driverId, {
      scheduler,
      seed: 100 + i,
      subject: DEMO_SUBJECT,
      ...(spec.driverId === 'sig/pulse-oximeter' ? { streamEveryMs: OXIMETER_EVERY_MS } : {}),
      ...(spec.stored ? { preload: spec.stored.count, preloadEveryMs: spec.stored.everyMs } : {}),
    }),
  }));
  const central = new SimCentral({
    scheduler,
    id: 'demo-hub-adapter',
    peripherals: devices.map((d) => d.sim.peripheral),
    // As createCentral wires the simulator: every passkey request goes through the agent, which answers only
    // during an enrolment and only for the device being enrolled.
    passkeyProvider: async (address) => String(await passkey({ address })).padStart(6, '0'),
  });
  const byAddress = new Map(devices.map((d) => [normalizeAddress(d.sim.peripheral.address), d.kind]));
  return { central, agent, devices, kindOf: (address) => byAddress.get(normalizeAddress(address)) };
}

/**
 * Enrols the five devices through the enrolment workflow `rpm-gateway pair` and the control socket use (scan,
 * bond, check, record, audit), the first time; the person enrolling reads the glucose meter's passkey off its
 * display (the simulator's meters show 123456). On a later run the devices are enrolled already and only their
 * bonds are restored: a real meter and adapter keep theirs, the simulated ones live only as long as the
 * process.
 */
export async function enrolDemoDevices(options: {
  readonly radio: DemoRadio;
  readonly registry: DeviceRegistry;
  readonly drivers: DriverRegistry;
  readonly audit: AuditLog;
}): Promise<{ readonly enrolled: number }> {
  const { radio, registry } = options;
  const known = new Set(registry.list().map((d) => normalizeAddress(d.address)));
  for (const device of registry.list()) {
    if (!device.bonded) continue;
    radio.central.peripheral(device.address)?.addBond(radio.central.id);
  }
  const missing = radio.devices.filter((d) => !known.has(normalizeAddress(d.sim.peripheral.address)));
  if (missing.length === 0) return { enrolled: 0 };
  await radio.central.start();
  const workflow = new EnrolmentWorkflow({
    central: radio.central,
    agent: radio.agent,
    drivers: options.drivers,
    registry,
    audit: options.audit,
    actor: 'demo',
  });
  const candidates = await workflow.scan(1_000);
  const prompts: PairingPrompts = {
    passkey: async () => SIM_PASSKEY,
    confirm: async () => true,
    display: () => undefined,
  };
  let enrolled = 0;
  for (const device of missing) {
    const address = normalizeAddress(device.sim.peripheral.address);
    const candidate = candidates.find((c) => c.address === address);
    if (!candidate) throw new Error(`the demo's ${device.kind} was not heard in the scan`);
    await workflow.enrol(candidate, { prompts, label: `Demo ${device.kind}` });
    enrolled++;
  }
  return { enrolled };
}

/**
 * The patient's routine: spot measurements on the cuff, the thermometer and the scale in turn, `everyMs` apart
 * each, staggered so a short run sees all three, and a glucose test every `glucoseEveryMs`.
 *
 * A glucose meter keeps its readings and hands them over when a gateway reads its records, so after a test
 * the simulated meter ends its link, as real meters do once a transfer is over; the hub reconnects and reads
 * the records over RACP. Until the hub resumes such a download where the last one ended, it reads the whole
 * memory each time (the store drops the records it has by their ids, but a context record has no timestamp
 * and so no stable id), hence the slower glucose routine.
 */
export class Patient {
  private readonly timers = new Set<TimerHandle>();
  private running = false;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly devices: readonly DemoDevice[],
    private readonly everyMs = 10_000,
    private readonly glucoseEveryMs = 30_000,
  ) {}

  start(): void {
    this.running = true;
    const spot = this.devices.filter((d) => !d.sim.streams && d.driverId !== 'sig/glucose');
    spot.forEach((device, i) => {
      this.repeat(1_500 + (i * this.everyMs) / spot.length, this.everyMs, () => device.sim.measure());
    });
    const meter = this.devices.find((d) => d.driverId === 'sig/glucose');
    if (meter) {
      this.repeat(7_000, this.glucoseEveryMs, () => {
        meter.sim.measure();
        this.once(500, () => meter.sim.peripheral.dropLink('remote'));
      });
    }
  }

  stop(): void {
    this.running = false;
    for (const timer of this.timers) this.scheduler.clearTimeout(timer);
    this.timers.clear();
  }

  private repeat(afterMs: number, everyMs: number, fn: () => void): void {
    this.once(afterMs, () => {
      fn();
      this.repeat(everyMs, everyMs, fn);
    });
  }

  private once(afterMs: number, fn: () => void): void {
    const handle = this.scheduler.setTimeout(() => {
      this.timers.delete(handle);
      if (this.running) fn();
    }, afterMs);
    this.timers.add(handle);
  }
}
