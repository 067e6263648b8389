#!/usr/bin/env node
// The `rpm-gateway` executable (package.json "bin"). Kept apart from main.ts so tests can import main().
import { main } from './main.js';

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
