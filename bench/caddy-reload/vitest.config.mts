// The Caddy reload bench runs inside vitest only to reuse the e2e harness (test/support/stack.ts takes
// the images built by the global setup through vitest's inject). Started by bench/caddy-reload/run.mts.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    include: ['bench/caddy-reload/reload.bench.mts'],
    globalSetup: ['test/support/global-setup.ts'],
    maxWorkers: 1,
    minWorkers: 1,
    testTimeout: 60 * 60 * 1000,
    hookTimeout: 300_000,
  },
});
