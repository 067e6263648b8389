import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evidenceOf } from '../../src/drivers/evidence.js';
import { type FixtureFile, readFixtureFile, sourceOf } from '../../src/drivers/fixtures.js';
import { loadDriverModules } from '../../src/drivers/loader.js';
import { defineDriver, observeInteger } from '../../src/drivers/sdk/index.js';

const dir = await mkdtemp(join(tmpdir(), 'provenance-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

const FIXTURE = {
  name: 'one frame',
  char: 'fff1',
  hex: '6248',
  expect: { observations: [], time: null },
};

async function fixtureFile(sources: unknown, fixtures: unknown[] = []): Promise<string> {
  const path = join(dir, `f${Math.random().toString(36).slice(2)}.json`);
  await writeFile(path, JSON.stringify({ sources, fixtures }));
  return path;
}

const driver = defineDriver({
  id: 'vendor/acme-ox1',
  version: '0.1.0',
  name: 'Acme OX1',
  category: 'pulse-oximeter',
  match: { services: ['fff0'] },
  characteristics: [
    {
      uuid: 'fff1',
      service: 'fff0',
      access: 'notify',
      name: 'frame',
      decode: (bytes) => [
        { observations: [observeInteger('MDC_PULS_OXIM_SAT_O2', bytes[0] ?? 0, '%')], time: null },
      ],
      emits: [{ code: 'MDC_PULS_OXIM_SAT_O2', units: ['%'] }],
    },
    { uuid: '2a24', service: '180a', access: 'read', name: 'model', decode: () => [], emits: [] },
  ],
  sources: ['test'],
});

describe('fixture provenance (fixtures.json "sources")', () => {
  it('reads a plain-string source as constructed: an old file never claims a capture', async () => {
    const file = await readFixtureFile(
      await fixtureFile({ doc: 'Acme protocol 1.2, 3.1' }, [{ ...FIXTURE, source: 'doc' }]),
    );
    expect(sourceOf(file.sources.doc as string)).toEqual({
      kind: 'constructed',
      cite: 'Acme protocol 1.2, 3.1',
    });
    expect(evidenceOf(driver, file)).toEqual({ capture: 0, constructed: 1, verified: false });
  });

  it.each([
    [{ kind: 'capture', cite: 'a forum post' }, /where it was published/],
    [{ kind: 'capture', published: 'somewhere', cite: 'x' }, /where it was published/],
    [{ kind: 'measured', cite: 'x' }, /kind must be/],
    [{ kind: 'constructed', cite: '' }, /cite must say/],
    [{ kind: 'constructed', published: 'forum', cite: 'x' }, /captures only/],
    ['', /citation is empty/],
    [42, /expected/],
  ])('refuses the source %j with a clear message', async (entry, message) => {
    const path = await fixtureFile({ s: entry });
    await expect(readFixtureFile(path)).rejects.toThrow(message);
    await expect(readFixtureFile(path)).rejects.toThrow(/sources\.s/);
  });

  it('counts fixtures per kind; only a captured measurement verifies the driver', () => {
    const file: FixtureFile = {
      sources: {
        doc: { kind: 'constructed', cite: 'Acme protocol 1.2' },
        log: { kind: 'capture', published: 'reader-log', cite: 'acme-reader notes, step 3' },
      },
      fixtures: [
        { ...FIXTURE, source: 'doc' },
        { ...FIXTURE, name: 'model name', char: '2a24', hex: '41', source: 'log' },
      ],
    };
    // a captured model-name string says nothing about the measurement decoder
    expect(evidenceOf(driver, file)).toEqual({ capture: 1, constructed: 1, verified: false });
    const captured = { ...file, fixtures: [...file.fixtures, { ...FIXTURE, name: 'real', source: 'log' }] };
    expect(evidenceOf(driver, captured)).toEqual({ capture: 2, constructed: 1, verified: true });
  });

  it('every bundled fixture file states the kind of each of its sources', async () => {
    const root = join(import.meta.dirname, '../../devices');
    const modules = await loadDriverModules(root);
    expect(modules.length).toBeGreaterThan(0);
    for (const { driver: d, dir: driverDir } of modules) {
      const file = await readFixtureFile(join(driverDir, 'fixtures.json'));
      for (const [id, entry] of Object.entries(file.sources)) {
        expect(typeof entry, `${d.id} sources.${id}`).toBe('object');
      }
    }
  });
});
