// Builds the app and Caddy images once per test run from our own Dockerfiles (stand-in bases
// through build ARGs where BUN_IMAGE / CADDY_IMAGE are set), and removes them afterwards.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { dockerMissingReason } from './docker-probe.ts';
import { repoRoot } from './run.ts';

const STALE_MS = 2 * 60 * 60 * 1000;

function docker(args: string[], opts: { quiet?: boolean } = {}): string {
  return execFileSync('docker', args, {
    cwd: repoRoot,
    stdio: opts.quiet ? 'pipe' : ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  }).toString();
}

/** Leftovers of runs that died: e2e projects older than two hours (never a run in progress). */
function removeStaleProjects() {
  const rows = docker(['ps', '-a', '--filter', 'label=com.docker.compose.project', '--format',
    '{{.Label "com.docker.compose.project"}}\t{{.CreatedAt}}'], { quiet: true });
  const stale = new Set<string>();
  for (const line of rows.split('\n').filter(Boolean)) {
    const [project, created] = line.split('\t');
    if (!project.startsWith('lzf-e2e-')) continue;
    const at = Date.parse(created.replace(/ \+0000 UTC$/, 'Z').replace(' ', 'T'));
    if (Number.isFinite(at) && Date.now() - at > STALE_MS) stale.add(project);
  }
  for (const project of stale) {
    const ids = docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`], { quiet: true })
      .split('\n').filter(Boolean);
    if (ids.length) docker(['rm', '-f', '-v', ...ids], { quiet: true });
    for (const kind of ['network', 'volume'] as const) {
      const names = docker([kind, 'ls', '-q', '--filter', `label=com.docker.compose.project=${project}`], { quiet: true })
        .split('\n').filter(Boolean);
      if (names.length) docker([kind, 'rm', ...names], { quiet: true });
    }
    console.log(`removed leftovers of an earlier e2e run: ${project}`);
  }
}

export default function setup(project: TestProject) {
  const runId = `e2e-${randomBytes(4).toString('hex')}`;
  const appImage = 'lazyflow-e2e-app';
  const proxyImage = 'lazyflow-e2e-caddy';
  project.provide('appImage', appImage);
  project.provide('appTag', runId);
  project.provide('proxyImage', proxyImage);
  project.provide('proxyTag', runId);
  if (dockerMissingReason) return;

  removeStaleProjects();
  const args = (extra: Record<string, string | undefined>) =>
    Object.entries(extra).filter(([, v]) => v).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
  const started = Date.now();
  docker(['build', '-q', '-t', `${appImage}:${runId}`, ...args({ BUN_IMAGE: process.env.BUN_IMAGE, APP_VERSION: runId }), '.']);
  docker(['build', '-q', '-t', `${proxyImage}:${runId}`, '-f', 'docker/caddy/Dockerfile',
    ...args({ BUN_IMAGE: process.env.BUN_IMAGE, CADDY_IMAGE: process.env.CADDY_IMAGE }), '.']);
  console.log(`built ${appImage}:${runId} and ${proxyImage}:${runId} in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  return () => {
    for (const image of [`${appImage}:${runId}`, `${proxyImage}:${runId}`]) {
      try {
        docker(['image', 'rm', '-f', image], { quiet: true });
      } catch {
        // already gone
      }
    }
  };
}
