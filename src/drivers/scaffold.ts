import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GatewayError } from '../errors.js';

export interface ScaffoldOptions {
  /** The devices/ folder to write into. */
  readonly root: string;
  /** "vendor/<vendor>-<model>" (or "sig/<profile>"). */
  readonly id: string;
  /** Human name, e.g. "Acme OX-100 pulse oximeter". */
  readonly name?: string;
  /** Service and characteristic UUIDs of the vendor protocol; random placeholders when not given. */
  readonly service?: string;
  readonly characteristic?: string;
  /** Make the UUIDs repeatable (tests). */
  readonly uuid?: () => string;
}

const ID = /^(sig|vendor)\/[a-z0-9]+(?:-[a-z0-9]+)*$/;

/**
 * Writes a working driver skeleton: driver.ts (a pulse-oximeter style frame decoder to adapt), fixtures.json
 * (one good frame, a truncated and a padded one) and README.md. As written it passes `npm run driver:test`
 * (the simulator replays its fixtures until the vendor writes a sim.ts), the whole test suite and, once
 * `npm run driver:new` has run the formatter over it, Biome: a vendor starts from green and changes one thing at
 * a time. Its fixtures are placeholders, marked constructed, so the driver shows as `unverified` until a real
 * capture is added. Refuses to overwrite an existing folder.
 */
export async function scaffoldDriver(options: ScaffoldOptions): Promise<string[]> {
  if (!ID.test(options.id)) {
    throw new GatewayError(
      'USAGE',
      `driver id must look like vendor/<vendor>-<model> (lowercase), got ${options.id}`,
    );
  }
  const control = (text: string) =>
    [...text].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f);
  if (options.name !== undefined && (!options.name.trim() || control(options.name))) {
    throw new GatewayError('USAGE', 'the device name must be one line of text');
  }
  const uuid = options.uuid ?? randomUUID;
  const service = options.service ?? uuid();
  const characteristic = options.characteristic ?? uuid();
  const name = options.name ?? `${options.id.split('/')[1]} pulse oximeter`;
  const dir = join(options.root, options.id);
  try {
    await mkdir(dir, { recursive: false });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new GatewayError('USAGE', `${dir} already exists; pick another id`);
    if (code !== 'ENOENT') throw cause;
    await mkdir(dir, { recursive: true });
  }
  const files: Record<string, string> = {
    'driver.ts': driverSource(options.id, name, service, characteristic),
    'fixtures.json': `${JSON.stringify(fixtures(characteristic), null, 2)}\n`,
    'README.md': readme(options.id, name, service, characteristic),
  };
  for (const [file, text] of Object.entries(files)) await writeFile(join(dir, file), text, { flag: 'wx' });
  return Object.keys(files).map((file) => join(dir, file));
}

function driverSource(id: string, name: string, service: string, characteristic: string): string {
  return `import { ByteReader, type Decoder, defineDriver, observeInteger } from 'rpm-gateway/sdk';

/**
 * ${name}.
 * One notification = [SpO2 %, pulse rate /min] (2 bytes).
 * Replace this frame layout with your device's; cite your protocol document in README.md and \`sources\`.
 */
const decodeFrame: Decoder = (bytes) => {
  const r = new ByteReader(bytes, ${quote(`${name} frame`)});
  const spo2 = r.u8('SpO2');
  const pulseRate = r.u8('pulse rate');
  r.end(); // extra bytes mean the frame is not what we think it is: a DecodeError, never a guess
  return [
    {
      observations: [
        observeInteger('MDC_PULS_OXIM_SAT_O2', spo2, '%'),
        observeInteger('MDC_PULS_OXIM_PULS_RATE', pulseRate, '/min'),
      ],
      time: null, // the frame carries no device timestamp; the gateway stamps its receipt time
      kind: 'measurement',
    },
  ];
};

export default defineDriver({
  id: '${id}',
  version: '0.1.0',
  name: ${quote(name)},
  category: 'pulse-oximeter',
  match: { services: [${quote(service)}] },
  characteristics: [
    {
      uuid: ${quote(characteristic)},
      service: ${quote(service)},
      access: 'notify',
      name: 'Measurement frame',
      decode: decodeFrame,
      emits: [
        { code: 'MDC_PULS_OXIM_SAT_O2', units: ['%'] },
        { code: 'MDC_PULS_OXIM_PULS_RATE', units: ['/min'] },
      ],
    },
  ],
  sources: [${quote(`${name} protocol description (replace with your document and version)`)}],
});
`;
}

function fixtures(characteristic: string): unknown {
  return {
    sources: {
      placeholder: {
        kind: 'constructed',
        cite:
          'Placeholder vectors written by npm run driver:new. Replace them with frames from your protocol document ' +
          '(kind "constructed", cite the document and section) and with real captures (kind "capture", with ' +
          '"published" and a cite naming the device, its firmware and how the bytes were captured)',
      },
    },
    fixtures: [
      {
        name: 'SpO2 98 %, pulse 72 /min',
        char: characteristic,
        hex: '6248',
        source: 'placeholder',
        expect: {
          observations: [
            { code: 'MDC_PULS_OXIM_SAT_O2', value: 98, unit: '%' },
            { code: 'MDC_PULS_OXIM_PULS_RATE', value: 72, unit: '/min' },
          ],
          time: null,
          kind: 'measurement',
        },
      },
      {
        name: 'frame cut after SpO2',
        char: characteristic,
        hex: '62',
        source: 'placeholder',
        error: { code: 'DECODE_TRUNCATED', offset: 1 },
      },
      {
        name: 'frame with an extra byte',
        char: characteristic,
        hex: '624800',
        source: 'placeholder',
        error: { code: 'DECODE_TRAILING_BYTES', offset: 2 },
      },
    ],
  };
}

function readme(id: string, name: string, service: string, characteristic: string): string {
  // No tables and a blank line after each heading: the file is formatted as Biome formats markdown.
  return `# ${name} (\`${id}\`)

Status: skeleton from \`npm run driver:new\`. Replace every placeholder, then run
\`npm run driver:test -- devices/${id}\`.

- Service: \`${service}\`
- Characteristic: \`${characteristic}\` (notify), one measurement frame
- Observations: MDC_PULS_OXIM_SAT_O2 (%), MDC_PULS_OXIM_PULS_RATE (/min)
- Simulator: replays \`fixtures.json\` until a \`sim.ts\` models the device (devices/README.md)
- Evidence: unverified until \`fixtures.json\` holds a real capture of a measurement

## Sources

- (name the protocol document, its version and where a maintainer can get it)

## Quirks

- none yet (declare each in \`quirks\` with a one-line reason)
`;
}

/** A TypeScript string literal in the project's style: single quotes unless the text holds one. */
function quote(text: string): string {
  if (text.includes("'") && !text.includes('"')) return JSON.stringify(text);
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
