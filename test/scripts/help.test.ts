import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Every benchmark answers `--help` with its usage and exits 0 without running anything (the built scripts, as
 * `npm run bench:*` runs them). A benchmark that ignored the flag would start a minutes-long run here instead.
 */
const SCRIPTS = [
  'bench-broker-store',
  'bench-clinic',
  'bench-clinic-store',
  'bench-dashboard',
  'bench-decode',
  'bench-fhir-export',
  'bench-runtime',
  'bench-store',
  'bench-uplink',
];

describe('benchmark --help', () => {
  it.each(SCRIPTS)('%s prints its usage and exits 0', (script) => {
    const result = spawnSync(
      process.execPath,
      [join(import.meta.dirname, `../../dist/scripts/${script}.js`), '--help'],
      {
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/Usage: npm run bench:/);
  });
});
