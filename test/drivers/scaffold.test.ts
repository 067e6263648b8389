import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkDriver } from '../../src/drivers/conformance.js';
import { readFixtureFile } from '../../src/drivers/fixtures.js';
import { loadDriverModules } from '../../src/drivers/loader.js';
import { scaffoldDriver } from '../../src/drivers/scaffold.js';

// The scaffold is written inside the repository (.tmp/ is git-ignored) so that its `rpm-gateway/sdk` import
// resolves exactly as a vendor's would.
await mkdir(join(import.meta.dirname, '../../.tmp'), { recursive: true }); // absent on a clean clone
const root = await mkdtemp(join(import.meta.dirname, '../../.tmp/scaffold-'));
afterAll(() => rm(root, { recursive: true, force: true }));

describe('driver:new scaffold', () => {
  it('writes a driver that passes the conformance kit as written', async () => {
    const files = await scaffoldDriver({ root, id: 'vendor/acme-ox100', name: 'Acme OX-100' });
    expect(files.map((f) => f.slice(root.length))).toEqual([
      '/vendor/acme-ox100/driver.ts',
      '/vendor/acme-ox100/fixtures.json',
      '/vendor/acme-ox100/README.md',
    ]);
    const [module] = await loadDriverModules(root);
    expect(module?.driver.id).toBe('vendor/acme-ox100');
    const report = checkDriver(
      module?.driver as NonNullable<typeof module>['driver'],
      await readFixtureFile(join(root, 'vendor/acme-ox100/fixtures.json')),
    );
    expect(report.results.map((r) => r.problems)).toEqual([[], [], []]);
    expect(report.ok).toBe(true);
    expect(await readFile(join(root, 'vendor/acme-ox100/README.md'), 'utf8')).toContain(
      'npm run driver:test',
    );
  });

  it('never overwrites an existing driver', async () => {
    await expect(scaffoldDriver({ root, id: 'vendor/acme-ox100' })).rejects.toThrow(/already exists/);
  });

  it('refuses ids that are not a devices/ folder name', async () => {
    await expect(scaffoldDriver({ root, id: 'Acme OX' })).rejects.toThrow(/vendor\/<vendor>-<model>/);
  });
});
