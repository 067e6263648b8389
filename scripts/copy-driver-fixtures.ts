/**
 * Build step after `tsc`: copies each driver's fixtures.json from devices/ to dist/devices/, beside its compiled
 * driver. An installed package carries dist/ only (package.json "files"), and its `rpm-gateway drivers`
 * (captured or constructed evidence) and simulator (fixture replay) read the fixtures from there; in a checkout
 * the source copy is read first (src/drivers/fixture-paths.ts, sourceDirOf), so an edit needs no rebuild.
 */

import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { repositoryRoot } from '../src/drivers/fixture-paths.js';

const root = repositoryRoot();
let copied = 0;
for (const kind of ['sig', 'vendor']) {
  const from = join(root, 'devices', kind);
  if (!existsSync(from)) continue;
  for (const name of readdirSync(from)) {
    const fixtures = join(from, name, 'fixtures.json');
    if (!existsSync(fixtures)) continue;
    const to = join(root, 'dist', 'devices', kind, name);
    mkdirSync(to, { recursive: true });
    copyFileSync(fixtures, join(to, 'fixtures.json'));
    copied++;
  }
}
if (process.argv.includes('--verbose'))
  process.stdout.write(`copied ${copied} fixture files to dist/devices\n`);
