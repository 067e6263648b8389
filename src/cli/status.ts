import { renderStatus } from '../control/status.js';
import { UsageError } from '../errors.js';
import { parseCommandArgs } from './args.js';
import { RUNTIME_DIR_HELP, RUNTIME_DIR_OPTION, useControl } from './control-access.js';
import { STORE_OPTIONS, STORE_OPTIONS_HELP } from './enrolment-store.js';
import type { CommandIo } from './io.js';

/** LSB init script actions, "status": 3 = program is not running (refspecs.linuxfoundation.org, LSB 5.0). */
export const EXIT_NOT_RUNNING = 3;

export const STATUS_HELP = `Usage: rpm-gateway status [--json]

Shows the running hub: each enrolled device (session state, last seen, battery), the readings waiting per
lane with the oldest one's age, the broker connection, whether the clock is synchronised, the certificate's
expiry, the store's size, gap records, and readings sent on the alert lane. It asks the hub through its
control socket (as root or the service user: docs/control-socket.md).

With no hub running it says so, shows what the store holds (devices, backlog, size, gaps), and exits 3
("program is not running", as LSB init scripts' status does), so scripts can tell the two apart.
Options:
  --json                 one JSON object (the same fields; docs/control-socket.md)
${RUNTIME_DIR_HELP}
${STORE_OPTIONS_HELP}
  -h, --help             show this help`;

export async function statusCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      json: { type: 'boolean' },
      ...STORE_OPTIONS,
      ...RUNTIME_DIR_OPTION,
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(`${STATUS_HELP}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError('status takes no arguments');
  const opened = await useControl(values, io, { create: false });
  if (!opened) {
    // Neither a hub nor a store: nothing to read, and nothing is created to find that out.
    io.stdout.write(
      values.json
        ? `${JSON.stringify({ hub: { running: false, gatewayId: null, since: null }, store: null })}\n`
        : 'hub          not running, and no store yet (rpm-gateway init, then start the service)\n',
    );
    return EXIT_NOT_RUNNING;
  }
  try {
    const status = await opened.control.status();
    io.stdout.write(values.json ? `${JSON.stringify(status)}\n` : renderStatus(status));
    return status.hub.running ? 0 : EXIT_NOT_RUNNING;
  } finally {
    opened.close();
  }
}
