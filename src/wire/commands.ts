import { type KeyObject, randomBytes } from 'node:crypto';
import type { JsonValue } from '../model/observation.js';
import { type CborInput, type CborValue, encodeCbor } from './cbor.js';
import { type KeyResolver, MAX_COMMAND_BYTES, signEnvelope, verifyEnvelope } from './cose.js';
import { WireError } from './errors.js';
import {
  checkJson,
  decodePayload,
  type Fields,
  GATEWAY_ID,
  invalid,
  toJson,
  WIRE_VERSION,
} from './fields.js';

/**
 * Downlink commands (docs/wire-format.md, "Commands"): the clinic signs a command with its command-signing
 * certificate key and publishes it on `rpm/v1/<gw>/cmd`; the gateway verifies signature, target, freshness and
 * uniqueness before it looks at the command, and answers on `rpm/v1/<gw>/cmd/res` with a result it signs.
 *
 * Freshness instead of sequence numbers: the clinic may run several senders and the gateway may restart, so a
 * command carries its own short validity window (at most 5 minutes) and a random id; the gateway remembers ids
 * until their window has closed, which makes every replay within the window a WIRE_CMD_REPLAYED and every
 * replay after it a WIRE_CMD_EXPIRED. Neither gets a result (refusalResult): a QoS 1 redelivery of a command
 * already answered is indistinguishable from a replay.
 */

/** A command may live at most this long (exp - iat). */
export const MAX_COMMAND_LIFETIME_MS = 5 * 60_000;
/** Clock difference tolerated between clinic and gateway, both ways. */
export const CLOCK_SKEW_MS = 60_000;

export const COMMAND_NAMES = ['ping', 'resync', 'config'] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

/** A configuration value a `config` command may set: scalars only. */
export type ConfigValue = string | number | boolean;

export type CommandBody =
  | { readonly cmd: 'ping'; readonly args: { readonly [key: string]: never } }
  /** Re-fetch a device's stored records (RACP "report all") at its next connection. */
  | { readonly cmd: 'resync'; readonly args: { readonly device: string } }
  /** Set configuration keys; each key must be in the gateway's whitelist. */
  | { readonly cmd: 'config'; readonly args: { readonly set: { readonly [key: string]: ConfigValue } } };

export type Command = CommandBody & {
  /** The target gateway. */
  readonly gatewayId: string;
  /** 16 random bytes as 32 lowercase hex digits. */
  readonly id: string;
  /** Issued-at and expiry, epoch ms (clinic clock). */
  readonly issuedAt: number;
  readonly expiresAt: number;
};

const COMMAND_ID = /^[0-9a-f]{32}$/;
const CONFIG_KEY = /^[A-Za-z0-9_.-]{1,128}$/;

export function newCommandId(): string {
  return randomBytes(16).toString('hex');
}

/** Builds a command for `gatewayId` valid from `now` for `ttlMs` (default 60 s, at most 5 min). */
export function newCommand(
  body: CommandBody,
  options: {
    readonly gatewayId: string;
    readonly now: number;
    readonly ttlMs?: number;
    readonly id?: string;
  },
): Command {
  return {
    ...body,
    gatewayId: options.gatewayId,
    id: options.id ?? newCommandId(),
    issuedAt: options.now,
    expiresAt: options.now + (options.ttlMs ?? 60_000),
  };
}

// ---------------------------------------------------------------------------------------------- clinic side

/** The command payload (unsigned CBOR), checked as the gateway will check it (except time and replay). */
export function encodeCommandPayload(command: Command): Uint8Array {
  if (command.cmd === 'config') checkJson(command.args.set, 'command.args.set');
  const bytes = encodeCbor({
    v: WIRE_VERSION,
    gw: command.gatewayId,
    id: command.id,
    iat: command.issuedAt,
    exp: command.expiresAt,
    cmd: command.cmd,
    args: command.args as CborInput,
  });
  decodeCommandPayload(bytes);
  return bytes;
}

/** Clinic side: the signed command envelope, ready to publish on `rpm/v1/<gw>/cmd` (QoS 1, not retained). */
export function encodeCommand(command: Command, key: KeyObject, kid: Uint8Array): Uint8Array {
  return signEnvelope(encodeCommandPayload(command), key, kid);
}

/**
 * Reads a command payload: structure, field types, lifetime and arguments. Checks that need the gateway's
 * context (target, clock, replay cache, config whitelist) are verifyCommand's.
 */
export function decodeCommandPayload(payload: Uint8Array, allowedConfigKeys?: ReadonlySet<string>): Command {
  const f = decodePayload(payload, 'command');
  const header = readHeader(f);
  const body = readBody(f, header.id, allowedConfigKeys);
  return { ...body, ...header };
}

interface CommandHeader {
  readonly gatewayId: string;
  readonly id: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
}

function readHeader(f: Fields): CommandHeader {
  const id = f.text('id', { pattern: COMMAND_ID, describe: '32 lowercase hex digits' });
  try {
    const gatewayId = f.text('gw', { pattern: GATEWAY_ID, describe: 'a gateway id' });
    const issuedAt = f.uint('iat', 'epoch milliseconds (uint)');
    const expiresAt = f.uint('exp', 'epoch milliseconds (uint)');
    if (expiresAt < issuedAt || expiresAt - issuedAt > MAX_COMMAND_LIFETIME_MS) {
      invalid('command.exp', 'an expiry between iat and iat + 5 minutes');
    }
    return { gatewayId, id, issuedAt, expiresAt };
  } catch (error) {
    // Once the id is known the gateway can address its refusal to it.
    if (error instanceof WireError) throw new WireError(error.code, error.message, { commandId: id });
    throw error;
  }
}

function readBody(f: Fields, commandId: string, allowedConfigKeys?: ReadonlySet<string>): CommandBody {
  const name = f.text('cmd', { min: 1, max: 64, describe: 'a command name' });
  if (!(COMMAND_NAMES as readonly string[]).includes(name)) {
    throw new WireError('WIRE_CMD_UNKNOWN', `unknown command (known: ${COMMAND_NAMES.join(', ')})`, {
      commandId,
    });
  }
  const args = f.get('args');
  if (!(args instanceof Map)) badArgs(commandId, 'args must be a map');
  // Arguments are closed per command: an argument this gateway does not know could change what the clinic
  // meant, so it is refused rather than ignored (unlike unknown payload fields).
  const keys = [...args.keys()];
  switch (name as CommandName) {
    case 'ping':
      if (keys.length > 0) badArgs(commandId, 'ping takes no arguments');
      return { cmd: 'ping', args: {} };
    case 'resync': {
      if (keys.length !== 1 || !args.has('device')) badArgs(commandId, 'resync takes exactly { device }');
      const device = args.get('device');
      if (typeof device !== 'string' || device.length < 1 || device.length > 128) {
        badArgs(commandId, 'resync.device must be a device id (1-128 characters)');
      }
      return { cmd: 'resync', args: { device } };
    }
    case 'config': {
      if (keys.length !== 1 || !args.has('set')) badArgs(commandId, 'config takes exactly { set }');
      return { cmd: 'config', args: { set: readConfigSet(args.get('set'), commandId, allowedConfigKeys) } };
    }
  }
}

function readConfigSet(
  value: CborValue,
  commandId: string,
  allowedConfigKeys: ReadonlySet<string> | undefined,
): { readonly [key: string]: ConfigValue } {
  if (!(value instanceof Map) || value.size === 0) badArgs(commandId, 'config.set must be a non-empty map');
  const entries: [string, ConfigValue][] = [];
  for (const [key, item] of value) {
    if (typeof key !== 'string' || !CONFIG_KEY.test(key))
      badArgs(commandId, 'config.set keys must be key names');
    if (allowedConfigKeys !== undefined && !allowedConfigKeys.has(key)) {
      badArgs(commandId, `config key "${key}" may not be set remotely`);
    }
    const isScalar =
      typeof item === 'string' ||
      typeof item === 'boolean' ||
      (typeof item === 'number' && Number.isFinite(item));
    if (!isScalar) badArgs(commandId, `config key "${key}" needs a text, number or boolean value`);
    entries.push([key, item]);
  }
  return Object.fromEntries(entries);
}

function badArgs(commandId: string, message: string): never {
  throw new WireError('WIRE_CMD_BAD_ARGS', message, { commandId });
}

// ---------------------------------------------------------------------------------------------- gateway side

/** Command ids already accepted, until their window has closed. */
export interface ReplayCache {
  has(id: string): boolean;
  /** Remember `id` until `expiresAt` (epoch ms); after that a replay is refused as expired anyway. */
  add(id: string, expiresAt: number): void;
}

/**
 * The in-memory replay cache: forgets an id once its window has closed, so it holds at most the commands of
 * the last ~7 minutes. It does not survive a restart; verifyCommand's `notBefore` closes that hole.
 */
export class MemoryReplayCache implements ReplayCache {
  private readonly entries = new Map<string, number>();

  /**
   * `clock` is anything with `now()` in epoch ms (src/util/clock.ts's Clock, a VirtualScheduler); declared
   * here by shape so the wire format depends on src/model alone.
   */
  constructor(private readonly clock: { now(): number } = { now: () => Date.now() }) {}

  has(id: string): boolean {
    const expiresAt = this.entries.get(id);
    if (expiresAt === undefined) return false;
    if (expiresAt < this.clock.now()) {
      this.entries.delete(id);
      return false;
    }
    return true;
  }

  add(id: string, expiresAt: number): void {
    const now = this.clock.now();
    for (const [known, until] of this.entries) if (until < now) this.entries.delete(known);
    this.entries.set(id, expiresAt);
  }

  get size(): number {
    return this.entries.size;
  }
}

export interface VerifyCommandOptions {
  /** This gateway's id: a command for another gateway is WIRE_CMD_WRONG_TARGET. */
  readonly gatewayId: string;
  /** The gateway clock, epoch ms. */
  readonly now: number;
  /**
   * Keys of the clinic's command-signing certificates by kid (SHA-256 of the certificate DER). It must apply
   * docs/wire-format.md section 4 (issued by the clinic CA, clinic role, valid now) and throw a WireError when a
   * known certificate fails: the gateway uses src/uplink/command-signers.ts.
   */
  readonly resolveClinicKey: KeyResolver;
  readonly replayCache: ReplayCache;
  /** Config keys a `config` command may set; any other key is WIRE_CMD_BAD_ARGS. */
  readonly allowedConfigKeys: ReadonlySet<string>;
  /**
   * Commands issued before this time (epoch ms) are refused as expired. With an in-memory replay cache, set
   * it to the process start time plus CLOCK_SKEW_MS: a command accepted before a restart is then never accepted
   * again after it, whatever the two clocks say.
   */
  readonly notBefore?: number;
  /** Envelope limit; default MAX_COMMAND_BYTES (16 KiB). */
  readonly maxBytes?: number;
}

/**
 * Verifies a command envelope and returns the command, or throws WireError. Order of checks: size, envelope
 * and signature (verifyEnvelope), version, fields, target, validity window, replay, command name, arguments.
 * An id that passed the replay check is remembered even if its name or arguments are refused, so a replayed
 * bad command is refused as a replay and gets no second answer.
 */
export function verifyCommand(bytes: Uint8Array, options: VerifyCommandOptions): Command {
  const { payload } = verifyEnvelope(bytes, options.resolveClinicKey, {
    maxBytes: options.maxBytes ?? MAX_COMMAND_BYTES,
  });
  const f = decodePayload(payload, 'command');
  const header = readHeader(f);
  const commandId = header.id;
  if (header.gatewayId !== options.gatewayId) {
    throw new WireError('WIRE_CMD_WRONG_TARGET', 'the command is addressed to another gateway', {
      commandId,
    });
  }
  if (options.now > header.expiresAt + CLOCK_SKEW_MS) {
    throw new WireError('WIRE_CMD_EXPIRED', 'the command has expired', { commandId });
  }
  if (header.issuedAt > options.now + CLOCK_SKEW_MS) {
    throw new WireError('WIRE_CMD_EXPIRED', 'the command is not valid yet (issued in the future)', {
      commandId,
    });
  }
  if (options.notBefore !== undefined && header.issuedAt < options.notBefore) {
    throw new WireError('WIRE_CMD_EXPIRED', 'the command was issued before this gateway started', {
      commandId,
    });
  }
  if (options.replayCache.has(commandId)) {
    throw new WireError('WIRE_CMD_REPLAYED', 'this command id was seen before', { commandId });
  }
  options.replayCache.add(commandId, header.expiresAt + CLOCK_SKEW_MS);
  const body = readBody(f, commandId, options.allowedConfigKeys);
  return { ...body, ...header };
}

// ---------------------------------------------------------------------------------------------- results

export interface CommandResult {
  readonly gatewayId: string;
  /** The id of the command this answers. */
  readonly id: string;
  /** Epoch ms, gateway clock. */
  readonly sentAt: number;
  readonly ok: boolean;
  /** Present exactly when ok is false: a stable code (docs/errors.md) and a message without PHI. */
  readonly error?: { readonly code: string; readonly message: string };
  readonly result?: { readonly [key: string]: JsonValue };
}

export function encodeCommandResult(result: CommandResult): Uint8Array {
  if (result.result !== undefined) checkJson(result.result, 'result.result');
  const bytes = encodeCbor({
    v: WIRE_VERSION,
    gw: result.gatewayId,
    id: result.id,
    sent: result.sentAt,
    ok: result.ok,
    error:
      result.error === undefined ? undefined : { code: result.error.code, message: result.error.message },
    result: result.result as CborInput | undefined,
  });
  decodeCommandResult(bytes);
  return bytes;
}

/** Gateway side: the signed result envelope for `rpm/v1/<gw>/cmd/res`. */
export function signCommandResult(result: CommandResult, key: KeyObject, kid: Uint8Array): Uint8Array {
  return signEnvelope(encodeCommandResult(result), key, kid);
}

/**
 * Refusals that are never answered, though the command was authenticated (docs/wire-format.md section 9.5).
 * Each depends on what the gateway remembers or on its clock, so the same envelope may have been accepted and
 * answered before: a QoS 1 redelivery after a reconnect or a restart (MQTT 3.1.1 section 4.3.2 lets the broker
 * send a message again until the gateway's PUBACK arrived), or a replay. Answering it would send the clinic a
 * second, contradictory result for one id; the first answer stands. The refusals that are answered (a field,
 * the target, the command name, the arguments) depend only on the signed bytes, so a redelivery of such a
 * command would get the same answer again.
 */
const UNANSWERED: ReadonlySet<string> = new Set(['WIRE_CMD_REPLAYED', 'WIRE_CMD_EXPIRED']);

/**
 * The result to publish for a refused command, or undefined when none may be sent: the command was not
 * authenticated or has no readable id (WireError.commandId is unset), or the refusal is one of UNANSWERED.
 */
export function refusalResult(
  error: WireError,
  gatewayId: string,
  sentAt: number,
): CommandResult | undefined {
  if (error.commandId === undefined || UNANSWERED.has(error.code)) return undefined;
  return {
    gatewayId,
    id: error.commandId,
    sentAt,
    ok: false,
    error: { code: error.code, message: error.message },
  };
}

export function decodeCommandResult(
  payload: Uint8Array,
  expect: { readonly gatewayId?: string } = {},
): CommandResult {
  const f = decodePayload(payload, 'result');
  const gatewayId = f.text('gw', { pattern: GATEWAY_ID, describe: 'a gateway id' });
  if (expect.gatewayId !== undefined && gatewayId !== expect.gatewayId) {
    throw new WireError('WIRE_GATEWAY_MISMATCH', 'result.gw is not the gateway the topic and signer name');
  }
  const id = f.text('id', { pattern: COMMAND_ID, describe: '32 lowercase hex digits' });
  const sentAt = f.uint('sent', 'epoch milliseconds (uint)');
  const ok = f.bool('ok');
  let error: CommandResult['error'];
  if (f.has('error')) {
    const e = f.fields('error');
    error = { code: e.text('code', { min: 1, max: 64 }), message: e.text('message', { max: 1024 }) };
  }
  if (ok === (error !== undefined)) invalid('result.error', 'an error exactly when ok is false');
  let result: CommandResult['result'];
  if (f.has('result')) {
    const raw = f.get('result');
    if (!(raw instanceof Map)) invalid('result.result', 'a map');
    result = toJson(raw, 'result.result') as { readonly [key: string]: JsonValue };
  }
  const base = { gatewayId, id, sentAt, ok };
  if (error !== undefined && result !== undefined) return { ...base, error, result };
  if (error !== undefined) return { ...base, error };
  if (result !== undefined) return { ...base, result };
  return base;
}
