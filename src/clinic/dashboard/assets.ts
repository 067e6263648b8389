import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The files the dashboard's pages load, all served by the dashboard itself (never a CDN: the CSP allows
 * `script-src 'self'` and `style-src 'self'` only, and a clinic's network may not reach the internet). A fixed
 * table read once at start: a URL names one of these or nothing, so no path from a request ever reaches the
 * file system. The page scripts live in src/clinic/dashboard/assets/ (plain ES modules, no build step); uPlot
 * comes from its npm package.
 */
export interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

/** The page scripts: this package's src/clinic/dashboard/assets, found from here in a checkout and in dist/. */
function pageScriptsDir(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'rpm-gateway') return join(dir, 'src', 'clinic', 'dashboard', 'assets');
    } catch {
      // not here; look one folder up
    }
  }
  throw new Error('the dashboard cannot find its page scripts (src/clinic/dashboard/assets)');
}

export const PAGE_SCRIPTS = ['live.js', 'format.js', 'tiles.js', 'patient.js', 'alarms.js'] as const;

export function loadAssets(): ReadonlyMap<string, Asset> {
  const require = createRequire(import.meta.url);
  // uplot's package.json "main" is dist/uPlot.cjs.js; the browser build and stylesheet sit beside it.
  const uplotDist = dirname(require.resolve('uplot'));
  const scripts = pageScriptsDir();
  const assets = new Map<string, Asset>([
    ['/assets/uplot.js', { type: JS, body: readFileSync(join(uplotDist, 'uPlot.iife.min.js')) }],
    ['/assets/uplot.css', { type: CSS, body: readFileSync(join(uplotDist, 'uPlot.min.css')) }],
  ]);
  for (const name of PAGE_SCRIPTS) {
    assets.set(`/assets/${name}`, { type: JS, body: readFileSync(join(scripts, name)) });
  }
  return assets;
}
