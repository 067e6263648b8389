import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/util/clock.js';
import { type CborInput, encodeCbor } from '../../src/wire/cbor.js';
import {
  CLOCK_SKEW_MS,
  type Command,
  type CommandBody,
  decodeCommandPayload,
  decodeCommandResult,
  encodeCommand,
  encodeCommandResult,
  MAX_COMMAND_LIFETIME_MS,
  MemoryReplayCache,
  newCommand,
  newCommandId,
  refusalResult,
  signCommandResult,
  type VerifyCommandOptions,
  verifyCommand,
} from '../../src/wire/commands.js';
import { signEnvelope, verifyEnvelope } from '../../src/wire/cose.js';
import { expectWireError, newSigner, resolverFor } from './support.js';

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const GATEWAY = 'gw-test-01';
const clinic = newSigner('clinic command signer');
const gateway = newSigner('gateway');
const ALLOWED = new Set(['log.level', 'uplink.backlogBatchBytes']);

function options(overrides: Partial<VerifyCommandOptions> = {}): VerifyCommandOptions {
  return {
    gatewayId: GATEWAY,
    now: NOW,
    resolveClinicKey: resolverFor(clinic),
    replayCache: new MemoryReplayCache(new ManualClock(NOW)),
    allowedConfigKeys: ALLOWED,
    ...overrides,
  };
}

function command(body: CommandBody, overrides: Partial<Command> = {}): Command {
  return { ...newCommand(body, { gatewayId: GATEWAY, now: NOW }), ...overrides } as Command;
}

function sealed(cmd: Command, signer = clinic): Uint8Array {
  return encodeCommand(cmd, signer.privateKey, signer.kid);
}

/** A signed command payload written field by field, for commands the clinic-side encoder would refuse. */
function raw(fields: Record<string, CborInput>, signer = clinic): Uint8Array {
  const payload = encodeCbor({
    v: 1,
    gw: GATEWAY,
    id: newCommandId(),
    iat: NOW,
    exp: NOW + 60_000,
    cmd: 'ping',
    args: {},
    ...fields,
  });
  return signEnvelope(payload, signer.privateKey, signer.kid);
}

const PING: CommandBody = { cmd: 'ping', args: {} };

describe('commands that verify', () => {
  it.each<[string, CommandBody]>([
    ['ping', PING],
    ['resync', { cmd: 'resync', args: { device: 'dev-ox-1' } }],
    ['config', { cmd: 'config', args: { set: { 'log.level': 'debug', 'uplink.backlogBatchBytes': 65536 } } }],
    ['config with a boolean', { cmd: 'config', args: { set: { 'log.level': true } } }],
  ])('%s round-trips from the clinic encoder to the gateway', (_name, body) => {
    const cmd = command(body);
    expect(verifyCommand(sealed(cmd), options())).toEqual(cmd);
  });

  it('makes 16-byte random ids and a default lifetime of 60 s', () => {
    const cmd = newCommand(PING, { gatewayId: GATEWAY, now: NOW });
    expect(cmd.id).toMatch(/^[0-9a-f]{32}$/);
    expect(newCommandId()).not.toBe(cmd.id);
    expect(cmd.expiresAt - cmd.issuedAt).toBe(60_000);
  });

  it('accepts the edges of the validity window (60 s of skew either way)', () => {
    const cmd = command(PING);
    expect(verifyCommand(sealed(cmd), options({ now: cmd.expiresAt + CLOCK_SKEW_MS })).id).toBe(cmd.id);
    const early = command(PING, { id: newCommandId() });
    expect(verifyCommand(sealed(early), options({ now: NOW - CLOCK_SKEW_MS })).id).toBe(early.id);
  });

  it('accepts unknown top-level payload keys (forward compatibility)', () => {
    expect(verifyCommand(raw({ priority: 'high' }), options()).cmd).toBe('ping');
  });
});

describe('commands that are refused', () => {
  it('expired: now is past exp + 60 s', () => {
    const cmd = command(PING);
    const error = expectWireError(
      () => verifyCommand(sealed(cmd), options({ now: cmd.expiresAt + CLOCK_SKEW_MS + 1 })),
      'WIRE_CMD_EXPIRED',
    );
    expect(error.commandId).toBe(cmd.id);
  });

  it('not yet valid: issued more than 60 s in the future', () => {
    const cmd = command(PING, { issuedAt: NOW + CLOCK_SKEW_MS + 1, expiresAt: NOW + CLOCK_SKEW_MS + 60_000 });
    expectWireError(() => verifyCommand(sealed(cmd), options()), 'WIRE_CMD_EXPIRED');
  });

  it('issued before the replay horizon (a restart with an in-memory replay cache)', () => {
    const cmd = command(PING);
    expectWireError(() => verifyCommand(sealed(cmd), options({ notBefore: NOW + 1 })), 'WIRE_CMD_EXPIRED');
    expect(verifyCommand(sealed(cmd), options({ notBefore: NOW })).id).toBe(cmd.id);
  });

  it('replayed: the same envelope twice, and the same id in a new envelope', () => {
    const cache = new MemoryReplayCache(new ManualClock(NOW));
    const cmd = command(PING);
    verifyCommand(sealed(cmd), options({ replayCache: cache }));
    expectWireError(() => verifyCommand(sealed(cmd), options({ replayCache: cache })), 'WIRE_CMD_REPLAYED');
    const sameId = command({ cmd: 'resync', args: { device: 'd' } }, { id: cmd.id });
    expectWireError(
      () => verifyCommand(sealed(sameId), options({ replayCache: cache })),
      'WIRE_CMD_REPLAYED',
    );
  });

  it('wrong target gateway', () => {
    const cmd = command(PING, { gatewayId: 'gw-test-02' });
    const error = expectWireError(() => verifyCommand(sealed(cmd), options()), 'WIRE_CMD_WRONG_TARGET');
    expect(error.commandId).toBe(cmd.id);
  });

  it('unknown command', () => {
    expectWireError(() => verifyCommand(raw({ cmd: 'reboot' }), options()), 'WIRE_CMD_UNKNOWN');
    expectWireError(() => verifyCommand(raw({ cmd: 'PING' }), options()), 'WIRE_CMD_UNKNOWN');
  });

  it.each<[string, Record<string, CborInput>]>([
    ['ping with arguments', { args: { now: true } }],
    ['args missing', { args: undefined as unknown as CborInput }],
    ['args not a map', { args: [] }],
    ['resync without device', { cmd: 'resync', args: {} }],
    ['resync with an empty device', { cmd: 'resync', args: { device: '' } }],
    ['resync with a numeric device', { cmd: 'resync', args: { device: 7 } }],
    ['resync with an extra argument', { cmd: 'resync', args: { device: 'd', since: 0 } }],
    ['config without set', { cmd: 'config', args: {} }],
    ['config with an empty set', { cmd: 'config', args: { set: {} } }],
    ['config with set not a map', { cmd: 'config', args: { set: ['log.level', 'debug'] } }],
    ['config with a map value', { cmd: 'config', args: { set: { 'log.level': { level: 'debug' } } } }],
    ['config with a null value', { cmd: 'config', args: { set: { 'log.level': null } } }],
    ['config with a byte-string value', { cmd: 'config', args: { set: { 'log.level': Uint8Array.of(1) } } }],
    ['config key not in the whitelist', { cmd: 'config', args: { set: { 'tls.verify': false } } }],
    [
      'config with one allowed and one forbidden key',
      { cmd: 'config', args: { set: { 'log.level': 'info', 'store.key': 'x' } } },
    ],
    ['config with an integer key', { cmd: 'config', args: { set: new Map([[1, 'x']]) } }],
  ])('bad args: %s', (_name, fields) => {
    const error = expectWireError(() => verifyCommand(raw(fields), options()), 'WIRE_CMD_BAD_ARGS');
    expect(error.commandId).toMatch(/^[0-9a-f]{32}$/);
  });

  it('a config key outside the whitelist is named in the refusal', () => {
    const cmd = command({ cmd: 'config', args: { set: { 'tls.verify': false } } });
    const error = expectWireError(() => verifyCommand(sealed(cmd), options()), 'WIRE_CMD_BAD_ARGS');
    expect(error.message).toContain('tls.verify');
    // the same command with the key whitelisted passes
    expect(
      verifyCommand(
        sealed({ ...cmd, id: newCommandId() }),
        options({ allowedConfigKeys: new Set(['tls.verify']) }),
      ).cmd,
    ).toBe('config');
  });

  it.each<[string, Record<string, CborInput>]>([
    ['a lifetime over 5 minutes', { exp: NOW + MAX_COMMAND_LIFETIME_MS + 1 }],
    ['exp before iat', { exp: NOW - 1 }],
    ['iat as a float', { iat: NOW + 0.5 }],
    ['id not 32 hex digits', { id: 'abc' }],
    ['id uppercase', { id: 'ABCDEF0123456789ABCDEF0123456789' }],
    ['gw malformed', { gw: 'Gateway 1' }],
  ])('invalid field: %s', (_name, fields) => {
    expectWireError(() => verifyCommand(raw(fields), options()), 'WIRE_INVALID_FIELD');
  });

  it('an unknown version', () => {
    expectWireError(() => verifyCommand(raw({ v: 2 }), options()), 'WIRE_UNSUPPORTED_VERSION');
  });

  it('signed by a key that is not a clinic command key (e.g. a gateway key)', () => {
    expectWireError(() => verifyCommand(sealed(command(PING), gateway), options()), 'WIRE_UNKNOWN_KID');
  });

  it('a bad signature (payload changed after signing)', () => {
    const bytes = sealed(command({ cmd: 'resync', args: { device: 'dev-a' } }));
    const tampered = Buffer.from(bytes);
    const at = tampered.indexOf(Buffer.from('dev-a'));
    tampered[at + 4] = 'b'.charCodeAt(0);
    expectWireError(() => verifyCommand(tampered, options()), 'WIRE_BAD_SIGNATURE');
  });

  it('an envelope over 16 KiB, before parsing', () => {
    expectWireError(() => verifyCommand(new Uint8Array(16 * 1024 + 1), options()), 'WIRE_TOO_LARGE');
  });

  it('a refused-but-authentic command is remembered: its replay is a replay, and gets no second answer', () => {
    const cache = new MemoryReplayCache(new ManualClock(NOW));
    const bytes = raw({ cmd: 'reboot' });
    const first = expectWireError(
      () => verifyCommand(bytes, options({ replayCache: cache })),
      'WIRE_CMD_UNKNOWN',
    );
    expect(refusalResult(first, GATEWAY, NOW)?.error?.code).toBe('WIRE_CMD_UNKNOWN');
    const second = expectWireError(
      () => verifyCommand(bytes, options({ replayCache: cache })),
      'WIRE_CMD_REPLAYED',
    );
    expect(refusalResult(second, GATEWAY, NOW)).toBeUndefined();
  });

  it('the clinic-side encoder refuses what the gateway would refuse', () => {
    expectWireError(
      () => sealed(command(PING, { expiresAt: NOW + MAX_COMMAND_LIFETIME_MS + 1 })),
      'WIRE_INVALID_FIELD',
    );
    expectWireError(() => sealed(command({ cmd: 'resync', args: { device: '' } })), 'WIRE_CMD_BAD_ARGS');
    expectWireError(
      () => sealed(command({ cmd: 'config', args: { set: { k: Number.NaN } } })),
      'WIRE_INVALID_FIELD',
    );
    expectWireError(() => sealed(command(PING, { id: 'not-hex' })), 'WIRE_INVALID_FIELD');
  });

  it('decodeCommandPayload applies a whitelist when given one', () => {
    const payload = verifyEnvelope(
      sealed(command({ cmd: 'config', args: { set: { x: 1 } } })),
      resolverFor(clinic),
    ).payload;
    expect(decodeCommandPayload(payload).cmd).toBe('config');
    expectWireError(() => decodeCommandPayload(payload, ALLOWED), 'WIRE_CMD_BAD_ARGS');
  });
});

describe('MemoryReplayCache', () => {
  it('forgets an id after its expiry, and prunes expired ids when adding', () => {
    const clock = new ManualClock(NOW);
    const cache = new MemoryReplayCache(clock);
    cache.add('a', NOW + 1000);
    cache.add('b', NOW + 5000);
    expect(cache.has('a')).toBe(true);
    clock.advance(1000);
    expect(cache.has('a')).toBe(true); // until and including its expiry
    clock.advance(1);
    expect(cache.has('a')).toBe(false);
    expect(cache.has('b')).toBe(true);
    clock.advance(5000);
    cache.add('c', clock.now() + 1000);
    expect(cache.size).toBe(1);
  });

  it('keeps a verified command until exp + skew, exactly as long as a replay could be fresh', () => {
    const clock = new ManualClock(NOW);
    const cache = new MemoryReplayCache(clock);
    const cmd = command(PING);
    verifyCommand(sealed(cmd), options({ replayCache: cache }));
    clock.set(cmd.expiresAt + CLOCK_SKEW_MS);
    expectWireError(
      () => verifyCommand(sealed(cmd), options({ replayCache: cache, now: clock.now() })),
      'WIRE_CMD_REPLAYED',
    );
    clock.advance(1);
    expect(cache.has(cmd.id)).toBe(false);
    expectWireError(
      () => verifyCommand(sealed(cmd), options({ replayCache: cache, now: clock.now() })),
      'WIRE_CMD_EXPIRED',
    );
  });
});

describe('command results', () => {
  it('round-trip ok and refused results, signed by the gateway', () => {
    const ok = {
      gatewayId: GATEWAY,
      id: newCommandId(),
      sentAt: NOW,
      ok: true,
      result: { pong: NOW, lanes: ['alert'] },
    };
    const envelope = signCommandResult(ok, gateway.privateKey, gateway.kid);
    const { payload } = verifyEnvelope(envelope, resolverFor(gateway));
    expect(decodeCommandResult(payload, { gatewayId: GATEWAY })).toEqual(ok);
    const refused = {
      gatewayId: GATEWAY,
      id: newCommandId(),
      sentAt: NOW,
      ok: false,
      error: { code: 'WIRE_CMD_BAD_ARGS', message: 'no' },
    };
    expect(decodeCommandResult(encodeCommandResult(refused))).toEqual(refused);
    const bare = { gatewayId: GATEWAY, id: newCommandId(), sentAt: NOW, ok: true };
    expect(decodeCommandResult(encodeCommandResult(bare))).toEqual(bare);
  });

  it('refuses inconsistent or foreign results', () => {
    const id = newCommandId();
    expectWireError(
      () => encodeCommandResult({ gatewayId: GATEWAY, id, sentAt: NOW, ok: false }),
      'WIRE_INVALID_FIELD',
    );
    expectWireError(
      () =>
        encodeCommandResult({
          gatewayId: GATEWAY,
          id,
          sentAt: NOW,
          ok: true,
          error: { code: 'X', message: 'y' },
        }),
      'WIRE_INVALID_FIELD',
    );
    const bytes = encodeCommandResult({ gatewayId: GATEWAY, id, sentAt: NOW, ok: true });
    expectWireError(() => decodeCommandResult(bytes, { gatewayId: 'gw-test-02' }), 'WIRE_GATEWAY_MISMATCH');
  });

  it('makes refusal results only for authenticated commands with an id, never for replays', () => {
    const cmd = command(PING, { gatewayId: 'gw-test-02' });
    const error = expectWireError(() => verifyCommand(sealed(cmd), options()), 'WIRE_CMD_WRONG_TARGET');
    const result = refusalResult(error, GATEWAY, NOW);
    expect(result).toMatchObject({ id: cmd.id, ok: false, error: { code: 'WIRE_CMD_WRONG_TARGET' } });
    expect(decodeCommandResult(encodeCommandResult(result as NonNullable<typeof result>))).toEqual(result);
    const unsigned = expectWireError(
      () => verifyCommand(sealed(command(PING), gateway), options()),
      'WIRE_UNKNOWN_KID',
    );
    expect(refusalResult(unsigned, GATEWAY, NOW)).toBeUndefined();
  });

  it('answers no refusal that depends on memory or clock: the command may have been answered before', () => {
    // A QoS 1 redelivery after a restart or a long outage: expired by time, or issued before the replay horizon.
    const late = command(PING);
    const expired = expectWireError(
      () => verifyCommand(sealed(late), options({ now: late.expiresAt + CLOCK_SKEW_MS + 1 })),
      'WIRE_CMD_EXPIRED',
    );
    expect(expired.commandId).toBe(late.id);
    expect(refusalResult(expired, GATEWAY, NOW)).toBeUndefined();
    const beforeRestart = expectWireError(
      () => verifyCommand(sealed(command(PING)), options({ notBefore: NOW + 1 })),
      'WIRE_CMD_EXPIRED',
    );
    expect(refusalResult(beforeRestart, GATEWAY, NOW)).toBeUndefined();
  });

  it('answers a refusal that depends only on the signed bytes, such as a bad field with a readable id', () => {
    const error = expectWireError(
      () => verifyCommand(raw({ exp: NOW - 1 }), options()),
      'WIRE_INVALID_FIELD',
    );
    expect(refusalResult(error, GATEWAY, NOW)).toMatchObject({
      id: error.commandId,
      ok: false,
      error: { code: 'WIRE_INVALID_FIELD' },
    });
  });
});
