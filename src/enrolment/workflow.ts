import type { AuditLog } from '../audit/audit-log.js';
import { BleError, type CentralPort } from '../ble/central.js';
import type { DriverRegistry } from '../drivers/registry.js';
import type { Driver } from '../drivers/sdk/define-driver.js';
import { DeviceError } from '../store/device-errors.js';
import type { DeviceRegistry, EnrolledDevice } from '../store/device-registry.js';
import { type Candidate, findCandidates, type PairingStep, pairWith } from './pairing.js';
import type { PairingAgent, PairingPrompts } from './pairing-agent.js';

/**
 * Enrolling a device, without a terminal: scan for supported devices, pick one, bond (the user answers the
 * device's passkey through `PairingPrompts`), check its characteristics, record it in the registry, audit it.
 * `rpm-gateway pair` is one front end (src/cli/pair.ts); the running hub's control socket is the other, so both
 * enrol by the same rules and write the same audit entries.
 *
 * The audit log holds ids, drivers and profiles: never an address, and not the label (a user's label may name
 * the patient).
 */
export interface EnrolmentWorkflowOptions {
  /** Started by the caller, created with `agent.hooks` so the device's pairing requests reach the prompts. */
  readonly central: CentralPort;
  readonly agent: PairingAgent;
  readonly drivers: DriverRegistry;
  readonly registry: Pick<DeviceRegistry, 'enrol' | 'findByAddress'>;
  readonly audit: Pick<AuditLog, 'record'>;
  /** Who enrols, as the audit log names it ("cli", "control"). */
  readonly actor: string;
  /** Deadline of the connection to the picked device (default 20 s). */
  readonly connectTimeoutMs?: number;
}

export interface EnrolRequest {
  /** Answers the device's pairing requests (passkey entry, numeric comparison, display). */
  readonly prompts: PairingPrompts;
  /** A name for the device, kept in the encrypted store only (src/store/device-registry.ts normalizeLabel). */
  readonly label?: string;
  /** Bond even if neither the profile nor the device asks for it. */
  readonly forceBond?: boolean;
  readonly onStep?: (step: PairingStep) => void;
}

export interface EnrolmentResult {
  readonly device: EnrolledDevice;
  readonly driver: Driver;
  /** False when the device was enrolled already: it kept its id and was updated. */
  readonly created: boolean;
  /** A bond was made in this enrolment. */
  readonly bondedNow: boolean;
}

export type { Candidate, PairingStep };

const CONNECT_TIMEOUT_MS = 20_000;

export class EnrolmentWorkflow {
  constructor(private readonly options: EnrolmentWorkflowOptions) {}

  /**
   * Listens for `durationMs` and returns the supported devices heard, numbered (src/enrolment/pairing.ts
   * findCandidates), each marked when enrolled already. None heard is DEVICE_NONE_NEARBY.
   */
  async scan(durationMs: number): Promise<Candidate[]> {
    const { central, drivers, registry } = this.options;
    const candidates = await findCandidates(central, drivers, durationMs, (address) =>
      registry.findByAddress(address),
    );
    if (candidates.length === 0) {
      throw new DeviceError(
        'DEVICE_NONE_NEARBY',
        'no supported health device nearby (is it awake and in pairing mode? most advertise only for a ' +
          'minute after a measurement or a press of the Bluetooth button)',
      );
    }
    return candidates;
  }

  /**
   * The candidate listed as `number` (1-based), or DEVICE_NOT_CHOSEN naming how many there are. `asked` names
   * the choice in that message as the front end's user made it (default "device N").
   */
  pick(candidates: readonly Candidate[], number: number, asked = `device ${number}`): Candidate {
    const chosen = Number.isInteger(number) ? candidates.find((c) => c.number === number) : undefined;
    if (!chosen) {
      const count = candidates.length;
      throw new DeviceError(
        'DEVICE_NOT_CHOSEN',
        `${asked}: the scan found ${count} device${count === 1 ? '' : 's'}; nothing was paired`,
      );
    }
    return chosen;
  }

  /**
   * Connects to the picked device, bonds when its profile, the request or the device asks for it, checks it
   * answers as its driver expects, then enrols it (or updates it under its id) and audits each step. Nothing is
   * enrolled when any step fails; a refused bond is audited as such.
   */
  async enrol(candidate: Candidate, request: EnrolRequest): Promise<EnrolmentResult> {
    const { central, agent, registry, audit, actor } = this.options;
    const { driver } = candidate;
    const { result, passkeyUsed } = await agent.during(
      candidate.address,
      request.prompts,
      async (transcript) => {
        try {
          const paired = await pairWith(central, candidate, {
            timeoutMs: this.options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
            ...(request.forceBond ? { forceBond: true } : {}),
            ...(request.onStep ? { onStep: request.onStep } : {}),
          });
          return { result: paired, passkeyUsed: transcript.passkeyAsked };
        } catch (error) {
          if (transcript.passkeyAsked && !transcript.passkeyGiven) {
            throw new DeviceError('DEVICE_NOT_CHOSEN', 'no passkey was entered; nothing was paired', {
              cause: error,
            });
          }
          if (error instanceof BleError && error.code === 'BLE_AUTH_FAILED') {
            audit.record('device.pairing-failed', actor, {
              driver: driver.id,
              profile: driver.category,
              reason: transcript.passkeyAsked ? 'passkey-refused' : 'authentication-failed',
            });
            throw new BleError(
              'BLE_AUTH_FAILED',
              transcript.passkeyAsked
                ? 'the passkey was refused; try again (rpm-gateway pair), typing the 6 digits the device shows'
                : 'the device refused to pair; put it in pairing mode and try again (rpm-gateway pair)',
              { cause: error },
            );
          }
          throw error;
        }
      },
    );
    const { device, created } = registry.enrol({
      address: candidate.address,
      driverId: driver.id,
      category: driver.category,
      bonded: result.bonded,
      ...(request.label === undefined ? {} : { label: request.label }),
      ...(result.model === undefined ? {} : { model: result.model }),
    });
    if (result.bondedNow) {
      audit.record('device.paired', actor, {
        device: device.id,
        driver: driver.id,
        profile: driver.category,
        method: passkeyUsed ? 'passkey' : 'no-passkey',
      });
    }
    audit.record(created ? 'device.enrolled' : 'device.re-enrolled', actor, {
      device: device.id,
      driver: driver.id,
      profile: driver.category,
      bonded: device.bonded,
    });
    return { device, driver, created, bondedNow: result.bondedNow };
  }
}
