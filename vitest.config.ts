import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Drivers (and their simulator models) import the SDK by its public names; in tests they are the TypeScript
  // sources, so drivers and the code under test share one copy of the SDK. (Node resolves the same names to
  // dist/ through package.json exports.) Exact matches: a plain 'rpm-gateway/sdk' alias would also rewrite
  // 'rpm-gateway/sdk/sim' as a path below index.ts.
  resolve: {
    alias: [
      {
        find: /^rpm-gateway\/sdk$/,
        replacement: fileURLToPath(new URL('./src/drivers/sdk/index.ts', import.meta.url)),
      },
      {
        find: /^rpm-gateway\/sdk\/sim$/,
        replacement: fileURLToPath(new URL('./src/ble/sim/sdk.ts', import.meta.url)),
      },
    ],
  },
  test: {
    include: ['test/**/*.test.ts', 'devices/**/*.test.ts'],
    pool: 'forks',
    // Two test files at a time. Most files wait on real processes, sockets and fsyncs rather than compute, so on
    // a 2-core machine two at once finish the suite in about 11 minutes instead of 25-30 on a busy machine (one
    // at a time is vitest's default there: cores - 1). Every wait in the tests is for an event, with a timeout
    // that only catches a hang, so a slower machine makes them slower, not red.
    maxWorkers: 2,
    // Generous: many tests start real processes (the CLI, a hub, Mosquitto, OpenSSL), each a few seconds on a
    // busy 2-core machine. A timeout only catches a hang; no test relies on one to pass.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
