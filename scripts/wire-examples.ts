/**
 * Worked examples of the wire format (docs/wire-format.md, "Worked examples"), built from a fixed test key and a
 * fixed clock, so the doc's hex is reproducible and test/wire/examples.test.ts can check it is current.
 *
 *   npm run build && node dist/scripts/wire-examples.js            prints the examples section
 *   npm run build && node dist/scripts/wire-examples.js --write    rewrites it in docs/wire-format.md
 *   npm run build && node dist/scripts/wire-examples.js --resign   prints fresh signatures to pin below
 *
 * ECDSA signatures are randomized (node:crypto has no RFC 6979 mode), so each example's signature is pinned
 * here and verified against the published test key instead of being regenerated. When an example payload
 * changes, its pinned signature stops verifying; run with --resign and paste the new values.
 */
import { createPrivateKey, createPublicKey, type KeyObject, sign, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measurementId } from '../src/model/ids.js';
import { type Batch, encodeBatch } from '../src/wire/batch.js';
import { type Command, encodeCommandPayload } from '../src/wire/commands.js';
import {
  encodeSign1,
  kidForCertificate,
  protectedHeaderEs256,
  sigStructure,
  verifyEnvelope,
} from '../src/wire/cose.js';
import { type DiagPath, diagnose } from '../src/wire/diag.js';
import { encodeStatus, type GatewayStatus } from '../src/wire/status.js';

/** P-256 key "11" of the COSE WG Examples (cose-wg/Examples, e.g. ecdsa-examples/ecdsa-sig-01.json): public. */
export const EXAMPLE_KEY_JWK = {
  kty: 'EC',
  crv: 'P-256',
  x: 'usWxHK2PmfnHKwXPS54m0kTcGJ90UiglWiGahtagnv8',
  y: 'IBOL-C3BttVivg-lSreASjpkttcsz-1rb7btKLv8EX4',
  d: 'V8kgd2ZBRuh2dgyVINBUqpPDr7BOMGcF22CQMIUHtNM',
} as const;

/** A self-signed certificate for that key, CN=gw-example-01 (made once with openssl; pinned: kid depends on it). */
export const EXAMPLE_CERTIFICATE_PEM = `-----BEGIN CERTIFICATE-----
MIIBpjCCAU2gAwIBAgIUJSDLwkJIOHMfUlx9ftlDYTHXUh4wCgYIKoZIzj0EAwIw
GDEWMBQGA1UEAwwNZ3ctZXhhbXBsZS0wMTAeFw0yNjExMjgxODI1MzRaFw0zNjEx
MjUxODI1MzRaMBgxFjAUBgNVBAMMDWd3LWV4YW1wbGUtMDEwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAAS6xbEcrY+Z+ccrBc9LnibSRNwYn3RSKCVaIZqG1qCe/yAT
i/gtwbbVYr4PpUq3gEo6ZLbXLM/ta2+27Si7/BF+o3UwczAdBgNVHQ4EFgQUOia5
IGpBkwUIwe70lSS+uJtGdOswHwYDVR0jBBgwFoAUOia5IGpBkwUIwe70lSS+uJtG
dOswDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0lBAwwCgYIKwYB
BQUHAwIwCgYIKoZIzj0EAwIDRwAwRAIgPGEDpsWCF7+OxPFv/rzkeUa+wAXIdx3s
3urMdtCfPFICIHaViMDiSgQYZdYQxtEqoCfa1/1YrQovqBd8kaw22rZw
-----END CERTIFICATE-----
`;

export const EXAMPLE_GATEWAY_ID = 'gw-example-01';
/** The fixed clock: 2026-11-28T12:00:00Z. */
export const EXAMPLE_NOW = Date.UTC(2026, 10, 28, 12, 0, 0);

/** Pinned ES256 signatures (r || s, hex) of the three example envelopes; see --resign above. */
export const PINNED_SIGNATURES: Record<ExampleName, string> = {
  batch:
    '688a22afcd5d89c44b85d478adcc31295f2bbb4da94a8f8c2b5b62072d900cd2f6def37119afb46c2a6ccf8fd8a342a09ced2448be914cead315e279214f0b2e',
  status:
    '5bc7e4c441249debdd71bccb4dd1cb6ef8c49abe972f90471d6420ae976f96dff8ef95a356d2ff6def83ac861564ebf351dd4d61e8311ad0eb0e1d9adce20060',
  command:
    '9872e2ffa91eda3e81cb1491ee501a35fff961b6afc1acfe29ff0c18e92ba00230c32a6fc6528a7f0853742cd2b08b950a86df4c9b6abbfc198533385463a7e1',
};

export type ExampleName = 'batch' | 'status' | 'command';

export interface ExampleKeys {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly certificateDer: Uint8Array;
  readonly kid: Uint8Array;
}

export function exampleKeys(): ExampleKeys {
  const privateKey = createPrivateKey({ key: { ...EXAMPLE_KEY_JWK }, format: 'jwk' });
  const certificate = new X509Certificate(EXAMPLE_CERTIFICATE_PEM);
  const certificateDer = new Uint8Array(certificate.raw);
  return {
    privateKey,
    publicKey: createPublicKey(privateKey),
    certificateDer,
    kid: kidForCertificate(certificateDer),
  };
}

/** The PLX Spot-Check Measurement (GATT 0x2A5E) the example measurement was decoded from: SpO2 97 %, PR 72. */
export const EXAMPLE_PLX_PAYLOAD = Uint8Array.of(
  0x01,
  0x61,
  0x00,
  0x48,
  0x00,
  0xea,
  0x07,
  0x0b,
  0x1c,
  0x0b,
  0x3a,
  0x1e,
);

export function exampleBatch(): Batch {
  const deviceTime = '2026-11-28T11:58:30';
  const id = measurementId({
    deviceId: 'dev-ox-1',
    characteristic: '2a5e',
    deviceTime,
    payload: EXAMPLE_PLX_PAYLOAD,
  });
  return {
    gatewayId: EXAMPLE_GATEWAY_ID,
    seq: 42,
    sentAt: EXAMPLE_NOW,
    items: [
      {
        type: 'measurement',
        measurement: {
          id,
          deviceId: 'dev-ox-1',
          driver: 'sig/pulse-oximeter@1.0.0',
          characteristic: '2a5e',
          time: deviceTime,
          timeSource: 'device',
          deviceTime,
          receivedAt: '2026-11-28T11:58:31.250Z',
          kind: 'measurement',
          observations: [
            { code: 'MDC_PULS_OXIM_SAT_O2', value: 97, unit: '%' },
            { code: 'MDC_PULS_OXIM_PULS_RATE', value: 72, unit: '/min' },
          ],
          status: [],
          details: {},
        },
      },
      {
        type: 'gap',
        id: 'g1-5f0c3a8e9b7d41c2a6e8f00d13b2c4e7',
        deviceId: 'dev-ox-1',
        count: 1800,
        firstTime: '2026-10-28T08:00:00.000Z',
        lastTime: '2026-10-28T08:29:59.000Z',
        reason: 'expired',
        recordedAt: '2026-11-28T11:59:00.000Z',
      },
    ],
  };
}

export function exampleStatus(): GatewayStatus {
  return {
    gatewayId: EXAMPLE_GATEWAY_ID,
    state: 'online',
    version: '0.1.0',
    sentAt: EXAMPLE_NOW,
    backlog: { alert: 0, live: 1, backlog: 1800 },
    certExpiresAt: Date.UTC(2027, 10, 28, 0, 0, 0),
    auditHead: '9f2b6c1d4e8a7f3b0c5d2e1f6a9b8c7d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b',
  };
}

export function exampleCommand(): Command {
  return {
    cmd: 'resync',
    args: { device: 'dev-ox-1' },
    gatewayId: EXAMPLE_GATEWAY_ID,
    id: '8c1f2e3d4b5a69788796a5b4c3d2e1f0',
    issuedAt: EXAMPLE_NOW,
    expiresAt: EXAMPLE_NOW + 60_000,
  };
}

export interface Example {
  readonly name: ExampleName;
  readonly title: string;
  readonly payload: Uint8Array;
  readonly toBeSigned: Uint8Array;
  readonly envelope: Uint8Array;
}

export function examplePayloads(): Record<ExampleName, Uint8Array> {
  return {
    batch: encodeBatch(exampleBatch()),
    status: encodeStatus(exampleStatus()),
    command: encodeCommandPayload(exampleCommand()),
  };
}

/** The examples with their pinned signatures; throws if a pinned signature no longer verifies. */
export function buildExamples(signatures: Record<ExampleName, string> = PINNED_SIGNATURES): Example[] {
  const keys = exampleKeys();
  const payloads = examplePayloads();
  const titles: Record<ExampleName, string> = {
    batch: 'A batch with one SpO2 measurement and one gap record (topic `rpm/v1/gw-example-01/obs`)',
    status: 'A gateway status (topic `rpm/v1/gw-example-01/status`, retained)',
    command: 'A `resync` command (topic `rpm/v1/gw-example-01/cmd`)',
  };
  return (Object.keys(payloads) as ExampleName[]).map((name) => {
    const payload = payloads[name];
    const envelope = encodeSign1({ payload, kid: keys.kid, signature: Buffer.from(signatures[name], 'hex') });
    try {
      verifyEnvelope(envelope, () => keys.publicKey);
    } catch (error) {
      throw new Error(
        `the pinned signature of the ${name} example does not verify (${String(error)}); ` +
          'run `node dist/scripts/wire-examples.js --resign` and pin the new signatures',
      );
    }
    return {
      name,
      title: titles[name],
      payload,
      toBeSigned: sigStructure(protectedHeaderEs256(), payload),
      envelope,
    };
  });
}

/** Fresh signatures for the current example payloads. */
export function resign(): Record<ExampleName, string> {
  const keys = exampleKeys();
  const payloads = examplePayloads();
  const out = { batch: '', status: '', command: '' };
  for (const name of Object.keys(payloads) as ExampleName[]) {
    const tbs = sigStructure(protectedHeaderEs256(), payloads[name]);
    out[name] = sign('sha256', tbs, { key: keys.privateKey, dsaEncoding: 'ieee-p1363' }).toString('hex');
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- rendering

export const BEGIN_MARKER =
  '<!-- wire-examples:begin (generated by scripts/wire-examples.ts; do not edit) -->';
export const END_MARKER = '<!-- wire-examples:end -->';

const COMMENTS: Record<string, string> = {
  v: 'format version',
  gw: 'gateway id',
  seq: 'batch sequence number',
  sent: 'built at, epoch ms',
  items: 'readings and gap records',
  t: 'item type',
  dev: 'device id (gateway-local)',
  drv: 'driver id@version',
  chr: 'GATT characteristic (PLX Spot-Check Measurement)',
  time: 'measured at',
  tsrc: 'time source',
  dtime: "the device's own timestamp",
  rcvd: 'received by the gateway (UTC)',
  kind: 'measurement | intermediate | info',
  obs: '[code, value, unit, ? invalid, ? qualifier] each',
  n: 'readings dropped',
  first: 'time of the first dropped reading',
  last: 'time of the last dropped reading',
  why: 'evicted-full | expired',
  rec: 'when they were dropped (UTC)',
  state: 'online | offline',
  ver: 'gateway software version',
  backlog: 'records waiting in the outbox, per lane',
  certExp: 'client certificate notAfter, epoch ms',
  audit: 'audit log head hash',
  iat: 'issued at, epoch ms',
  exp: 'expires at, epoch ms (at most iat + 5 min)',
  cmd: 'command name',
  args: 'command arguments',
};

const EPOCH_KEYS = new Set(['sent', 'certExp', 'iat', 'exp']);

/** Comments for the top-level keys of a payload and the keys of batch items. */
function payloadComment(name: ExampleName): (path: DiagPath) => string | undefined {
  return (path) => {
    const last = path[path.length - 1];
    if (typeof last !== 'string') return undefined;
    const topLevel = path.length === 1;
    const inItem = path.length === 3 && path[0] === 'items';
    if (!topLevel && !inItem) return undefined;
    if (last === 'id') {
      if (name === 'command') return 'command id: 16 random bytes, the replay-protection key';
      return path[1] === 0 ? 'measurement id: the de-duplication key' : 'gap record id';
    }
    const comment = COMMENTS[last];
    if (comment === undefined || !EPOCH_KEYS.has(last)) return comment;
    const value = epochValues(name)[last];
    return value === undefined ? comment : `${comment} = ${new Date(value).toISOString()}`;
  };
}

function epochValues(name: ExampleName): Record<string, number | undefined> {
  if (name === 'batch') return { sent: exampleBatch().sentAt };
  if (name === 'status') return { sent: exampleStatus().sentAt, certExp: exampleStatus().certExpiresAt };
  const command = exampleCommand();
  return { iat: command.issuedAt, exp: command.expiresAt };
}

function envelopeComment(name: ExampleName): (path: DiagPath) => string | undefined {
  const inner = payloadComment(name);
  const top = [
    'protected header: bstr .cbor {1: -7}, alg ES256',
    'unprotected header: {4: kid}, kid = SHA-256 of the certificate DER',
    'payload: bstr .cbor the payload above',
    'signature: r || s, 64 bytes',
  ];
  return (path) => {
    if (path.length === 1) return top[path[0] as number];
    return path[0] === 2 ? inner(path.slice(1)) : undefined;
  };
}

/** The envelope's bytes item by item, as a receiver's parser meets them (RFC 8949 section 3 heads). */
function envelopeLayout(example: Example, kid: Uint8Array): string {
  const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
  const short = (bytes: Uint8Array) =>
    bytes.length > 8 ? `${hex(bytes.subarray(0, 4))}...${hex(bytes.subarray(-4))}` : hex(bytes);
  const n = example.payload.length;
  const payloadHead =
    n < 24
      ? (0x40 + n).toString(16)
      : n <= 0xff
        ? `58${n.toString(16).padStart(2, '0')}`
        : `59${n.toString(16).padStart(4, '0')}`;
  const signature = example.envelope.subarray(example.envelope.length - 64);
  const rows: [string, string][] = [
    ['d2', 'tag 18: COSE_Sign1'],
    ['84', 'array of 4 items'],
    ['43 a10126', 'bstr, 3 bytes: protected header, the map {1: -7}'],
    [`a1 04 5820 ${short(kid)}`, 'map of 1: {4: bstr of 32 bytes}, the kid'],
    [`${payloadHead} ${short(example.payload)}`, `bstr, ${n} bytes: the payload`],
    [`5840 ${short(signature)}`, 'bstr, 64 bytes: the signature r || s'],
  ];
  const width = Math.max(...rows.map(([bytes]) => bytes.length)) + 2;
  return rows.map(([bytes, what]) => `${bytes.padEnd(width)}${what}`).join('\n');
}

function hexBlock(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes).toString('hex');
  const lines: string[] = [];
  for (let i = 0; i < hex.length; i += 64) lines.push(hex.slice(i, i + 64));
  return lines.join('\n');
}

export function renderExamples(examples: readonly Example[] = buildExamples()): string {
  const keys = exampleKeys();
  const out: string[] = [BEGIN_MARKER, ''];
  out.push(
    'All examples are signed with the P-256 test key "11" of the COSE WG examples (public: never use it for',
    'anything else). Certificate (self-signed, CN=gw-example-01), public key and kid:',
    '',
    '```',
    EXAMPLE_CERTIFICATE_PEM.trim(),
    '```',
    '',
    '```',
    keys.publicKey.export({ type: 'spki', format: 'pem' }).toString().trim(),
    '```',
    '',
    `kid = SHA-256(certificate DER) = \`${Buffer.from(keys.kid).toString('hex')}\``,
    '',
    'ECDSA signatures are randomized, so a receiver that signs these payloads itself gets other signature bytes;',
    'the signatures below were made once with the key above and must verify with its public key.',
    '',
  );
  examples.forEach((example, i) => {
    out.push(
      `#### Example ${i + 1}: ${example.title}`,
      '',
      `Payload, ${example.payload.length} bytes:`,
      '',
      '```',
      hexBlock(example.payload),
      '```',
      '',
      'Payload in diagnostic notation (RFC 8949 section 8; `/ ... /` are comments):',
      '',
      '```',
      diagnose(example.payload, { comment: payloadComment(example.name), width: 100 }),
      '```',
      '',
      `Sig_structure (the bytes that are signed), ${example.toBeSigned.length} bytes:`,
      '',
      '```',
      hexBlock(example.toBeSigned),
      '```',
      '',
      `COSE_Sign1 envelope (what is published), ${example.envelope.length} bytes:`,
      '',
      '```',
      hexBlock(example.envelope),
      '```',
      '',
      'Its layout:',
      '',
      '```',
      envelopeLayout(example, keys.kid),
      '```',
      '',
      'The envelope in diagnostic notation (`<< >>` shows the CBOR inside a byte string):',
      '',
      '```',
      diagnose(example.envelope, {
        embedded: (path) => path.length === 1 && (path[0] === 0 || path[0] === 2),
        comment: envelopeComment(example.name),
        width: 100,
      }),
      '```',
      '',
    );
  });
  out.push(END_MARKER);
  return out.join('\n');
}

/** Finds docs/wire-format.md from the script's folder (source or dist/). */
export function docPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'docs')))
      return join(dir, 'docs', 'wire-format.md');
    dir = dirname(dir);
  }
  throw new Error('docs/wire-format.md not found above the script');
}

/** The generated section as it stands in the doc, or undefined when the markers are missing. */
export function sectionInDoc(text: string): string | undefined {
  const begin = text.indexOf(BEGIN_MARKER);
  const end = text.indexOf(END_MARKER);
  if (begin < 0 || end < begin) return undefined;
  return text.slice(begin, end + END_MARKER.length);
}

function main(args: readonly string[]): void {
  if (args.includes('--resign')) {
    console.log(JSON.stringify(resign(), null, 2));
    return;
  }
  const section = renderExamples();
  if (!args.includes('--write')) {
    console.log(section);
    return;
  }
  console.log(`updated ${writeExamplesToDoc(section)}`);
}

/** Replaces the generated section of docs/wire-format.md; returns the file's path. */
export function writeExamplesToDoc(section: string = renderExamples()): string {
  const path = docPath();
  const text = readFileSync(path, 'utf8');
  const current = sectionInDoc(text);
  if (current === undefined) throw new Error(`${path} has no ${BEGIN_MARKER} ... ${END_MARKER} section`);
  writeFileSync(
    path,
    text.replace(current, () => section),
  );
  return path;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2));
}
