import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    // The pool is sized here, at the root (vitest 3 ignores a project's own maxWorkers). One file at
    // a time: on the 2-core CI machine two e2e files at once took twice as long each (sum of file
    // times 3025 s against 1482 s, the whole run 1749 s against 1734 s), since the load generators,
    // Caddy, the apps and the image builds already keep both cores busy; and the doubled load only
    // made timing-sensitive tests slower, never faster.
    maxWorkers: 1,
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
