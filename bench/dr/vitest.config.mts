// The RTO bench runs inside vitest only to reuse the e2e harness (the images built by the global
// setup reach test/support/stack.ts through vitest's inject). Started by bench/dr/run.mts.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    include: ['bench/dr/rto.bench.mts'],
    globalSetup: ['test/support/global-setup.ts'],
    maxWorkers: 1,
    minWorkers: 1,
    testTimeout: 60 * 60 * 1000,
    hookTimeout: 300_000,
  },
});
