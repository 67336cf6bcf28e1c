// Issue 18, the webhook-only shape: a grammY webhook bot with no Mini App and no uploads
// (test/fixtures/webhook-bot, its own layout and Dockerfile), deployed through the toolkit with
// BOT_SHAPE=webhook on one stack: the first rollout (a proxy image built with no front end at all, `/`
// is no Mini App, smoke adapts), a rollout while Telegram updates arrive (each stored and answered
// exactly once), a rollback, and a backup restored with what came after it kept aside.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker, dockerMissingReason } from '../support/docker.ts';
import { repoRoot, runScript, type RunResult } from '../support/run.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { makeMessageUpdate, whileSending } from '../support/telegram.ts';
import { fixtureRepository, removeFixtureStack } from '../support/release-source.mts';
import { readJournal } from '../../scripts/lib/release/journal.mts';

const FIXTURE = join(repoRoot, 'test/fixtures/webhook-bot');
const explain = (r: RunResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout.slice(-4000)}\n--- stderr ---\n${r.stderr.slice(-6000)}`;

describeDocker('bot shape webhook: a webhook-only grammY bot, deployed, rolled out under updates, rolled back, restored', () => {
  let stack: Stack;
  let src = '';
  const suffix = randomBytes(3).toString('hex');
  const appImage = `lzf-e2e-webhook-app-${suffix}`;
  const proxyImage = `lzf-e2e-webhook-caddy-${suffix}`;
  const tags: string[] = [];
  let chatSeq = 8_100_000;
  const git = (...args: string[]) => execFileSync('git', ['-C', src, ...args], { stdio: 'pipe' }).toString().trim();
  const ca = () => ['--ca', stack.caPem];
  const script = (name: string, args: string[], timeoutMs = 300_000) => runScript(name, ['--config', stack.envFile, ...args], { timeoutMs, env: { NO_COLOR: '1' } });
  const rollout = () => script('rollout.mts', ['--source', src, '--no-notify', '--json', ...ca()]);
  const journal = () => readJournal(join(stack.stateDir, 'releases.jsonl')).releases;
  const runningImage = async () => execFileSync('docker', ['inspect', '--format', '{{.Config.Image}}', (await stack.containers('app'))[0]], { stdio: 'pipe' }).toString().trim();
  const dbRows = (file: string) => {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      return db.prepare('SELECT update_id, chat_id FROM messages').all() as { update_id: number; chat_id: number }[];
    } finally {
      db.close();
    }
  };
  const liveDb = () => join(stack.stateDir, 'data', 'lazyflow.db');
  /** one text message in a chat of its own; the bot stores it and answers it */
  const send = () => {
    const chat = chatSeq++;
    return { id: stack.fakeBot!.queueUpdate(stack.botToken, makeMessageUpdate({ chat_id: chat, text: `hello ${chat}` })), chat };
  };
  const replies = (chat: number) => stack.fakeBot!.sentMessages(stack.botToken).filter((m) => Number(m.chat_id) === chat);
  const commit = (what: string) => {
    appendFileSync(join(src, 'bot', 'main.ts'), `// ${what}\n`);
    git('commit', '-q', '-am', what);
    const tag = git('rev-parse', 'HEAD').slice(0, 12);
    tags.push(tag);
    return tag;
  };

  beforeAll(async () => {
    if (dockerMissingReason) return;
    // the bot's own repository: bot/, its Dockerfile, no front end of any kind; the toolkit's docker/caddy
    // beside it (the proxy image of a release builds from the release's source, as in contract.test.ts)
    src = fixtureRepository(FIXTURE, 'lzf-e2e-webhook-src-', 'v1');
    tags.push(git('rev-parse', 'HEAD').slice(0, 12));
    stack = await startStack({ name: 'shape-webhook', start: false, images: { appImage, proxyImage }, env: { BOT_SHAPE: 'webhook' } });
    await stack.upSupport();
  }, 300_000);

  afterAll(() => removeFixtureStack(stack, [appImage, proxyImage], src));

  it('first rollout: the proxy builds with no front end, / is no Mini App, smoke adapts, updates are answered; preflight and status name the shape', async () => {
    const pre = await script('rollout.mts', ['--source', src, '--dry-run', '--no-notify']);
    expect(pre.code, explain(pre)).toBe(0);
    expect(pre.stdout + pre.stderr).toMatch(/bot shape: webhook \(BOT_SHAPE=webhook in the env file\)/);

    const r = await rollout();
    expect(r.code, explain(r)).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ result: 'ok', appTag: tags[0] });
    expect(r.stderr).toMatch(/build proxy \S+ \(no Mini App\)/);
    expect(await runningImage()).toBe(`${appImage}:${tags[0]}`);
    const rel = journal().at(-1)!;
    expect(rel).toMatchObject({ result: 'ok', shape: 'webhook' });
    // nothing staged or switched: no front end in STATE_DIR, no frontend_switch phase
    expect(existsSync(join(stack.stateDir, 'frontend', tags[0]))).toBe(false);
    expect(rel.phases?.frontend_switch).toBeUndefined();

    // `/` is Caddy's 404, not a Mini App (neither the reference app's nor any other)
    const root = await stack.fetch('/');
    expect(root.status).toBe(404);
    expect(root.text()).not.toMatch(/<html/i);
    expect((await stack.fetch('/lazyflow-release.json')).status).toBe(404);
    expect((await stack.fetch('/health')).status).toBe(200);

    const u = send();
    await stack.fakeBot!.waitForDrained(stack.botToken, 30_000);
    expect(replies(u.chat).map((m) => m.text)).toEqual(['noted (1)']);

    const smoke = await script('smoke.mts', ['--json', ...ca()], 120_000);
    expect(smoke.code, explain(smoke)).toBe(0);
    const byName = Object.fromEntries((JSON.parse(smoke.stdout).results as { name: string; status: string; detail: string }[]).map((x) => [x.name, x]));
    expect(byName.miniapp).toMatchObject({ status: 'pass', detail: expect.stringMatching(/GET \/ -> 404: no Mini App served/) });
    expect(byName.frontend).toMatchObject({ status: 'skip', detail: expect.stringMatching(/bot shape webhook/) });
    expect(byName.uploads).toMatchObject({ status: 'pass', detail: expect.stringMatching(/no uploads route expected/) });

    const status = await script('status.mts', ['--json', ...ca()], 120_000);
    expect(JSON.parse(status.stdout).shape).toMatchObject({ shape: 'webhook', does: expect.stringMatching(/no Mini App/) });
  });

  it('a rollout while updates arrive: every update stored once and answered once, none lost', async () => {
    const v2 = commit('v2');
    const { result: r, sent: updates } = await whileSending(send, rollout);
    await stack.fakeBot!.waitForDrained(stack.botToken, 60_000);
    expect(r.code, explain(r)).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ result: 'ok', appTag: v2 });
    expect(await runningImage()).toBe(`${appImage}:${v2}`);

    expect(updates.length).toBeGreaterThan(20);
    const rows = dbRows(liveDb());
    const n = new Map<number, number>();
    for (const row of rows) n.set(row.update_id, (n.get(row.update_id) ?? 0) + 1);
    for (const u of updates) {
      expect(n.get(u.id), `update ${u.id} stored`).toBe(1);
      expect(replies(u.chat).length, `replies to chat ${u.chat}`).toBe(1);
    }
    console.log(`shape webhook: ${updates.length} updates during the rollout, ${stack.fakeBot!.deliveries.filter((d) => updates.some((u) => u.id === d.update_id) && d.status !== 200).length} delivery attempts answered non-200 (redelivered), swap ${JSON.stringify(JSON.parse(r.stdout).swap)}`);
  });

  it('rollback: back to v1, with no front end to switch; updates are answered after it', async () => {
    const r = await script('rollback.mts', ['--no-notify', ...ca()], 240_000);
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout + r.stderr).not.toMatch(/no front end staged/);
    expect(await runningImage()).toBe(`${appImage}:${tags[0]}`);
    expect((await stack.fetch('/')).status).toBe(404);
    const u = send();
    await stack.fakeBot!.waitForDrained(stack.botToken, 30_000);
    expect(replies(u.chat)).toHaveLength(1);
  });

  it('backup and restore: the backup comes back, the updates answered after it are kept aside, not lost', async () => {
    const b = await script('backup.mts', ['--json', '--quiet']);
    expect(b.code, explain(b)).toBe(0);
    const backupId = JSON.parse(b.stdout).backup.id as string;
    const before = new Set(dbRows(liveDb()).map((x) => x.update_id));

    const after = [send(), send()];
    await stack.fakeBot!.waitForDrained(stack.botToken, 30_000);
    for (const u of after) expect(replies(u.chat)).toHaveLength(1);

    const r = await script('restore.mts', ['--from', backupId, '--yes', ...ca()], 240_000);
    expect(r.code, explain(r)).toBe(0);
    const live = new Set(dbRows(liveDb()).map((x) => x.update_id));
    expect(live).toEqual(before);
    const keptDir = /kept aside: (\S+)/.exec(r.stdout)?.[1];
    expect(keptDir, r.stdout).toBeTruthy();
    const kept = new Set(dbRows(join(keptDir!, 'data', 'lazyflow.db')).map((x) => x.update_id));
    for (const u of after) expect(kept.has(u.id), `update ${u.id} kept aside`).toBe(true);
    expect(readdirSync(join(stack.stateDir, 'kept')).length).toBeGreaterThan(0);

    // the restored bot serves and answers
    expect((await stack.fetch('/health')).status).toBe(200);
    const u = send();
    await stack.fakeBot!.waitForDrained(stack.botToken, 30_000);
    expect(replies(u.chat)).toHaveLength(1);
  });
});
