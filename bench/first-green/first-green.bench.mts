// Time to first green (see bench/first-green/run.mts): the commands RUNBOOK "First deploy" step 2
// has the operator type, each timed, from `git clone` to setup's green smoke.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { startStack } from '../../test/support/stack.ts';
import { run } from '../../test/support/run.ts';
import { onTerminal, workingTreeClone } from '../../test/support/terminal.ts';

const out = process.env.FG_OUT ?? '/tmp/benchmarks-first-green.md';
const ASKED_KEYS = ['DOMAIN', 'APP_URL', 'ALLOWED_ORIGINS', 'ACME_EMAIL', 'WEBHOOK_SECRET', 'BOT_TOKEN'];

it('first green: git clone, npm ci, setup.mts', async () => {
  const work = mkdtempSync(join(tmpdir(), 'lzf-bench-first-green-'));
  const suffix = randomBytes(3).toString('hex');
  const images = { appImage: `lzf-bench-fg-app-${suffix}`, proxyImage: `lzf-bench-fg-caddy-${suffix}` };
  // "GitHub": this working tree as a repository
  const bare = join(work, 'github', 'lazyflow-deploy.git');
  const seed = workingTreeClone(join(work, 'seed'));
  execFileSync('git', ['clone', '-q', '--bare', seed, bare]);
  const checkout = join(work, 'srv', 'lazyflow-deploy');
  mkdirSync(join(work, 'srv'));
  // the outside world (Pebble, in the same Compose project) comes up from the seed; the stack then runs from the checkout
  const stack = await startStack({ name: 'first-green', start: false, projectDir: seed, images });
  rmSync(stack.stateDir, { recursive: true, force: true });
  const settings = join(work, 'settings.env');
  const values = { ...stack.env, COMPOSE_FILE: stack.env.COMPOSE_FILE.replace(join(seed, 'docker-compose.yml'), join(checkout, 'docker-compose.yml')) };
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
    await timed('sudo git clone -q "$REPO_URL" /srv/lazyflow-deploy', sh(`git clone -q ${bare} ${checkout}`, work));
    await timed('cd /srv/lazyflow-deploy && sudo npm ci --omit=dev', sh('npm ci --omit=dev --no-audit --no-fund', checkout));
    const screen = await timed('sudo node scripts/setup.mts', async () => {
      const r = await onTerminal(`${process.execPath} scripts/setup.mts --settings ${settings} --cron-dir ${cronDir}`, {
        cwd: checkout, env,
        answers: [[/Domain of the bot.*: $/, stack.domain], [/E-mail.*: $/, `ops@${stack.domain}`], [/Bot token \(input hidden\): $/, stack.botToken], [/Admin chat id.*: $/, '']],
        timeoutMs: 1_800_000,
      });
      return { code: r.code, text: r.screen };
    });
    expect(screen).toMatch(/setup done: https:\/\/\S+ is live, smoke passed/);
    const phases = screen.split('\n').map((l) => /^\s*(preflight|lock|build|frontend|contract|backup|frontend_switch|swap|health|telegram|smoke|record|notify)\s+(\S+ ?\S*)\s*$/.exec(l)).filter(Boolean).map((m) => `${m![1]} ${m![2]}`).join(', ');
    const total = typed.reduce((a, t) => a + t.s, 0);
    const lines = [
      `first green on ${new Date().toISOString().slice(0, 10)}: ${typed.length} commands typed (${typed.length - 1} after git clone), ${total.toFixed(0)} s in all`,
      ...typed.map((t, i) => `  ${i + 1}. ${t.command.padEnd(55)} ${t.s.toFixed(1).padStart(6)} s`),
      ...(phases ? [`  the first rollout's phases: ${phases}`] : []),
    ];
    console.log(lines.join('\n'));
    writeFileSync(out, `${lines.join('\n')}\n`);
  } finally {
    await stack.down();
    for (const image of Object.values(images)) {
      const refs = (await run('docker', ['images', image, '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n').filter(Boolean);
      if (refs.length) await run('docker', ['image', 'rm', '-f', ...refs]);
    }
    rmSync(work, { recursive: true, force: true });
  }
});
