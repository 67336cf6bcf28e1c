// Decides whether e2e suites run: they need a real Docker engine with Compose v2.
// Without one they skip loudly; with REQUIRE_DOCKER=1 (CI) a missing engine is a failure.
import { execFileSync } from 'node:child_process';
import { describe, it } from 'vitest';

function probe(): string | null {
  try {
    execFileSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'pipe', timeout: 15_000 });
  } catch {
    return 'no Docker engine answers `docker info`';
  }
  try {
    const v = execFileSync('docker', ['compose', 'version', '--short'], { stdio: 'pipe', timeout: 15_000 }).toString();
    if (!/^v?2\./.test(v.trim())) return `Compose v2 is required, found ${v.trim()}`;
  } catch {
    return 'the Compose v2 plugin (`docker compose`) is missing';
  }
  return null;
}

export const dockerMissingReason = probe();
export const requireDocker = process.env.REQUIRE_DOCKER === '1';

export function describeDocker(name: string, fn: () => void): void {
  if (!dockerMissingReason) {
    describe(name, fn);
    return;
  }
  if (requireDocker) {
    describe(name, () => {
      it('needs a Docker engine (REQUIRE_DOCKER=1)', () => {
        throw new Error(`REQUIRE_DOCKER=1 but ${dockerMissingReason}. Run: bash test/prepare-machine.sh`);
      });
    });
    return;
  }
  console.warn(`\n!!! SKIPPING e2e suite "${name}": ${dockerMissingReason}.\n!!! Run bash test/prepare-machine.sh, or set REQUIRE_DOCKER=1 to make this a failure.\n`);
  describe.skip(name, fn);
}
