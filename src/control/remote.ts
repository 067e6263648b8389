import type {
  CandidateView,
  EnrolledDeviceView,
  EnrolmentEvent,
  EnrolmentInteraction,
  EnrolmentOutcome,
  GuidedEnrolRequest,
} from '../enrolment/guided.js';
import type { ControlClient } from './client.js';
import { ControlError } from './errors.js';
import type { HubControl, StoreStatusView } from './hub-control.js';
import type { AnswerValue, Prompt } from './protocol.js';
import type { HubStatus } from './status.js';

/**
 * The running hub, reached through its control socket: every call is one request. The hub names the actor
 * itself ("control"): a command cannot claim to be someone else in the hub's audit log. Results are the hub's
 * own JSON; the connection is open to the service user and root only, so they are trusted as the hub's.
 */
export class RemoteHubControl implements HubControl {
  constructor(private readonly client: ControlClient) {}

  async status(): Promise<HubStatus> {
    return this.object<HubStatus>(await this.client.call('status', {}), 'status');
  }

  async devices(options: { addresses: boolean }): Promise<EnrolledDeviceView[]> {
    const result = await this.client.call('devices', { addresses: options.addresses });
    if (!Array.isArray(result)) throw unexpected('devices');
    return result as EnrolledDeviceView[];
  }

  async forget(id: string, options: { showAddress: boolean }): Promise<EnrolledDeviceView> {
    return this.object(await this.client.call('forget', { id, showAddress: options.showAddress }), 'forget');
  }

  async storeStatus(): Promise<StoreStatusView> {
    return this.object(await this.client.call('store-status', {}), 'store-status');
  }

  async enrol(request: GuidedEnrolRequest, interaction: EnrolmentInteraction): Promise<EnrolmentOutcome> {
    let listed: readonly CandidateView[] = [];
    const answer = async (prompt: Prompt): Promise<AnswerValue> => {
      switch (prompt.kind) {
        case 'choose':
          return (await interaction.choose(listed)) ?? null;
        case 'approve': {
          const candidate = listed.find((c) => c.number === prompt.number);
          if (!candidate) throw unexpected('pair');
          return interaction.approve(candidate, { picked: prompt.picked });
        }
        case 'passkey':
          return interaction.passkey();
        case 'confirm':
          return interaction.confirm(prompt.passkey);
      }
    };
    const result = await this.client.call(
      'pair',
      {
        seconds: request.seconds,
        ...(request.pick === undefined ? {} : { pick: request.pick }),
        ...(request.label === undefined ? {} : { label: request.label }),
        ...(request.forceBond ? { forceBond: true } : {}),
      },
      {
        onPrompt: answer,
        onEvent: (event) => {
          if (event.kind === 'display' && typeof event.passkey === 'number') {
            interaction.display(event.passkey);
            return;
          }
          if (event.kind === 'candidates' && Array.isArray(event.candidates)) {
            listed = event.candidates as CandidateView[];
          }
          interaction.notify(event as unknown as EnrolmentEvent);
        },
      },
    );
    return this.object(result, 'pair');
  }

  private object<T>(result: unknown, method: string): T {
    if (typeof result !== 'object' || result === null || Array.isArray(result)) throw unexpected(method);
    return result as T;
  }
}

function unexpected(method: string): ControlError {
  return new ControlError(
    'CONTROL_BAD_MESSAGE',
    `the hub's answer to ${method} is not what this version expects`,
  );
}
