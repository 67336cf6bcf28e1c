// Notifications from operations on the real stack (fake Bot API as the admin chat, a local HTTP
// receiver as the alert webhook): each operation run produces exactly one message on each channel,
// with the right operation, outcome, release or backup, and on failure the line that explains it.
// A rollout whose gate fails and is reverted is one message that says so (the pre-deploy backup and
// the revert inside it send nothing of their own); the detached swap worker sends it, also when the
// rollout's terminal was killed. A restore, a drill and a rollback that fail each send their one
// failure message; a recovery that acted sends one. A channel that is down (the webhook, Telegram)
// fails no operation and the other channel still gets its message.
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker } from '../support/docker.ts';
import { e2eImages, startStack, waitFor, type Stack } from '../support/stack.ts';
import { repoRoot, runScript, type RunResult } from '../support/run.ts';
import { script, until, waitHealthy } from '../support/backup.ts';
import { freePort } from '../support/ports.ts';
import { mustRun, run } from '../support/run.ts';
import { readJournal } from '../../scripts/lib/release/journal.mts';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts';
import { BAD, ReleaseSource, removeImages } from '../support/release-source.mts';

const explain = (r: RunResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
const ADMIN_CHAT = '777002';

describeDocker('notifications: one per operation, on both channels', () => {
  let stack: Stack;
  let hook: WebhookReceiver;
  let src: ReleaseSource | undefined;
  const builtTags: string[] = [];
  let backupId = '';
  let goodSha = '';
  let goodRelease = ''; // the release id of the good rollout
  let baseTag = ''; // the app tag the stack started on
  const posts = () => hook.received.filter((x) => x.method === 'POST').map((x) => x.json);
  const chat = () => stack.fakeBot!.sentMessages(stack.botToken).filter((m) => String(m.chat_id) === ADMIN_CHAT).map((m) => m.text as string);
  /** what arrived on each channel while fn ran */
  async function during<T>(fn: () => Promise<T>): Promise<{ r: T; hooks: any[]; chats: string[] }> {
    const [h0, c0] = [posts().length, chat().length];
    const r = await fn();
    return { r, hooks: posts().slice(h0), chats: chat().slice(c0) };
  }

  beforeAll(async () => {
    hook = await startWebhookReceiver();
    stack = await startStack({ name: 'notify', env: { ADMIN_CHAT_ID: ADMIN_CHAT, ALERT_WEBHOOK_URL: `${hook.url}/hook/n0t1fy-secret` } });
  });
  afterAll(async () => {
    if (stack) removeImages(e2eImages().appImage, builtTags, [e2eImages().appTag]);
    await stack?.down();
    await hook?.stop().catch(() => {});
    src?.cleanup();
  });

  it('backup ok: one message naming the backup', async () => {
    const { r, hooks, chats } = await during(() => script(stack, 'backup.mts', ['--reason', 'manual', '--json']));
    expect(r.code, explain(r)).toBe(0);
    backupId = JSON.parse(r.stdout).backup.id;
    expect(hooks).toHaveLength(1);
    expect(hooks[0]).toMatchObject({ source: 'lazyflow', operation: 'backup', outcome: 'ok', backup: backupId, reason: null, revert: null, alert: null });
    expect(hooks[0].duration_ms).toBeGreaterThan(0);
    expect(chats).toEqual([expect.stringMatching(new RegExp(`^✅ lazyflow backup ok .*backup ${backupId} in [\\d.]+ m?s \\[`))]);
    expect(r.stderr).not.toContain('n0t1fy-secret');
  });

  it('restore ok: one message naming the restored backup (its lib steps send nothing of their own)', async () => {
    const { r, hooks, chats } = await during(() => script(stack, 'restore.mts', ['--from', backupId, '--yes', '--ca', stack.caPem]));
    expect(r.code, explain(r)).toBe(0);
    expect(hooks).toEqual([expect.objectContaining({ operation: 'restore', outcome: 'ok', backup: backupId })]);
    expect(chats).toEqual([expect.stringMatching(new RegExp(`^✅ lazyflow restore ok .*backup ${backupId} in `))]);
    await waitHealthy(stack);
  });

  it('drill ok: one message naming the drilled backup', async () => {
    const { r, hooks, chats } = await during(() => script(stack, 'restore.mts', ['--drill', '--from', backupId, '--quiet']));
    expect(r.code, explain(r)).toBe(0);
    expect(hooks).toEqual([expect.objectContaining({ operation: 'drill', outcome: 'ok', backup: backupId })]);
    expect(chats).toEqual([expect.stringMatching(/^✅ lazyflow drill ok /)]);
  });

  it('restore and drill of a damaged backup fail: one failure message each, naming the backup and the damage; live data untouched', async () => {
    const db = fs.readdirSync(join(stack.stateDir, 'backups', backupId)).find((f) => f.endsWith('.db'))!;
    const file = join(stack.stateDir, 'backups', backupId, db);
    const flip = () => {
      const fd = fs.openSync(file, 'r+');
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, 4096);
      b[0] ^= 0xff;
      fs.writeSync(fd, b, 0, 1, 4096);
      fs.closeSync(fd);
    };
    const version = (await stack.fetch('/health')).json().version;
    flip();
    try {
      const res = await during(() => script(stack, 'restore.mts', ['--from', backupId, '--yes', '--ca', stack.caPem]));
      expect(res.r.code, explain(res.r)).toBe(1);
      expect(res.hooks).toEqual([expect.objectContaining({ operation: 'restore', outcome: 'failed', backup: backupId })]);
      expect(res.hooks[0].reason).toMatch(new RegExp(`^verify: backup ${backupId} is damaged: ${db} sha256 is [0-9a-f]+\\.\\.\\., the manifest says [0-9a-f]+\\.\\.\\.; live data untouched$`));
      expect(res.chats).toEqual([expect.stringMatching(new RegExp(`^❌ lazyflow restore FAILED .*backup ${backupId} in .*: verify: backup ${backupId} is damaged: `))]);
      expect((await stack.fetch('/health')).json().version).toBe(version); // nothing was stopped

      const dr = await during(() => script(stack, 'restore.mts', ['--drill', '--from', backupId, '--quiet']));
      expect(dr.r.code, explain(dr.r)).toBe(1);
      expect(dr.hooks).toEqual([expect.objectContaining({ operation: 'drill', outcome: 'failed', backup: backupId })]);
      expect(dr.hooks[0].reason).toMatch(new RegExp(`^verify: backup ${backupId} is damaged: ${db} sha256 is `));
      expect(dr.chats).toEqual([expect.stringMatching(new RegExp(`^❌ lazyflow drill FAILED backup ${backupId} in .*: verify: backup ${backupId} is damaged: `))]);
    } finally {
      flip(); // back to the verified backup the later cases use
    }
  });

  it('backup failed (the backups directory is not one): one failure message with its one line; exit 1', async () => {
    const dir = join(stack.stateDir, 'backups');
    const aside = `${dir}.aside`;
    fs.renameSync(dir, aside);
    fs.writeFileSync(dir, 'not a directory\n');
    try {
      const { r, hooks, chats } = await during(() => script(stack, 'backup.mts', ['--reason', 'manual', '--quiet']));
      expect(r.code, explain(r)).toBe(1);
      expect(hooks).toHaveLength(1);
      expect(hooks[0]).toMatchObject({ operation: 'backup', outcome: 'failed', backup: null });
      expect(hooks[0].reason).toMatch(/\S/);
      expect(hooks[0].reason).not.toContain('\n');
      expect(r.stderr).toContain(hooks[0].reason.slice(0, 40)); // the same line the operator sees
      expect(chats).toEqual([expect.stringMatching(/^❌ lazyflow backup FAILED .*: \S/)]);
    } finally {
      fs.rmSync(dir, { force: true });
      fs.renameSync(aside, dir);
    }
  });

  it('a rollout whose gate fails is reverted: one message, failed, naming the release, the reason and the revert', async () => {
    const before = (await stack.fetch('/health')).json().version as string;
    baseTag = before;
    src = ReleaseSource.create(repoRoot, 'notify');
    goodSha = src.head;
    const sha = src.commit('bad: crash at boot', BAD.crashAtBoot);
    builtTags.push(sha.slice(0, 12));
    // --skip-contract: the contract gate would refuse this image before the swap; this case is about the revert after it
    const { r, hooks, chats } = await during(() => runScript('rollout.mts', ['--config', stack.envFile, '--source', src!.dir, '--ca', stack.caPem, '--skip-contract'], { timeoutMs: 240_000 }));
    expect(r.code, explain(r)).toBe(1);
    expect((await stack.fetch('/health')).json().version).toBe(before);
    // the pre-deploy backup, the revert and its recovery runner are parts of this one rollout
    expect(hooks.map((h) => `${h.operation} ${h.outcome}`), explain(r)).toEqual(['rollout failed']);
    expect(hooks[0]).toMatchObject({ release: expect.stringContaining(sha.slice(0, 12)), revert: { ok: true, to: before, restoredDb: false } });
    expect(hooks[0].reason).toMatch(/^swap failed: /);
    expect(hooks[0].duration_ms).toBeGreaterThan(1000);
    expect(chats).toEqual([expect.stringMatching(new RegExp(`^❌ lazyflow rollout FAILED ${sha.slice(0, 12)}.* in .*: swap failed: .*; reverted to ${before}, data kept \\[`))]);
  });

  it('a good rollout, then a rollback: one ok message each, from the detached swap worker', async () => {
    const before = (await stack.fetch('/health')).json().version as string;
    src!.checkout(goodSha);
    const good = goodSha.slice(0, 12);
    builtTags.push(good);
    const out = await during(() => runScript('rollout.mts', ['--config', stack.envFile, '--source', src!.dir, '--ca', stack.caPem], { timeoutMs: 240_000 }));
    expect(out.r.code, explain(out.r)).toBe(0);
    expect(out.hooks.map((h) => `${h.operation} ${h.outcome}`), explain(out.r)).toEqual(['rollout ok']);
    expect(out.hooks[0]).toMatchObject({ release: expect.stringMatching(new RegExp(`^${good} \\(\\S+${good}\\)$`)), reason: null, revert: null });
    expect(out.chats).toEqual([expect.stringMatching(new RegExp(`^✅ lazyflow rollout ok ${good} \\(`))]);
    goodRelease = /\((\S+)\)$/.exec(out.hooks[0].release)![1];

    const back = await during(() => runScript('rollback.mts', ['--config', stack.envFile, '--ca', stack.caPem], { timeoutMs: 180_000 }));
    expect(back.r.code, explain(back.r)).toBe(0);
    expect((await stack.fetch('/health')).json().version).toBe(before);
    expect(back.hooks.map((h) => `${h.operation} ${h.outcome}`), explain(back.r)).toEqual(['rollback ok']);
    expect(back.hooks[0].release).toMatch(new RegExp(`^${before} \\(`));
    expect(back.chats).toEqual([expect.stringMatching(new RegExp(`^✅ lazyflow rollback ok ${before} `))]);
  });

  it('a rollback to a release whose image is gone fails: one message, failed, naming the release and the missing image; the site stays up', async () => {
    const good = goodSha.slice(0, 12);
    const ref = `${e2eImages().appImage}:${good}`;
    const keep = `lzf-e2e-notify-keep:${good}`; // holds the image while its tag is gone, so nothing is rebuilt later
    await mustRun('docker', ['tag', ref, keep]);
    await mustRun('docker', ['rmi', ref]);
    try {
      // --skip-smoke: the revert's smoke run would only repeat what the other cases show
      const { r, hooks, chats } = await during(() => runScript('rollback.mts', ['--config', stack.envFile, '--to', goodRelease, '--ca', stack.caPem, '--skip-smoke'], { timeoutMs: 180_000 }));
      expect(r.code, explain(r)).toBe(1);
      expect((await stack.fetch('/health')).json().version).toBe(baseTag);
      expect(hooks.map((h) => `${h.operation} ${h.outcome}`), explain(r)).toEqual(['rollback failed']);
      expect(hooks[0].release).toMatch(new RegExp(`^${good} \\(`));
      expect(hooks[0].reason).toBe(`swap failed: swap: image ${ref} of ${goodRelease} no longer exists (pruned?)`);
      expect(hooks[0].revert).toEqual({ ok: true, to: baseTag, restoredDb: false });
      expect(chats).toEqual([expect.stringMatching(new RegExp(`^❌ lazyflow rollback FAILED ${good} \\(\\S+\\) in .*: swap failed: swap: image \\S+ of ${goodRelease} no longer exists \\(pruned\\?\\); reverted to ${baseTag}, data kept \\[`))]);
    } finally {
      await run('docker', ['tag', keep, ref]);
      await run('docker', ['rmi', keep]);
    }
  });

  it('the terminal of a rollout is killed during the swap: the worker finishes and sends the one message', async () => {
    src!.checkout(goodSha);
    const good = goodSha.slice(0, 12);
    const [h0, c0] = [posts().length, chat().length];
    // The signal comes from a watcher of its own (bash polling the output every 50 ms), not from this
    // test's event loop: on the loaded 2-core CI machine this process once saw the worker's line only
    // after the whole 6 s swap had ended, and the SIGTERM then reached a rollout that had exited 0.
    const outFile = join(stack.runDir, `rollout-killed-${Date.now()}.out`);
    const watcher = [
      'out=$1; shift',
      '"$@" >"$out" 2>&1 & pid=$!',
      "until grep -q 'the swap runs in pid' \"$out\" || ! kill -0 \"$pid\" 2>/dev/null; do sleep 0.05; done",
      'kill -TERM "$pid" 2>/dev/null',
      'wait "$pid"; echo "exit $?"',
    ].join('\n');
    const child = spawn('bash', ['-c', watcher, 'watcher', outFile, process.execPath, join(repoRoot, 'scripts', 'rollout.mts'), '--config', stack.envFile, '--source', src!.dir, '--ca', stack.caPem], { cwd: repoRoot, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let said = '';
    child.stdout!.on('data', (d) => (said += d));
    child.stderr!.on('data', (d) => (said += d));
    await new Promise((res) => child.on('close', res));
    const stderr = fs.readFileSync(outFile, 'utf8'); // both streams of the rollout
    const workerPid = Number(/the swap runs in pid (\d+)/.exec(stderr)?.[1]);
    expect(workerPid, `the rollout ended before its swap (${said.trim()}):\n${stderr}`).toBeGreaterThan(0);
    expect(said.trim(), stderr).toBe('exit 143');
    // 143 from the rollout's own handler (bash would say 143 for a plain SIGTERM death too): it says where the work goes on
    expect(stderr).toContain(`SIGTERM: this terminal stops following, but`);
    expect(stderr).toContain(`continues in pid ${workerPid}`);
    expect(posts().length - h0).toBe(0); // not from the killed process
    await waitFor('the worker to finish', async () => {
      try {
        process.kill(workerPid, 0);
        return false;
      } catch {
        return true;
      }
    }, 180_000, 250);
    expect(posts().slice(h0).map((h) => `${h.operation} ${h.outcome} ${h.release}`)).toEqual([expect.stringMatching(new RegExp(`^rollout ok ${good} \\(`))]);
    expect(chat().slice(c0)).toEqual([expect.stringMatching(/^✅ lazyflow rollout ok /)]);
  });

  it('the webhook receiver is down: the backup still exits 0 and the admin chat still gets its one message', async () => {
    await hook.stop();
    try {
      const { r, hooks, chats } = await during(() => script(stack, 'backup.mts', ['--reason', 'manual']));
      expect(r.code, explain(r)).toBe(0);
      expect(hooks).toEqual([]);
      expect(chats).toEqual([expect.stringMatching(/^✅ lazyflow backup ok /)]);
      expect(r.stderr).toMatch(/notification not sent via webhook: http:\/\/127\.0\.0\.1:\d+\/<redacted>: unreachable/);
      expect(r.stderr).not.toContain('n0t1fy-secret');
    } finally {
      await hook.restart();
    }
  });

  it('the Telegram Bot API is unreachable: the backup still exits 0 and the webhook still gets its one message', async () => {
    // the toolkit's view of Telegram being down: its Bot API root answers nothing (the app is not touched)
    const dead = await freePort();
    const lines = fs.readFileSync(stack.envFile, 'utf8').split('\n').filter((l) => !l.startsWith('TELEGRAM_API_ROOT='));
    const envFile = join(stack.runDir, 'env.telegram-down');
    fs.writeFileSync(envFile, [...lines, `TELEGRAM_API_ROOT=http://127.0.0.1:${dead}`].join('\n') + '\n', { mode: 0o600 });
    const { r, hooks, chats } = await during(() => runScript('backup.mts', ['--config', envFile, '--reason', 'manual']));
    expect(r.code, explain(r)).toBe(0);
    expect(chats).toEqual([]);
    expect(hooks).toEqual([expect.objectContaining({ operation: 'backup', outcome: 'ok' })]);
    expect(r.stderr).toMatch(new RegExp(`notification not sent via telegram: chat ${ADMIN_CHAT}: .*http://127\\.0\\.0\\.1:${dead} unreachable: ECONNREFUSED`));
    expect(r.stdout + r.stderr).not.toContain(stack.botToken);
  });

  it('a recovery run with nothing to do sends nothing', async () => {
    const { r, hooks, chats } = await during(() => runScript('recover.mts', ['--config', stack.envFile]));
    expect(r.code, explain(r)).toBe(0);
    expect(r.stderr + r.stdout).toMatch(/nothing to recover/);
    expect([hooks, chats]).toEqual([[], []]);
  });

  it('a rollout killed -9 in its build: recover.mts finishes it (marks it failed) and sends one recovery message', async () => {
    const sha = src!.commit('notify: a release to interrupt');
    builtTags.push(sha.slice(0, 12));
    const [h0, c0] = [posts().length, chat().length];
    const child = spawn(process.execPath, [join(repoRoot, 'scripts', 'rollout.mts'), '--config', stack.envFile, '--source', src!.dir, '--ca', stack.caPem], { cwd: repoRoot, env: { ...process.env, NO_COLOR: '1' }, stdio: 'ignore', detached: true });
    const exited = new Promise((res) => child.on('close', res));
    const journal = join(stack.stateDir, 'releases.jsonl');
    await until('the rollout to journal its build', () => readJournal(journal).releases.some((x) => x.pid === child.pid && x.result === 'in-progress'), 120_000, 5);
    process.kill(-child.pid!, 'SIGKILL');
    await exited;
    const id = readJournal(journal).releases.find((x) => x.pid === child.pid)!.id;
    expect(posts().length - h0).toBe(0); // a process killed -9 tells no one

    const { r, hooks, chats } = await during(() => runScript('recover.mts', ['--config', stack.envFile]));
    expect(r.code, explain(r)).toBe(0);
    expect(hooks).toEqual([expect.objectContaining({ operation: 'recovery', outcome: 'ok' })]);
    expect(hooks[0].reason).toMatch(new RegExp(`^recovered: mark ${id} failed: interrupted in phase \\w+ \\(the process died\\) before the swap`));
    expect(chats).toEqual([expect.stringMatching(new RegExp(`^✅ lazyflow recovery ok .*: recovered: mark ${id} failed`))]);
    expect(chat().length - c0).toBe(1);
    expect(readJournal(journal).releases.find((x) => x.id === id)!.result).toBe('failed');
  });
});
