// Telegram updates on the real stack: a poison update (the user blocked the bot, so every sendMessage
// to the chat answers 403) becomes a dead letter and is answered 200, Telegram's queue drains, smoke
// reports it as a warning, and a rollout is not blocked by it; every other update is processed once.
// A rollout during maintenance passes its gates through Caddy with the toolkit's key and leaves
// maintenance on; the updates Telegram held meanwhile are processed once each after --off.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describeDocker } from '../support/docker.ts';
import { startStack, waitFor, e2eImages, type Stack } from '../support/stack.ts';
import { makeMessageUpdate } from '../support/telegram.ts';
import { repoRoot, runScript, type RunResult } from '../support/run.ts';
import { ReleaseSource, removeImages } from '../support/release-source.mts';
import { readJournal } from '../../scripts/lib/release/journal.mts';

const explain = (r: RunResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const BLOCKED_CHAT = 6_600_001;

describeDocker('telegram updates: a poison update becomes a dead letter and blocks nothing', () => {
  let stack: Stack;
  let src: ReleaseSource;
  const builtTags: string[] = [];
  const normal: { id: number; chat: number }[] = [];
  const poison: number[] = [];
  const dbFile = () => join(stack.stateDir, 'data', 'lazyflow.db');
  const withDb = <T>(f: (db: Database.Database) => T): T => {
    const db = new Database(dbFile(), { readonly: true, fileMustExist: true });
    try {
      return f(db);
    } finally {
      db.close();
    }
  };
  const send = (chat: number, text: string) => stack.fakeBot!.queueUpdate(stack.botToken, makeMessageUpdate({ chat_id: chat, text }));
  const smoke = (...extra: string[]) => runScript('smoke.mts', ['--config', stack.envFile, '--ca', stack.caPem, ...extra], { timeoutMs: 60_000 });

  beforeAll(async () => {
    stack = await startStack({ name: 'tgupd' });
    src = ReleaseSource.create(repoRoot, 'tgupd');
    await waitFor('the webhook to be registered', async () => stack.fakeBot!.webhookInfo(stack.botToken).url.endsWith(stack.webhookSecret), 30_000);
    stack.fakeBot!.blockChat(stack.botToken, BLOCKED_CHAT);
  });
  afterAll(async () => {
    removeImages(e2eImages().appImage, [...builtTags, ...(stack ? readJournal(join(stack.stateDir, 'releases.jsonl')).releases.map((r) => r.appTag ?? '') : [])], [e2eImages().appTag]);
    await stack?.down();
    src?.cleanup();
  });

  it('the poison update is a dead letter answered 200, the queue drains, the others are processed once, smoke warns', async () => {
    const fake = stack.fakeBot!;
    for (let i = 0; i < 3; i++) normal.push({ id: send(6_500_000 + i, '/start'), chat: 6_500_000 + i });
    poison.push(send(BLOCKED_CHAT, '/start'));
    for (let i = 3; i < 6; i++) normal.push({ id: send(6_500_000 + i, '/start'), chat: 6_500_000 + i });
    const addId = send(6_500_100, '/add water the plants');
    await fake.waitForDrained(stack.botToken, 60_000);

    // answered 200 at the first delivery: Telegram never had to retry it, and no delivery error
    const tries = fake.deliveries.filter((d) => d.update_id === poison[0]);
    expect(tries.map((d) => d.status)).toEqual([200]);
    const info = fake.webhookInfo(stack.botToken);
    expect(info.pending_update_count).toBe(0);
    expect(info.last_error_message).toBeUndefined();

    withDb((db) => {
      const dl = db.prepare('SELECT update_id, attempts, reason, last_error, chat_id FROM dead_letters').all();
      expect(dl).toEqual([{ update_id: poison[0], attempts: 1, reason: 'permanent', last_error: 'sendMessage: 403 Forbidden: bot was blocked by the user', chat_id: BLOCKED_CHAT }]);
      const counts = new Map((db.prepare('SELECT update_id, count(*) AS n FROM bot_messages GROUP BY update_id').all() as { update_id: number; n: number }[]).map((r) => [r.update_id, r.n]));
      for (const u of normal) expect(counts.get(u.id), `update ${u.id}`).toBe(1);
      expect(counts.get(addId)).toBe(1);
      expect(counts.has(poison[0])).toBe(false);
      // the handler's database write happened exactly once
      expect(db.prepare('SELECT title FROM tasks WHERE user_id = 6500100').all()).toEqual([{ title: 'water the plants' }]);
    });
    const replies = fake.sentMessages(stack.botToken);
    for (const u of normal) expect(replies.filter((m) => Number(m.chat_id) === u.chat).length, `replies to chat ${u.chat}`).toBe(1);
    expect(replies.filter((m) => Number(m.chat_id) === BLOCKED_CHAT)).toEqual([]);

    const r = await smoke('--json');
    expect(r.code, explain(r)).toBe(0);
    const dl = (JSON.parse(r.stdout).results as { name: string; status: string; detail: string }[]).find((x) => x.name === 'dead-letters')!;
    expect(dl.status).toBe('warn');
    expect(dl.detail).toMatch(new RegExp(`^1 dead letter\\(s\\); newest: update ${poison[0]} at .*403 Forbidden: bot was blocked by the user`));
  });

  it('a rollout is not blocked by dead letters, also by a new poison update during the rollout', async () => {
    const sha = src.commit('v2');
    builtTags.push(sha.slice(0, 12));
    const during: { id: number; chat: number }[] = [];
    let sending = true;
    const sender = (async () => {
      for (let i = 0; sending; i++) {
        if (i === 5) poison.push(send(BLOCKED_CHAT, '/start'));
        during.push({ id: send(6_510_000 + i, '/start'), chat: 6_510_000 + i });
        await sleep(250);
      }
    })();
    const r = await runScript('rollout.mts', ['--config', stack.envFile, '--source', src.dir, '--ca', stack.caPem, '--no-notify', '--json'], { timeoutMs: 240_000 });
    sending = false;
    await sender;
    await stack.fakeBot!.waitForDrained(stack.botToken, 60_000);

    expect(r.code, explain(r)).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ result: 'ok', appTag: sha.slice(0, 12) });
    expect(poison).toHaveLength(2);
    withDb((db) => {
      const ids = (db.prepare('SELECT update_id FROM dead_letters ORDER BY update_id').all() as { update_id: number }[]).map((x) => x.update_id);
      expect(ids).toEqual(poison);
      const counts = new Map((db.prepare('SELECT update_id, count(*) AS n FROM bot_messages GROUP BY update_id').all() as { update_id: number; n: number }[]).map((x) => [x.update_id, x.n]));
      for (const u of [...normal, ...during]) expect(counts.get(u.id), `update ${u.id}`).toBe(1);
    });
    const replies = stack.fakeBot!.sentMessages(stack.botToken);
    for (const u of during) expect(replies.filter((m) => Number(m.chat_id) === u.chat).length, `replies to chat ${u.chat}`).toBe(1);
  });
  it('a rollout during maintenance passes its gates and keeps it on; the updates held meanwhile are processed once after --off', async () => {
    const fake = stack.fakeBot!;
    const maintenance = (...args: string[]) => runScript('maintenance.mts', ['--config', stack.envFile, ...args], { timeoutMs: 60_000 });
    const on = await maintenance('--on', '--message', 'deploying');
    expect(on.code, explain(on)).toBe(0);
    const held = [0, 1, 2].map((i) => ({ id: send(6_520_000 + i, '/start'), chat: 6_520_000 + i }));
    const sha = src.commit('v3');
    builtTags.push(sha.slice(0, 12));
    const r = await runScript('rollout.mts', ['--config', stack.envFile, '--source', src.dir, '--ca', stack.caPem, '--no-notify', '--json'], { timeoutMs: 240_000 });
    expect(r.code, explain(r)).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ result: 'ok', appTag: sha.slice(0, 12) });
    expect(r.stderr).toMatch(/maintenance on: Telegram holds \d+ update\(s\) for after it \(not judged\)/);
    // still on after the rollout: the public gets 503, Telegram still holds the updates
    expect(JSON.parse((await maintenance('--status', '--json')).stdout)).toMatchObject({ on: true, message: 'deploying' });
    expect((await stack.fetch('/health')).status).toBe(503);
    expect(withDb((db) => db.prepare(`SELECT count(*) AS n FROM bot_messages WHERE update_id IN (${held.map((u) => u.id).join(',')})`).get())).toEqual({ n: 0 });

    expect((await maintenance('--off')).code).toBe(0);
    await fake.waitForDrained(stack.botToken, 60_000);
    expect((await stack.fetch('/health')).status).toBe(200);
    withDb((db) => {
      const counts = new Map((db.prepare('SELECT update_id, count(*) AS n FROM bot_messages GROUP BY update_id').all() as { update_id: number; n: number }[]).map((x) => [x.update_id, x.n]));
      for (const u of held) expect(counts.get(u.id), `update ${u.id}`).toBe(1);
    });
    for (const u of held) expect(fake.deliveries.some((d) => d.update_id === u.id && d.status === 503), `update ${u.id} was held`).toBe(true);
    const smoke = await runScript('smoke.mts', ['--config', stack.envFile, '--ca', stack.caPem, '--json', '--only', 'telegram'], { timeoutMs: 60_000 });
    expect(smoke.code, explain(smoke)).toBe(0);
  });
});
