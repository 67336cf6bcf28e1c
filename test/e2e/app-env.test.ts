// The app's own settings and the contract gate, on the real stack (local mode, Caddy's internal CA):
// a rollout passes the env file's app keys (MINI_APP_URL, EXTRA_APP_SETTING) to the app container
// through STATE_DIR/app.env, never the backup credentials; a rollout of an image that breaks the
// required contract is refused before production is touched; a pass is cached per image id.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describeDocker } from '../support/docker.ts';
import { startStack, e2eImages, type Stack } from '../support/stack.ts';
import { mustRun, repoRoot, runScript, type RunResult } from '../support/run.ts';
import { ReleaseSource, patchFile, removeImages } from '../support/release-source.mts';
import { readJournal } from '../../scripts/lib/release/journal.mts';

const explain = (r: RunResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
const EXTRA = 'value with spaces $HOME "quoted"';
const AWS_SECRET = 'aws-secret-that-must-never-reach-the-app-0000';

describeDocker('the app\'s own settings and the contract gate', () => {
  let stack: Stack;
  let src: ReleaseSource;
  let goodSha = '';
  const builtTags: string[] = [];
  const rollout = (...extra: string[]) => runScript('rollout.mts', ['--config', stack.envFile, '--source', src.dir, '--ca', stack.caPem, '--no-notify', ...extra], { timeoutMs: 240_000 });
  const journal = () => readJournal(join(stack.stateDir, 'releases.jsonl')).releases;
  const version = async () => (await stack.fetch('/health')).json().version as string;
  const appEnvOf = async (id: string) => Object.fromEntries((await mustRun('docker', ['exec', id, 'printenv'])).split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

  beforeAll(async () => {
    stack = await startStack({
      name: 'appenv',
      pebble: false,
      env: {
        MINI_APP_URL: 'https://mini.appenv.test',
        EXTRA_APP_SETTING: EXTRA,
        // backup credentials in the same env file: the toolkit needs them, the app must never see them
        AWS_ACCESS_KEY_ID: 'AKIAAPPENVTEST0000',
        AWS_SECRET_ACCESS_KEY: AWS_SECRET,
        RESTIC_PASSWORD_FILE: '/root/lazyflow-offsite/restic-password',
        OFFSITE_TIMEOUT: '3600',
      },
    });
    src = ReleaseSource.create(repoRoot, 'appenv');
  });
  afterAll(async () => {
    removeImages(e2eImages().appImage, [...builtTags, ...(stack ? journal().map((r) => r.appTag ?? '') : [])], [e2eImages().appTag]);
    await stack?.down();
    src?.cleanup();
  });

  it('a rollout passes the env file\'s app keys to the app container, and never the backup credentials', async () => {
    goodSha = src.commit('v2');
    builtTags.push(goodSha.slice(0, 12));
    const r = await rollout('--json');
    expect(r.code, explain(r)).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.result).toBe('ok');
    // the gate ran (nothing cached yet) and is timed among the phases
    expect(res.contract).toMatchObject({ decision: 'not-cached' });
    expect(res.phases.contract).toBeGreaterThan(0);
    console.log(`contract gate (first check of an image): ${res.phases.contract} ms; phases ${JSON.stringify(res.phases)}`);
    // preflight named the keys it passes and the credentials it keeps out (names only)
    const check = await runScript('rollout.mts', ['--config', stack.envFile, '--check', '--json'], { timeoutMs: 60_000 });
    expect(check.code, explain(check)).toBe(0);
    const pre = (JSON.parse(check.stdout).results as { name: string; message: string }[]).filter((x) => x.name.startsWith('app env')).map((x) => x.message).join('\n');
    expect(pre).toMatch(/2 app key\(s\) passed to the app container: MINI_APP_URL, EXTRA_APP_SETTING/);
    expect(pre).toMatch(/kept from the app container \(backup credentials\): AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, RESTIC_PASSWORD_FILE, OFFSITE_TIMEOUT/);
    expect(r.stdout + r.stderr + check.stdout + check.stderr).not.toContain(AWS_SECRET);

    const file = join(stack.stateDir, 'app.env');
    expect((statSync(file).mode & 0o777).toString(8)).toBe('600');
    const text = readFileSync(file, 'utf8');
    expect(text).toContain(`EXTRA_APP_SETTING=${EXTRA}\n`);
    expect(text).not.toMatch(/AWS_|RESTIC_|OFFSITE_|BOT_TOKEN|STATE_DIR/);
    expect(readdirSync(stack.stateDir).filter((f) => f.startsWith('app.env.tmp'))).toEqual([]);

    const [id] = await stack.containers('app');
    const env = await appEnvOf(id);
    expect(env.MINI_APP_URL).toBe('https://mini.appenv.test');
    expect(env.EXTRA_APP_SETTING).toBe(EXTRA); // raw: no quote stripping, no $ expansion
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'RESTIC_PASSWORD_FILE', 'OFFSITE_TIMEOUT', 'STATE_DIR', 'COMPOSE_PROJECT_NAME']) expect(env[k], k).toBeUndefined();
    expect(Object.values(env).join('\n')).not.toContain(AWS_SECRET);
    // the keys compose always set still arrive as before
    expect(env).toMatchObject({ NODE_ENV: 'production', PORT: '3000', DB_PATH: '/app/data/lazyflow.db', APP_URL: 'https://localhost', JOB_HEARTBEAT_MS: '1000' });
  });

  it('an image that breaks the required contract (runs as root) is refused before production is touched: exit 1, the item and its fix named', async () => {
    const before = await version();
    const [liveBefore] = await stack.containers('app');
    const backupsBefore = readdirSync(join(stack.stateDir, 'backups'));
    const sha = src.commit('bad: runs as root', (dir) => patchFile(dir, 'Dockerfile', '\nUSER bun\n', '\nUSER root\n'));
    builtTags.push(sha.slice(0, 12));
    const r = await rollout();
    expect(r.code, explain(r)).toBe(1);
    // the reference app itself refuses to start as root, so the items it never let the checker observe are named too
    expect(r.stderr).toMatch(/does not meet the required app contract \([^)]*non-root[^)]*\); nothing live changed/);
    expect(r.stderr).toMatch(/next: fix the app, commit, roll out again \(check an image by hand: node scripts\/check-app.mts --image /);
    expect(r.stderr).toMatch(/non-root wrong: .*root/);
    expect(r.stderr).toMatch(/fix: /);
    expect(r.stderr).toMatch(/nothing live changed/);
    // production untouched: the same container serves the previous release, no backup was taken
    expect(await version()).toBe(before);
    expect(await stack.containers('app')).toEqual([liveBefore]);
    expect(readdirSync(join(stack.stateDir, 'backups'))).toEqual(backupsBefore);
    const rel = journal().find((x) => x.gitSha === sha)!;
    expect(rel).toMatchObject({ result: 'failed', backupId: null });
    expect(rel.reason).toMatch(/^contract failed: [\s\S]*non-root wrong/);
    expect(rel.phases?.contract).toBeTypeOf('number');
    // a refusal is never cached: the cache holds only the good image
    const cache = JSON.parse(readFileSync(join(stack.stateDir, 'contract-cache.json'), 'utf8'));
    expect(cache.entries.map((e: { image: string }) => e.image)).toEqual([`${e2eImages().appImage}:${goodSha.slice(0, 12)}`]);
  });

  it('rolling out an image that passed before does not pay the check again', async () => {
    src.checkout(goodSha);
    const r = await rollout('--json');
    expect(r.code, explain(r)).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.contract).toMatchObject({ decision: 'cached' });
    console.log(`contract gate (cached pass): ${res.phases.contract} ms`);
    expect(res.phases.contract).toBeLessThan(3000);
    expect(await version()).toBe(goodSha.slice(0, 12));
  });

  it('--skip-contract bypasses the gate, saying so', async () => {
    expect(existsSync(join(stack.stateDir, 'contract-cache.json'))).toBe(true);
    const r = await runScript('rollout.mts', ['--config', stack.envFile, '--source', src.dir, '--dry-run', '--skip-contract'], { timeoutMs: 60_000 });
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout).toMatch(/\[contract\] SKIPPED \(--skip-contract\)/);
  });
});
