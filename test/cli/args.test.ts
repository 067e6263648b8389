import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-cli-args-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const cli = (args: string[]) => runCli(args, { env: { RPM_GATEWAY_DATA_DIR: dir } });

/** Node's own parser wording, which a user must never see (it talks about positionals and '--'). */
const NODE_PARSER_TEXT = /Unknown option '|To specify a|argument is ambiguous|Did you forget|ERR_PARSE_ARGS/;

describe('argument mistakes, in every command', () => {
  const commands = [
    ['decode'],
    ['drivers'],
    ['scan'],
    ['pair'],
    ['devices'],
    ['forget'],
    ['store', 'status'],
    ['start'],
    ['init'],
    ['certs', 'init'],
    ['certs', 'csr'],
    ['certs', 'sign'],
    ['certs', 'check'],
  ];

  it.each(commands.map((command) => [command.join(' '), command] as const))(
    '%s: an unknown option is a usage error in the project words',
    async (_, command) => {
      const result = await cli([...command, '--bogus']);
      const [name, action] = command;
      const who = name === 'certs' ? `certs: ${action}` : name;
      const usage = name === 'certs' ? `certs ${action}` : name;
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(
        new RegExp(`^rpm-gateway ${who}: unknown option --bogus\\n\\nUsage:\\s+rpm-gateway ${usage}`),
      );
      expect(result.stderr).not.toMatch(NODE_PARSER_TEXT);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    },
  );

  it('a negative number is the value of the option before it, checked by that option', async () => {
    const days = await cli(['certs', 'init', '--dir', join(dir, 'ca'), '--days', '-5']);
    expect(days.code).toBe(2);
    expect(days.stderr).toMatch(
      /^rpm-gateway certs: init: --days must be a whole number from 1 to 825 \(got "-5"\)\n/,
    );
    expect(days.stderr).toMatch(/\n\nUsage: rpm-gateway certs init/); // the action's help, not the list of actions
    const seconds = await cli(['scan', '--seconds', '-1', '--backend', 'sim']);
    expect([seconds.code, seconds.stderr]).toEqual([
      2,
      expect.stringMatching(/^rpm-gateway scan: --seconds must be/),
    ]);
    for (const result of [days, seconds]) expect(result.stderr).not.toMatch(NODE_PARSER_TEXT);
  });

  it('a missing value, a value given to a flag, and an unexpected argument are usage errors too', async () => {
    const missing = await cli(['certs', 'sign', '--csr']);
    expect([missing.code, missing.stderr]).toEqual([
      2,
      expect.stringMatching(/^rpm-gateway certs: sign: option --csr needs a value/),
    ]);
    const forgotten = await cli(['pair', '--label', '--yes']);
    expect([forgotten.code, forgotten.stderr]).toEqual([
      2,
      expect.stringMatching(/^rpm-gateway pair: option --label needs a value \(write --label=<value>/),
    ]);
    const flag = await cli(['drivers', '--json=yes']);
    expect([flag.code, flag.stderr]).toEqual([
      2,
      expect.stringMatching(/^rpm-gateway drivers: option --json takes no value\n/),
    ]);
    const extra = await cli(['drivers', 'extra']);
    expect([extra.code, extra.stderr]).toEqual([
      2,
      expect.stringMatching(/^rpm-gateway drivers: unexpected argument "extra": this command takes none\n/),
    ]);
    for (const result of [missing, forgotten, flag, extra])
      expect(result.stderr).not.toMatch(NODE_PARSER_TEXT);
  });
});
