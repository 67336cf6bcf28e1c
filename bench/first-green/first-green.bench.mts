// Time to first green (see bench/first-green/run.mts), each command timed, from `git clone` to setup's
// green smoke:
//   - the reference app: RUNBOOK "First deploy" step 2 (the toolkit's repository is the app's);
//   - fixture (a), test/fixtures/grammy-bot, a grammY webhook bot nobody on this project wrote, as
//     RUNBOOK "Adopting the toolkit" deploys it: its own repository with the toolkit in deploy/, cloned
//     on the VPS, `npm ci` in deploy/, setup with the app's own lines (its Mini App in public/).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { startStack } from '../../test/support/stack.ts';
import { repoRoot, run } from '../../test/support/run.ts';
import { onTerminal, workingTreeClone } from '../../test/support/terminal.ts';

const out = process.env.FG_OUT ?? '/tmp/benchmarks-first-green.md';
const ASKED_KEYS = ['DOMAIN', 'APP_URL', 'ALLOWED_ORIGINS', 'ACME_EMAIL', 'WEBHOOK_SECRET', 'BOT_TOKEN'];
const report: string[] = [];

interface Shape {
  name: string;
  /** the repository the VPS clones, made in `work`; returns its directory and the toolkit's within it */
  repository(work: string): { seed: string; toolkitDir: string };
  /** the app's own lines for the env file (setup --settings), beyond the harness's */
  settings: Record<string, string>;
  /** what the operator types for the clone and npm ci (the checkout is /srv/<name>) */
  typed: { clone: string; npmCi: string; setup: string };
}

const reference: Shape = {
  name: 'the reference app (RUNBOOK "First deploy")',
  repository: (work) => {
    const seed = workingTreeClone(join(work, 'seed'));
    return { seed, toolkitDir: '.' };
  },
  settings: {},
  typed: {
    clone: 'sudo git clone -q "$REPO_URL" /srv/lazyflow-deploy',
    npmCi: 'cd /srv/lazyflow-deploy && sudo npm ci --omit=dev',
    setup: 'sudo node scripts/setup.mts',
  },
};

const fixtureA: Shape = {
  name: 'fixture (a), a grammY bot with the toolkit in deploy/ (RUNBOOK "Adopting the toolkit")',
  repository: (work) => {
    const seed = join(work, 'seed');
    cpSync(join(repoRoot, 'test/fixtures/grammy-bot'), seed, { recursive: true, filter: (p) => !p.includes('node_modules') });
    // the guide's step 2: the toolkit as plain files in deploy/, without its own app, tests and benchmarks
    const toolkit = workingTreeClone(join(work, 'toolkit'));
    cpSync(toolkit, join(seed, 'deploy'), { recursive: true, filter: (p) => !/^\/(\.git|\.ci|app|test|bench|Dockerfile)(\/|$)|\/node_modules(\/|$)/.test(p.slice(toolkit.length)) });
    const git = (...args: string[]) => execFileSync('git', ['-C', seed, '-c', 'user.name=t', '-c', 'user.email=t@lazyflow.invalid', ...args], { stdio: 'pipe' });
    git('init', '-q', '-b', 'main');
    git('add', '-A');
    git('commit', '-qm', 'the bot, with the toolkit in deploy/');
    return { seed, toolkitDir: 'deploy' };
  },
  // the fixture's Mini App is static files in public/ (no build step)
  settings: { FRONTEND_DIR: 'public', FRONTEND_BUILD: 'true', FRONTEND_DIST: 'public' },
  typed: {
    clone: 'sudo git clone -q "$APP_REPO_URL" /srv/mybot',
    npmCi: 'cd /srv/mybot/deploy && sudo npm ci --omit=dev',
    setup: 'sudo node scripts/setup.mts',
  },
};

async function firstGreen(shape: Shape): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'lzf-bench-first-green-'));
  const suffix = randomBytes(3).toString('hex');
  const images = { appImage: `lzf-bench-fg-app-${suffix}`, proxyImage: `lzf-bench-fg-caddy-${suffix}` };
  // "GitHub": the repository the VPS clones
  const { seed, toolkitDir } = shape.repository(work);
  const bare = join(work, 'github', 'repo.git');
  execFileSync('git', ['clone', '-q', '--bare', seed, bare]);
  const checkout = join(work, 'srv', 'checkout');
  const deploy = join(checkout, toolkitDir);
  mkdirSync(join(work, 'srv'));
  // the outside world (Pebble, in the same Compose project) comes up from the seed; the stack then runs from the checkout
  const stack = await startStack({ name: 'first-green', start: false, projectDir: join(seed, toolkitDir), images });
  rmSync(stack.stateDir, { recursive: true, force: true });
  const settings = join(work, 'settings.env');
  const values = {
    ...stack.env,
    COMPOSE_FILE: stack.env.COMPOSE_FILE.replace(join(seed, toolkitDir, 'docker-compose.yml'), join(deploy, 'docker-compose.yml')),
    ...shape.settings,
  };
  writeFileSync(settings, `${Object.entries(values).filter(([k]) => !ASKED_KEYS.includes(k)).map(([k, v]) => `${k}=${v}`).join('\n')}\n`);
  const cronDir = join(work, 'cron.d');
  mkdirSync(cronDir);
  const trust = join(work, 'trust.pem');
  try {
    await stack.upSupport(); // DNS pointed and BotFather done: Pebble and the fake Bot API answer
    const machine = process.env.NODE_EXTRA_CA_CERTS;
    writeFileSync(trust, `${machine && existsSync(machine) ? readFileSync(machine, 'utf8') : ''}\n${readFileSync(stack.caPem, 'utf8')}`);
    const env = { NODE_EXTRA_CA_CERTS: trust, NO_COLOR: '1', npm_config_prefer_offline: 'true' };
    const typed: { command: string; s: number }[] = [];
    const timed = async (command: string, f: () => Promise<{ code: number | null; text: string }>) => {
      const t0 = Date.now();
      const r = await f();
      typed.push({ command, s: (Date.now() - t0) / 1000 });
      expect(r.code, `${command}\n${r.text.slice(-4000)}`).toBe(0);
      return r.text;
    };
    const sh = (command: string, cwd: string) => async () => {
      const r = await run('bash', ['-c', command], { cwd, env, timeoutMs: 1_800_000 });
      return { code: r.code, text: r.stdout + r.stderr };
    };
    const load = loadavg()[0];
    await timed(shape.typed.clone, sh(`git clone -q ${bare} ${checkout}`, work));
    await timed(shape.typed.npmCi, sh('npm ci --omit=dev --no-audit --no-fund', deploy));
    const screen = await timed(shape.typed.setup, async () => {
      const r = await onTerminal(`${process.execPath} scripts/setup.mts --settings ${settings} --cron-dir ${cronDir}`, {
        cwd: deploy, env,
        answers: [[/Domain of the bot.*: $/, stack.domain], [/E-mail.*: $/, `ops@${stack.domain}`], [/Bot token \(input hidden\): $/, stack.botToken], [/Admin chat id.*: $/, '']],
        timeoutMs: 1_800_000,
      });
      return { code: r.code, text: r.screen };
    });
    expect(screen).toMatch(/setup done: https:\/\/\S+ is live, smoke passed/);
    const phases = screen.split('\n').map((l) => /^\s*(preflight|lock|build|frontend|contract|backup|frontend_switch|swap|health|telegram|smoke|record|notify)\s+(\S+ ?\S*)\s*$/.exec(l)).filter(Boolean).map((m) => `${m![1]} ${m![2]}`).join(', ');
    const total = typed.reduce((a, t) => a + t.s, 0);
    const lines = [
      `${shape.name}, first green on ${new Date().toISOString().slice(0, 10)}: ${typed.length} commands typed (${typed.length - 1} after git clone), ${total.toFixed(0)} s in all (load average ${load.toFixed(1)} at the start)`,
      ...typed.map((t, i) => `  ${i + 1}. ${t.command.padEnd(55)} ${t.s.toFixed(1).padStart(6)} s`),
      ...(phases ? [`  the first rollout's phases: ${phases}`] : []),
    ];
    console.log(lines.join('\n'));
    report.push(...lines, '');
    writeFileSync(out, `${report.join('\n')}`);
  } finally {
    await stack.down();
    for (const image of Object.values(images)) {
      const refs = (await run('docker', ['images', image, '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n').filter(Boolean);
      if (refs.length) await run('docker', ['image', 'rm', '-f', ...refs]);
    }
    rmSync(work, { recursive: true, force: true });
  }
}

const only = process.env.FG_SHAPE; // reference | fixture-a | unset: both
it.skipIf(only && only !== 'reference')('first green, the reference app: git clone, npm ci, setup.mts', () => firstGreen(reference));
it.skipIf(only && only !== 'fixture-a')('first green, fixture (a): git clone, npm ci in deploy/, setup.mts', () => firstGreen(fixtureA));
