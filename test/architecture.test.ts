import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Which part of the code may import which, read from the sources themselves. Each rule names a folder and the
 * only project paths its files may import (besides their own folder), or the paths they must never import.
 * Node built-ins and npm packages are not this test's business: only relative imports into the repository are.
 *
 * How imports are found: an ES module's import and re-export statements are top-level, and the formatter
 * (Biome) starts each on a line of its own, so a statement is a line starting with `import` or `export` up to
 * its `from '...'` (`import type` included); dynamic `import('...')` is matched anywhere. A comment line starts
 * with `//` or ` *` and so is never read as an import; an `import('...')` inside a comment would be, which can
 * only make this test fail, never pass wrongly. (TypeScript 7's compiler has no JavaScript API to ask instead.)
 */
interface Rule {
  /** A folder, relative to the repository root. */
  readonly folder: string;
  /** Why, in one line (printed with a violation). */
  readonly because: string;
  /** Files and folders the folder may import besides itself; absent: anything not in `never`. */
  readonly only?: readonly string[];
  readonly never?: readonly string[];
}

const RULES: readonly Rule[] = [
  {
    folder: 'src/model',
    only: [],
    because: 'the value types are the bottom layer: everything may use them, they use nothing',
  },
  {
    folder: 'src/gatt',
    only: ['src/errors.ts'],
    because: 'the codecs are pure: bytes in, specification structs out',
  },
  {
    folder: 'src/wire',
    only: ['src/model', 'src/errors.ts'],
    because: 'the wire format is a pure codec of value types: any gateway or clinic can use it alone',
  },
  {
    folder: 'src/drivers/sdk',
    only: ['src/gatt', 'src/model', 'src/errors.ts'],
    because: 'drivers see the SDK only, and the SDK exposes codecs and value types only',
  },
  {
    folder: 'devices',
    only: [],
    because:
      'a driver folder (driver, codec, simulator model) uses the SDK by its package names only: no core edit, no core import',
  },
  {
    folder: 'scripts',
    never: ['test'],
    because:
      'benchmarks and tools are built and shipped; tests are not (shared helpers live in scripts/support)',
  },
];

const ROOT = join(import.meta.dirname, '..');

/** Every TypeScript source under `folder` (relative to the root), as root-relative POSIX paths. */
function sourcesUnder(folder: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(join(ROOT, dir))) {
      const path = posix.join(dir, name);
      if (statSync(join(ROOT, path)).isDirectory()) walk(path);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) found.push(path);
    }
  };
  walk(folder);
  return found;
}

/** The repository paths a source imports (relative specifiers only), `.js` specifiers read as their `.ts` source. */
const STATEMENT = /^(?:import|export)\b[^;]*?\bfrom\s*(['"])([^'"]+)\1/gm;
const SIDE_EFFECT = /^import\s*(['"])([^'"]+)\1/gm;
const DYNAMIC = /\bimport\(\s*(['"])([^'"]+)\1\s*\)/g;

function importsOf(file: string, source: string): string[] {
  const specifiers = [STATEMENT, SIDE_EFFECT, DYNAMIC].flatMap((pattern) =>
    [...source.matchAll(pattern)].map((match) => match[2] as string),
  );
  return specifiers
    .filter((specifier) => specifier.startsWith('.'))
    .map((specifier) => posix.normalize(posix.join(posix.dirname(file), specifier)).replace(/\.js$/, '.ts'));
}

function within(path: string, area: string): boolean {
  return path === area || path.startsWith(`${area}/`);
}

/** "file imports target" for each import that breaks the rule. */
function violations(rule: Rule, file: string, source: string): string[] {
  return importsOf(file, source)
    .filter((target) => !within(target, rule.folder))
    .filter(
      (target) =>
        (rule.only !== undefined && !rule.only.some((area) => within(target, area))) ||
        (rule.never ?? []).some((area) => within(target, area)),
    )
    .map((target) => `${file} imports ${target}`);
}

describe('architecture: allowed dependencies per folder', () => {
  for (const rule of RULES) {
    const allowed = rule.only
      ? `only ${rule.only.join(', ') || 'nothing'}`
      : `never ${rule.never?.join(', ')}`;
    it(`${rule.folder} imports ${allowed} (${rule.because})`, () => {
      const files = sourcesUnder(rule.folder);
      expect(files.length, `no sources under ${rule.folder}: a rule about nothing`).toBeGreaterThan(0);
      const found = files.flatMap((file) => violations(rule, file, readFileSync(join(ROOT, file), 'utf8')));
      expect(found).toEqual([]);
    });
  }

  it('the checker sees every kind of import, and only real ones', () => {
    const rule = RULES.find((r) => r.folder === 'src/gatt') as Rule;
    const source = [
      "import { DecodeError } from '../errors.js';",
      "import type { Outbox } from '../store/outbox.js';",
      "export { Uplink } from '../uplink/uplink.js';",
      "const later = () => import('../session/presence.js');",
      "import { helper } from './byte-reader.js';",
      'import {',
      '  type Lease,',
      '  Outbox as Store,',
      "} from '../store/outbox.js';",
      "import { createHash } from 'node:crypto';",
      "// import { x } from '../cli/main.js';",
      'const text = "import { y } from \'../config/paths.js\'";',
    ].join('\n');
    expect(violations(rule, 'src/gatt/example.ts', source)).toEqual([
      'src/gatt/example.ts imports src/store/outbox.ts',
      'src/gatt/example.ts imports src/uplink/uplink.ts',
      'src/gatt/example.ts imports src/store/outbox.ts',
      'src/gatt/example.ts imports src/session/presence.ts',
    ]);
    const scripts = RULES.find((r) => r.folder === 'scripts') as Rule;
    expect(
      violations(scripts, 'scripts/support/x.ts', "import { until } from '../../test/support/until.js';"),
    ).toEqual(['scripts/support/x.ts imports test/support/until.ts']);
  });
});
