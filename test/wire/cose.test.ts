import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildExamples, EXAMPLE_KEY_JWK, exampleKeys } from '../../scripts/wire-examples.js';
import { decodeBatch } from '../../src/wire/batch.js';
import { CborTag, decodeCbor, encodeCbor } from '../../src/wire/cbor.js';
import { decodeCommandPayload } from '../../src/wire/commands.js';
import {
  encodeSign1,
  envelopeSize,
  kidForCertificate,
  MAX_ENVELOPE_BYTES,
  protectedHeaderEs256,
  signEnvelope,
  sigStructure,
  verifyEnvelope,
  verifyEnvelopeAsync,
} from '../../src/wire/cose.js';
import { WireError } from '../../src/wire/errors.js';
import { decodeStatus } from '../../src/wire/status.js';
import { fuzzCorpus } from './fuzz-corpus.js';
import { expectWireError, hex, newSigner, resolverFor, toHex, wireError } from './support.js';

/**
 * COSE WG examples (https://github.com/cose-wg/Examples), all made with P-256 key "11":
 * ecdsa-examples/ecdsa-sig-01.json and sign1-tests/*.json, copied byte for byte ("cbor" and "ToBeSign_hex").
 */
const COSE_WG_KEY = createPublicKey({ key: { ...EXAMPLE_KEY_JWK }, format: 'jwk' });
const KID_11 = hex('3131');
const resolve11 = (kid: Uint8Array) => (toHex(kid) === '3131' ? COSE_WG_KEY : undefined);

const VECTORS = {
  'ecdsa-sig-01': {
    cbor: 'D28445A201260300A10442313154546869732069732074686520636F6E74656E742E5840EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E172727F48461FABBBA2E343492DDECAC3983686250BC68E9F1A7A07D41225B59F',
    toBeSigned: '846A5369676E61747572653145A2012603004054546869732069732074686520636F6E74656E742E',
  },
  'sign-pass-01': {
    cbor: 'D28441A0A201260442313154546869732069732074686520636F6E74656E742E5840EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E11A02E5F0344BF2D4EE5C7FD75A68A9F5E0B3CC1F1FC1409C189566586FF9D610',
    toBeSigned: '846A5369676E617475726531404054546869732069732074686520636F6E74656E742E',
  },
  'sign-pass-02': {
    cbor: 'D28443A10126A10442313154546869732069732074686520636F6E74656E742E5840EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E155388B10C4F1B59A6733EAB416870A945111A4B2FBDBEF33A77234B1DEFF2F9B',
    toBeSigned:
      '846A5369676E61747572653143A101264C11AA22BB33CC44DD5500669954546869732069732074686520636F6E74656E742E',
  },
  'sign-pass-03': {
    cbor: '8443A10126A10442313154546869732069732074686520636F6E74656E742E5840EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E19F43D6C6BA654472DA301B645B293C9BA939295B97C4BDB847782BFF384C5794',
    toBeSigned: '846A5369676E61747572653143A101264054546869732069732074686520636F6E74656E742E',
  },
  'sign-fail-01': {
    cbor: 'D903E68443A10126A10442313154546869732069732074686520636F6E74656E742E5840EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E19F43D6C6BA654472DA301B645B293C9BA939295B97C4BDB847782BFF384C5794',
  },
  'sign-fail-02': {
    cbor: 'D28443A10126A10442313154546869732069732074686520636F6E74656E742F5840EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E19F43D6C6BA654472DA301B645B293C9BA939295B97C4BDB847782BFF384C5794',
  },
  'sign-fail-03': {
    cbor: 'D28445A1013903E6A10442313154546869732069732074686520636F6E74656E742E5840EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E19F43D6C6BA654472DA301B645B293C9BA939295B97C4BDB847782BFF384C5794',
  },
  'sign-fail-04': {
    cbor: 'D2844AA10167756E6B6E6F776EA10442313154546869732069732074686520636F6E74656E742E5840EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E19F43D6C6BA654472DA301B645B293C9BA939295B97C4BDB847782BFF384C5794',
  },
  'sign-fail-06': {
    cbor: 'D28445A201260300A10442313154546869732069732074686520636F6E74656E742E5840EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E19F43D6C6BA654472DA301B645B293C9BA939295B97C4BDB847782BFF384C5794',
  },
  'sign-fail-07': {
    cbor: 'D28443A10126A10442313154546869732069732074686520636F6E74656E742E5840EAE868ECC176883766C5DC5BA5B8DCA25DAB3C2E56A551CE5705B793914348E172727F48461FABBBA2E343492DDECAC3983686250BC68E9F1A7A07D41225B59F',
  },
} as const;

const CONTENT = new TextEncoder().encode('This is the content.');

describe('COSE WG interoperability vectors', () => {
  it('ecdsa-sig-01 verifies (protected {1: -7, 3: 0}, kid "11")', () => {
    const { payload, kid } = verifyEnvelope(hex(VECTORS['ecdsa-sig-01'].cbor), resolve11);
    expect(payload).toEqual(CONTENT);
    expect(kid).toEqual(KID_11);
  });

  it('sign-pass-03 (the same message without tag 18) verifies', () => {
    expect(verifyEnvelope(hex(VECTORS['sign-pass-03'].cbor), resolve11).payload).toEqual(CONTENT);
  });

  it('builds the Sig_structure byte for byte as the vectors record it', () => {
    expect(toHex(sigStructure(hex('A201260300'), CONTENT))).toBe(
      VECTORS['ecdsa-sig-01'].toBeSigned.toLowerCase(),
    );
    expect(toHex(sigStructure(hex('A10126'), CONTENT))).toBe(
      VECTORS['sign-pass-03'].toBeSigned.toLowerCase(),
    );
  });

  it('the signatures of the "pass" vectors verify over their recorded Sig_structures (r || s form)', () => {
    for (const name of ['ecdsa-sig-01', 'sign-pass-01', 'sign-pass-02', 'sign-pass-03'] as const) {
      const envelope = decodeCbor(hex(VECTORS[name].cbor));
      const array = (envelope instanceof CborTag ? envelope.value : envelope) as Uint8Array[];
      const signature = array[3] as Uint8Array;
      const data = hex(VECTORS[name].toBeSigned);
      expect(verify('sha256', data, { key: COSE_WG_KEY, dsaEncoding: 'ieee-p1363' }, signature), name).toBe(
        true,
      );
    }
  });

  it('sign-pass-01 is refused: its alg is only in the unprotected header, which is never trusted', () => {
    expectWireError(
      () => verifyEnvelope(hex(VECTORS['sign-pass-01'].cbor), resolve11),
      'WIRE_UNSUPPORTED_ALG',
    );
  });

  it('sign-pass-02 is refused: it was signed with external data, and this format has none', () => {
    expectWireError(() => verifyEnvelope(hex(VECTORS['sign-pass-02'].cbor), resolve11), 'WIRE_BAD_SIGNATURE');
  });

  it.each([
    ['sign-fail-01', 'WIRE_MALFORMED'], // tag 998 instead of 18
    ['sign-fail-02', 'WIRE_BAD_SIGNATURE'], // payload changed
    ['sign-fail-03', 'WIRE_UNSUPPORTED_ALG'], // alg -999
    ['sign-fail-04', 'WIRE_UNSUPPORTED_ALG'], // alg "unknown"
    ['sign-fail-06', 'WIRE_BAD_SIGNATURE'], // protected attribute added
    ['sign-fail-07', 'WIRE_BAD_SIGNATURE'], // protected attribute removed
  ] as const)('%s is refused with %s', (name, code) => {
    expectWireError(() => verifyEnvelope(hex(VECTORS[name].cbor), resolve11), code);
  });
});

describe('signEnvelope / verifyEnvelope', () => {
  const gateway = newSigner('gateway');
  const other = newSigner('other');
  const payload = encodeCbor({ v: 1, hello: 'world' });

  it('round-trips a payload and returns the kid', () => {
    const envelope = signEnvelope(payload, gateway.privateKey, gateway.kid);
    const verified = verifyEnvelope(envelope, resolverFor(gateway));
    expect(verified.payload).toEqual(payload);
    expect(verified.kid).toEqual(gateway.kid);
  });

  it("writes exactly the profile layout: tag 18, h'a10126', {4: kid}, payload, 64-byte r || s", () => {
    const envelope = signEnvelope(payload, gateway.privateKey, gateway.kid);
    expect(toHex(envelope.subarray(0, 10))).toBe('d28443a10126a1045820');
    expect(envelope.subarray(10, 42)).toEqual(gateway.kid);
    expect(envelope.length).toBe(envelopeSize(payload.length));
    const top = decodeCbor(envelope) as CborTag;
    const [, , , signature] = top.value as Uint8Array[];
    expect(signature).toHaveLength(64);
  });

  it('computes kid as SHA-256 of the certificate DER', () => {
    const { certificateDer, kid } = exampleKeys();
    expect(kidForCertificate(certificateDer)).toEqual(kid);
    expect(toHex(kid)).toBe('ae2d06456d3a34e03be319ec522e4f45450979f13c6fb6c10ab3cf87800dae4a');
  });

  it('refuses keys other than P-256 and kids other than 32 bytes when signing', () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;
    expectWireError(() => signEnvelope(payload, p384, gateway.kid), 'WIRE_UNSUPPORTED_ALG');
    expectWireError(() => signEnvelope(payload, gateway.publicKey, gateway.kid), 'WIRE_UNSUPPORTED_ALG');
    expectWireError(
      () => signEnvelope(payload, gateway.privateKey, new Uint8Array(31)),
      'WIRE_INVALID_FIELD',
    );
  });

  it('refuses an unknown kid, and a kid that resolves to another key', () => {
    const envelope = signEnvelope(payload, gateway.privateKey, gateway.kid);
    expectWireError(() => verifyEnvelope(envelope, resolverFor(other)), 'WIRE_UNKNOWN_KID');
    expectWireError(() => verifyEnvelope(envelope, () => other.publicKey), 'WIRE_BAD_SIGNATURE');
  });

  it('refuses a key for the kid that is not P-256', () => {
    const envelope = signEnvelope(payload, gateway.privateKey, gateway.kid);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    expectWireError(() => verifyEnvelope(envelope, () => rsa), 'WIRE_UNSUPPORTED_ALG');
  });

  it('accepts a private key from the resolver (uses its public half)', () => {
    const envelope = signEnvelope(payload, gateway.privateKey, gateway.kid);
    expect(verifyEnvelope(envelope, () => gateway.privateKey).payload).toEqual(payload);
  });

  describe('tampering', () => {
    const envelope = signEnvelope(payload, gateway.privateKey, gateway.kid);
    const payloadAt = envelope.length - 66 - payload.length;

    it('a flipped payload byte is a bad signature (every byte, every bit position once)', () => {
      for (let i = 0; i < payload.length; i++) {
        const bad = envelope.slice();
        bad[payloadAt + i] = (bad[payloadAt + i] as number) ^ (1 << (i % 8));
        expectWireError(() => verifyEnvelope(bad, resolverFor(gateway)), 'WIRE_BAD_SIGNATURE');
      }
    });

    it('a flipped signature byte is a bad signature', () => {
      for (let i = envelope.length - 64; i < envelope.length; i++) {
        const bad = envelope.slice();
        bad[i] = (bad[i] as number) ^ 0x01;
        expectWireError(() => verifyEnvelope(bad, resolverFor(gateway)), 'WIRE_BAD_SIGNATURE');
      }
    });

    it('a changed protected header is refused', () => {
      // {1: -7} -> {1: -8}: another algorithm (EdDSA)
      const otherAlg = envelope.slice();
      otherAlg[5] = 0x27;
      expectWireError(() => verifyEnvelope(otherAlg, resolverFor(gateway)), 'WIRE_UNSUPPORTED_ALG');
      // {1: -7} re-encoded with a non-preferred head (the signature covers the bytes, not the meaning)
      const reencoded = encodeSign1({
        payload,
        kid: gateway.kid,
        signature: envelope.subarray(envelope.length - 64),
        protectedHeader: hex('a10126'.replace('26', '3806')),
      });
      expectWireError(() => verifyEnvelope(reencoded, resolverFor(gateway)), 'WIRE_BAD_SIGNATURE');
      // an extra protected parameter (content type)
      const extra = encodeSign1({
        payload,
        kid: gateway.kid,
        signature: envelope.subarray(envelope.length - 64),
        protectedHeader: hex('a201260300'),
      });
      expectWireError(() => verifyEnvelope(extra, resolverFor(gateway)), 'WIRE_BAD_SIGNATURE');
    });

    it('a signature of the wrong length is a bad signature', () => {
      const short = encodeSign1({
        payload,
        kid: gateway.kid,
        signature: envelope.subarray(envelope.length - 63),
      });
      expectWireError(() => verifyEnvelope(short, resolverFor(gateway)), 'WIRE_BAD_SIGNATURE');
      const der = sign('sha256', sigStructure(protectedHeaderEs256(), payload), gateway.privateKey);
      const asn1 = encodeSign1({ payload, kid: gateway.kid, signature: new Uint8Array(der) });
      expectWireError(() => verifyEnvelope(asn1, resolverFor(gateway)), 'WIRE_BAD_SIGNATURE');
    });
  });

  describe('the unprotected alg is never trusted', () => {
    function signedWith(
      protectedHeader: Uint8Array,
      unprotected: Map<number, number | Uint8Array>,
    ): Uint8Array {
      const signature = sign('sha256', sigStructure(protectedHeader, payload), {
        key: gateway.privateKey,
        dsaEncoding: 'ieee-p1363',
      });
      return encodeSign1({
        payload,
        signature: new Uint8Array(signature),
        protectedHeader,
        unprotectedHeader: unprotected,
      });
    }

    it('an alg only in the unprotected header (validly signed) is refused', () => {
      const envelope = signedWith(
        new Uint8Array(0),
        new Map<number, number | Uint8Array>([
          [1, -7],
          [4, gateway.kid],
        ]),
      );
      expectWireError(() => verifyEnvelope(envelope, resolverFor(gateway)), 'WIRE_UNSUPPORTED_ALG');
      const emptyMap = signedWith(
        hex('a0'),
        new Map<number, number | Uint8Array>([
          [1, -7],
          [4, gateway.kid],
        ]),
      );
      expectWireError(() => verifyEnvelope(emptyMap, resolverFor(gateway)), 'WIRE_UNSUPPORTED_ALG');
    });

    it('an alg in both headers is refused (RFC 9052 section 3: a label in one bucket only)', () => {
      const envelope = signedWith(
        protectedHeaderEs256(),
        new Map<number, number | Uint8Array>([
          [1, -35],
          [4, gateway.kid],
        ]),
      );
      expectWireError(() => verifyEnvelope(envelope, resolverFor(gateway)), 'WIRE_MALFORMED');
    });

    it('a kid in the protected header is accepted; crit is refused; a missing kid is refused', () => {
      const kidProtected = encodeCbor(
        new Map<number, number | Uint8Array>([
          [1, -7],
          [4, gateway.kid],
        ]),
      );
      expect(verifyEnvelope(signedWith(kidProtected, new Map()), resolverFor(gateway)).kid).toEqual(
        gateway.kid,
      );
      const crit = encodeCbor(
        new Map<number, number | number[]>([
          [1, -7],
          [2, [99]],
        ]),
      );
      expectWireError(
        () => verifyEnvelope(signedWith(crit, new Map([[4, gateway.kid]])), resolverFor(gateway)),
        'WIRE_MALFORMED',
      );
      expectWireError(
        () => verifyEnvelope(signedWith(protectedHeaderEs256(), new Map()), resolverFor(gateway)),
        'WIRE_MALFORMED',
      );
    });
  });

  describe('structure', () => {
    it.each([
      ['not an array', encodeCbor(new CborTag(18, { a: 1 }))],
      ['three items', encodeCbor(new CborTag(18, [protectedHeaderEs256(), new Map(), payload]))],
      ['protected header as a map', encodeCbor([new Map([[1, -7]]), new Map(), payload, new Uint8Array(64)])],
      [
        'protected header bytes not a map',
        encodeCbor([hex('83010203'), new Map(), payload, new Uint8Array(64)]),
      ],
      ['protected header bytes not CBOR', encodeCbor([hex('a101'), new Map(), payload, new Uint8Array(64)])],
      ['unprotected header not a map', encodeCbor([protectedHeaderEs256(), [], payload, new Uint8Array(64)])],
      [
        'detached payload',
        encodeSign1({ payload: null, kid: newSigner('x').kid, signature: new Uint8Array(64) }),
      ],
      ['payload as text', encodeCbor([protectedHeaderEs256(), new Map(), 'payload', new Uint8Array(64)])],
      ['signature as text', encodeCbor([protectedHeaderEs256(), new Map(), payload, 'sig'])],
      ['COSE_Sign (tag 98)', encodeCbor(new CborTag(98, [protectedHeaderEs256(), new Map(), payload, []]))],
      [
        'kid as text',
        encodeCbor([protectedHeaderEs256(), new Map([[4, 'kid']]), payload, new Uint8Array(64)]),
      ],
      [
        'empty kid',
        encodeCbor([protectedHeaderEs256(), new Map([[4, new Uint8Array(0)]]), payload, new Uint8Array(64)]),
      ],
    ])('%s is WIRE_MALFORMED', (_name, bytes) => {
      expectWireError(() => verifyEnvelope(bytes, resolverFor(gateway)), 'WIRE_MALFORMED');
    });
  });

  it('refuses an oversized envelope before parsing anything (and never asks for a key)', () => {
    let asked = 0;
    const resolve = () => {
      asked++;
      return gateway.publicKey;
    };
    const garbage = new Uint8Array(MAX_ENVELOPE_BYTES + 1).fill(0xff);
    expectWireError(() => verifyEnvelope(garbage, resolve), 'WIRE_TOO_LARGE');
    const big = signEnvelope(new Uint8Array(1000), gateway.privateKey, gateway.kid);
    expectWireError(() => verifyEnvelope(big, resolve, { maxBytes: 1000 }), 'WIRE_TOO_LARGE');
    expect(verifyEnvelope(big, resolve, { maxBytes: big.length }).payload).toHaveLength(1000);
    expect(asked).toBe(1);
  });
});

describe('truncated and fuzzed envelopes', () => {
  const examples = buildExamples();
  const keys = exampleKeys();
  const resolve = (kid: Uint8Array) => (toHex(kid) === toHex(keys.kid) ? keys.publicKey : undefined);

  it('every truncation of every example envelope is WIRE_MALFORMED', () => {
    let checked = 0;
    for (const { envelope } of examples) {
      for (let length = 0; length < envelope.length; length++) {
        const error = wireError(() => verifyEnvelope(envelope.subarray(0, length), resolve));
        expect(error.code, `length ${length}: ${error.message}`).toBe('WIRE_MALFORMED');
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(1000);
  });

  it('every truncation of every example payload is WIRE_MALFORMED', () => {
    const decoders = [decodeBatch, decodeStatus, decodeCommandPayload];
    examples.forEach(({ payload }, i) => {
      const decode = decoders[i] as (bytes: Uint8Array) => unknown;
      for (let length = 0; length < payload.length; length++) {
        expect(wireError(() => decode(payload.subarray(0, length))).code).toBe('WIRE_MALFORMED');
      }
    });
  });

  it('20,000 random and mutated envelopes and payloads give only WireErrors', () => {
    const decoders = [decodeBatch, decodeStatus, decodeCommandPayload] as ((bytes: Uint8Array) => unknown)[];
    const corpus = fuzzCorpus({
      envelopes: examples.map((e) => e.envelope),
      payloads: examples.map((e) => e.payload),
      count: 20_000,
      seed: 20_000,
    });
    const counts: Record<string, number> = {};
    let accepted = 0;
    corpus.forEach((entry, i) => {
      try {
        if (entry.kind === 'random') verifyEnvelope(entry.bytes, resolve);
        else if (entry.kind === 'envelope') verifyEnvelope(entry.bytes, resolve, { maxBytes: 4096 });
        // Mutated payloads, as if a signer with a valid key sent them: the decoders behind the signature.
        else (decoders[entry.which] as (bytes: Uint8Array) => unknown)(entry.bytes);
        accepted++;
      } catch (error) {
        if (!(error instanceof WireError))
          throw new Error(`iteration ${i}: ${String(error)}`, { cause: error });
        counts[error.code] = (counts[error.code] ?? 0) + 1;
      }
    });
    expect(Object.values(counts).reduce((a, b) => a + b, 0) + accepted).toBe(20_000);
    expect(counts['WIRE_MALFORMED']).toBeGreaterThan(1000);
    expect(counts['WIRE_BAD_SIGNATURE']).toBeGreaterThan(100);
    expect(counts['WIRE_INVALID_FIELD']).toBeGreaterThan(100);
  }, 60_000);

  it('verifyEnvelopeAsync gives the same payload or the same error as verifyEnvelope, envelope for envelope', async () => {
    const corpus = fuzzCorpus({
      envelopes: examples.map((e) => e.envelope),
      payloads: examples.map((e) => e.payload),
      count: 3_000,
      seed: 3_000,
    }).filter((e) => e.kind !== 'payload');
    const outcome = (run: () => { payload: Uint8Array }) => {
      try {
        return `ok ${toHex(run().payload)}`;
      } catch (error) {
        return error instanceof WireError ? `${error.code}: ${error.message}` : `other: ${String(error)}`;
      }
    };
    const seen = new Set<string>();
    // The genuine examples first: their signatures verify, so both must accept them.
    const inputs = [...examples.map((e) => e.envelope), ...corpus.map((e) => e.bytes)];
    for (const bytes of inputs) {
      const sync = outcome(() => verifyEnvelope(bytes, resolve, { maxBytes: 4096 }));
      let async: string;
      try {
        async = `ok ${toHex((await verifyEnvelopeAsync(bytes, resolve, { maxBytes: 4096 })).payload)}`;
      } catch (error) {
        async = error instanceof WireError ? `${error.code}: ${error.message}` : `other: ${String(error)}`;
      }
      expect(async).toBe(sync);
      seen.add(sync.split(':')[0]?.split(' ')[0] ?? '');
    }
    // The corpus reaches every step of the check, the signature's included.
    expect([...seen].sort()).toEqual(
      expect.arrayContaining(['WIRE_BAD_SIGNATURE', 'WIRE_MALFORMED', 'WIRE_UNKNOWN_KID', 'ok']),
    );
  }, 60_000);
});
