import type { MqttClient } from 'mqtt';
import type { Scheduler, TimerHandle } from '../../util/scheduler.js';
import {
  type CommandResult,
  decodeCommandResult,
  type KeyResolver,
  parseTopic,
  topicFor,
  verifyEnvelope,
} from '../../wire/index.js';
import { AlarmError } from './errors.js';
import { type CommandSigner, limitsCommand } from './hub-limits.js';
import type { AlarmLimit } from './model.js';

export interface LimitsPublisherOptions {
  /** A connected client with the clinic's identity (the broker lets it write `rpm/v1/+/cmd`, read `.../cmd/res`). */
  readonly client: MqttClient;
  readonly signer: CommandSigner;
  /** The gateways' signing keys by kid (the clinic's gateway directory): results are verified like any message. */
  readonly resolveGatewayKey: KeyResolver;
  readonly scheduler: Scheduler;
  /** The command's lifetime (default 60 s, at most 5 min). */
  readonly ttlMs?: number;
  /** How long past the lifetime to wait for the answer (default 15 s). */
  readonly marginMs?: number;
}

interface Pending {
  readonly gatewayId: string;
  readonly resolve: (result: CommandResult) => void;
  readonly reject: (error: AlarmError) => void;
  readonly timer: TimerHandle;
}

/**
 * Sends a patient's limits to their hub and waits for its signed answer (docs/wire-format.md 9.1 and 9.5):
 * publish the signed `config` command on `rpm/v1/<gw>/cmd` (QoS 1, not retained), match the result on
 * `rpm/v1/<gw>/cmd/res` by command id after verifying its signature and gateway. No answer within the command's
 * lifetime plus a margin is ALARM_HUB_NO_ANSWER (the hub is offline, or refused it unanswered: a replay, an
 * expired command, or one issued in the first minute after the hub restarted, 9.4); the caller sends again later,
 * which builds a new command with a new id (a command is never published twice). A refusal is ALARM_HUB_REFUSED.
 *
 * A message on a result topic that does not verify, or answers no command of ours, is ignored.
 */
export class LimitsPublisher {
  readonly #options: LimitsPublisherOptions;
  readonly #pending = new Map<string, Pending>();
  readonly #subscribed = new Set<string>();

  constructor(options: LimitsPublisherOptions) {
    this.#options = options;
    options.client.on('message', this.#onMessage);
  }

  /** Resolves with the keys the hub applied. */
  async send(
    gatewayId: string,
    limits: readonly AlarmLimit[],
    previous?: readonly AlarmLimit[],
  ): Promise<string[]> {
    const { client, scheduler } = this.#options;
    const ttlMs = this.#options.ttlMs ?? 60_000;
    const built = limitsCommand({
      gatewayId,
      limits,
      ...(previous === undefined ? {} : { previous }),
      now: scheduler.now(),
      ttlMs,
      signer: this.#options.signer,
    });
    const resultTopic = topicFor(gatewayId, 'cmd/res');
    if (!this.#subscribed.has(resultTopic)) {
      await client.subscribeAsync(resultTopic, { qos: 1 });
      this.#subscribed.add(resultTopic);
    }
    const answered = new Promise<CommandResult>((resolve, reject) => {
      const timer = scheduler.setTimeout(
        () => {
          this.#pending.delete(built.command.id);
          reject(
            new AlarmError(
              'ALARM_HUB_NO_ANSWER',
              `hub ${gatewayId} did not answer the limits command ${built.command.id}; send the limits again later`,
            ),
          );
        },
        ttlMs + (this.#options.marginMs ?? 15_000),
      );
      this.#pending.set(built.command.id, { gatewayId, resolve, reject, timer });
    });
    // The answer may time out while the publish is still in flight: handled here, awaited below.
    answered.catch(() => undefined);
    try {
      await client.publishAsync(built.topic, Buffer.from(built.payload), { qos: 1, retain: false });
    } catch (error) {
      this.#settle(built.command.id);
      throw new AlarmError(
        'ALARM_HUB_NO_ANSWER',
        `the limits command for hub ${gatewayId} was not published`,
        {
          cause: error,
        },
      );
    }
    const result = await answered;
    if (!result.ok) {
      throw new AlarmError(
        'ALARM_HUB_REFUSED',
        `hub ${gatewayId} refused the limits: ${result.error?.code}: ${result.error?.message}`,
      );
    }
    const applied = result.result?.applied;
    return Array.isArray(applied) ? applied.filter((k): k is string => typeof k === 'string') : [];
  }

  /** Stops listening; commands still waiting are told ALARM_HUB_NO_ANSWER. */
  close(): void {
    this.#options.client.off('message', this.#onMessage);
    for (const id of [...this.#pending.keys()]) {
      this.#settle(id)?.reject(new AlarmError('ALARM_HUB_NO_ANSWER', 'the limits publisher was closed'));
    }
  }

  readonly #onMessage = (topic: string, payload: Buffer) => {
    let gatewayId: string;
    try {
      const parsed = parseTopic(topic);
      if (parsed.kind !== 'cmd/res') return;
      gatewayId = parsed.gatewayId;
    } catch {
      return;
    }
    let result: CommandResult;
    try {
      const { payload: body } = verifyEnvelope(new Uint8Array(payload), this.#options.resolveGatewayKey);
      result = decodeCommandResult(body, { gatewayId });
    } catch {
      return; // not verifiable: not an answer anybody may act on
    }
    const pending = this.#pending.get(result.id);
    if (pending === undefined || pending.gatewayId !== gatewayId) return;
    this.#settle(result.id)?.resolve(result);
  };

  #settle(id: string): Pending | undefined {
    const pending = this.#pending.get(id);
    if (pending === undefined) return undefined;
    this.#pending.delete(id);
    this.#options.scheduler.clearTimeout(pending.timer);
    return pending;
  }
}
