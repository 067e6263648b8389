import type { Scheduler } from '../../util/scheduler.js';
import { BleError } from '../central.js';
import { addressFromPath, BLUEZ, callProxy, DBusError, DbusInterface, type MessageBus } from './dbus.js';
import { withTimeout } from './errors.js';

/**
 * The gateway's BlueZ pairing agent (doc/org.bluez.Agent.rst, Agent1). node-ble has none, so without it
 * Device1.Pair fails for every device that needs passkey entry. BlueZ calls the agent on the connection that
 * registered it (AgentManager1.RegisterAgent), so it is exported on the same system-bus connection node-ble uses.
 */

/** Asks for the 6-digit passkey shown on the device (the CLI prompts the user). */
export type PasskeyProvider = (request: { readonly address: string | undefined }) => Promise<number>;

/**
 * Decides RequestConfirmation (numeric comparison: `passkey` is defined) and RequestAuthorization (Just Works:
 * no passkey). Returning false rejects the pairing.
 */
export type ConfirmationPolicy = (request: {
  readonly address: string | undefined;
  readonly passkey?: number;
}) => Promise<boolean>;

export interface AgentOptions {
  readonly passkey?: PasskeyProvider;
  readonly confirm?: ConfirmationPolicy;
  /** Called with the passkey BlueZ wants shown (DisplayPasskey), for the CLI to print. */
  readonly display?: (request: { readonly address: string | undefined; readonly passkey: number }) => void;
}

export const AGENT_PATH = '/org/rpm_gateway/agent';
/** Agent.rst capabilities: KeyboardDisplay lets BlueZ pick passkey entry or numeric comparison as needed. */
export const AGENT_CAPABILITY = 'KeyboardDisplay';

// Agent.rst errors an agent returns.
const REJECTED = 'org.bluez.Error.Rejected';
const CANCELED = 'org.bluez.Error.Canceled';

class Agent1 extends DbusInterface {
  constructor(private readonly options: AgentOptions) {
    super('org.bluez.Agent1');
  }

  /** Agent.rst Release: BlueZ unregistered us (e.g. it is shutting down); nothing to clean up. */
  Release(): void {}

  /** Agent.rst RequestPinCode is BR/EDR legacy pairing; LE devices never need it. */
  RequestPinCode(): never {
    throw new DBusError(REJECTED, 'PIN codes are not supported');
  }

  /** Agent.rst RequestPasskey(object device) -> uint32 (0-999999). */
  async RequestPasskey(device: string): Promise<number> {
    const provider = this.options.passkey;
    if (!provider) throw new DBusError(REJECTED, 'no passkey provider');
    let passkey: number;
    try {
      passkey = await provider({ address: addressFromPath(device) });
    } catch {
      throw new DBusError(CANCELED, 'passkey entry cancelled');
    }
    if (!Number.isInteger(passkey) || passkey < 0 || passkey > 999_999) {
      throw new DBusError(REJECTED, 'passkey out of range');
    }
    return passkey;
  }

  /** Agent.rst DisplayPasskey(object device, uint32 passkey, uint16 entered). */
  DisplayPasskey(device: string, passkey: number): void {
    this.options.display?.({ address: addressFromPath(device), passkey });
  }

  DisplayPinCode(): void {}

  /** Agent.rst RequestConfirmation(object device, uint32 passkey): numeric comparison. */
  async RequestConfirmation(device: string, passkey: number): Promise<void> {
    await this.decide({ address: addressFromPath(device), passkey });
  }

  /** Agent.rst RequestAuthorization(object device): an incoming Just Works pairing. */
  async RequestAuthorization(device: string): Promise<void> {
    await this.decide({ address: addressFromPath(device) });
  }

  /**
   * Agent.rst AuthorizeService(object device, string uuid): a peer connecting to one of our profiles. The gateway
   * is a central and offers none, so it always refuses.
   */
  AuthorizeService(): never {
    throw new DBusError(REJECTED, 'the gateway offers no services');
  }

  /** Agent.rst Cancel: the request timed out or the peer gave up; the pending call is answered by BlueZ. */
  Cancel(): void {}

  private async decide(request: { address: string | undefined; passkey?: number }): Promise<void> {
    // Without a policy, refuse: an unattended gateway must not accept pairings nobody looked at.
    const ok = (await this.options.confirm?.(request).catch(() => false)) ?? false;
    if (!ok) throw new DBusError(REJECTED, 'pairing not confirmed');
  }
}

Agent1.configureMembers({
  methods: {
    Release: {},
    RequestPinCode: { inSignature: 'o', outSignature: 's' },
    DisplayPinCode: { inSignature: 'os' },
    RequestPasskey: { inSignature: 'o', outSignature: 'u' },
    DisplayPasskey: { inSignature: 'ouq' },
    RequestConfirmation: { inSignature: 'ou' },
    RequestAuthorization: { inSignature: 'o' },
    AuthorizeService: { inSignature: 'os' },
    Cancel: {},
  },
});

/** Exports the agent and registers it with BlueZ (AgentManager1, doc/org.bluez.AgentManager.rst). */
export class BluezAgent {
  private readonly agent: Agent1;
  private registered = false;

  constructor(
    private readonly bus: MessageBus,
    options: AgentOptions,
    private readonly timeoutMs: number,
    private readonly scheduler: Scheduler,
  ) {
    this.agent = new Agent1(options);
  }

  async register(): Promise<void> {
    this.bus.export(AGENT_PATH, this.agent);
    try {
      const manager = await withTimeout(
        this.agentManager(),
        this.timeoutMs,
        'agent manager lookup',
        this.scheduler,
      );
      await withTimeout(
        callProxy(manager, 'RegisterAgent', AGENT_PATH, AGENT_CAPABILITY),
        this.timeoutMs,
        'agent registration',
        this.scheduler,
      );
      this.registered = true;
      // AgentManager.rst RequestDefaultAgent: BlueZ then uses this agent for pairings it starts on its own
      // (e.g. a bonded device asking for re-encryption), not only for our Pair calls.
      await withTimeout(
        callProxy(manager, 'RequestDefaultAgent', AGENT_PATH),
        this.timeoutMs,
        'default agent',
        this.scheduler,
      );
    } catch (error) {
      this.bus.unexport(AGENT_PATH, this.agent);
      throw error instanceof BleError
        ? error
        : new BleError('BLE_BACKEND_UNAVAILABLE', 'agent', { cause: error });
    }
  }

  async unregister(): Promise<void> {
    if (this.registered) {
      this.registered = false;
      const manager = await withTimeout(
        this.agentManager(),
        this.timeoutMs,
        'agent manager lookup',
        this.scheduler,
      );
      await withTimeout(
        callProxy(manager, 'UnregisterAgent', AGENT_PATH),
        this.timeoutMs,
        'agent unregistration',
        this.scheduler,
      );
    }
    this.bus.unexport(AGENT_PATH, this.agent);
  }

  private async agentManager() {
    const object = await this.bus.getProxyObject(BLUEZ, '/org/bluez');
    return object.getInterface('org.bluez.AgentManager1');
  }
}
