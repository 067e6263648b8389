import { normalizeAddress } from '../ble/address.js';
import type { CentralChoice, PasskeyPrompt } from '../ble/backends.js';
import type { AgentOptions } from '../ble/bluez/agent.js';
import { DeviceError } from '../store/device-errors.js';

/**
 * How the person enrolling a device answers its pairing requests: the terminal's prompt for `rpm-gateway
 * pair`, a control-socket client for a running hub. Each method may throw to cancel the pairing.
 */
export interface PairingPrompts {
  /** Passkey entry: the device shows 6 digits and the user types them (Core 5.4 Vol 3 Part H 2.3.5.3). */
  passkey(): Promise<number>;
  /** Numeric comparison: true when the user sees `passkey` on the device as well. */
  confirm(passkey: number): Promise<boolean>;
  /** The device wants `passkey` typed on its own keypad. */
  display(passkey: number): void;
}

/** What happened during one pairing, for the workflow to explain a failure and audit a success. */
export interface PairingTranscript {
  /** The device asked for a passkey. */
  passkeyAsked: boolean;
  /** ...and the user gave one (it may still have been wrong). */
  passkeyGiven: boolean;
}

/** createCentral's options, every pairing request routed to the agent. */
export interface PairingHooks extends CentralChoice {
  readonly passkey: PasskeyPrompt;
  readonly agent: Required<Pick<AgentOptions, 'confirm' | 'display'>>;
}

interface Under {
  readonly address: string;
  readonly prompts: PairingPrompts;
  readonly transcript: PairingTranscript;
}

/**
 * Routes the radio's pairing requests to the one enrolment under way. A central is made once, with `hooks`
 * (src/ble/backends.ts createCentral); BlueZ sends every pairing request to its default agent, a neighbour's
 * included (doc/org.bluez.AgentManager.rst RequestDefaultAgent), so a request is answered only while an
 * enrolment is under way and only when it comes from the device being enrolled; all others are refused.
 * Just Works (no passkey) is accepted for that device, because the user picked it in this enrolment.
 */
export class PairingAgent {
  private under: Under | undefined;

  /** The options to create the central with. */
  readonly hooks: PairingHooks;

  constructor() {
    this.hooks = {
      passkey: ({ address }) => this.passkey(address),
      agent: {
        confirm: async ({ address, passkey }) => {
          const under = this.for(address);
          if (!under) return false;
          return passkey === undefined || under.prompts.confirm(passkey);
        },
        display: ({ address, passkey }) => this.for(address)?.prompts.display(passkey),
      },
    };
  }

  /** Whether an enrolment holds the agent now (one at a time: the radio pairs with one device at a time). */
  get busy(): boolean {
    return this.under !== undefined;
  }

  /**
   * Runs `work` (connect, bond, check) with the pairing requests of `address` going to `prompts`. Refuses to
   * start while another enrolment holds the agent.
   */
  async during<T>(
    address: string,
    prompts: PairingPrompts,
    work: (transcript: Readonly<PairingTranscript>) => Promise<T>,
  ): Promise<T> {
    if (this.under) {
      throw new DeviceError(
        'DEVICE_PAIRING_BUSY',
        'another device is being paired; try again when it is done',
      );
    }
    const under: Under = {
      address: normalizeAddress(address),
      prompts,
      transcript: { passkeyAsked: false, passkeyGiven: false },
    };
    this.under = under;
    try {
      return await work(under.transcript);
    } finally {
      this.under = undefined;
    }
  }

  private for(address: string | undefined): Under | undefined {
    const under = this.under;
    return under && address !== undefined && normalizeAddress(address) === under.address ? under : undefined;
  }

  private async passkey(address: string | undefined): Promise<number> {
    const under = this.for(address);
    if (!under) throw new DeviceError('DEVICE_NOT_CHOSEN', 'a pairing request from a device nobody picked');
    under.transcript.passkeyAsked = true;
    const passkey = await under.prompts.passkey();
    under.transcript.passkeyGiven = true;
    return passkey;
  }
}
