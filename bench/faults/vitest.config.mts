// The fault bench runs inside vitest only to reuse the e2e harness as it is (test/support/stack.ts
// takes the images built by the global setup through vitest's inject). Started by bench/faults/run.mts.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    include: ['bench/faults/matrix.faults.mts'],
    globalSetup: ['test/support/global-setup.ts'],
    maxWorkers: 1,
    minWorkers: 1,
    testTimeout: 3 * 60 * 60 * 1000,
    hookTimeout: 300_000,
  },
});
