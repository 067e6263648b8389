import { createHash, createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Measurement } from '../../src/model/measurement.js';
import { type CertificateAuthority, issueGatewayCertificate } from '../../src/pki/index.js';
import { encodeBatch } from '../../src/wire/batch.js';
import { kidForCertificate, signEnvelope } from '../../src/wire/cose.js';

/**
 * Many simulated gateways for the clinic side's tests and benchmarks: each has its own certificate from the
 * clinic CA and signs its batches with its own key, exactly as a hub's uplink does (docs/wire-format.md), so an
 * intake verifies them for real. Measurement ids are derived from (gateway, n), so a re-sent batch carries the
 * same ids and a test can check "every reading exactly once" by id.
 */
export interface FleetGateway {
  readonly id: string;
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  readonly key: KeyObject;
  readonly kid: Uint8Array;
}

export interface SignedMessage {
  readonly topic: string;
  readonly payload: Buffer;
  readonly ids: readonly string[];
}

/** Issues `count` gateway certificates (`<prefix>-0000` ...). About a millisecond or two each. */
export async function createFleet(
  ca: CertificateAuthority,
  count: number,
  prefix = 'gw-fleet',
): Promise<FleetGateway[]> {
  const fleet: FleetGateway[] = [];
  for (let i = 0; i < count; i++) {
    const id = `${prefix}-${i.toString().padStart(4, '0')}`;
    const issued = await issueGatewayCertificate(ca, { gatewayId: id });
    fleet.push({
      id,
      certificatePem: issued.certificatePem,
      privateKeyPem: issued.privateKeyPem,
      key: createPrivateKey(issued.privateKeyPem),
      kid: kidForCertificate(new X509Certificate(issued.certificatePem).raw),
    });
  }
  return fleet;
}

/** Writes each gateway's certificate as `<id>.crt` into `dir`: the clinic's gateway inventory. */
export function writeFleetCertificates(fleet: readonly FleetGateway[], dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const gateway of fleet) writeFileSync(join(dir, `${gateway.id}.crt`), gateway.certificatePem);
}

/** The `n`-th SpO2 reading of a gateway: its id is stable for (gateway, n), its time one second after the last. */
export function fleetMeasurement(gatewayId: string, n: number, start = Date.UTC(2026, 11, 1)): Measurement {
  const digest = createHash('sha256').update(`${gatewayId}\u0000${n}`).digest('hex');
  const at = new Date(start + n * 1000).toISOString();
  return {
    id: `m1-${digest.slice(0, 32)}`,
    deviceId: 'dev-ox-1',
    driver: 'sig/pulse-oximeter@1.0.0',
    characteristic: '2a5f',
    time: at,
    timeSource: 'gateway',
    deviceTime: null,
    receivedAt: at,
    kind: 'measurement',
    observations: [
      { code: 'MDC_PULS_OXIM_SAT_O2', value: 90 + (n % 10), unit: '%' },
      { code: 'MDC_PULS_OXIM_PULS_RATE', value: 60 + (n % 40), unit: '/min' },
    ],
    status: [],
    details: {},
  };
}

/** A signed batch of readings `first` .. `first + count - 1` of one gateway, on its `obs` (or `alert`) topic. */
export function signedBatch(
  gateway: FleetGateway,
  options: {
    readonly seq: number;
    readonly first: number;
    readonly count: number;
    readonly sentAt: number;
    readonly lane?: 'obs' | 'alert';
  },
): SignedMessage {
  const measurements: Measurement[] = [];
  for (let n = options.first; n < options.first + options.count; n++) {
    measurements.push(fleetMeasurement(gateway.id, n));
  }
  const payload = encodeBatch({
    gatewayId: gateway.id,
    seq: options.seq,
    sentAt: options.sentAt,
    items: measurements.map((measurement) => ({ type: 'measurement' as const, measurement })),
  });
  return {
    topic: `rpm/v1/${gateway.id}/${options.lane ?? 'obs'}`,
    payload: Buffer.from(signEnvelope(payload, gateway.key, gateway.kid)),
    ids: measurements.map((m) => m.id),
  };
}
