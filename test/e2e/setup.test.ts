// setup.mts, as an operator runs it on a prepared VPS: a fresh checkout, no env file, no STATE_DIR,
// its questions answered on a pseudo-terminal (util-linux `script`), to a green smoke; then again,
// without a terminal: it changes nothing (env file bytes, state, releases, backups, schedules, the
// running container); then with a domain that disagrees with the env file: refused, nothing changed.
// The stack's outside world is the harness's: Pebble as Let's Encrypt, the fake Bot API as Telegram,
// free ports; those settings reach setup as a --settings file (on a VPS the example's defaults are right).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker, dockerMissingReason } from '../support/docker.ts';
import { mustRun, repoRoot, run } from '../support/run.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { onTerminal, workingTreeClone } from '../support/terminal.ts';
import { readJournal } from '../../scripts/lib/release/journal.mts';

/** The operator's own values: asked by setup, so not in the settings file. */
const ASKED_KEYS = ['DOMAIN', 'APP_URL', 'ALLOWED_ORIGINS', 'ACME_EMAIL', 'WEBHOOK_SECRET', 'BOT_TOKEN'];

describeDocker('setup.mts: from a fresh checkout, no env file and no STATE_DIR to a green smoke, answered on a terminal; run again, nothing changes', () => {
  let stack: Stack;
  let work = '';
  let checkout = '';
  let settings = '';
  let cronDir = '';
  let trust = '';
  const suffix = randomBytes(3).toString('hex');
  const images = { appImage: `lzf-e2e-setup-app-${suffix}`, proxyImage: `lzf-e2e-setup-caddy-${suffix}` };
  const adminChat = '4242';

  const shellEnv = () => ({ NODE_EXTRA_CA_CERTS: trust, NO_COLOR: '1' });
  const setupArgs = () => `${process.execPath} scripts/setup.mts --config .env.prod --settings ${settings}`;
  const envFile = () => join(checkout, '.env.prod');
  /** everything setup decides about, as bytes or names */
  const snapshot = async () => ({
    env: readFileSync(envFile(), 'utf8'),
    appEnv: readFileSync(join(stack.stateDir, 'app.env'), 'utf8'),
    releases: readFileSync(join(stack.stateDir, 'releases.jsonl'), 'utf8'),
    backups: readdirSync(join(stack.stateDir, 'backups')).sort(),
    cron: readdirSync(cronDir).map((f) => readFileSync(join(cronDir, f), 'utf8')),
    state: readdirSync(stack.stateDir).filter((f) => f !== 'logs').sort(),
    app: await stack.containers('app'),
  });

  beforeAll(async () => {
    if (dockerMissingReason) return;
    work = mkdtempSync(join(tmpdir(), 'lzf-e2e-setup-'));
    // the VPS's checkout: a clone of this repository with this working tree's files, committed (a clean tree)
    checkout = join(work, 'vps', 'lazyflow-deploy');
    workingTreeClone(checkout);
    // npm ci's result, outside the git tree (Node looks for node_modules in the parent directories)
    symlinkSync(join(repoRoot, 'node_modules'), join(work, 'vps', 'node_modules'));
    stack = await startStack({ name: 'setup', start: false, projectDir: checkout, images });
    rmSync(stack.stateDir, { recursive: true, force: true }); // no STATE_DIR: setup makes it
    cronDir = join(work, 'cron.d');
    mkdirSync(cronDir);
    settings = join(work, 'settings.env');
    // where the schedules go: the env file's keys, read alike by setup and by the first rollout's safety net
    const dirs = { LAZYFLOW_CRON_DIR: cronDir, LAZYFLOW_UNIT_DIR: join(work, 'units') };
    writeFileSync(settings, `${Object.entries({ ...stack.env, ...dirs }).filter(([k]) => !ASKED_KEYS.includes(k)).map(([k, v]) => `${k}=${v}`).join('\n')}\n`);
    await stack.upSupport();
    trust = join(work, 'trust.pem');
    const machine = process.env.NODE_EXTRA_CA_CERTS;
    writeFileSync(trust, `${machine && existsSync(machine) ? readFileSync(machine, 'utf8') : ''}\n${readFileSync(stack.caPem, 'utf8')}`);
  }, 180_000);

  afterAll(async () => {
    await stack?.down();
    for (const image of Object.values(images)) {
      const refs = (await run('docker', ['images', image, '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n').filter(Boolean);
      if (refs.length) await run('docker', ['image', 'rm', '-f', ...refs]);
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('asks for the domain, e-mail, token (hidden) and chat id on the terminal, then deploys: smoke green, backup taken, schedules installed', async () => {
    expect(existsSync(envFile())).toBe(false);
    expect(existsSync(stack.stateDir)).toBe(false);
    const t0 = Date.now();
    const r = await onTerminal(setupArgs(), {
      cwd: checkout,
      env: shellEnv(),
      answers: [[/Domain of the bot.*: $/, stack.domain], [/E-mail.*: $/, `ops@${stack.domain}`], [/Bot token \(input hidden\): $/, stack.botToken], [/Admin chat id.*: $/, adminChat]],
      timeoutMs: 900_000,
    });
    console.log(`setup: first run in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(r.code, r.screen.slice(-6000)).toBe(0);
    // the token was typed on the terminal and never shown: not on the screen, not in the ops log
    expect(r.screen).not.toContain(stack.botToken);
    expect(r.screen).not.toContain(stack.botToken.split(':')[1]);
    expect(readFileSync(join(stack.stateDir, 'logs', 'ops.log'), 'utf8')).not.toContain(stack.botToken.split(':')[1]);
    expect(r.screen).toMatch(/BotFather/);
    expect(r.screen).toMatch(/setup done: https:\/\/\S+ is live, smoke passed \(env-file, state-dir, rollout, backup, schedules\)/);
    expect(r.screen).toMatch(/lazyflow status for /); // the status screen ends it

    // the env file: mode 600, the answers, values derived from them, a generated secret
    expect(statSync(envFile()).mode & 0o777).toBe(0o600);
    const env = Object.fromEntries(readFileSync(envFile(), 'utf8').split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(env).toMatchObject({ DOMAIN: stack.domain, ACME_EMAIL: `ops@${stack.domain}`, BOT_TOKEN: stack.botToken, ADMIN_CHAT_ID: adminChat, APP_URL: `https://${stack.domain}`, ALLOWED_ORIGINS: `https://${stack.domain}`, STATE_DIR: stack.stateDir });
    expect(env.WEBHOOK_SECRET).toMatch(/^[0-9a-f]{64}$/);
    expect(r.screen).not.toContain(env.WEBHOOK_SECRET);
    // STATE_DIR with its owners; the app answers through Caddy with a certificate from the ACME server
    for (const d of ['data', 'uploads']) expect(`${d} ${statSync(join(stack.stateDir, d)).uid} ${(statSync(join(stack.stateDir, d)).mode & 0o777).toString(8)}`).toBe(`${d} 1000 750`);
    expect((await stack.fetch('/health')).status).toBe(200);
    // the toolkit registered the webhook with the generated secret; the admin chat got the deploy message
    expect(stack.fakeBot!.webhookInfo(stack.botToken).url).toBe(`https://${stack.domain}/webhook/${env.WEBHOOK_SECRET}`);
    const { releases } = readJournal(join(stack.stateDir, 'releases.jsonl'));
    expect(releases.map((x) => `${x.kind} ${x.result}`)).toEqual(['rollout ok']);
    expect(readdirSync(join(stack.stateDir, 'backups')).filter((f) => !f.startsWith('.'))).toHaveLength(1);
    expect(readdirSync(cronDir)).toHaveLength(1);
    const smoke = await run(process.execPath, ['scripts/smoke.mts', '--config', '.env.prod', '--json'], { cwd: checkout, env: shellEnv() });
    expect(smoke.code, smoke.stdout + smoke.stderr).toBe(0);
  }, 900_000);

  it('run again (no terminal, no flags): nothing changes, and it says so', async () => {
    const before = await snapshot();
    const r = await run('bash', ['-c', setupArgs()], { cwd: checkout, env: shellEnv(), timeoutMs: 300_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = r.stdout + r.stderr;
    expect(out).toMatch(/env-file: \S+ is complete: nothing to change/);
    expect(out).toMatch(/rollout: the app runs \S+ \(this checkout\)/);
    expect(out).toMatch(/nothing to change: https:\/\/\S+ is set up, smoke passed/);
    expect(out).not.toMatch(/would ask|wrote /);
    expect(await snapshot()).toEqual(before);
  }, 300_000);

  it('a domain that disagrees with the env file: refused with exit 2, the file left as it is', async () => {
    const before = await snapshot();
    const r = await run('bash', ['-c', `${setupArgs()} --domain other-${suffix}.lazyflow.test`], { cwd: checkout, env: shellEnv(), timeoutMs: 120_000 });
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`DOMAIN is "${stack.domain.replace(/\./g, '\\.')}" in the env file, but you gave "other-${suffix}\\.lazyflow\\.test": left as it is`));
    expect(r.stderr).toMatch(/setup stopped before changing anything: env-file/);
    expect(await snapshot()).toEqual(before);
    await mustRun('docker', ['inspect', (await stack.containers('app'))[0]]);
  }, 120_000);
});
