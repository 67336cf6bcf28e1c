// Is there a Docker engine with Compose v2? Kept free of vitest imports: globalSetup uses it too.
import { execFileSync } from 'node:child_process';

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

