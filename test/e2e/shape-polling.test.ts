// Issue 18, the long-polling shape: the grammY polling fixture (test/fixtures/grammy-poller: bot.start(),
// no webhook, no public port, /health for the container healthcheck only) deployed through the toolkit
// with BOT_SHAPE=polling against the fake Bot API, on one stack that has no Caddy and no Pebble: the
// first rollout (the app alone: no proxy image, no Caddy container, no published port; the contract gate
// boots it against the sandbox's stub Bot API), a rollout while updates arrive (the old poller stopped
// before the pre-deploy backup; every update handled and confirmed exactly once), a schema-changing
// release that crashes on the live data and is reverted with the backup while updates arrive (none lost,
// none handled twice), and a rollback.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker, dockerMissingReason } from '../support/docker.ts';
import { repoRoot, runScript, type RunResult } from '../support/run.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { makeMessageUpdate, whileSending } from '../support/telegram.ts';
import { fixtureRepository, removeFixtureStack } from '../support/release-source.mts';
import { appContainerStates, deliver, describeApps, inProgress, startOperation, waitForPoint } from '../support/faults.ts';
import { readJournal } from '../../scripts/lib/release/journal.mts';

const FIXTURE = join(repoRoot, 'test/fixtures/grammy-poller');
const explain = (r: RunResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout.slice(-4000)}\n--- stderr ---\n${r.stderr.slice(-6000)}`;

describeDocker('bot shape polling: a grammY poller deployed with no ingress, rolled out stop-first under updates, rolled back', () => {
  let stack: Stack;
  let src = '';
  const suffix = randomBytes(3).toString('hex');
  const appImage = `lzf-e2e-polling-app-${suffix}`;
  // never built: a polling bot has no proxy image (asserted below)
  const proxyImage = `lzf-e2e-polling-caddy-${suffix}`;
  const tags: string[] = [];
  const git = (...args: string[]) => execFileSync('git', ['-C', src, ...args], { stdio: 'pipe' }).toString().trim();
  const script = (name: string, args: string[], timeoutMs = 300_000) => runScript(name, ['--config', stack.envFile, ...args], { timeoutMs, env: { NO_COLOR: '1' } });
  // with the contract gate: the sandbox gives the poller a stub Bot API (contract/telegram-stub.mts)
  const rollout = () => script('rollout.mts', ['--source', src, '--no-notify', '--json']);
  const journal = () => readJournal(join(stack.stateDir, 'releases.jsonl')).releases;
  const inspect = async (format: string) => execFileSync('docker', ['inspect', '--format', format, (await stack.containers('app'))[0]], { stdio: 'pipe' }).toString().trim();
  /** the fixture's own record: one row per update_id, `handled` counts how often it handled it */
  const handled = () => {
    const db = new Database(join(stack.stateDir, 'data', 'lazyflow.db'), { readonly: true, fileMustExist: true });
    try {
      return new Map((db.prepare('SELECT update_id AS id, handled FROM updates').all() as { id: number; handled: number }[]).map((r) => [r.id, r.handled]));
    } finally {
      db.close();
    }
  };
  let chat = 9_100_000;
  const send = () => stack.fakeBot!.queueUpdate(stack.botToken, makeMessageUpdate({ chat_id: chat++, text: `note ${chat}` }));
  /** a rollout while one update arrives every 100 ms, from 1 s before it until 1 s after, then drained */
  const rolloutWhileSending = async () => {
    const { result: r, sent } = await whileSending(send, rollout);
    await stack.fakeBot!.waitForDrained(stack.botToken, 60_000);
    return { r, sent };
  };
  /** every sent update handled exactly once (the fixture's own count) and confirmed exactly once, in order */
  const expectEachOnce = (sent: number[]) => {
    expect(sent.length).toBeGreaterThan(20);
    const rows = handled();
    const wrong = sent.filter((id) => rows.get(id) !== 1).map((id) => `${id}: ${rows.get(id) ?? 'lost'}`);
    expect(wrong, 'updates not handled exactly once').toEqual([]);
    const confirmed = stack.fakeBot!.confirmedUpdateIds(stack.botToken);
    expect(confirmed.filter((id) => sent.includes(id))).toEqual(sent);
    expect(stack.fakeBot!.webhookInfo(stack.botToken)).toMatchObject({ url: '', pending_update_count: 0 });
  };
  const commit = (what: string) => {
    git('commit', '-q', '--allow-empty', '-m', what);
    const tag = git('rev-parse', 'HEAD').slice(0, 12);
    tags.push(tag);
    return tag;
  };

  beforeAll(async () => {
    if (dockerMissingReason) return;
    src = fixtureRepository(FIXTURE, 'lzf-e2e-polling-src-', 'v1');
    tags.push(git('rev-parse', 'HEAD').slice(0, 12));
    stack = await startStack({
      name: 'shape-polling', pebble: false, fakeBot: true, start: false, images: { appImage, proxyImage },
      env: {
        BOT_SHAPE: 'polling',
        // what a polling bot's env file needs: its token and the shape; no domain, certificate, webhook
        // secret or Mini App origin (empty = unset)
        DOMAIN: '', APP_URL: '', ALLOWED_ORIGINS: '', ACME_EMAIL: '', WEBHOOK_SECRET: '',
        // the fixture's image has no bash (Bun's probe) and answers /health, not /health/write; the test
        // overlay lets the app reach the fake Bot API on the host
        COMPOSE_FILE: ['docker-compose.yml', 'docker/compose.bun-healthcheck.yml', 'test/support/host-gateway.compose.yml'].map((f) => join(repoRoot, f)).join(':'),
        HEALTHCHECK_PATH: '/health',
        READY_PATH: '/health',
        // an app key of the fixture's: a short long-poll, so a test waits less for an idle poll
        POLL_TIMEOUT: '10',
      },
    });
    await stack.upSupport(); // the fake Bot API only: no Pebble
  }, 300_000);

  afterAll(() => removeFixtureStack(stack, [appImage, proxyImage], src));

  it('first rollout: the app alone (no proxy image, no Caddy, no published port), polling; preflight and smoke say so', async () => {
    const pre = await script('rollout.mts', ['--source', src, '--dry-run', '--no-notify']);
    expect(pre.code, explain(pre)).toBe(0);
    expect(pre.stdout + pre.stderr).toMatch(/bot shape: polling \(BOT_SHAPE=polling in the env file\)/);

    const r = await rollout();
    expect(r.code, explain(r)).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ result: 'ok', appTag: tags[0] });
    // the contract gate booted the poller in its sandbox (stub Bot API) and it passed: not skipped, not cached
    expect(out.contract, explain(r)).toMatchObject({ decision: 'not-cached' });
    expect(r.stderr).toMatch(/stub Bot API on the sandbox network/);
    expect(r.stderr).not.toMatch(/build (proxy|front end)/);
    expect(r.stderr).toMatch(/no Caddy, health inside the container/);
    expect(journal().at(-1)).toMatchObject({ result: 'ok', shape: 'polling' });
    expect(await inspect('{{.Config.Image}}')).toBe(`${appImage}:${tags[0]}`);
    expect(await stack.containers('caddy')).toEqual([]);
    expect(await inspect('{{json .HostConfig.PortBindings}}')).toMatch(/^(\{\}|null)$/);
    expect(execFileSync('docker', ['images', '-q', proxyImage], { stdio: 'pipe' }).toString().trim()).toBe('');

    const id = send();
    await stack.fakeBot!.waitForDrained(stack.botToken, 30_000);
    expect(handled().get(id)).toBe(1);
    expect(stack.fakeBot!.webhookInfo(stack.botToken)).toMatchObject({ url: '', pending_update_count: 0 });

    const smoke = await script('smoke.mts', ['--json'], 120_000);
    expect(smoke.code, explain(smoke)).toBe(0);
    const byName = Object.fromEntries((JSON.parse(smoke.stdout).results as { name: string; status: string; detail: string }[]).map((x) => [x.name, x]));
    expect(byName.containers).toMatchObject({ status: 'pass' });
    expect(byName.health).toMatchObject({ status: 'skip', detail: expect.stringMatching(/bot shape polling, no Caddy/) });
    expect(byName.tls).toMatchObject({ status: 'skip' });
    expect(byName.hardening.status).not.toBe('fail');
    // the fixture's database is not world-readable (it sets umask 027): no warning
    expect(byName.database, JSON.stringify(byName.database)).toMatchObject({ status: 'pass' });
  });

  it('a rollout while updates arrive: stop-first, every update handled once and confirmed once, none lost', async () => {
    const v2 = commit('v2');
    const { r, sent } = await rolloutWhileSending();
    expect(r.code, explain(r)).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ result: 'ok', appTag: v2 });
    expect(await inspect('{{.Config.Image}}')).toBe(`${appImage}:${v2}`);
    // the old poller was stopped before the pre-deploy backup (nothing confirmed after the backup), then
    // the new one started (stop-first)
    expect(r.stderr).toMatch(/stop the old poller[\s\S]*pre-deploy backup[\s\S]*swap app/);
    expect(out.phases.stop_poller).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/telegram gate[\s\S]*no webhook set/);

    expectEachOnce(sent);
    console.log(`shape polling: ${sent.length} updates during the rollout, swap ${JSON.stringify(out.swap)}`);
  });

  it('a schema-changing release that crashes on the live data: reverted with its pre-deploy backup while updates arrive, none lost, none handled twice', async () => {
    // v3's migration adds a column and sets user_version 1, then a data step fails on existing rows: an
    // empty sandbox database passes it (the contract gate lets it through), production's data does not
    const file = join(src, 'src/index.ts');
    const migration = 'db.exec("ALTER TABLE updates ADD COLUMN note TEXT; PRAGMA user_version = 1;");\n'
      + 'if ((db.query("SELECT count(*) AS n FROM updates").get() as { n: number }).n > 0) throw new Error("migration 1 failed on existing rows");\n';
    writeFileSync(file, readFileSync(file, 'utf8').replace('const record = db.prepare(', `${migration}const record = db.prepare(`));
    git('add', '-A');
    const v3 = commit('v3: a migration that fails on real rows');
    const v2 = tags[1];
    const before = handled();
    const { r, sent } = await rolloutWhileSending();
    expect(r.code, explain(r)).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out, explain(r)).toMatchObject({ result: 'rolled-back', appTag: v3, rollback: { ok: true, decision: { toAppTag: v2, restoreDb: true } } });
    expect(r.stderr).toMatch(/stop the old poller[\s\S]*pre-deploy backup/);
    expect(await inspect('{{.Config.Image}}')).toBe(`${appImage}:${v2}`);
    const db = new Database(join(stack.stateDir, 'data', 'lazyflow.db'), { readonly: true, fileMustExist: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(0);
    } finally {
      db.close();
    }
    // what was handled before the release is still there, as often as before (the backup had it all)
    const rows = handled();
    expect([...before].filter(([id, n]) => rows.get(id) !== n)).toEqual([]);
    expectEachOnce(sent);
    expect(journal().filter((x) => x.appTag === v3).at(-1)).toMatchObject({ result: 'rolled-back' });
    console.log(`shape polling: ${sent.length} updates during the failed rollout and its revert`);
  });

  it('rollback: back to v1, stop-first, polling again', async () => {
    const r = await script('rollback.mts', ['--no-notify'], 240_000);
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout + r.stderr).not.toMatch(/no front end staged/);
    expect(await inspect('{{.Config.Image}}')).toBe(`${appImage}:${tags[0]}`);
    expect(await stack.containers('caddy')).toEqual([]);
    const id = send();
    await stack.fakeBot!.waitForDrained(stack.botToken, 30_000);
    expect(handled().get(id)).toBe(1);
  });

  it('backup, restore drill and restore of a polling bot, as for any shape (the drill boots it against the stub Bot API)', async () => {
    const b = await script('backup.mts', ['--json']);
    expect(b.code, explain(b)).toBe(0);
    const id = JSON.parse(b.stdout).backup.id as string;
    const atBackup = handled();
    const drill = await script('restore.mts', ['--drill', '--from', id, '--json', '--quiet']);
    expect(drill.code, explain(drill)).toBe(0);
    const checks = Object.fromEntries((JSON.parse(drill.stdout).checks as { name: string; status: string }[]).map((c) => [c.name, c.status]));
    expect(checks).toMatchObject({ 'app boots and is healthy': 'pass', 'row counts': 'pass', teardown: 'pass' });
    // an update handled after the backup: restoring the backup is the operator's choice of that data
    const later = send();
    await stack.fakeBot!.waitForDrained(stack.botToken, 30_000);
    expect(handled().get(later)).toBe(1);
    const r = await script('restore.mts', ['--from', id, '--yes'], 240_000);
    expect(r.code, explain(r)).toBe(0);
    expect(handled()).toEqual(atBackup);
    expect(await inspect('{{.State.Health.Status}}')).toBe('healthy');
    const next = send();
    await stack.fakeBot!.waitForDrained(stack.botToken, 30_000);
    expect(handled().get(next)).toBe(1);
  });

  it('interrupted: SIGHUP while the old poller is stopped for the backup, then kill -9 of everything mid-swap; recover.mts heals each, no update lost or handled twice', async () => {
    const file = join(src, 'src/index.ts');
    writeFileSync(file, readFileSync(join(FIXTURE, 'src/index.ts'), 'utf8'));
    git('add', '-A');
    const v4 = commit('v4: the migration taken out again');
    const liveTag = await inspect('{{.Config.Image}}');
    const phaseIs = (phase: string) => () => inProgress(stack.stateDir).some((x) => x.appTag === v4 && x.phase === phase);
    const { sent } = await whileSending(send, async () => {
      // 1. the SSH session drops in the window the poller is stopped (before the backup, before the detached worker)
      const op1 = startOperation(stack, 'rollout.mts', ['--source', src, '--no-notify']);
      await waitForPoint(op1, 'the old poller stopped', phaseIs('stop-poller'), 240_000, 5);
      deliver(op1, 'sighup');
      await op1.exited;
      const rec1 = await script('recover.mts', ['--json']);
      expect(rec1.code, explain(rec1)).toBe(0);
      expect(await inspect('{{.Config.Image}}')).toBe(liveTag);
      expect(await inspect('{{.State.Health.Status}}')).toBe('healthy');
      expect(inProgress(stack.stateDir)).toEqual([]);

      // 2. again, and everything of it is killed (kill -9 of the group and of the detached worker) once the new container exists
      const op2 = startOperation(stack, 'rollout.mts', ['--source', src, '--no-notify']);
      await waitForPoint(op2, 'the new container created', async () => phaseIs('swap')() && (await appContainerStates(stack)).some((c) => c.image.endsWith(`:${v4}`)), 240_000, 20);
      deliver(op2, 'reboot');
      await op2.exited;
      const rec2 = await script('recover.mts', ['--json']);
      expect(rec2.code, explain(rec2)).toBe(0);
      expect(inProgress(stack.stateDir)).toEqual([]);
      const running = (await appContainerStates(stack)).filter((c) => c.status === 'running');
      expect(running, describeApps(running)).toHaveLength(1);
      expect(await inspect('{{.State.Health.Status}}')).toBe('healthy');
    });
    await stack.fakeBot!.waitForDrained(stack.botToken, 60_000);
    expectEachOnce(sent);
    console.log(`shape polling: ${sent.length} updates across the two interruptions; after recovery the bot runs ${await inspect('{{.Config.Image}}')}`);
  });
});
