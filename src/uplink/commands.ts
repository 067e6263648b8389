import type { JsonValue } from '../model/observation.js';
import type { Clock } from '../util/clock.js';
import {
  type Command,
  type CommandResult,
  type ConfigValue,
  type ReplayCache,
  refusalResult,
  verifyCommand,
  WireError,
} from '../wire/index.js';
import type { CommandSigners } from './command-signers.js';

/**
 * Downlink commands on the gateway: a short closed list (ping, resync a device's stored records, set
 * whitelisted configuration keys), accepted only when signed by a clinic command-signing certificate
 * (command-signers.ts), fresh, addressed to this gateway and not replayed (src/wire/commands.ts does those
 * checks). Every command, accepted or refused, is reported through `onEvent` for the audit log. A refusal whose
 * signature verified gets a signed error reply (the clinic learns why), except a replay or an expired command
 * (refusalResult: it may be a redelivery of a command already answered, and the first answer stands); an
 * unsigned or forged one gets no reply at all, so the gateway cannot be used to reflect traffic.
 */
export interface CommandActions {
  /** Schedules a full stored-record download from the device at its next connection. */
  readonly resync?: (deviceId: string) => Promise<void>;
  /** Applies whitelisted configuration changes. */
  readonly config?: (set: { readonly [key: string]: ConfigValue }) => Promise<void>;
}

export type CommandEvent =
  | {
      readonly type: 'command.accepted';
      readonly id: string;
      readonly cmd: Command['cmd'];
      readonly ok: boolean;
    }
  | {
      readonly type: 'command.refused';
      readonly code: string;
      /** The refusal's message: field paths, certificate serials, config keys; never a payload value. */
      readonly reason: string;
      readonly id?: string;
    };

export interface CommandHandlerOptions {
  readonly gatewayId: string;
  readonly clock: Clock;
  /** The clinic CA and command-signing certificates: who may command this gateway. */
  readonly signers: CommandSigners;
  readonly replayCache: ReplayCache;
  readonly allowedConfigKeys: ReadonlySet<string>;
  /** Commands issued before this (epoch ms) are refused: see VerifyCommandOptions.notBefore. */
  readonly notBefore: number;
  readonly actions: CommandActions;
  /** Signs a result for the cmd/res topic (src/wire signCommandResult with the gateway key). */
  readonly sign: (result: CommandResult) => Uint8Array;
  readonly onEvent?: (event: CommandEvent) => void;
}

export function commandHandler(
  options: CommandHandlerOptions,
): (payload: Uint8Array, reply: (result: Uint8Array) => Promise<void>) => void {
  return (payload, reply) => {
    void handle(options, payload, reply).catch(() => {
      // a reply that could not be published (connection lost) is not retried: the clinic re-issues
    });
  };
}

async function handle(
  options: CommandHandlerOptions,
  payload: Uint8Array,
  reply: (result: Uint8Array) => Promise<void>,
): Promise<void> {
  const now = options.clock.now();
  let command: Command;
  try {
    command = verifyCommand(payload, {
      gatewayId: options.gatewayId,
      now,
      resolveClinicKey: options.signers.resolverAt(now),
      replayCache: options.replayCache,
      allowedConfigKeys: options.allowedConfigKeys,
      notBefore: options.notBefore,
    });
  } catch (error) {
    if (!(error instanceof WireError)) throw error;
    options.onEvent?.({
      type: 'command.refused',
      code: error.code,
      reason: error.message,
      ...(error.commandId ? { id: error.commandId } : {}),
    });
    const refusal = refusalResult(error, options.gatewayId, now);
    if (refusal !== undefined) await reply(options.sign(refusal));
    return;
  }
  const outcome = await execute(command, options.actions);
  options.onEvent?.({ type: 'command.accepted', id: command.id, cmd: command.cmd, ok: outcome.ok });
  await reply(
    options.sign({ gatewayId: options.gatewayId, id: command.id, sentAt: options.clock.now(), ...outcome }),
  );
}

type Outcome =
  | { readonly ok: true; readonly result: { readonly [key: string]: JsonValue } }
  | { readonly ok: false; readonly error: { readonly code: string; readonly message: string } };

async function execute(command: Command, actions: CommandActions): Promise<Outcome> {
  try {
    switch (command.cmd) {
      case 'ping':
        return { ok: true, result: { pong: true } };
      case 'resync':
        if (!actions.resync)
          return unavailable('resync needs the Bluetooth session layer, which is not running');
        await actions.resync(command.args.device);
        return { ok: true, result: { scheduled: true } };
      case 'config':
        if (!actions.config) return unavailable('configuration changes are not enabled on this gateway');
        await actions.config(command.args.set);
        return { ok: true, result: { applied: Object.keys(command.args.set) } };
    }
  } catch (error) {
    const code = (error as { code?: unknown })?.code;
    return {
      ok: false,
      error: {
        code: typeof code === 'string' ? code : 'CMD_FAILED',
        message: (error as Error)?.message ?? 'failed',
      },
    };
  }
}

function unavailable(message: string): Outcome {
  return { ok: false, error: { code: 'CMD_NOT_AVAILABLE', message } };
}
