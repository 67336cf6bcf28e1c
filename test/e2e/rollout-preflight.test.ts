// Preflight refuses each bad env file before anything is touched, naming the key (or file) and the fix.
// No stack is needed: preflight reads the env file and asks Docker/Compose, and a refused rollout
// changes nothing, so no container is ever created here.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describeDocker } from '../support/docker.ts';
import { randomBotToken, randomSecret } from '../support/telegram.ts';
import { runScript, type RunResult } from '../support/run.ts';

const explain = (r: RunResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

describeDocker('preflight: bad env files are refused, naming the key', () => {
  let dir: string;
  const project = `lzf-e2e-preflight-${randomBytes(3).toString('hex')}`;
  const good = (): Record<string, string> => ({
    COMPOSE_PROJECT_NAME: project,
    STATE_DIR: join(dir, 'state'),
    DOMAIN: 'bot.lazyflow-preflight.dev',
    APP_URL: 'https://bot.lazyflow-preflight.dev',
    ALLOWED_ORIGINS: 'https://bot.lazyflow-preflight.dev',
    ACME_EMAIL: 'ops@lazyflow-preflight.dev',
    BOT_TOKEN: randomBotToken(),
    WEBHOOK_SECRET: randomSecret(48),
    HTTP_PORT: '18099',
    HTTPS_PORT: '18499',
  });
  const write = (name: string, env: Record<string, string>, mode = 0o600) => {
    const f = join(dir, name);
    writeFileSync(f, Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { mode });
    chmodSync(f, mode);
    return f;
  };
  const check = (file: string) => runScript('rollout.mts', ['--config', file, '--dry-run'], { timeoutMs: 60_000 });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'lzf-preflight-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('a good production env file passes preflight (dry run prints the plan, changes nothing)', async () => {
    const r = await check(write('good.env', good()));
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout).toMatch(/Plan for .*dry run: nothing changed/);
    expect(existsSync(join(dir, 'state', 'releases.jsonl'))).toBe(false);
  });

  const cases: [string, (e: Record<string, string>) => Record<string, string>, string, RegExp, number?][] = [
    ['a missing key', (e) => { const { WEBHOOK_SECRET: _, ...rest } = e; return rest; }, 'WEBHOOK_SECRET', /WEBHOOK_SECRET is missing or empty/],
    ['a placeholder', (e) => ({ ...e, BOT_TOKEN: 'CHANGE_ME' }), 'BOT_TOKEN', /BOT_TOKEN in .* contains CHANGE_ME/],
    ['* CORS', (e) => ({ ...e, ALLOWED_ORIGINS: '*' }), 'ALLOWED_ORIGINS', /ALLOWED_ORIGINS in .* contains a wildcard/],
    ['an http APP_URL', (e) => ({ ...e, APP_URL: 'http://bot.lazyflow-preflight.dev' }), 'APP_URL', /APP_URL in .* must be https/],
    ['a weak secret', (e) => ({ ...e, WEBHOOK_SECRET: 'short-secret' }), 'WEBHOOK_SECRET', /WEBHOOK_SECRET in .* is weak/],
    ['the local default secret', (e) => ({ ...e, WEBHOOK_SECRET: 'local-try-out-secret-not-for-production-0000' }), 'WEBHOOK_SECRET', /embedded local try-out default/],
    ['mode 0644', (e) => e, 'chmod 600', /has mode 0644/, 0o644],
  ];
  for (const [name, mutate, key, message, mode] of cases) {
    it(`rejects ${name}, naming ${key}`, async () => {
      const f = write(`${name.replace(/\W+/g, '-')}.env`, mutate(good()), mode ?? 0o600);
      const r = await check(f);
      expect(r.code, explain(r)).toBe(2);
      expect(r.stderr).toContain(key);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/fix: /);
      expect(existsSync(join(dir, 'state', 'ops.lock'))).toBe(false);
    });
  }

  it('--check prints every check with its fix', async () => {
    const f = write('check.env', { ...good(), ALLOWED_ORIGINS: '*' });
    const r = await runScript('rollout.mts', ['--config', f, '--check'], { timeoutMs: 60_000 });
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/key ALLOWED_ORIGINS\s+FAIL/);
    expect(r.stdout).toMatch(/compose config\s+ok/);
  });
});
