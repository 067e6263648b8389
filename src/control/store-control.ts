import type { AuditLog } from '../audit/audit-log.js';
import { type BackendName, createCentral } from '../ble/backends.js';
import { loadBundledRegistry } from '../drivers/default-registry.js';
import {
  checkEnrolRequest,
  deviceView,
  type EnrolledDeviceView,
  type EnrolmentInteraction,
  type EnrolmentOutcome,
  enrolGuided,
  type GuidedEnrolRequest,
} from '../enrolment/guided.js';
import { PairingAgent } from '../enrolment/pairing-agent.js';
import { EnrolmentWorkflow } from '../enrolment/workflow.js';
import type { DeviceRegistry } from '../store/device-registry.js';
import { keyProtection } from '../store/key-protection.js';
import type { KeyProvider } from '../store/keys.js';
import type { Outbox, StoreEvent } from '../store/outbox.js';
import { Store } from '../store/store.js';
import type { HubControl, StoreStatusView } from './hub-control.js';
import type { HubStatus } from './status.js';

export interface StoreControlOptions {
  /** The store file (outbox.db). */
  readonly store: string;
  readonly keys: KeyProvider;
  readonly audit: AuditLog;
  readonly onEvent?: (event: StoreEvent) => void;
  /** The radio an enrolment uses (a running hub uses its own). */
  readonly backend: BackendName;
}

/**
 * HubControl without a running hub: a command (`pair`, `devices`, `forget`, `store status`, `status`) that found
 * no hub on the control socket opens the store itself, takes its lock for as long as it runs, and works on it
 * directly. Sessions, the broker, the clock and the certificate are the hub's to know: `status` says the hub is
 * not running and shows what the store holds.
 */
export class StoreControl implements HubControl {
  private readonly outbox: Outbox;
  private readonly registry: DeviceRegistry;

  private constructor(
    private readonly options: StoreControlOptions,
    private readonly store: Store,
  ) {
    this.outbox = store.outbox;
    this.registry = store.devices;
  }

  /** Opens the store (STORE_LOCKED when a hub or a key rotation holds it). */
  static async open(options: StoreControlOptions): Promise<StoreControl> {
    const store = await Store.open({
      path: options.store,
      keys: options.keys,
      existing: 'create',
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    });
    return new StoreControl(options, store);
  }

  close(): void {
    this.store.close();
  }

  async status(): Promise<HubStatus> {
    const stats = this.outbox.stats();
    const lane = (name: 'alert' | 'live' | 'backlog') => ({
      pending: stats.pending[name],
      oldestAgeMs: stats.oldestAgeMsByLane[name],
    });
    return {
      hub: { running: false, gatewayId: null, since: null },
      devices: this.registry.list().map((d) => ({
        id: d.id,
        label: d.label,
        profile: d.category,
        driver: d.driverId,
        state: null,
        lastSeen: d.lastSeenAt === null ? null : new Date(d.lastSeenAt).toISOString(),
        batteryPercent: null,
      })),
      backlog: { alert: lane('alert'), live: lane('live'), backlog: lane('backlog') },
      broker: null,
      clock: null,
      certificate: null,
      store: { path: this.options.store, bytes: stats.bytesOnDisk, rows: stats.rows },
      gaps: stats.gapsTotal,
      alertReadings: null,
      alertRules: null,
    };
  }

  async devices(options: { addresses: boolean; actor: string }): Promise<EnrolledDeviceView[]> {
    return listDevices(this.registry, this.options.audit, options);
  }

  async forget(id: string, options: { actor: string; showAddress: boolean }): Promise<EnrolledDeviceView> {
    return forgetDevice(this.registry, this.options.audit, id, options);
  }

  async storeStatus(): Promise<StoreStatusView> {
    return storeStatusOf(this.outbox, this.options.store, this.options.keys);
  }

  async enrol(
    request: GuidedEnrolRequest,
    interaction: EnrolmentInteraction,
    actor: string,
  ): Promise<EnrolmentOutcome> {
    checkEnrolRequest(request);
    const agent = new PairingAgent();
    const central = await createCentral(this.options.backend, agent.hooks);
    await central.start();
    try {
      const workflow = new EnrolmentWorkflow({
        central,
        agent,
        drivers: await loadBundledRegistry(),
        registry: this.registry,
        audit: this.options.audit,
        actor,
      });
      return await enrolGuided(workflow, request, interaction);
    } finally {
      await central.stop();
    }
  }
}

/**
 * The enrolled devices for `devices`; showing their addresses is audited. Shared by StoreControl and the running
 * hub (src/runtime/hub-control-adapter.ts), so both answer and audit alike.
 */
export function listDevices(
  registry: DeviceRegistry,
  audit: Pick<AuditLog, 'record'>,
  options: { readonly addresses: boolean; readonly actor: string },
): EnrolledDeviceView[] {
  const devices = registry.list();
  if (options.addresses && devices.length > 0) {
    audit.record('device.addresses-shown', options.actor, { devices: devices.map((d) => d.id) });
  }
  return devices.map((d) => deviceView(d, options.addresses));
}

/** Removes an enrolled device and audits it (DEVICE_NOT_ENROLLED when it is not). */
export function forgetDevice(
  registry: DeviceRegistry,
  audit: Pick<AuditLog, 'record'>,
  id: string,
  options: { readonly actor: string; readonly showAddress: boolean },
): EnrolledDeviceView {
  const device = registry.forget(id);
  audit.record('device.forgotten', options.actor, {
    device: device.id,
    driver: device.driverId,
    profile: device.category,
    bonded: device.bonded,
  });
  if (options.showAddress) audit.record('device.addresses-shown', options.actor, { devices: [device.id] });
  return deviceView(device, options.showAddress);
}

/** What `rpm-gateway store status` prints. */
export async function storeStatusOf(
  outbox: Outbox,
  storePath: string,
  keys: KeyProvider,
): Promise<StoreStatusView> {
  return {
    store: storePath,
    key: keys.description,
    stats: outbox.stats(),
    keyProtection: await keyProtection(keys, { storePath }),
    damage: outbox.damageReports(),
  };
}
