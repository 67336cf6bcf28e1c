// Decides whether e2e suites run: they need a real Docker engine with Compose v2.
// Without one they skip loudly; with REQUIRE_DOCKER=1 (CI) a missing engine is a failure.
import { describe, it } from 'vitest';
import { dockerMissingReason, requireDocker } from './docker-probe.ts';

export { dockerMissingReason, requireDocker };

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
