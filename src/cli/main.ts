import { GatewayError, UsageError } from '../errors.js';
import { packageVersion } from '../util/package-version.js';
import { BROKER_HELP, brokerCommand } from './broker.js';
import { CERTS_HELP, certsCommand } from './certs.js';
import { CLINIC_HELP, clinicCommand } from './clinic.js';
import { CONFIG_HELP, configCommand } from './config.js';
import { DECODE_HELP, decodeCommand } from './decode.js';
import { DEMO_HELP, demoCommand } from './demo.js';
import { DEVICES_HELP, devicesCommand } from './devices.js';
import { DRIVERS_HELP, driversCommand } from './drivers.js';
import { FORGET_HELP, forgetCommand } from './forget.js';
import { INIT_HELP, initCommand } from './init.js';
import { type CommandIo, processIo } from './io.js';
import { PAIR_HELP, pairCommand } from './pair.js';
import { SCAN_HELP, scanCommand } from './scan.js';
import { START_HELP, startCommand } from './start.js';
import { STATUS_HELP, statusCommand } from './status.js';
import { STORE_HELP, storeCommand } from './store.js';

interface Command {
  readonly summary: string;
  readonly help: string;
  readonly run: (argv: readonly string[], io: CommandIo) => Promise<number>;
}

const COMMANDS: Readonly<Record<string, Command>> = {
  start: { summary: 'run the hub until SIGTERM or Ctrl-C', help: START_HELP, run: startCommand },
  demo: {
    summary:
      'the whole path on this machine: simulated devices, the hub, a broker and the clinic (npm start)',
    help: DEMO_HELP,
    run: demoCommand,
  },
  init: {
    summary: 'make a new, empty encrypted store (data directory, key, store)',
    help: INIT_HELP,
    run: initCommand,
  },
  decode: {
    summary: 'decode a characteristic payload to coded observations',
    help: DECODE_HELP,
    run: decodeCommand,
  },
  drivers: { summary: 'list the bundled device drivers', help: DRIVERS_HELP, run: driversCommand },
  scan: {
    summary: 'list nearby supported health devices by profile (no addresses)',
    help: SCAN_HELP,
    run: scanCommand,
  },
  pair: {
    summary: 'enrol a nearby health device (scan, pick, bond, check)',
    help: PAIR_HELP,
    run: pairCommand,
  },
  status: {
    summary: 'the running hub: devices, backlog, broker, clock, certificate, store (exit 3: not running)',
    help: STATUS_HELP,
    run: statusCommand,
  },
  devices: { summary: 'list the enrolled devices', help: DEVICES_HELP, run: devicesCommand },
  forget: { summary: 'remove an enrolled device', help: FORGET_HELP, run: forgetCommand },
  store: {
    summary: 'inspect the encrypted outbox, rotate its key, verify the audit log',
    help: STORE_HELP,
    run: storeCommand,
  },
  certs: {
    summary: 'development CA, enrolment (CSR, sign) and certificate checks',
    help: CERTS_HELP,
    run: certsCommand,
  },
  config: {
    summary: 'check the configuration, or print it with where each value came from',
    help: CONFIG_HELP,
    run: configCommand,
  },
  broker: {
    summary: "run the clinic's MQTT broker (mutual TLS, queues on disk) until SIGTERM",
    help: BROKER_HELP,
    run: brokerCommand,
  },
  clinic: {
    summary: "the clinic's side: init, intake, patient assignments, configuration",
    help: CLINIC_HELP,
    run: clinicCommand,
  },
};

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'rpm-gateway: remote patient monitoring hub (Bluetooth LE medical sensors -> encrypted outbox -> mTLS MQTT)',
    '',
    'Usage: rpm-gateway <command> [options]',
    '',
    'Commands:',
    ...rows,
    '',
    'Options:',
    '  -h, --help     show help (also: rpm-gateway <command> --help)',
    '  -v, --version  print the version',
  ].join('\n');
}

/** Runs one command line; returns the exit status. Errors become a message on stderr, never a stack trace. */
export async function main(argv: readonly string[], io: CommandIo = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    const topic = name === 'help' && rest[0] ? COMMANDS[rest[0]] : undefined;
    io.stdout.write(`${topic ? topic.help : mainHelp()}\n`);
    return 0;
  }
  if (name === '-v' || name === '--version') {
    io.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.stderr.write(`rpm-gateway: unknown command "${name}"\n\n${mainHelp()}\n`);
    return 2;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`rpm-gateway ${name}: ${error.message}\n\n${error.help ?? command.help}\n`);
      return 2;
    }
    if (error instanceof GatewayError) {
      io.stderr.write(`rpm-gateway ${name}: ${error.message} [${error.code}]\n`);
      return 1;
    }
    io.stderr.write(`rpm-gateway ${name}: internal error: ${(error as Error)?.message ?? String(error)}\n`);
    if (io.env.RPM_GATEWAY_DEBUG) io.stderr.write(`${(error as Error)?.stack ?? ''}\n`);
    return 70; // EX_SOFTWARE
  }
}
