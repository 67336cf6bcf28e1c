// The first-green bench runs inside vitest only to reuse the e2e harness (Pebble, the fake Bot API,
// the stand-in images). Started by bench/first-green/run.mts.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    include: ['bench/first-green/first-green.bench.mts'],
    globalSetup: ['test/support/global-setup.ts'],
    maxWorkers: 1,
    minWorkers: 1,
    testTimeout: 60 * 60 * 1000,
    hookTimeout: 300_000,
  },
});
