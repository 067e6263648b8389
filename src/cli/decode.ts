import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { decodePayload } from '../drivers/decode-payload.js';
import { loadBundledRegistry } from '../drivers/default-registry.js';
import type { DriverRegistry } from '../drivers/registry.js';
import { DecodeError, UsageError } from '../errors.js';
import { parseCommandArgs } from './args.js';
import type { CommandIo } from './io.js';

export const DECODE_HELP = `Usage:
  rpm-gateway decode <characteristic-uuid> <hex>      decode one payload, print one JSON object
  rpm-gateway decode --ndjson < requests.ndjson        one {"char":"2a35","hex":"..."} per line in,
                                                       one JSON result (or {"error":...}) per line out
Options:
  --driver <id>   use this driver's decoder, named as "rpm-gateway drivers" lists it (sig/heart-rate@1.0.0)
                  or by its id alone (sig/heart-rate) (default: the Bluetooth SIG profile driver)
  --pretty        indent the JSON (single mode only)
  --list          list every characteristic a bundled driver can decode
  -h, --help      show this help

The UUID is the 16-bit form (2a35, 0x2A35) or the 128-bit form. Hex may contain spaces or colons.
Output: {"observations":[{"code":"MDC_...","value":<number|null>,"unit":"<UCUM>"}...],"time":<ISO|null>,...}
Exit status: 0 decoded, 1 bad input (the JSON error says why and at which byte), 2 usage error.`;

export async function decodeCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      ndjson: { type: 'boolean' },
      driver: { type: 'string' },
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
  if (values.list) {
    for (const uuid of registry.characteristics()) {
      const { driver, spec } = registry.decoderFor(uuid);
      io.stdout.write(`${uuid.padEnd(36)}  ${spec.name}  (${driver.id})\n`);
    }
    return 0;
  }
  if (values.ndjson) {
    if (positionals.length > 0) throw new UsageError('--ndjson reads requests from stdin; give no arguments');
    return decodeStream(registry, io.stdin, io.stdout, driverId);
  }
  if (positionals.length !== 2)
    throw new UsageError('decode needs <characteristic-uuid> <hex> (or --ndjson)');
  const [char, hex] = positionals as [string, string];
  try {
    const output = decodePayload(registry, char, hex, driverId);
    io.stdout.write(`${JSON.stringify(output, null, values.pretty ? 2 : undefined)}\n`);
    return 0;
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
async function decodeStream(
  registry: DriverRegistry,
  input: Readable,
  output: Writable,
  driverId: string | undefined,
): Promise<number> {
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let buffer = '';
  for await (const line of lines) {
    buffer += `${decodeLine(registry, line, driverId)}\n`;
    if (buffer.length >= 64 * 1024) {
      if (!output.write(buffer)) await new Promise((resolve) => output.once('drain', resolve));
      buffer = '';
    }
  }
  if (buffer.length > 0) output.write(buffer);
  return 0;
}

function decodeLine(registry: DriverRegistry, line: string, driverId: string | undefined): string {
  try {
    const { char, hex } = parseRequest(line);
    return JSON.stringify(decodePayload(registry, char, hex, driverId));
  } catch (error) {
    if (!(error instanceof DecodeError)) throw error;
    return JSON.stringify({ error: error.toJSON() });
  }
}

function parseRequest(line: string): { char: string; hex: string } {
  if (line.trim() === '')
    throw new DecodeError('DECODE_EMPTY_INPUT', 'empty line: expected {"char":..,"hex":..}');
  let request: unknown;
  try {
    request = JSON.parse(line);
  } catch {
    throw new DecodeError('DECODE_BAD_REQUEST', 'line is not JSON: expected {"char":..,"hex":..}');
  }
  const { char, hex } = (request ?? {}) as { char?: unknown; hex?: unknown };
  if (typeof char !== 'string' || typeof hex !== 'string') {
    throw new DecodeError(
      'DECODE_BAD_REQUEST',
      'expected {"char":"<uuid>","hex":"<payload>"} with string values',
    );
  }
  return { char, hex };
}
