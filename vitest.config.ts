import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          // Builds the app and Caddy images once per run, only when e2e files are selected.
          globalSetup: ['test/support/global-setup.ts'],
          // Each e2e file brings up whole stacks; two at a time fits a 2-core machine.
          maxWorkers: 2,
          minWorkers: 1,
          testTimeout: 180_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
