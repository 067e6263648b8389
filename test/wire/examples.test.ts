import { createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  buildExamples,
  docPath,
  exampleBatch,
  exampleCommand,
  exampleStatus,
  renderExamples,
  sectionInDoc,
} from '../../scripts/wire-examples.js';
import { decodeBatch } from '../../src/wire/batch.js';
import { decodeCommandPayload } from '../../src/wire/commands.js';
import { kidForCertificate, verifyEnvelope } from '../../src/wire/cose.js';
import { decodeStatus } from '../../src/wire/status.js';
import { hex, toHex } from './support.js';

const doc = readFileSync(docPath(), 'utf8');

describe('docs/wire-format.md worked examples', () => {
  it('are what scripts/wire-examples.ts produces (run it with --write after a format change)', () => {
    expect(sectionInDoc(doc)).toBe(renderExamples());
  });

  it('verify with the public key of the certificate printed in the doc, and decode to the example values', () => {
    const section = sectionInDoc(doc) ?? '';
    const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(section)?.[0] ?? '';
    const certificate = new X509Certificate(pem);
    const kid = kidForCertificate(new Uint8Array(certificate.raw));
    expect(section).toContain(`kid = SHA-256(certificate DER) = \`${toHex(kid)}\``);
    const publicKey = createPublicKey(certificate.publicKey.export({ type: 'spki', format: 'pem' }));
    const resolve = (k: Uint8Array) => (toHex(k) === toHex(kid) ? publicKey : undefined);

    // The envelopes as printed: the hex block after each "COSE_Sign1 envelope" heading.
    const envelopes = [
      ...section.matchAll(/COSE_Sign1 envelope \(what is published\), \d+ bytes:\n\n```\n([0-9a-f\n]+)```/g),
    ].map((match) => hex(match[1] ?? ''));
    expect(envelopes).toHaveLength(3);
    const [batch, status, command] = envelopes.map((envelope) => verifyEnvelope(envelope, resolve).payload);
    expect(decodeBatch(batch as Uint8Array, { gatewayId: 'gw-example-01' })).toEqual(exampleBatch());
    expect(decodeStatus(status as Uint8Array)).toEqual(exampleStatus());
    expect(decodeCommandPayload(command as Uint8Array)).toEqual(exampleCommand());
  });

  it('show one SpO2 measurement and one gap in the batch', () => {
    const [batch] = buildExamples();
    const items = decodeBatch(batch?.payload ?? new Uint8Array()).items;
    expect(items.map((item) => item.type)).toEqual(['measurement', 'gap']);
    expect(doc).toContain('"MDC_PULS_OXIM_SAT_O2", 97, "%"');
  });
});
