/** `npm run driver:new -- vendor/<vendor>-<model> [--name ...] [--service <uuid>] [--char <uuid>]` */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { repositoryRoot } from '../src/drivers/fixture-paths.js';
import { scaffoldDriver } from '../src/drivers/scaffold.js';
import { GatewayError } from '../src/errors.js';

const HELP = `Usage: npm run driver:new -- vendor/<vendor>-<model> [options]

Writes devices/vendor/<vendor>-<model>/ with driver.ts, fixtures.json and README.md, formatted by the
project's Biome: a working skeleton that passes "npm run driver:test -- devices/vendor/<vendor>-<model>",
Biome and the test suite as written (the simulator replays its fixtures). See devices/README.md.
Options:
  --name <text>      human name of the device (default: "<model> pulse oximeter")
  --service <uuid>   the vendor service UUID (default: a random placeholder)
  --char <uuid>      the measurement characteristic UUID (default: a random placeholder)
  -h, --help         show this help`;

try {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      service: { type: 'string' },
      char: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length !== 1) {
    console.log(HELP);
    process.exitCode = values.help ? 0 : 2;
  } else {
    const root = `${repositoryRoot()}/devices`;
    const files = await scaffoldDriver({
      root,
      id: (positionals[0] as string).replace(/^devices\//, '').replace(/\/$/, ''),
      ...(values.name === undefined ? {} : { name: values.name }),
      ...(values.service === undefined ? {} : { service: values.service }),
      ...(values.char === undefined ? {} : { characteristic: values.char }),
    });
    for (const file of files) console.log(`wrote ${relative(process.cwd(), file)}`);
    format(dirname(files[0] as string));
    console.log(
      `next: edit driver.ts and fixtures.json, then npm run driver:test -- ${relative(process.cwd(), root)}/${positionals[0]}`,
    );
  }
} catch (error) {
  console.error(error instanceof GatewayError ? `driver:new: ${error.message}` : error);
  process.exitCode = error instanceof GatewayError ? 2 : 70;
}

/**
 * Formats the new folder with the repository's Biome, so the skeleton passes `npm run lint` whatever name and
 * UUIDs were given (a long name moves a string onto its own line). Biome is a development dependency, which
 * a checkout used to write drivers has.
 */
function format(dir: string): void {
  const biome = createRequire(import.meta.url).resolve('@biomejs/biome/bin/biome');
  const result = spawnSync(process.execPath, [biome, 'format', '--write', dir], {
    cwd: repositoryRoot(),
    encoding: 'utf8',
  });
  if (result.status !== 0) {
    throw new GatewayError(
      'USAGE',
      `wrote ${dir}, but Biome could not format it: ${result.stderr || result.stdout}`,
    );
  }
}
