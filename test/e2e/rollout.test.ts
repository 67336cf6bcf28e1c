// Rollout end to end on the real stack (Pebble ACME, fake Bot API): v1 -> v2 under continuous load
// with zero failed requests and every Telegram update processed exactly once, one operation lock,
// recovery after kill -9 mid-swap, and rollback --to.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { describeDocker } from '../support/docker.ts';
import { startStack, waitFor, e2eImages, type Stack } from '../support/stack.ts';
import { makeMessageUpdate, signInitData } from '../support/telegram.ts';
import { repoRoot, runScript, type RunResult } from '../support/run.ts';
import { ReleaseSource, removeImages } from '../support/release-source.mts';
import { appOps, sampleContainers, startLoad, stats } from '../support/load.mts';
import { readJournal } from '../../scripts/lib/release/journal.mts';
import { appLifecycle, dockerRecorder, oneStopOneStart } from '../support/docker-record.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// A POST that fails with 502 within a few ms is the race reported to the lead: the old app closes its
// listening socket on SIGTERM while Caddy may already have a connection queued to it; the reset is a
// transport error, which Caddy retries for GET but not for POST. Fix: Caddy active health checks plus
// a draining /health in the app before it stops listening.
const dropped = (fs: { op: string; status: number; ms: number }[]) => `${fs.length} failed request(s): ${JSON.stringify(fs.slice(0, 5))}`;
const explain = (r: RunResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

describeDocker('rollout: zero-drop deploys on the real stack', () => {
  let stack: Stack;
  let src: ReleaseSource;
  const builtTags: string[] = [];
  const args = (...extra: string[]) => ['--config', stack.envFile, '--source', src.dir, '--ca', stack.caPem, '--no-notify', ...extra];
  const rollout = async (...extra: string[]) => runScript('rollout.mts', args(...extra), { timeoutMs: 240_000 });
  const recorder = dockerRecorder();
  const journal = () => readJournal(join(stack.stateDir, 'releases.jsonl')).releases;
  const version = async () => (await stack.fetch('/health')).json().version as string;
  const tagOf = (sha: string) => sha.slice(0, 12);

  beforeAll(async () => {
    stack = await startStack({ name: 'rollout' });
    src = ReleaseSource.create(repoRoot, 'rollout');
  });
  afterAll(async () => {
    removeImages(e2eImages().appImage, [...builtTags, ...(stack ? journal().map((r) => r.appTag ?? '') : [])], [e2eImages().appTag]);
    await stack?.down();
    src?.cleanup();
    recorder.done();
  });

  it('v1 -> v2 under continuous load: zero failed requests, every update processed exactly once, never two app containers', async () => {
    const sha = src.commit('v2');
    builtTags.push(tagOf(sha));
    const auth = `tma ${signInitData(stack.botToken, { user: { id: 5550001, first_name: 'Load' } })}`;
    const load = startLoad({ domain: stack.domain, httpsPort: stack.httpsPort, ca: stack.ca }, appOps(auth), { concurrency: 6 });
    const sampler = sampleContainers(async () => (await stack.containers('app')).length, 50);
    const updates: { id: number; chat: number }[] = [];
    let sending = true;
    const sender = (async () => {
      for (let i = 0; sending; i++) {
        const chat = 7_000_000 + i;
        updates.push({ id: stack.fakeBot!.queueUpdate(stack.botToken, makeMessageUpdate({ chat_id: chat, text: '/start' })), chat });
        await sleep(100);
      }
    })();
    await sleep(1500);
    const r = await runScript('rollout.mts', args('--json'), { timeoutMs: 240_000, env: recorder.env });
    await sleep(1500);
    sending = false;
    await sender;
    await stack.fakeBot!.waitForDrained(stack.botToken, 60_000);
    const samples = await load.stop();
    const seen = await sampler.stop();

    expect(r.code, explain(r)).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.result).toBe('ok');
    expect(res.appTag).toBe(tagOf(sha));
    expect(await version()).toBe(tagOf(sha));

    const all = stats(samples);
    const swapWindow = stats(samples, { from: Date.parse(journal().at(-1)!.startedAt!), to: Date.now() });
    console.log(`rollout under load: ${all.requests} requests (${JSON.stringify(all.byOp)}), ${all.failed} failed, max ${all.maxMs.toFixed(0)} ms, p99 ${all.p99Ms.toFixed(0)} ms; swap ${JSON.stringify(res.swap)}; container samples ${seen.length}, max ${Math.max(...seen.map((s) => s.n))}`);
    expect(all.failures, dropped(all.failures)).toEqual([]);
    expect(all.byOp['POST /tasks'].requests).toBeGreaterThan(20);
    expect(swapWindow.requests).toBeGreaterThan(20);
    // the app was really replaced while the load ran: some requests waited through the gap
    expect(all.maxMs).toBeGreaterThan(200);

    expect(seen.length).toBeGreaterThan(40);
    expect(Math.max(...seen.map((s) => s.n))).toBe(1);

    // every update processed exactly once: one bot_messages row and one reply per update
    expect(updates.length).toBeGreaterThan(20);
    const db = new Database(join(stack.stateDir, 'data', 'lazyflow.db'), { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare('SELECT update_id, count(*) AS n FROM bot_messages GROUP BY update_id').all() as { update_id: number; n: number }[];
      const byId = new Map(rows.map((x) => [x.update_id, x.n]));
      for (const u of updates) expect(byId.get(u.id), `update ${u.id}`).toBe(1);
    } finally {
      db.close();
    }
    const replies = stack.fakeBot!.sentMessages(stack.botToken);
    for (const u of updates) expect(replies.filter((m) => Number(m.chat_id) === u.chat).length, `replies to chat ${u.chat}`).toBe(1);

    const rel = journal().at(-1)!;
    expect(rel).toMatchObject({ kind: 'rollout', result: 'ok', appTag: tagOf(sha), gitSha: sha });
    for (const p of ['preflight', 'lock', 'build', 'backup', 'swap', 'health', 'telegram', 'smoke', 'record']) expect(rel.phases?.[p], p).toBeTypeOf('number');
    expect(rel.backupId).toBeTruthy();
    expect(existsSync(join(stack.stateDir, 'backups', String(rel.backupId), 'manifest.json'))).toBe(true);
    // the swap started the new app with the one start (its stop is compose's, inside that one up, drained)
    expect(appLifecycle(recorder.argvs())).toEqual([oneStopOneStart(stack.envFile).start]);
  });

  it('a second rollout while one runs is refused, naming the holder and since when', async () => {
    const sha = src.commit('v3');
    builtTags.push(tagOf(sha));
    const first = rollout();
    const lockFile = join(stack.stateDir, 'ops.lock');
    await waitFor('the first rollout to take the lock', async () => existsSync(lockFile), 60_000, 50);
    const holder = JSON.parse(readFileSync(lockFile, 'utf8'));
    const second = await rollout();
    const r1 = await first;
    expect(r1.code, explain(r1)).toBe(0);
    expect(second.code, explain(second)).toBe(1);
    expect(second.stderr).toContain(`another operation holds the lock: rollout (pid ${holder.pid} on ${holder.host}, operator ${holder.operator}) since ${holder.startedAt}`);
    expect(second.stderr).toMatch(/--wait-lock/);
    expect(await version()).toBe(tagOf(sha));
  });

  it('kill -9 of the rollout script in the middle of the swap: its detached worker finishes the release', async () => {
    const sha = src.commit('v4');
    builtTags.push(tagOf(sha));
    const [oldApp] = await stack.containers('app');
    const child = spawn(process.execPath, [resolve(repoRoot, 'scripts/rollout.mts'), ...args()], { stdio: 'ignore', env: { ...process.env, NO_COLOR: '1' } });
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    // the old container has stopped; the new one is not started or not healthy yet: the middle of the swap
    await waitFor('the swap to stop the old app container', async () => !(await stack.containers('app')).includes(oldApp), 120_000, 20);
    child.kill('SIGKILL');
    await exited;
    const killed = journal().at(-1)!;
    expect(killed.result).toBe('in-progress');
    // nobody acts: the critical section runs in a worker of its own session, which the kill did not reach
    await waitFor('the worker to finish the release', async () => journal().find((x) => x.id === killed.id)?.result !== 'in-progress' || undefined, 180_000, 250);
    expect(journal().find((x) => x.id === killed.id)).toMatchObject({ result: 'ok', appTag: tagOf(sha) });
    await waitFor('the lock to be released', async () => !existsSync(join(stack.stateDir, 'ops.lock')) || undefined, 30_000, 100);
    expect(await version()).toBe(tagOf(sha));
    expect(await stack.containers('app')).toHaveLength(1);
  });

  it('rollback --to goes to a named release (a stop-first swap: the one stop, then the one start); --list shows it as current', async () => {
    const v2 = journal().find((x) => x.kind === 'rollout' && x.result === 'ok')!;
    const rec = dockerRecorder();
    const r = await runScript('rollback.mts', ['--config', stack.envFile, '--ca', stack.caPem, '--no-notify', '--to', v2.gitSha!.slice(0, 8)], { timeoutMs: 180_000, env: { ...rec.env, LAZYFLOW_SWAP: 'stop-first' } });
    expect(r.code, explain(r)).toBe(0);
    expect(await version()).toBe(v2.appTag);
    const one = oneStopOneStart(stack.envFile);
    expect(appLifecycle(rec.argvs())).toEqual([one.stop, one.start]);
    rec.done();
    const last = journal().at(-1)!;
    expect(last).toMatchObject({ kind: 'rollback', result: 'ok', appTag: v2.appTag, target: v2.id });
    const list = await runScript('rollback.mts', ['--config', stack.envFile, '--list']);
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n').find((l) => l.startsWith('*'))).toContain(last.id);
    const cur = await runScript('rollback.mts', ['--config', stack.envFile, '--current']);
    expect(cur.stdout.trim()).toBe(v2.appTag);
    // and back to the previous successful release by default
    const back = await runScript('rollback.mts', ['--config', stack.envFile, '--ca', stack.caPem, '--no-notify'], { timeoutMs: 180_000 });
    expect(back.code, explain(back)).toBe(0);
    expect(journal().at(-1)).toMatchObject({ kind: 'rollback', result: 'ok' });
    expect(await version()).not.toBe(v2.appTag);
  });
});
