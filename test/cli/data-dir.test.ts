import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rpm-cli-data-dir-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('a data directory that is a file', () => {
  const commands = [
    ['store', 'status'],
    ['store', 'rekey'],
    ['store', 'verify-audit'],
    ['devices'],
    ['forget', 'd1-0123456789abcdef', '--yes'],
    ['pair', '--backend', 'sim', '--seconds', '0.2', '--pick', '1'],
    ['certs', 'csr', '--gateway-id', 'gw-0042'],
  ];

  it.each(commands.map((command) => [command.slice(0, 2).join(' '), command] as const))(
    '%s: says so, naming the path, and changes nothing',
    async (_, command) => {
      const file = join(dir, 'state');
      await writeFile(file, 'not a folder\n');
      for (const dataDir of [file, join(file, 'below')]) {
        const result = await runCli(command, { env: { RPM_GATEWAY_DATA_DIR: dataDir } });
        expect(result.code).toBe(1);
        expect(result.stderr).toMatch(
          new RegExp(
            `^rpm-gateway ${command[0]}: the data directory ${dataDir} is not a directory \\(.*\\).*\\[CONFIG_NOT_A_DIRECTORY\\]\\n$`,
          ),
        );
        expect(result.stderr).not.toMatch(/internal error|EEXIST|ENOTDIR/);
        expect(result.stdout).toBe('');
      }
      expect(await readFile(file, 'utf8')).toBe('not a folder\n');
    },
  );
});
