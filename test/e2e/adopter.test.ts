// An adopter's app, deployed by following RUNBOOK "Adopting the toolkit: your own Bun bot" word for
// word, in two shells: the blocks marked adopter:laptop in a "laptop" shell (its own home and
// directory, only APP_DIR and TOOLKIT_URL set), the blocks marked adopter:vps in a "VPS" shell that
// starts with none of the laptop's variables (APP_REPO_URL and DEPLOY_DIR only), both under set -u.
// The app is the lazyflow-layout fixture (src/index.ts, frontend/, MINI_APP_URL required, the required
// contract tier only) in a private repository on a git server over SSH in a container, which the VPS
// clones with a read-only deploy key whose host key it pinned, as the guide says. Step 6 runs as
// written: the editor pastes the guide's lines, setup does the rest. What differs here: the env file
// starts with the stack harness's lines (Pebble, the fake Bot API, free ports, the admin chat: setup's
// answers), root's /root/.ssh is this test's directory, GitHub's host key is the stand-in's, and
// `docker build` gets the stand-in Bun image. Then, on the same stack: a second version under HTTPS
// load, routes, smoke's notices, rollback, backup and restore.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker, dockerMissingReason } from '../support/docker.ts';
import { startGitServer, type GitServer } from '../support/git-server.ts';
import { mustRun, repoRoot, run, type RunResult } from '../support/run.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { startLoad, stats, type LoadOp } from '../support/load.mts';

const FIXTURE = join(repoRoot, 'test/fixtures/lazyflow-app');
const GUIDE = '## Adopting the toolkit: your own Bun bot';
/** the host key RUNBOOK pins for github.com (GitHub's published ed25519 key) */
const GITHUB_HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
const ADMIN_CHAT_ID = '424242';

type Machine = 'laptop' | 'vps';
interface GuideBlock { marker: string; lang: string; text: string }

/** The guide's fenced blocks, each with the adopter:* marker on the line before it (or none). */
function guideBlocks(): GuideBlock[] {
  const runbook = readFileSync(join(repoRoot, 'RUNBOOK.md'), 'utf8');
  const start = runbook.indexOf(`\n${GUIDE}\n`);
  expect(start, `RUNBOOK.md has the section "${GUIDE}"`).toBeGreaterThan(0);
  const next = runbook.indexOf('\n## ', start + GUIDE.length + 2);
  const section = runbook.slice(start, next < 0 ? undefined : next);
  return [...section.matchAll(/(?:<!-- (adopter:[a-z]+) -->\n)?```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ marker: m[1] ?? '', lang: m[2], text: m[3] }));
}

describeDocker('adopting the toolkit: the lazyflow-layout fixture, deployed by following RUNBOOK word for word', () => {
  let stack: Stack;
  let gitServer: GitServer;
  let work = '';
  const suffix = randomBytes(3).toString('hex');
  const appImage = `lzf-e2e-adopter-app-${suffix}`;
  const proxyImage = `lzf-e2e-adopter-caddy-${suffix}`;
  /** each shell's own variables: the guide's two for that machine, its home, its git over SSH */
  const shells: Record<Machine, Record<string, string>> = { laptop: {}, vps: {} };
  let vpsRoot = '';
  let deployDir = '';
  const releases: string[] = [];
  let blocks: GuideBlock[] = [];

  /** the environment of one machine's shell: its variables, git's identity, this Node first on PATH */
  const shellEnv = (machine: Machine): Record<string, string | undefined> => ({
    // a login shell of its own: none of the npm_* settings vitest runs under (npm ci would obey them)
    ...Object.fromEntries(Object.keys(process.env).filter((k) => k.toLowerCase().startsWith('npm_')).map((k) => [k, undefined])),
    // npm's download cache and the Node headers native modules build against (nodejs.org cannot be
    // reached here) stay the machine's, although HOME is the shell's own
    npm_config_cache: join(homedir(), '.npm'),
    ...(process.env.npm_config_nodedir ? { npm_config_nodedir: process.env.npm_config_nodedir } : {}),
    ...shells[machine],
    PATH: `${dirname(process.execPath)}:${process.env.PATH}`,
    GIT_AUTHOR_NAME: 'Adopter', GIT_AUTHOR_EMAIL: 'adopter@lazyflow.invalid', GIT_COMMITTER_NAME: 'Adopter', GIT_COMMITTER_EMAIL: 'adopter@lazyflow.invalid',
    // Pebble's root trusted as a VPS trusts Let's Encrypt's (Node's own variable; the toolkit honours
    // it), added to what this machine already trusts that way (its egress proxy, for npm)
    NODE_EXTRA_CA_CERTS: trustedRoots(),
  });

  function trustedRoots(): string | undefined {
    const machine = process.env.NODE_EXTRA_CA_CERTS;
    if (!existsSync(stack.caPem)) return machine;
    const file = join(work, 'trusted-roots.pem');
    writeFileSync(file, `${machine && existsSync(machine) ? readFileSync(machine, 'utf8') : ''}\n${readFileSync(stack.caPem, 'utf8')}`);
    return file;
  }

  /** what a VPS block needs to run here instead of on a VPS (the header says which and why) */
  function onThisMachine(text: string): string {
    return text.replaceAll('/root/', `${vpsRoot}/`).replaceAll(GITHUB_HOST_KEY, gitServer.hostKey);
  }

  /** the phase table a rollout prints, on one line (for the test log) */
  const phaseLine = (out: string) => out.split('\n').map((l) => /^(preflight|lock|build|frontend|contract|backup|frontend_switch|swap|health|telegram|smoke|record|notify)\s+(\S+ ?\S*)$/.exec(l.trim())).filter(Boolean).map((m) => `${m![1]} ${m![2]}`).join(', ');

  /** One guide block, pasted into that machine's shell: a root shell here (sudo runs the command as is,
   * with the same environment, as root's would have it), `set -u` so a variable of the other machine fails. */
  async function runBlock(b: GuideBlock, timeoutMs = 600_000): Promise<RunResult> {
    const machine = b.marker.replace('adopter:', '') as Machine;
    expect(['laptop', 'vps']).toContain(machine);
    const prologue = [
      'set -euo pipefail',
      'sudo() { "$@"; }',
      // no image can be pulled here: `docker build` of the guide's Dockerfile gets the stand-in Bun image
      'docker() { if [ "${1:-}" = build ]; then shift; command docker build ${BUN_IMAGE:+--build-arg "BUN_IMAGE=$BUN_IMAGE"} "$@"; else command docker "$@"; fi; }',
    ].join('\n');
    const text = machine === 'vps' ? onThisMachine(b.text) : b.text;
    const r = await run('bash', ['-c', `${prologue}\n${text}`], { env: shellEnv(machine), cwd: shells[machine].HOME, timeoutMs });
    console.log(`adopter: ${(r.ms / 1000).toFixed(1)} s for the guide's ${machine} block ${JSON.stringify(b.text.split('\n').filter(Boolean).slice(0, 3).join('; ').slice(0, 120))}`);
    if (r.code !== 0 && existsSync(join(stack.projectDir, 'docker-compose.yml'))) {
      const logs = await stack.compose('logs', '--no-color', '--tail', '40', 'app', 'caddy');
      console.log(`adopter: compose logs after the failed block (exit ${logs.code}):\n${(logs.stdout + logs.stderr).slice(-12000)}`);
    }
    expect(r.code, `guide block failed (${machine}):\n${text}\n--- stdout ---\n${r.stdout.slice(-4000)}\n--- stderr ---\n${r.stderr.slice(-4000)}`).toBe(0);
    return r;
  }

  /** A toolkit script of the deployed checkout, run in deploy/ on the VPS as the guide's commands are. */
  const toolkit = (script: string, args: string[], timeoutMs = 300_000) =>
    run(process.execPath, [join(deployDir, 'scripts', script), '--config', '.env.prod', ...args], { cwd: deployDir, env: shellEnv('vps'), timeoutMs });

  const tagOf = (sha: string) => sha.slice(0, 12);
  const git = (machine: Machine, dir: string, ...args: string[]) =>
    execFileSync('git', ['-C', dir, ...args], { env: { ...process.env, ...shellEnv(machine) } as NodeJS.ProcessEnv, stdio: 'pipe' }).toString().trim();
  const runningImage = async () => (await mustRun('docker', ['inspect', '--format', '{{.Config.Image}}', (await stack.containers('app'))[0]])).trim();
  const folders = async () => (JSON.parse((await stack.fetch('/folders')).text()) as { folders: { name: string }[] }).folders.map((f) => f.name);
  const addFolder = async (name: string) => {
    const r = await stack.fetch('/folders', { method: 'POST', body: JSON.stringify({ name }), headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(201);
  };

  beforeAll(async () => {
    if (dockerMissingReason) return;
    work = mkdtempSync(join(tmpdir(), 'lzf-e2e-adopter-'));
    const laptopHome = join(work, 'laptop');
    const vpsHome = join(work, 'vps');
    vpsRoot = join(work, 'vps-root');
    for (const d of [laptopHome, vpsHome, vpsRoot]) mkdirSync(d, { recursive: true });
    // "GitHub": the fixture as a private repository of its own, on a git server over SSH; the laptop
    // already has its user key there and GitHub's host key pinned
    gitServer = await startGitServer(join(work, 'github'));
    const seed = join(work, 'seed');
    cpSync(FIXTURE, seed, { recursive: true, filter: (p) => !p.includes('node_modules') });
    for (const args of [['init', '-q', '-b', 'main'], ['add', '-A'], ['commit', '-q', '-m', 'The bot, before the toolkit']]) {
      execFileSync('git', ['-C', seed, ...args], { stdio: 'pipe', env: { ...process.env, GIT_AUTHOR_NAME: 'Adopter', GIT_AUTHOR_EMAIL: 'adopter@lazyflow.invalid', GIT_COMMITTER_NAME: 'Adopter', GIT_COMMITTER_EMAIL: 'adopter@lazyflow.invalid' } });
    }
    await gitServer.pushBare('mybot', seed);
    mkdirSync(join(laptopHome, '.ssh'), { mode: 0o700 });
    const laptopKey = join(laptopHome, '.ssh', 'id_ed25519');
    await mustRun('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'adopter@laptop', '-f', laptopKey]);
    gitServer.addUserKey(readFileSync(`${laptopKey}.pub`, 'utf8'));
    writeFileSync(join(laptopHome, '.ssh', 'known_hosts'), `github.com ${gitServer.hostKey}\n`);
    const appRepoUrl = gitServer.url('mybot');
    shells.laptop = {
      HOME: laptopHome,
      APP_DIR: join(laptopHome, 'src', 'mybot'),
      TOOLKIT_URL: repoRoot,
      // the laptop's ssh as it reaches github.com: its own key, GitHub's host key pinned under that name
      GIT_SSH_COMMAND: gitServer.sshCommand({ key: laptopKey, knownHosts: join(laptopHome, '.ssh', 'known_hosts'), alias: 'github.com' }),
    };
    shells.vps = {
      HOME: vpsHome,
      APP_REPO_URL: appRepoUrl,
      DEPLOY_DIR: join(vpsHome, 'mybot'),
      // root's ssh: /root/.ssh (here vpsRoot/.ssh), with whatever the guide's deploy-key block put there
      GIT_SSH_COMMAND: gitServer.sshCommand({ key: join(vpsRoot, '.ssh', 'id_ed25519'), knownHosts: join(vpsRoot, '.ssh', 'known_hosts'), alias: 'github.com' }),
      // the editor of step 6: pastes the guide's lines for the app (written below, once the guide is read)
      EDITOR: join(work, 'editor.sh'),
      ...(process.env.BUN_IMAGE ? { BUN_IMAGE: process.env.BUN_IMAGE } : {}),
    };
    deployDir = join(shells.vps.DEPLOY_DIR, 'deploy');
    stack = await startStack({ name: 'adopter', start: false, projectDir: deployDir, images: { appImage, proxyImage } });
    // the laptop has the app's repository checked out, as an adopter does
    mkdirSync(dirname(shells.laptop.APP_DIR), { recursive: true });
    git('laptop', laptopHome, 'clone', '-q', appRepoUrl, shells.laptop.APP_DIR);
    blocks = guideBlocks();
  }, 180_000);

  afterAll(async () => {
    await stack?.down();
    await gitServer?.destroy();
    for (const image of [appImage, proxyImage, 'lazyflow-app']) {
      const refs = (await run('docker', ['images', image, '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n').filter(Boolean)
        .filter((ref) => image !== 'lazyflow-app' || ref === 'lazyflow-app:check');
      if (refs.length) await run('docker', ['image', 'rm', '-f', ...refs]);
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('RUNBOOK\'s guide, word for word in two shells: the toolkit in deploy/, the private checkout with a deploy key, the editor and setup, check-app; the first rollout green, smoke passes', async () => {
    // the guide's shape: the variables it names are exactly the ones these two shells set
    const varsBlock = blocks.find((b) => b.marker === 'adopter:vars')!;
    expect([...varsBlock.text.matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1])).toEqual(['APP_DIR', 'TOOLKIT_URL', 'APP_REPO_URL', 'DEPLOY_DIR']);
    const runBlocks = blocks.filter((b) => b.marker === 'adopter:laptop' || b.marker === 'adopter:vps');
    const envBlock = blocks.find((b) => b.marker === 'adopter:env')!;
    expect(runBlocks.map((b) => b.marker.replace('adopter:', ''))).toEqual(['laptop', 'laptop', 'laptop', 'vps', 'vps', 'vps', 'vps', 'vps']);
    expect(envBlock.lang).toBe('ini');
    const [addToolkit, appImageFiles, commit, deployKey, checkout, setup, checkApp] = runBlocks;
    // what onThisMachine replaces is there: a change to the guide's key block must show here
    expect(deployKey.text).toContain('/root/.ssh/id_ed25519');
    expect(deployKey.text).toContain(`github.com ${GITHUB_HOST_KEY}`);

    // on the laptop: the toolkit, the Dockerfile, commit and push
    await runBlock(addToolkit);
    await runBlock(appImageFiles);
    await runBlock(commit);
    expect(git('laptop', shells.laptop.APP_DIR, 'status', '--porcelain')).toBe('');

    // on the VPS: root's deploy key, added on "GitHub" read-only as the guide says; then the checkout
    const key = await runBlock(deployKey);
    const publicKey = key.stdout.trim().split('\n').at(-1)!;
    expect(publicKey).toMatch(/^ssh-ed25519 \S+ deploy@\S+$/);
    gitServer.addDeployKey(publicKey);
    await runBlock(deployKey); // pasted again: changes nothing (no second key, no second pin)
    expect(readFileSync(join(vpsRoot, '.ssh', 'known_hosts'), 'utf8').trim().split('\n')).toEqual([`github.com ${gitServer.hostKey}`]);
    await runBlock(checkout);
    expect(git('vps', shells.vps.DEPLOY_DIR, 'log', '-1', '--format=%s')).toBe('Deploy with the lazyflow-deploy toolkit in deploy/');
    const push = await run('git', ['-C', shells.vps.DEPLOY_DIR, 'push', 'origin', 'HEAD:refs/heads/from-the-vps'], { env: shellEnv('vps') });
    expect(`${push.code} ${push.stderr}`, 'the deploy key may not push').toMatch(/^[1-9]\d* [\s\S]*the deploy key is read-only/);

    // "the internet": Pebble as Let's Encrypt, the fake Bot API as Telegram
    await stack.upSupport();
    const guideEnv = envBlock.text.split('\n').filter((l) => /^[A-Z_]+=/.test(l));
    expect(guideEnv.map((l) => l.split('=')[0])).toEqual(['READY_PATH', 'HEALTHCHECK_PATH', 'FRONTEND_DIR', 'FRONTEND_BUILD', 'FRONTEND_DIST', 'MINI_APP_URL']);
    const harnessEnv = `${readFileSync(stack.envFile, 'utf8')}ADMIN_CHAT_ID=${ADMIN_CHAT_ID}\n`;
    const writeEnv = (text: string) => {
      writeFileSync(join(deployDir, '.env.prod'), text, { mode: 0o600 });
      chmodSync(join(deployDir, '.env.prod'), 0o600);
    };

    // first, an operator who forgot the app's own key: the contract gate boots the app exactly as
    // production would (no stand-in value), refuses it naming the key, and nothing starts; preflight
    // then names the key until the env file sets it
    writeEnv(`${harnessEnv}${guideEnv.filter((l) => !l.startsWith('MINI_APP_URL=')).join('\n')}\n`);
    const refused = await toolkit('rollout.mts', []);
    expect(refused.code, refused.stdout + refused.stderr).toBe(1);
    expect(refused.stderr).toMatch(/FAILED in contract: .*the app exited at start-up naming MINI_APP_URL, which \S+\.env\.prod does not set/s);
    expect(await stack.containers('app')).toEqual([]);
    const pre = await toolkit('rollout.mts', ['--check', '--json']);
    expect(pre.code, pre.stderr).toBe(0);
    expect((JSON.parse(pre.stdout) as { results: { name: string; level: string; message: string }[] }).results.find((x) => x.name === 'app key MINI_APP_URL'))
      .toMatchObject({ level: 'warn', message: expect.stringMatching(/^MINI_APP_URL is not set in .*: the contract check of \S+ \(.*\) saw the app exit at start-up naming it$/) });

    // step 6 as written: the env file holds the harness's lines (setup's answers); the editor pastes the
    // guide's lines as they stand (bot.example.com included: setup makes MINI_APP_URL follow DOMAIN)
    writeEnv(harnessEnv);
    writeFileSync(join(work, 'paste.txt'), envBlock.text);
    writeFileSync(shells.vps.EDITOR, `#!/bin/sh\ncat '${join(work, 'paste.txt')}' >> "$1"\n`, { mode: 0o755 });
    const t0 = Date.now();
    const r = await runBlock(setup);
    writeFileSync(stack.envFile, readFileSync(join(deployDir, '.env.prod')));
    const out = r.stdout + r.stderr;
    console.log(`adopter: setup (first rollout, backup, schedules, smoke) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const head = tagOf(git('vps', shells.vps.DEPLOY_DIR, 'rev-parse', 'HEAD'));
    releases.push(head);
    expect(out).toMatch(new RegExp(`rollout \\S+ done: https://${stack.domain.replace(/\./g, '\\.')} runs ${head}`));
    // the gate names what the app lacks; the health gate says what it compared; the toolkit registered the webhook
    for (const id of ['health-version', 'readiness', 'user-version', 'jobs-heartbeat', 'update-dedupe']) expect(out).toContain(`${id} (recommended) missing`);
    expect(out).toMatch(/so the running app container was compared instead: its image \S+ is the release/);
    expect(out).toMatch(/webhook registered by the toolkit \(it was not set\)/);
    expect(out).toMatch(/setup done: \S+ is live, smoke passed/);
    expect(out).not.toMatch(/app key MINI_APP_URL/);
    expect(readFileSync(join(deployDir, '.env.prod'), 'utf8')).toMatch(new RegExp(`^MINI_APP_URL=https://${stack.domain.replace(/\./g, '\\.')}$`, 'm'));
    expect(stack.fakeBot!.webhookInfo(stack.botToken).url).toBe(`https://${stack.domain}/webhook/${stack.webhookSecret}`);
    expect(await runningImage()).toBe(`${appImage}:${head}`);

    // step 7: the app against the whole contract, from the image the guide builds
    const check = await runBlock(checkApp);
    expect(check.stdout + check.stderr).toMatch(/health-version \(recommended\) missing/);
  }, 1_200_000);

  it('GET /folders and GET /google/callback through Caddy reach the app; the Mini App is the fixture\'s own build', async () => {
    await addFolder('inbox');
    expect(await folders()).toEqual(['inbox']);
    const cb = await stack.fetch('/google/callback?code=abc');
    expect(`${cb.status} ${String(cb.headers['content-type'])}`).toMatch(/^200 application\/json/);
    expect(JSON.parse(cb.text())).toEqual({ route: 'google-callback', code: 'abc' });
    const index = await stack.fetch('/');
    expect(index.text()).toContain('<title>LazyFlow fixture</title>');
    // built by FRONTEND_BUILD (bun build --minify) into FRONTEND_DIST, not copied from frontend/
    const js = (await stack.fetch('/app.js')).text();
    expect(js).toContain('LAZYFLOW_API_BASE_URL');
    expect(js).not.toBe(readFileSync(join(FIXTURE, 'frontend/app.js'), 'utf8'));
    expect((await stack.fetch('/config.js')).text()).toContain(`window.LAZYFLOW_API_BASE_URL = "https://${stack.domain}"`);
    // READY_PATH=/health: /health is Caddy's readiness path and stays public; /health/* stays internal
    expect((await stack.fetch('/health')).status).toBe(200);
    const internal = await stack.fetch('/health/anything');
    expect(`${internal.status} ${internal.text()}`).toBe('404 Not Found');
  });

  it('smoke passes with notices naming each recommended item the app lacks and the RUNBOOK section', async () => {
    const r = await toolkit('smoke.mts', ['--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const results = Object.fromEntries((JSON.parse(r.stdout) as { results: { name: string; status: string; detail: string }[] }).results.map((x) => [x.name, x]));
    expect(results.contract.status).toBe('warn');
    for (const id of ['health-version', 'readiness', 'user-version', 'jobs-heartbeat', 'update-dedupe']) {
      expect(results.contract.detail).toMatch(new RegExp(`${id} \\(recommended\\) missing: [^;]*; .*\\(RUNBOOK\\.md#the-app-contract\\)`));
    }
    expect(results.jobs).toMatchObject({ status: 'skip', detail: expect.stringMatching(/^jobs-heartbeat \(recommended\) missing/) });
    expect(results.cors).toMatchObject({ status: 'skip', detail: expect.stringMatching(/\(cors, RUNBOOK\.md#also-relied-on\)$/) });
    expect(results.health).toMatchObject({ status: 'pass', detail: expect.stringMatching(/compared instead/) });
    for (const name of ['containers', 'tls', 'telegram', 'routes', 'frontend', 'webhook', 'uploads']) expect(`${name}: ${results[name].status}`).toBe(`${name}: pass`);
  });

  it('a second version under HTTPS load, as the guide\'s routine deploy: zero failed requests, the new app and front end served', async () => {
    // on the machine: a change to the app and to the Mini App, committed and pushed
    const dev = shells.laptop.APP_DIR;
    writeFileSync(join(dev, 'src/index.ts'), readFileSync(join(dev, 'src/index.ts'), 'utf8').replace('route: "google-callback"', 'route: "google-callback", v: 2'));
    writeFileSync(join(dev, 'frontend/index.html'), readFileSync(join(dev, 'frontend/index.html'), 'utf8').replace('<title>LazyFlow fixture</title>', '<title>LazyFlow fixture v2</title>'));
    git('laptop', dev, 'commit', '-qam', 'v2: app and Mini App');
    git('laptop', dev, 'push', '-q');

    const ops: LoadOp[] = [
      { name: 'GET /health', method: 'GET', path: '/health' },
      { name: 'GET /folders', method: 'GET', path: '/folders' },
      { name: 'POST /folders', method: 'POST', path: '/folders', headers: { 'content-type': 'application/json' }, body: 'folder-json', okStatuses: [201] },
    ];
    const load = startLoad({ domain: stack.domain, httpsPort: stack.httpsPort, ca: stack.ca }, ops, { concurrency: 4 });
    await new Promise((res) => setTimeout(res, 1000));
    const t0 = Date.now();
    const routine = blocks.filter((b) => b.marker === 'adopter:vps').at(-1)!;
    const r = await runBlock(routine);
    const ms = Date.now() - t0;
    await new Promise((res) => setTimeout(res, 1000));
    const all = stats(await load.stop());
    const head = tagOf(git('vps', shells.vps.DEPLOY_DIR, 'rev-parse', 'HEAD'));
    releases.push(head);
    console.log(`adopter: routine rollout under load in ${(ms / 1000).toFixed(1)} s (${phaseLine(r.stdout + r.stderr)}): ${all.requests} requests (${JSON.stringify(all.byOp)}), ${all.failed} failed, max ${all.maxMs.toFixed(0)} ms`);
    expect(r.stdout + r.stderr).toMatch(new RegExp(`done: https://\\S+ runs ${head}`));
    // the fixture has no readiness path (READY_PATH=/health): the toolkit drained it before the stop
    expect(r.stdout + r.stderr).toMatch(/drain: Caddy stops routing to the app before it stops/);
    expect(all.failures, JSON.stringify(all.failures.slice(0, 5))).toEqual([]);
    expect(all.byOp['POST /folders'].requests).toBeGreaterThan(20);
    expect(await runningImage()).toBe(`${appImage}:${head}`);
    expect(JSON.parse((await stack.fetch('/google/callback')).text())).toMatchObject({ v: 2 });
    expect((await stack.fetch('/')).text()).toContain('<title>LazyFlow fixture v2</title>');
    expect(JSON.parse((await stack.fetch('/lazyflow-release.json')).text())).toMatchObject({ appTag: head });
  }, 600_000);

  it('a drain flag left by a process killed in its drain holds requests (Caddy sees it) until recovery removes it', async () => {
    const flag = join(stack.stateDir, 'proxy', 'draining');
    mkdirSync(dirname(flag), { recursive: true });
    writeFileSync(flag, `${JSON.stringify({ pid: 2 ** 22 + 11, since: new Date().toISOString(), what: 'swap to a killed release' })}\n`, { mode: 0o644 });
    await new Promise((res) => setTimeout(res, 1000)); // a few of Caddy's 250 ms health checks
    const t0 = Date.now();
    let answeredAt = 0;
    const held = stack.fetch('/folders', { timeoutMs: 60_000 }).then((r) => { answeredAt = Date.now(); return r; });
    await new Promise((res) => setTimeout(res, 2000));
    expect(answeredAt, 'with the flag, Caddy must hold the request, not send it to the app').toBe(0);
    const r = await toolkit('recover.mts', []);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/let Caddy route to the app again: the drain flag of "swap to a killed release" .* outlived its process/);
    expect(existsSync(flag)).toBe(false);
    const reply = await held;
    expect(reply.status).toBe(200);
    console.log(`adopter: a request held by a stale drain flag answered ${((answeredAt - t0) / 1000).toFixed(1)} s after it was sent (recovery ran after 2 s)`);
  }, 120_000);

  it('rollback: the previous release and its front end serve again, data kept', async () => {
    const before = (await folders()).length;
    const r = await toolkit('rollback.mts', ['--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await runningImage()).toBe(`${appImage}:${releases[0]}`);
    expect((await stack.fetch('/')).text()).toContain('<title>LazyFlow fixture</title>');
    expect(JSON.parse((await stack.fetch('/google/callback')).text())).not.toHaveProperty('v');
    expect((await folders()).length).toBe(before);
  }, 300_000);

  it('backup and restore: the folders rows of the backup come back, a later one is gone', async () => {
    await addFolder('kept-by-the-backup');
    const b = await toolkit('backup.mts', ['--json', '--quiet']);
    expect(b.code, b.stdout + b.stderr).toBe(0);
    const id = (JSON.parse(b.stdout) as { backup: { id: string } }).backup.id;
    const backedUp = await folders();
    await addFolder('after-the-backup');
    const r = await toolkit('restore.mts', ['--from', id, '--yes']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await folders()).toEqual(backedUp);
    expect(backedUp).toContain('kept-by-the-backup');
    expect(await runningImage()).toBe(`${appImage}:${releases[0]}`);
  }, 300_000);
});
