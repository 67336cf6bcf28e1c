// Telegram updates on the real stack: a poison update (the user blocked the bot, so every sendMessage
// to the chat answers 403) becomes a dead letter and is answered 200, Telegram's queue drains, smoke
// reports it as a warning, and a rollout is not blocked by it; every other update is processed once.
// A rollout during maintenance passes its gates through Caddy with the toolkit's key and leaves
// maintenance on; the updates Telegram held meanwhile are processed once each after --off.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { join, dirname } from 'node:path';
import { chmodSync, readdirSync, statSync } from 'node:fs';
import { spawn } from 'node:child_process';
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
    // the state directory's parents are searchable, as /srv is on a VPS (mkdtemp made the test's 0700):
    // db.mts runs sqlite3 as the database's owner, which must reach the file
    chmodSync(dirname(stack.stateDir), 0o711);
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

  const logs = (...extra: string[]) => runScript('logs.mts', ['--config', stack.envFile, ...extra], { timeoutMs: 60_000 });
  const db = (...extra: string[]) => runScript('db.mts', ['--config', stack.envFile, ...extra], { timeoutMs: 120_000 });
  type Line = { ts: string; source: string; level: string | null; fields?: Record<string, unknown>; text?: string };
  const lines = (out: string) => out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
  const noSecret = (r: RunResult) => {
    for (const secret of [stack.botToken, stack.webhookSecret]) {
      expect(r.stdout).not.toContain(secret);
      expect(r.stderr).not.toContain(secret);
    }
  };

  it("logs --update follows the poison update from Caddy's webhook request through the handler to its dead letter, secrets redacted", async () => {
    const r = await logs('--update', String(poison[0]), '--json');
    expect(r.code, explain(r)).toBe(0);
    noSecret(r);
    const path = lines(r.stdout);
    // every line is about this update, or is a webhook request open while the app handled it
    const webhook = (l: Line) => String((l.fields?.request as { uri?: string } | undefined)?.uri ?? l.fields?.path ?? '').startsWith('/webhook/');
    // (the toolkit's own lines name it as text: smoke's dead-letters warning)
    for (const l of path) expect(l.fields?.update_id === poison[0] || (l.text ?? '').includes(`update ${poison[0]}`) || webhook(l), JSON.stringify(l)).toBe(true);
    const caddy = path.filter((l) => l.source === 'caddy' && webhook(l));
    expect(caddy.length, r.stdout).toBeGreaterThanOrEqual(1);
    expect(caddy.every((l) => (l.fields?.request as { uri: string }).uri === '/webhook/[redacted]' && l.fields?.status === 200)).toBe(true);
    const dead = path.find((l) => l.source === 'app' && l.fields?.msg === 'update_dead_letter');
    expect(dead?.fields).toMatchObject({ update_id: poison[0], reason: 'permanent', error: 'sendMessage: 403 Forbidden: bot was blocked by the user' });
    // in time order: the webhook request began before the dead letter and ended after it
    const t = (l: Line) => Date.parse(l.ts);
    expect(path.map(t)).toEqual([...path.map(t)].sort((a, b) => a - b));
    expect(caddy.some((l) => t(l) - Number(l.fields?.duration) * 1000 <= t(dead!) && t(l) >= t(dead!))).toBe(true);
    // no other update's lines
    for (const u of normal) expect(path.some((l) => l.fields?.update_id === u.id)).toBe(false);

    // an update that never came: exit 1 and says so
    const none = await logs('--update', '999999999');
    expect(none.code, explain(none)).toBe(1);
    expect(none.stderr).toContain('no line about update 999999999');
    // the whole stream, warnings and above, has the dead letter, as text for a terminal
    const warn = await logs('--level', 'warn', '--grep', 'dead_letter');
    expect(warn.code, explain(warn)).toBe(0);
    expect(warn.stdout).toMatch(new RegExp(`app +warn +update_dead_letter update_id=${poison[0]}`));
    noSecret(warn);
  }, 120_000);

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
  it('db --retry: the app processes a dead letter again once its cause is gone, exactly once; a second retry changes nothing', async () => {
    const id = poison[0];
    stack.fakeBot!.unblockChat(stack.botToken, BLOCKED_CHAT);
    const dry = await db('--retry', String(id), '--dry-run');
    expect(dry.code, explain(dry)).toBe(0);
    withDb((d) => expect(d.prepare('SELECT count(*) AS n FROM dead_letters WHERE update_id = ?').get(id)).toEqual({ n: 1 }));

    const r = await db('--retry', String(id), '--json');
    expect(r.code, explain(r)).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ update_id: id, result: 'processed' });
    noSecret(r);
    withDb((d) => {
      expect(d.prepare('SELECT count(*) AS n FROM dead_letters WHERE update_id = ?').get(id)).toEqual({ n: 0 });
      expect(d.prepare('SELECT count(*) AS n FROM processed_updates WHERE update_id = ?').get(id)).toEqual({ n: 1 });
      expect(d.prepare('SELECT count(*) AS n FROM bot_messages WHERE update_id = ?').get(id)).toEqual({ n: 1 });
    });
    expect(stack.fakeBot!.sentMessages(stack.botToken).filter((m) => Number(m.chat_id) === BLOCKED_CHAT)).toHaveLength(1);

    const again = await db('--retry', String(id));
    expect(again.code, explain(again)).toBe(1);
    expect(again.stderr).toContain(`update ${id} is not a dead letter`);
    expect(stack.fakeBot!.sentMessages(stack.botToken).filter((m) => Number(m.chat_id) === BLOCKED_CHAT)).toHaveLength(1);

    // the update's path now ends with the toolkit's retry
    const path = await logs('--update', String(id));
    expect(path.code, explain(path)).toBe(0);
    expect(path.stdout).toMatch(new RegExp(`ops +info .*dead letter: update ${id} retried by the app: processed`));

    // the list and clear: the other dead letter (the poison update sent during the rollout)
    const list = await db('--dead-letters', '--json');
    expect(list.code, explain(list)).toBe(0);
    expect((JSON.parse(list.stdout) as { update_id: number }[]).map((x) => x.update_id)).toEqual([poison[1]]);
    const bad = await db('--clear', 'nope');
    expect(bad.code).toBe(2);
    const cleared = await db('--clear', String(poison[1]), '--json');
    expect(cleared.code, explain(cleared)).toBe(0);
    expect(JSON.parse(cleared.stdout)).toEqual({ cleared: 1, update_ids: [poison[1]] });
    expect(cleared.stderr).toMatch(/backup \S+ verified/);
    withDb((d) => expect(d.prepare('SELECT count(*) AS n FROM dead_letters').get()).toEqual({ n: 0 }));
  }, 300_000);

  it("db: a query answers while the app writes; sqlite3 runs as the database's owner and leaves no root-owned file in data/, even with the app stopped", async () => {
    const rootOwned = () => readdirSync(join(stack.stateDir, 'data')).filter((f) => statSync(join(stack.stateDir, 'data', f)).uid === 0);
    // while Telegram updates arrive
    for (let i = 0; i < 20; i++) send(6_700_000 + i, '/add db test');
    const q = await db('SELECT count(*) AS n FROM tasks', '--json');
    expect(q.code, explain(q)).toBe(0);
    expect(JSON.parse(q.stdout)[0].n).toBeGreaterThanOrEqual(1);
    const who = await db('.shell id -u');
    expect(who.code, explain(who)).toBe(0);
    expect(who.stdout.trim()).toBe(String(statSync(dbFile()).uid));
    expect(statSync(dbFile()).uid).not.toBe(0);
    // read-only: a write without --write fails and changes nothing
    const ro = await db("INSERT INTO app_meta (key, value, updated_at) VALUES ('db-e2e', 'x', 'x')");
    expect(ro.code).toBe(1);
    expect(ro.stderr).toMatch(/readonly/i);
    await stack.fakeBot!.waitForDrained(stack.botToken, 60_000);
    expect(rootOwned()).toEqual([]);

    // the app stopped: its last connection removed -wal/-shm, so sqlite3 creates them now
    await stack.mustCompose('stop', 'app');
    try {
      const r = await db('SELECT count(*) AS n FROM processed_updates');
      expect(r.code, explain(r)).toBe(0);
      expect(rootOwned()).toEqual([]);
    } finally {
      await stack.mustCompose('start', 'app');
    }
    await waitFor('the app healthy again, writing', async () => {
      const ps = await stack.compose('ps', '--format', 'json', 'app');
      return /"Health":"healthy"/.test(ps.stdout);
    }, 60_000);
    expect(rootOwned()).toEqual([]);
  }, 300_000);

  it('exec runs a command in the running app container, as the app user; its failure is exit 1', async () => {
    const r = await runScript('exec.mts', ['--config', stack.envFile, '--', 'id', '-u'], { timeoutMs: 60_000 });
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout.trim()).toBe('1000');
    const f = await runScript('exec.mts', ['--config', stack.envFile, '--', 'sh', '-c', 'exit 3'], { timeoutMs: 60_000 });
    expect(f.code, explain(f)).toBe(1);
    expect(f.stderr).toContain('exited 3 in the app container');
  }, 120_000);
  it('logs -f prints the lines of an update that arrives while it follows; Ctrl-C ends it', async () => {
    const child = spawn(process.execPath, [join(repoRoot, 'scripts', 'logs.mts'), '--config', stack.envFile, '-f', '--since', '1s', '--grep', 'update_processed'], {
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    try {
      await sleep(3000); // the history is read and the follow started
      const id = send(6_800_001, '/start');
      await waitFor(`update ${id} in the followed stream`, async () => new RegExp(`app +info +update_processed update_id=${id}`).test(out), 60_000);
      expect(out).not.toContain(stack.botToken);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited, out).toBe(130);
  }, 120_000);
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
