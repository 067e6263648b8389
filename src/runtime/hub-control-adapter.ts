import type { AuditLog } from '../audit/audit-log.js';
import type { CentralPort } from '../ble/central.js';
import { ControlError } from '../control/errors.js';
import type { HubControl, StoreStatusView } from '../control/hub-control.js';
import type { HubStatus } from '../control/status.js';
import { forgetDevice, listDevices, storeStatusOf } from '../control/store-control.js';
import type { DriverRegistry } from '../drivers/registry.js';
import {
  checkEnrolRequest,
  type EnrolledDeviceView,
  type EnrolmentInteraction,
  type EnrolmentOutcome,
  enrolGuided,
  type GuidedEnrolRequest,
} from '../enrolment/guided.js';
import type { PairingAgent } from '../enrolment/pairing-agent.js';
import { EnrolmentWorkflow } from '../enrolment/workflow.js';
import type { DeviceRegistry } from '../store/device-registry.js';
import type { KeyProvider } from '../store/keys.js';
import type { Outbox } from '../store/outbox.js';

/** What the control socket needs of the running hub: its open parts, and the two session obligations. */
export interface ControlledHub {
  status(): HubStatus;
  /** The hub's open store, audit log and radio; undefined unless it runs. */
  parts(): ControlledParts | undefined;
  /** The device was (re-)enrolled: its session (re)starts and the gate lets its readings in. */
  deviceEnrolled(id: string): Promise<void>;
  /** The device was forgotten: its session stops and the gate drops its readings, before this resolves. */
  deviceForgotten(id: string): Promise<void>;
}

export interface ControlledParts {
  readonly registry: DeviceRegistry;
  readonly outbox: Outbox;
  readonly storePath: string;
  readonly keys: KeyProvider;
  readonly audit: AuditLog;
  /** The Central the sessions use, created with `agent.hooks`. */
  readonly central: CentralPort;
  readonly agent: PairingAgent;
  readonly drivers: DriverRegistry;
}

/**
 * HubControl over the running hub (the obligations are listed in src/control/hub-control.ts): what the socket
 * asks is answered from the hub's open store, an enrolment uses the hub's own radio, and enrolling or
 * forgetting a device starts or stops its session before the reply.
 */
export class HubControlAdapter implements HubControl {
  constructor(private readonly hub: ControlledHub) {}

  async status(): Promise<HubStatus> {
    return this.hub.status();
  }

  async devices(options: { addresses: boolean; actor: string }): Promise<EnrolledDeviceView[]> {
    const parts = this.parts();
    return listDevices(parts.registry, parts.audit, options);
  }

  async forget(id: string, options: { actor: string; showAddress: boolean }): Promise<EnrolledDeviceView> {
    const parts = this.parts();
    const view = forgetDevice(parts.registry, parts.audit, id, options);
    // Before the reply: no reading of the device is taken after the person was told it is forgotten.
    await this.hub.deviceForgotten(view.id);
    return view;
  }

  async storeStatus(): Promise<StoreStatusView> {
    const parts = this.parts();
    return storeStatusOf(parts.outbox, parts.storePath, parts.keys);
  }

  async enrol(
    request: GuidedEnrolRequest,
    interaction: EnrolmentInteraction,
    actor: string,
  ): Promise<EnrolmentOutcome> {
    checkEnrolRequest(request);
    const parts = this.parts();
    const workflow = new EnrolmentWorkflow({
      central: parts.central,
      agent: parts.agent,
      drivers: parts.drivers,
      registry: parts.registry,
      audit: parts.audit,
      actor,
    });
    const outcome = await enrolGuided(workflow, request, interaction);
    await this.hub.deviceEnrolled(outcome.device.id);
    return outcome;
  }

  private parts(): ControlledParts {
    const parts = this.hub.parts();
    if (!parts) throw new ControlError('CONTROL_CLOSED', 'the hub is stopping; try again once it runs');
    return parts;
  }
}
