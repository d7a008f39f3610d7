import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', '.hub/**'],
    // One PostgreSQL for the run (embedded, or DATABASE_URL's server); each test file makes its own database.
    globalSetup: ['tests/helpers/global-setup.ts'],
    // A fixed key for the tests that store secrets; tests of the key handling set their own.
    env: { HUB_ENCRYPTION_KEY: '0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0' },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: more workers only contend.
    maxWorkers: 2,
  },
});
