// Benchmarks that need the e2e harness (the images the global setup builds, injected into
// test/support/stack.ts) run as one vitest file with a config of their own; this starts it.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const REPO = path.resolve(import.meta.dirname, '..');

/** Run `vitest run --config <config>` in the repository with these extra env vars; exits with its status. */
export function runBenchInVitest(config: string, env: Record<string, string>, timeoutMs: number): never {
  const r = spawnSync(process.execPath, [path.join(REPO, 'node_modules/vitest/vitest.mjs'), 'run', '--config', config, '--reporter', 'dot'], {
    cwd: REPO,
    stdio: 'inherit',
    env: { ...process.env, NO_COLOR: '1', ...env },
    timeout: timeoutMs,
  });
  process.exit(r.status ?? 1);
}
