import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * docs/errors.md promises every code a user or an operator can see. This reads the codes from the source, where
 * they are declared (not every quoted capital in src/: SQLite's and Node's own codes are not ours), and checks
 * each is documented, so a new code cannot ship undocumented again (the BLE_* codes once did).
 *
 * Where codes are declared: a string-literal union type named `...ErrorCode`; the `code` parameter of a
 * GatewayError subclass's constructor, when written as a literal union; a literal passed to `super(...)` by
 * such a subclass; and a literal passed to `new GatewayError(...)`. A GatewayError subclass whose codes none of
 * these reveals fails the test rather than being skipped.
 */
const root = join(import.meta.dirname, '..');
const CODE = /'([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z]{3,})'/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

const codesIn = (text: string) => [...text.matchAll(CODE)].map((m) => m[1] as string);

interface Declared {
  readonly unions: Map<string, string[]>;
  readonly classes: Map<string, { file: string; codeType?: string; literals: string[] }>;
  readonly direct: string[];
}

function declaredCodes(): Declared {
  const unions = new Map<string, string[]>();
  const classes = new Map<string, { file: string; codeType?: string; literals: string[] }>();
  const direct: string[] = [];
  for (const file of sourceFiles(join(root, 'src'))) {
    // Without comments: a comment inside a union may hold a ';' or quote another module's code.
    const text = readFileSync(file, 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '');
    for (const m of text.matchAll(/\btype (\w*ErrorCode)\s*=([^;]*);/g)) {
      unions.set(m[1] as string, codesIn(m[2] as string));
    }
    for (const m of text.matchAll(/\bclass (\w+) extends GatewayError \{([\s\S]*?)\n\}/g)) {
      const body = m[2] as string;
      const codeType = /declare readonly code: (\w+);/.exec(body)?.[1];
      const parameter = /constructor\(\s*code: ([^,]*),/.exec(body)?.[1] ?? '';
      const superLiteral = /super\(\s*'([A-Z_]+)'/.exec(body)?.[1];
      classes.set(m[1] as string, {
        file: relative(root, file),
        ...(codeType ? { codeType } : {}),
        literals: [...codesIn(parameter), ...(superLiteral ? [superLiteral] : [])],
      });
    }
    for (const m of text.matchAll(/new GatewayError\(\s*'([A-Z_]+)'/g)) direct.push(m[1] as string);
  }
  return { unions, classes, direct };
}

describe('docs/errors.md', () => {
  const docs = readFileSync(join(root, 'docs', 'errors.md'), 'utf8');
  const { unions, classes, direct } = declaredCodes();

  it('knows where every error class declares its codes', () => {
    // Sanity: the scan finds the classes and unions it must, so the next test cannot pass on an empty list.
    expect([...classes.keys()]).toEqual(
      expect.arrayContaining(['BleError', 'StoreError', 'PkiError', 'WireError', 'UsageError']),
    );
    expect(unions.get('BleErrorCode')).toContain('BLE_TIMEOUT');
    for (const [name, { file, codeType, literals }] of classes) {
      const known = (codeType !== undefined && unions.has(codeType)) || literals.length > 0;
      expect(known, `${name} (${file}): declare its codes as a '...ErrorCode' union`).toBe(true);
    }
  });

  it('documents every code the source declares', () => {
    const codes = new Set([
      ...[...unions.values()].flat(),
      ...[...classes.values()].flatMap((c) => c.literals),
      ...direct,
    ]);
    expect(codes.size).toBeGreaterThan(60);
    const missing = [...codes].filter((code) => !docs.includes(`\`${code}\``)).sort();
    expect(missing, 'codes missing from docs/errors.md').toEqual([]);
  });
});
