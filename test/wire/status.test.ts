import { describe, expect, it } from 'vitest';
import { encodeCbor } from '../../src/wire/cbor.js';
import { signEnvelope, verifyEnvelope } from '../../src/wire/cose.js';
import { decodeStatus, encodeStatus, type GatewayStatus, lastWillStatus } from '../../src/wire/status.js';
import { expectWireError, newSigner, resolverFor } from './support.js';

const CONNECTED_AT = Date.UTC(2026, 10, 28, 12, 0, 0);
const ONLINE: GatewayStatus = {
  gatewayId: 'gw-test-01',
  state: 'online',
  version: '0.1.0',
  sentAt: CONNECTED_AT,
  backlog: { alert: 0, live: 3, backlog: 120_000 },
  certExpiresAt: Date.UTC(2027, 10, 28),
  auditHead: 'a'.repeat(64),
};

describe('status payload', () => {
  it('round-trips with and without the optional fields', () => {
    expect(decodeStatus(encodeStatus(ONLINE))).toEqual(ONLINE);
    const { certExpiresAt: _c, auditHead: _a, ...minimal } = ONLINE;
    expect(decodeStatus(encodeStatus(minimal))).toEqual(minimal);
    const { auditHead: _b, ...withCert } = ONLINE;
    expect(decodeStatus(encodeStatus(withCert))).toEqual(withCert);
    const { certExpiresAt: _d, ...withAudit } = ONLINE;
    expect(decodeStatus(encodeStatus(withAudit))).toEqual(withAudit);
  });

  it('the Last Will is the connect-time status saying offline, signed at connect time', () => {
    const gateway = newSigner('gateway');
    const will = lastWillStatus(ONLINE);
    expect(will).toEqual({ ...ONLINE, state: 'offline' });
    expect(will.sentAt).toBe(CONNECTED_AT);
    const envelope = signEnvelope(encodeStatus(will), gateway.privateKey, gateway.kid);
    const { payload } = verifyEnvelope(envelope, resolverFor(gateway));
    expect(decodeStatus(payload, { gatewayId: 'gw-test-01' })).toEqual(will);
  });

  it('checks the gateway id and every field', () => {
    const bytes = encodeStatus(ONLINE);
    expectWireError(() => decodeStatus(bytes, { gatewayId: 'gw-test-02' }), 'WIRE_GATEWAY_MISMATCH');
    const base = {
      v: 1,
      gw: 'gw-test-01',
      state: 'online',
      ver: '0.1.0',
      sent: CONNECTED_AT,
      backlog: { alert: 0, live: 0, backlog: 0 },
    };
    expect(decodeStatus(encodeCbor({ ...base, later: 'ignored' })).state).toBe('online');
    for (const bad of [
      { state: 'sleeping' },
      { ver: '' },
      { ver: 'version with spaces' },
      { sent: -1 },
      { backlog: { alert: 0, live: 0 } },
      { backlog: [0, 0, 0] },
      { certExp: 'soon' },
      { audit: 'A'.repeat(64) },
      { audit: 'a'.repeat(63) },
    ]) {
      expectWireError(() => decodeStatus(encodeCbor({ ...base, ...bad })), 'WIRE_INVALID_FIELD');
    }
    expectWireError(() => decodeStatus(encodeCbor({ ...base, v: 2 })), 'WIRE_UNSUPPORTED_VERSION');
    expectWireError(() => encodeStatus({ ...ONLINE, auditHead: 'xyz' }), 'WIRE_INVALID_FIELD');
  });
});
