import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    // The pool is sized here, at the root: vitest 3 ignores a project's own maxWorkers (its forks pool
    // reads only the root's, else CPUs - 1, which is 1 on a 2-core machine, and the e2e files ran one
    // after another). Two at a time fits a 2-core machine: an e2e file mostly waits on Docker.
    maxWorkers: 2,
    minWorkers: 1,
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
          testTimeout: 180_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
