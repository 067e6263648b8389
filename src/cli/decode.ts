import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import {
  type DriverSelection,
  decodeStream as decodeNotifications,
  decodePayload,
} from '../drivers/decode-payload.js';
import { loadBundledRegistry } from '../drivers/default-registry.js';
import type { DriverRegistry } from '../drivers/registry.js';
import { DecodeError, UsageError } from '../errors.js';
import { parseCommandArgs } from './args.js';
import type { CommandIo } from './io.js';

export const DECODE_HELP = `Usage:
  rpm-gateway decode <characteristic-uuid> <hex>      decode one payload, print one JSON object
  rpm-gateway decode --ndjson < requests.ndjson        one request per line in, one JSON answer per line out
Options:
  --driver <id>     use this driver's decoder, named as "rpm-gateway drivers" lists it (sig/heart-rate@1.0.0)
                    or by its id alone (sig/heart-rate) (default: the Bluetooth SIG profile driver)
  --service <uuid>  pick the driver a hub picks for a device advertising this service (with --name: both)
  --name <name>     ... advertising this local name
  --pretty          indent the JSON (single mode only)
  --list            list every characteristic a bundled driver can decode
  -h, --help        show this help

NDJSON requests:
  {"char":"2a35","hex":"..."}                          one payload, answered as in single mode
  {"char":"...","hex":"...","service":"<uuid>","name":"<local name>"}
                    vendor devices: the driver a hub picks for a device advertising this service and/or name
                    (without them a SIG characteristic decodes with the strict SIG driver)
  {"char":"...","stream":["<hex>","<hex>",...]}       notifications of one connection, in order, fed through
                    the driver's framer: {"readings":[{"observations":[...],"time":...},...],"errors":[...]},
                    readings in the order their frames completed; a bad checksum or garbage between frames
                    is an entry in errors ({"code":"DECODE_CHECKSUM","message":...,"bytes":<n>})
  A line's service/name take precedence over --driver, --service and --name, which apply to lines without.

The UUID is the 16-bit form (2a35, 0x2A35) or the 128-bit form. Hex may contain spaces or colons.
Output: {"observations":[{"code":"MDC_...","value":<number|null>,"unit":"<UCUM>"}...],"time":<ISO|null>,...}
  A payload holding several frames of a framed vendor stream also answers "readings":[...], and "errors":[...]
  when some of its bytes did not frame.
Exit status: 0 decoded, 1 bad input (the JSON error says why and at which byte; also when a framed payload
decoded only in part: its "errors" say why), 2 usage error. NDJSON mode answers errors per line and exits 0.`;

export async function decodeCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      ndjson: { type: 'boolean' },
      driver: { type: 'string' },
      service: { type: 'string' },
      name: { type: 'string' },
      pretty: { type: 'boolean' },
      list: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(`${DECODE_HELP}\n`);
    return 0;
  }
  const registry = await loadBundledRegistry();
  const driverId = values.driver === undefined ? undefined : bundledDriverId(registry, values.driver);
  if (driverId !== undefined && (values.service !== undefined || values.name !== undefined)) {
    throw new UsageError('give --driver, or --service/--name to pick the driver as a hub would, not both');
  }
  const selection: DriverSelection = { driverId, service: values.service, name: values.name };
  if (values.list) {
    for (const uuid of registry.characteristics()) {
      const { driver, spec } = registry.decoderFor(uuid);
      io.stdout.write(`${uuid.padEnd(36)}  ${spec.name}  (${driver.id})\n`);
    }
    return 0;
  }
  if (values.ndjson) {
    if (positionals.length > 0) throw new UsageError('--ndjson reads requests from stdin; give no arguments');
    return decodeLines(registry, io.stdin, io.stdout, selection);
  }
  if (positionals.length !== 2)
    throw new UsageError('decode needs <characteristic-uuid> <hex> (or --ndjson)');
  const [char, hex] = positionals as [string, string];
  try {
    const output = decodePayload(registry, char, hex, selection);
    io.stdout.write(`${JSON.stringify(output, null, values.pretty ? 2 : undefined)}\n`);
    return output.errors === undefined ? 0 : 1;
  } catch (error) {
    if (!(error instanceof DecodeError)) throw error;
    io.stdout.write(`${JSON.stringify({ error: error.toJSON() })}\n`);
    return 1;
  }
}

/**
 * The id of the driver `--driver` names: `<id>@<version>` exactly as `rpm-gateway drivers` prints it, or the
 * bare `<id>`. A driver that is not bundled, or a version other than the bundled one, is a usage error: a
 * decoder silently taken from another version could read the same bytes differently.
 */
function bundledDriverId(registry: DriverRegistry, name: string): string {
  const at = name.lastIndexOf('@');
  const id = at > 0 ? name.slice(0, at) : name;
  const version = at > 0 ? name.slice(at + 1) : undefined;
  const driver = registry.get(id);
  if (!driver) {
    throw new UsageError(`--driver ${name}: no bundled driver has the id ${id} (see: rpm-gateway drivers)`);
  }
  if (version !== undefined && version !== driver.version) {
    throw new UsageError(
      `--driver ${name}: the bundled ${id} is version ${driver.version}, not ${version} (see: rpm-gateway drivers)`,
    );
  }
  return driver.id;
}

/**
 * NDJSON mode: exactly one output line per input line, in order, so a tester can zip the two files. A bad
 * line yields an error line and decoding goes on.
 */
async function decodeLines(
  registry: DriverRegistry,
  input: Readable,
  output: Writable,
  selection: DriverSelection,
): Promise<number> {
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let buffer = '';
  for await (const line of lines) {
    buffer += `${decodeLine(registry, line, selection)}\n`;
    if (buffer.length >= 64 * 1024) {
      if (!output.write(buffer)) await new Promise((resolve) => output.once('drain', resolve));
      buffer = '';
    }
  }
  if (buffer.length > 0) output.write(buffer);
  return 0;
}

function decodeLine(registry: DriverRegistry, line: string, defaults: DriverSelection): string {
  try {
    const request = parseRequest(line);
    const selection: DriverSelection =
      request.service !== undefined || request.name !== undefined
        ? { service: request.service, name: request.name }
        : defaults;
    return JSON.stringify(
      request.stream === undefined
        ? decodePayload(registry, request.char, request.hex ?? '', selection)
        : decodeNotifications(registry, request.char, request.stream, selection),
    );
  } catch (error) {
    if (!(error instanceof DecodeError)) throw error;
    return JSON.stringify({ error: error.toJSON() });
  }
}

interface Request {
  readonly char: string;
  readonly hex?: string;
  readonly stream?: readonly string[];
  readonly service?: string;
  readonly name?: string;
}

const REQUEST_SHAPE =
  'expected {"char":"<uuid>","hex":"<payload>"} or {"char":"<uuid>","stream":["<hex>",...]}, optionally with "service" and "name" strings';

function parseRequest(line: string): Request {
  if (line.trim() === '')
    throw new DecodeError('DECODE_EMPTY_INPUT', 'empty line: expected {"char":..,"hex":..}');
  let request: unknown;
  try {
    request = JSON.parse(line);
  } catch {
    throw new DecodeError('DECODE_BAD_REQUEST', 'line is not JSON: expected {"char":..,"hex":..}');
  }
  const { char, hex, stream, service, name } = (request ?? {}) as Record<string, unknown>;
  const isStream = Array.isArray(stream) && stream.length > 0 && stream.every((h) => typeof h === 'string');
  if (
    typeof char !== 'string' ||
    (typeof hex === 'string') === (stream !== undefined) ||
    (stream !== undefined && !isStream) ||
    (service !== undefined && typeof service !== 'string') ||
    (name !== undefined && typeof name !== 'string')
  ) {
    throw new DecodeError('DECODE_BAD_REQUEST', REQUEST_SHAPE);
  }
  return {
    char,
    ...(typeof hex === 'string' ? { hex } : { stream: stream as string[] }),
    ...(typeof service === 'string' ? { service } : {}),
    ...(typeof name === 'string' ? { name } : {}),
  };
}
