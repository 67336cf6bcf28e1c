// The contract checker against real images: the reference app (every item passes), the
// lazyflow-layout fixture (required tier passes, recommended items reported with their fixes) and
// the fixture's deliberately broken variants (the failing item named, exit 1). Then the API paths
// Caddy routes to the app, through a real stack.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { describeDocker, dockerMissingReason } from '../support/docker.ts';
import { repoRoot, runScript } from '../support/run.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { fixtureRepository, removeFixtureStack } from '../support/release-source.mts';

const FIXTURE_DIR = join(repoRoot, 'test/fixtures/lazyflow-app');
const GRAMMY_DIR = join(repoRoot, 'test/fixtures/grammy-bot');
const tag = `e2e-${randomBytes(4).toString('hex')}`;
const image = (variant: string) => `lazyflow-e2e-fixture-${variant}:${tag}`;
const VARIANTS: Record<string, Record<string, string>> = {
  good: {},
  root: { RUN_AS: 'root' },
  'write-root-fs': { BROKEN: 'write-root-fs' },
  'no-health': { BROKEN: 'no-health' },
  'db-outside': { BROKEN: 'db-outside' },
};

type Report = {
  ok: boolean; results: { id: string; tier: string; status: string; detail: string; fix?: string }[]; missingKeys: string[];
  telegramError?: string; probes: Record<string, string>;
};
/** fixtures (a) and (b) of issue 15: a grammY webhook bot; (b) calls setWebhook at start-up and exits when that fails */
const GRAMMY: Record<string, Record<string, string>> = { 'grammy-a': {}, 'grammy-b': { SET_WEBHOOK: '1' } };
/** what an operator's env file holds for such a bot: a real-looking token and secret (never reaching the sandbox) */
const BOT_TOKEN = '7012345678:AAH3kq-very_real-token-of-the-bot-xy';
const WEBHOOK_SECRET = 'Wb9f2c1e0a8d7b6c5f4e3d2c1b0a9f8e7d6c5b4a';

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
    for (const [variant, args] of [...Object.entries(VARIANTS), ...Object.entries(GRAMMY)]) {
      const buildArgs = Object.entries({ ...args, ...(process.env.BUN_IMAGE ? { BUN_IMAGE: process.env.BUN_IMAGE } : {}) }).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
      execFileSync('docker', ['build', '-q', '-t', image(variant), ...buildArgs, variant.startsWith('grammy') ? GRAMMY_DIR : FIXTURE_DIR], { stdio: ['ignore', 'pipe', 'inherit'] });
    }
  }, 300_000);

  afterAll(() => {
    for (const variant of [...Object.keys(VARIANTS), ...Object.keys(GRAMMY)]) {
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

  it('nothing set: the fixture passes and the stack will probe /health; HEALTHCHECK_PATH=/health/write set by hand wins and is refused (the key named), exit 1', async () => {
    const adapted = await check(image('good'), ['--tier', 'required'], defaultProbe);
    expect(adapted.code).toBe(0);
    expect(adapted.report.probes).toEqual({ READY_PATH: '/health', HEALTHCHECK_PATH: '/health' });
    const explicit = join(dir, 'env.explicit-probe');
    writeFileSync(explicit, 'MINI_APP_URL=https://mini.example.test\nHEALTHCHECK_PATH=/health/write\n', { mode: 0o600 });
    const r = await check(image('good'), ['--tier', 'required'], explicit);
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

  const botEnv = (extra = '', keys = `BOT_TOKEN=${BOT_TOKEN}\nWEBHOOK_SECRET=${WEBHOOK_SECRET}\n`) => {
    const f = join(dir, `env.bot-${randomBytes(3).toString('hex')}`);
    // no READY_PATH, no HEALTHCHECK_PATH: the check finds out what the app answers
    writeFileSync(f, `${keys}APP_URL=https://bot.example.test\nSTATE_DIR=/nonexistent\n${extra}`, { mode: 0o600 });
    return f;
  };

  it('(a) a grammY bot that validates its secrets and constructs its Bot at start-up passes the required tier; the probes follow what it answers', async () => {
    const r = await check(image('grammy-a'), ['--tier', 'required'], botEnv());
    expect(r.status).toEqual({ port: 'pass', health: 'pass', healthcheck: 'pass', 'read-only-root': 'pass', 'non-root': 'pass', database: 'pass' });
    expect(r.code).toBe(0);
    // it has neither /ready nor /health/write: the stack will probe /health for both, nothing set by hand
    expect(r.report.probes).toEqual({ READY_PATH: '/health', HEALTHCHECK_PATH: '/health' });
    expect(r.report.results.find((x) => x.id === 'healthcheck')!.detail).toBe('the bash probe of GET /health -> 200');
    expect(r.report.missingKeys).toEqual([]);
  });

  it('(a) without BOT_TOKEN in the env file: exits as in production, and only then is BOT_TOKEN named missing', async () => {
    const r = await check(image('grammy-a'), ['--tier', 'required'], botEnv('', `WEBHOOK_SECRET=${WEBHOOK_SECRET}\n`));
    expect(r.code).toBe(1);
    expect(r.report.results.find((x) => x.id === 'port')!.detail).toMatch(/exited with code 1 before answering: .*BOT_TOKEN is required in production/);
    expect(r.report.missingKeys).toEqual(['BOT_TOKEN']);
  });

  it('(b) exits because setWebhook failed: reported as the Telegram cause with its fix, no key named missing', async () => {
    const r = await check(image('grammy-b'), ['--tier', 'required'], botEnv());
    expect(r.code).toBe(1);
    const port = r.report.results.find((x) => x.id === 'port')!;
    expect(`${port.status}: ${port.detail}`).toMatch(/^wrong: the app exited \(code 1\) because a call to Telegram's Bot API failed at start-up: .*Network request for 'setWebhook' failed!.*catch that error at start-up$/);
    expect(port.fix).toMatch(/try \{ await bot\.api\.setWebhook/);
    expect(r.report.telegramError).toMatch(/setWebhook/);
    expect(r.report.missingKeys).toEqual([]);
    expect(r.stderr).not.toContain(BOT_TOKEN);
  });

  it('(b) once it catches the error (its own env key WEBHOOK_ON_ERROR=continue reaches the sandbox) it passes', async () => {
    const r = await check(image('grammy-b'), ['--tier', 'required'], botEnv('WEBHOOK_ON_ERROR=continue\n'));
    expect(r.report.results.filter((x) => x.status !== 'pass')).toEqual([]);
    expect(r.code).toBe(0);
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

describeDocker('a grammY bot deployed through the contract gate (issue 15 fixtures a and b)', () => {
  let stack: Stack;
  let src = '';
  const suffix = randomBytes(3).toString('hex');
  const appImage = `lzf-e2e-grammy-app-${suffix}`;
  const proxyImage = `lzf-e2e-grammy-caddy-${suffix}`;
  const git = (...args: string[]) => execFileSync('git', ['-C', src, ...args], { stdio: 'pipe' }).toString().trim();
  const rollout = () => runScript('rollout.mts', ['--config', stack.envFile, '--source', src, '--no-notify', '--json'], { timeoutMs: 300_000 });
  const appContainer = async () => (await stack.containers('app'))[0];
  const inspect = (id: string, format: string) => execFileSync('docker', ['inspect', '--format', format, id], { stdio: 'pipe' }).toString().trim();
  const setWebhookTokens = () => stack.fakeBot!.callsTo('setWebhook').map((c) => c.token);

  beforeAll(async () => {
    if (dockerMissingReason) return;
    // the bot's own repository, as an adopter has it: no readiness path, no write probe, no Mini App
    src = fixtureRepository(GRAMMY_DIR, 'lzf-e2e-grammy-src-', 'fixture (a)');
    // a production-shaped env file (a BOT_TOKEN, a webhook secret, the fake Bot API as Telegram), and
    // nothing the toolkit can find out: no READY_PATH, no HEALTHCHECK_PATH
    // (Pebble for the certificate; the app reaches the fake Bot API through host.docker.internal)
    stack = await startStack({
      name: 'grammy', start: false, images: { appImage, proxyImage },
      env: { FRONTEND_DIR: 'public', FRONTEND_BUILD: 'true', FRONTEND_DIST: 'public' },
    });
    expect(readFileSync(stack.envFile, 'utf8')).not.toMatch(/^(READY_PATH|HEALTHCHECK_PATH)=/m);
    await stack.upSupport();
  }, 300_000);

  afterAll(() => removeFixtureStack(stack, [appImage, proxyImage], src));

  it('(a) deploys: the gate passes it and records the probes it answers, which the stack then uses', async () => {
    const r = await rollout();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ result: 'ok', contract: { decision: 'not-cached' } });
    expect(r.stderr).toMatch(/the stack probes READY_PATH=\/health, HEALTHCHECK_PATH=\/health, as the app answers/);
    expect(readFileSync(join(stack.stateDir, 'probes.env'), 'utf8')).toMatch(/\nREADY_PATH=\/health\nHEALTHCHECK_PATH=\/health\n$/);
    const id = await appContainer();
    expect(inspect(id, '{{json .Config.Healthcheck.Test}}')).toContain('GET /health HTTP/1.1');
    expect(inspect(id, '{{.State.Health.Status}}')).toBe('healthy');
    expect((await stack.fetch('/health')).status).toBe(200);
    // Telegram saw the real token only from production (the toolkit's webhook registration), never from the sandbox
    expect(new Set(setWebhookTokens())).toEqual(new Set([stack.botToken]));
  });

  it('(b) is refused with the Telegram cause, nothing live changes, and the sandbox never reached Telegram', async () => {
    const before = { image: inspect(await appContainer(), '{{.Config.Image}}'), calls: setWebhookTokens().length };
    writeFileSync(join(src, 'Dockerfile'), readFileSync(join(src, 'Dockerfile'), 'utf8').replace('ARG SET_WEBHOOK=\n', 'ARG SET_WEBHOOK=1\n'));
    git('commit', '-q', '-am', 'fixture (b): setWebhook at start-up');
    const r = await rollout();
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(/FAILED in contract: .*a call to Telegram's Bot API failed at start-up: .*Network request for 'setWebhook' failed!/s);
    expect(r.stderr).toMatch(/catch that error at start-up/);
    expect(r.stderr).not.toMatch(/naming \S+, which .* does not set/);
    expect(r.stderr).not.toContain(stack.botToken);
    expect(inspect(await appContainer(), '{{.Config.Image}}')).toBe(before.image);
    expect(setWebhookTokens().length).toBe(before.calls);
  });

  it('(b) deploys once it catches the error (its own env key WEBHOOK_ON_ERROR=continue); in production its setWebhook reaches Telegram', async () => {
    appendFileSync(stack.envFile, 'WEBHOOK_ON_ERROR=continue\n');
    const r = await rollout();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const id = await appContainer();
    expect(inspect(id, '{{.Config.Image}}')).toBe(`${appImage}:${git('rev-parse', 'HEAD').slice(0, 12)}`);
    expect(execFileSync('docker', ['logs', id], { stdio: 'pipe' }).toString()).toContain('webhook set');
    expect(new Set(setWebhookTokens())).toEqual(new Set([stack.botToken]));
    expect(existsSync(join(stack.stateDir, 'probes.env'))).toBe(true);
  });
});
