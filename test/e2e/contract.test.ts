// The contract checker against real images: the reference app (every item passes), the
// lazyflow-layout fixture (required tier passes, recommended items reported with their fixes) and
// the fixture's deliberately broken variants (the failing item named, exit 1). Then the API paths
// Caddy routes to the app, through a real stack.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { describeDocker, dockerMissingReason } from '../support/docker.ts';
import { repoRoot, runScript } from '../support/run.ts';
import { startStack, type Stack } from '../support/stack.ts';

const FIXTURE_DIR = join(repoRoot, 'test/fixtures/lazyflow-app');
const tag = `e2e-${randomBytes(4).toString('hex')}`;
const image = (variant: string) => `lazyflow-e2e-fixture-${variant}:${tag}`;
const VARIANTS: Record<string, Record<string, string>> = {
  good: {},
  root: { RUN_AS: 'root' },
  'write-root-fs': { BROKEN: 'write-root-fs' },
  'no-health': { BROKEN: 'no-health' },
  'db-outside': { BROKEN: 'db-outside' },
};

type Report = { ok: boolean; results: { id: string; tier: string; status: string; detail: string; fix?: string }[]; missingKeys: string[] };

let dir = '';
let config = '';
/** the env files of the stack's other shapes: the lazyflow app's key missing, the default healthcheck path */
let noMiniApp = '';
let defaultProbe = '';

async function check(img: string, extra: string[] = [], cfg = config) {
  const r = await runScript('check-app.mts', ['--image', img, '--config', cfg, '--json', ...extra], { timeoutMs: 120_000 });
  let report: Report | undefined;
  try {
    report = JSON.parse(r.stdout) as Report;
  } catch {
    throw new Error(`check-app printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  const status = Object.fromEntries(report.results.map((x) => [x.id, x.status]));
  return { code: r.code, report, status, stderr: r.stderr };
}

describeDocker('contract checker', () => {
  beforeAll(() => {
    if (dockerMissingReason) return;
    dir = mkdtempSync(join(tmpdir(), 'lzf-e2e-contract-'));
    config = join(dir, 'env.prod');
    // the fixture's own key reaches the sandbox through the env file; toolkit keys do not. The fixture
    // has no readiness path and no write probe (READY_PATH, HEALTHCHECK_PATH), and its healthcheck runs
    // in Bun here (the compose file for images without bash)
    writeFileSync(config, 'MINI_APP_URL=https://mini.example.test\nSTATE_DIR=/nonexistent\nREADY_PATH=/health\nHEALTHCHECK_PATH=/health\nCOMPOSE_FILE=docker-compose.yml:docker/compose.bun-healthcheck.yml\n', { mode: 0o600 });
    noMiniApp = join(dir, 'env.no-mini-app');
    writeFileSync(noMiniApp, 'STATE_DIR=/nonexistent\nREADY_PATH=/health\nHEALTHCHECK_PATH=/health\n', { mode: 0o600 });
    defaultProbe = join(dir, 'env.default-probe');
    writeFileSync(defaultProbe, 'MINI_APP_URL=https://mini.example.test\n', { mode: 0o600 });
    for (const [variant, args] of Object.entries(VARIANTS)) {
      const buildArgs = Object.entries({ ...args, ...(process.env.BUN_IMAGE ? { BUN_IMAGE: process.env.BUN_IMAGE } : {}) }).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
      execFileSync('docker', ['build', '-q', '-t', image(variant), ...buildArgs, FIXTURE_DIR], { stdio: ['ignore', 'pipe', 'inherit'] });
    }
  }, 300_000);

  afterAll(() => {
    for (const variant of Object.keys(VARIANTS)) {
      try {
        execFileSync('docker', ['image', 'rm', '-f', image(variant)], { stdio: 'pipe' });
      } catch {
        // already gone
      }
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the reference app passes every item, required and recommended', async () => {
    // the stack's defaults: READY_PATH /ready, the bash probe of /health/write
    const r = await check(`${inject('appImage')}:${inject('appTag')}`, [], defaultProbe);
    expect(r.status).toEqual({
      port: 'pass', health: 'pass', healthcheck: 'pass', 'read-only-root': 'pass', 'non-root': 'pass', database: 'pass',
      'health-version': 'pass', readiness: 'pass', 'user-version': 'pass', 'jobs-heartbeat': 'pass', 'update-dedupe': 'pass',
    });
    expect(r.code).toBe(0);
  });

  it('the lazyflow-layout fixture passes the required tier; each recommended item is reported missing with its fix', async () => {
    const r = await check(image('good'));
    expect(r.code).toBe(0);
    expect(r.report.ok).toBe(true);
    for (const id of ['port', 'health', 'healthcheck', 'read-only-root', 'non-root', 'database']) expect(`${id}: ${r.status[id]}`).toBe(`${id}: pass`);
    expect(r.report.results.find((x) => x.id === 'healthcheck')!.detail).toBe('the bun probe of GET /health -> 200');
    for (const id of ['health-version', 'readiness', 'user-version', 'jobs-heartbeat', 'update-dedupe']) {
      const item = r.report.results.find((x) => x.id === id)!;
      expect(`${id}: ${item.status}`).toBe(`${id}: missing`);
      expect(item.fix).toBeTruthy();
    }
    // it stops on SIGTERM (plain shutdown), but has no readiness path: READY_PATH=/health says so
    expect(r.report.results.find((x) => x.id === 'readiness')!.detail).toBe('READY_PATH=/health: Caddy polls /health, the app has no readiness path (GET /ready -> 404)');
  });

  it('without MINI_APP_URL in the env file the fixture exits in the sandbox as in production, and the check names the key', async () => {
    const r = await check(image('good'), ['--tier', 'required'], noMiniApp);
    expect(r.code).toBe(1);
    expect(r.status.port).toBe('unchecked');
    expect(r.report.results.find((x) => x.id === 'port')!.detail).toMatch(/exited with code 2 before answering: .*MINI_APP_URL is required/);
    expect(r.report.missingKeys).toEqual(['MINI_APP_URL']);
  });

  it('with the default healthcheck path the fixture is refused: it has no /health/write (HEALTHCHECK_PATH named), exit 1', async () => {
    const r = await check(image('good'), ['--tier', 'required'], defaultProbe);
    const item = r.report.results.find((x) => x.id === 'healthcheck')!;
    expect(`${item.status}: ${item.detail}`).toMatch(/^missing: the bash probe of GET \/health\/write -> 404: the app has no \/health\/write; set HEALTHCHECK_PATH=\/health$/);
    expect(item.fix).toMatch(/HEALTHCHECK_PATH=\/health/);
    expect(r.report.ok).toBe(false);
    expect(r.code).toBe(1);
  });

  it.each([
    ['root', 'non-root', 'wrong', /runs as root/],
    ['write-root-fs', 'read-only-root', 'wrong', /writes outside/],
    ['no-health', 'health', 'missing', /GET \/health -> 404/],
    ['db-outside', 'database', 'missing', /no SQLite database at DB_PATH/],
  ])('broken image %s: %s is %s, exit 1', async (variant, id, status, detail) => {
    const r = await check(image(variant), ['--tier', 'required']);
    const item = r.report.results.find((x) => x.id === id)!;
    expect(`${id}: ${item.status}`).toBe(`${id}: ${status}`);
    expect(item.detail).toMatch(detail);
    expect(item.fix).toBeTruthy();
    expect(r.report.ok).toBe(false);
    expect(r.code).toBe(1);
  });

  it('a missing image is a usage error (exit 2) naming the image', async () => {
    const r = await runScript('check-app.mts', ['--image', `lazyflow-e2e-no-such-image:${tag}`], { timeoutMs: 30_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/does not exist/);
  });
});

describeDocker('routing that fits the app (API_PATHS)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ name: 'routes', pebble: false });
  });
  afterAll(async () => {
    await stack?.down();
  });

  it('GET /folders and GET /google/callback through Caddy reach the app, not the Mini App', async () => {
    const index = await stack.fetch('/');
    expect(index.text()).toMatch(/<html/i);
    for (const path of ['/folders', '/google/callback']) {
      const r = await stack.fetch(path);
      // the reference app has neither route: its own JSON 404 proves the request reached it
      expect(`${path} -> ${r.status} ${String(r.headers['content-type'])}`).toMatch(/-> 404 application\/json/);
      expect(JSON.parse(r.text())).toMatchObject({ error: 'not_found' });
    }
    const unknown = await stack.fetch('/some/page/of/the/mini-app');
    expect(unknown.text()).toBe(index.text());
  });

  it('the internal probes stay off the public site (READY_PATH /ready, /health/write); /health is public', async () => {
    for (const path of ['/ready', '/health/write']) {
      const r = await stack.fetch(path);
      expect(`${path} -> ${r.status} ${r.text()}`).toBe(`${path} -> 404 Not Found`);
    }
    expect((await stack.fetch('/health')).status).toBe(200);
  });

  it('/config.js sets window.LAZYFLOW_API_BASE_URL', async () => {
    const r = await stack.fetch('/config.js');
    expect(r.text()).toContain('window.LAZYFLOW_API_BASE_URL = "https://localhost"');
  });

  it('smoke: every configured API path reaches the app', async () => {
    const r = await runScript('smoke.mts', ['--config', stack.envFile, '--only', 'routes', '--json'], { timeoutMs: 60_000 });
    const report = JSON.parse(r.stdout) as { results: { name: string; status: string; detail: string }[] };
    expect(report.results[0]).toMatchObject({ name: 'routes', status: 'pass' });
    expect(report.results[0].detail).toMatch(/14 API paths reach the app/);
    expect(r.code).toBe(0);
  });
});
