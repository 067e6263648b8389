import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

/** The built command line (`npm test` builds dist/ before it runs the tests). */
export const CLI_BIN = join(import.meta.dirname, '../../dist/src/cli/bin.js');

/** A running `rpm-gateway` child process: its stdout as lines (empty ones dropped), its stderr, its end. */
export interface CliProcess {
  readonly child: ChildProcess;
  readonly lines: string[];
  stderr: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `rpm-gateway <args>` with exactly the environment given (plus nothing of the test runner's), and
 * collects what it prints as it prints it, so a test can wait for a line (presence by event).
 */
export function spawnCli(args: readonly string[], env: NodeJS.ProcessEnv): CliProcess {
  const child = spawn(process.execPath, [CLI_BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const run: CliProcess = {
    child,
    lines: [],
    stderr: '',
    exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
  };
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    run.lines.push(...parts.filter((line) => line.length > 0));
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    run.stderr += chunk.toString('utf8');
  });
  return run;
}
