import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Drivers import the SDK by its public name; in tests it is the TypeScript source, so drivers and the code
  // under test share one copy of the SDK. (Node resolves the same name to dist/ through package.json exports.)
  resolve: {
    alias: { 'rpm-gateway/sdk': fileURLToPath(new URL('./src/drivers/sdk/index.ts', import.meta.url)) },
  },
  test: {
    include: ['test/**/*.test.ts', 'devices/**/*.test.ts'],
    pool: 'forks',
    // Generous: many tests start real processes (the CLI, a hub, Mosquitto, OpenSSL), each a few seconds on a
    // busy 2-core machine. A timeout only catches a hang; no test relies on one to pass.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
