#!/usr/bin/env node
// The `rpm-gateway` executable (package.json "bin"). Kept apart from main.ts so tests can import main().
import { main } from './main.js';

// A reader that goes away (`rpm-gateway decode --ndjson | head -1`) is not an error: Node ignores SIGPIPE, so
// the next write fails with EPIPE and, unhandled, would end in a stack trace. Stop quietly instead, with
// status 0 as the reader asked for no more. Any other failure of stdout or stderr (a full disk behind a
// redirect) is one line on stderr, if stderr still works, and EX_IOERR (sysexits.h).
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    if (stream !== process.stderr)
      process.stderr.write(`rpm-gateway: cannot write the output: ${error.code ?? error.message}\n`);
    process.exit(74);
  });
}

const status = await main(process.argv.slice(2));
// A command is over when main() returns, even if a library still holds the event loop open: noble keeps its
// HCI socket and a timer alive with no way to close them, and a one-shot `scan --backend noble` would never
// exit. Leave once stdout and stderr have flushed what the command wrote (pipes are asynchronous).
process.exitCode = status;
let pending = 2;
const done = () => {
  if (--pending === 0) process.exit(status);
};
process.stdout.write('', done);
process.stderr.write('', done);
