import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const UNIT = 'config/systemd/rpm-gateway.service';

/**
 * The node options the systemd unit (config/systemd/rpm-gateway.service) starts the hub with: the words of its
 * `ExecStart=` between the interpreter and the script. Benchmarks start the hub with these same words, so they
 * measure the hub as it runs on a Pi; one place says what they are. They are on the command line rather than
 * in NODE_OPTIONS because Node refuses some V8 options there (`--min-semi-space-size`).
 */
export function unitNodeFlags(): string[] {
  const unit = readFileSync(unitPath(), 'utf8');
  const execStart = unit.match(/^ExecStart=(.*)$/m)?.[1];
  if (!execStart) throw new Error(`${UNIT} has no ExecStart=`);
  // systemd.service(5) "Command lines": words split at whitespace, quotes group. The unit quotes nothing;
  // a quote here would need systemd's own rules, so refuse rather than split it wrongly.
  if (/["'\\]/.test(execStart))
    throw new Error(`ExecStart= with quotes or escapes is not read here: ${execStart}`);
  const words = execStart.trim().split(/\s+/);
  const script = words.findIndex((word, index) => index > 0 && !word.startsWith('-'));
  if (script < 0) throw new Error(`ExecStart= names no script: ${execStart}`);
  return words.slice(1, script);
}

/** The unit in the repository, found upwards from here: this module runs as source (tests) and built (dist/). */
function unitPath(): string {
  for (let dir = import.meta.dirname; ; dir = dirname(dir)) {
    const candidate = join(dir, UNIT);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error(`${UNIT} not found above ${import.meta.dirname}`);
  }
}
