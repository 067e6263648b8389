import { PassThrough } from 'node:stream';
import { main } from '../../src/cli/main.js';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `rpm-gateway <args>` in-process with captured streams, the given environment and standard input. */
export async function runCli(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; stdin?: string } = {},
): Promise<CliResult> {
  const input = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk) => {
    out += chunk;
  });
  stderr.on('data', (chunk) => {
    err += chunk;
  });
  input.end(options.stdin ?? '');
  const code = await main(args, { stdin: input, stdout, stderr, env: options.env ?? {} });
  return { code, stdout: out, stderr: err };
}
