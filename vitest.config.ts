import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Resolve `rpm-gateway/sdk` to the TypeScript source (package.json exports, "source" condition), so tests
  // and drivers share one copy of the SDK with the code under test.
  resolve: { conditions: ['source'] },
  test: {
    include: ['test/**/*.test.ts', 'devices/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 20_000,
  },
});
