import type {
  EnrolledDeviceView,
  EnrolmentInteraction,
  EnrolmentOutcome,
  GuidedEnrolRequest,
} from '../enrolment/guided.js';
import type { DamageRecord } from '../store/damage.js';
import type { KeyProtection } from '../store/key-protection.js';
import type { OutboxStats } from '../store/outbox.js';
import type { HubStatus } from './status.js';

/**
 * What the control socket asks of whoever owns the store: the running hub (src/runtime), or, when no hub runs,
 * the command itself over the store it opened (src/control/store-control.ts). The socket server
 * (src/control/server.ts) turns each request into one call here; `rpm-gateway pair`, `devices`, `forget`,
 * `store status` and `status` are written against this interface, so they behave the same either way.
 *
 * `actor` is who the audit log names: "control" for a request that came through the socket, "cli" for a
 * command that opened the store itself.
 *
 * The running hub's obligations, beyond answering:
 * - `enrol` uses the hub's own Central (the one its sessions use), created with a PairingAgent's hooks
 *   (src/enrolment/pairing-agent.ts), through `enrolGuided` (src/enrolment/guided.ts) with an
 *   EnrolmentWorkflow on the hub's open device registry and audit log; once a device is recorded, the hub
 *   starts its session (and lets its readings through the enrolment gate) without a restart. A device
 *   enrolled again is updated: its session restarts with the new driver or bond state.
 * - `forget` removes the device from the registry and stops its session (and closes the enrolment gate to
 *   it) before answering, so no reading of it is taken after the reply.
 * - One enrolment at a time (the agent answers DEVICE_PAIRING_BUSY otherwise); every other call may run
 *   beside it.
 * - Errors are GatewayErrors with stable codes: the socket passes the code and message to the command, which
 *   prints them as if it had failed itself.
 */
export interface HubControl {
  status(): Promise<HubStatus>;
  /** The enrolled devices; with `addresses`, their Bluetooth addresses too, and that is audited. */
  devices(options: { readonly addresses: boolean; readonly actor: string }): Promise<EnrolledDeviceView[]>;
  /**
   * Removes an enrolled device (DEVICE_NOT_ENROLLED when it is not), audits it, and returns what was removed;
   * its address only with `showAddress` (audited).
   */
  forget(
    id: string,
    options: { readonly actor: string; readonly showAddress: boolean },
  ): Promise<EnrolledDeviceView>;
  /** What `rpm-gateway store status` prints. */
  storeStatus(): Promise<StoreStatusView>;
  /** Scans, asks through `interaction`, pairs and records one device (see above). */
  enrol(
    request: GuidedEnrolRequest,
    interaction: EnrolmentInteraction,
    actor: string,
  ): Promise<EnrolmentOutcome>;
}

export interface StoreStatusView {
  /** The store's path. */
  readonly store: string;
  /** Where the key comes from ("key file ...", "systemd credential ..."), never the key. */
  readonly key: string;
  readonly stats: OutboxStats;
  readonly keyProtection: KeyProtection;
  readonly damage: readonly DamageRecord[];
}
