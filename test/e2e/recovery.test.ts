// An interrupted swap never leaves the site down. On one stack (SIGHUP to
// the rollout's group during the swap, a dropped SSH session, is faults-release.test.ts's first case):
// 1. kill -9 of the rollout's whole group and of its worker mid-swap (what a reboot or the OOM killer
//    leaves): recover.mts, run as the timer runs it, brings the previous release back; never two app
//    containers running.
// 2. the same kill, then the operator runs restore.mts before any timer: the restore recovers first.
// 3. a schema-changing release killed -9 (group and worker) during its gates, its container serving 20
//    writes through the site, then the next rollout: recovery judges the unfinished release by its
//    gates and keeps it; every write that got a 2xx is in the live database (issue 16).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker } from '../support/docker.ts';
import { startStack, e2eImages, waitFor, type Stack } from '../support/stack.ts';
import { signInitData } from '../support/telegram.ts';
import { repoRoot, runScript } from '../support/run.ts';
import { ReleaseSource, removeImages } from '../support/release-source.mts';
import { sampleContainers } from '../support/load.mts';
import { readJournal } from '../../scripts/lib/release/journal.mts';
import Database from 'better-sqlite3';
import { patchFile } from '../support/release-source.mts';
import { appLifecycle, dockerRecorder, noneOf, oneStopOneStart } from '../support/docker-record.ts';

describeDocker('recovery: an interrupted swap never leaves the site down', () => {
  let stack: Stack;
  let src: ReleaseSource;
  const journal = () => readJournal(join(stack.stateDir, 'releases.jsonl')).releases;
  const version = async () => (await stack.fetch('/health')).json().version as string;
  const args = () => ['--config', stack.envFile, '--source', src.dir, '--ca', stack.caPem, '--no-notify', '--skip-smoke'];

  /** the rollout as an operator's terminal runs it: leader of its own process group */
  function startRollout(): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
    const child = spawn(process.execPath, [resolve(repoRoot, 'scripts', 'rollout.mts'), ...args()], { cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    child.stdout!.on('error', () => {});
    child.stderr!.on('error', () => {});
    return { child, output: () => out, exited: new Promise((r) => child.on('exit', (c) => r(c))) };
  }

  /** a rollout killed -9 mid-swap with its worker, as a reboot or the OOM killer leaves it */
  async function killMidSwap(): Promise<void> {
    const [oldApp] = await stack.containers('app');
    await killWhen(async () => !(await stack.containers('app')).includes(oldApp) || undefined, 'the swap to stop the old app');
  }

  /** start a rollout and kill -9 its group and its worker once `when` holds */
  async function killWhen(when: () => Promise<true | undefined>, what: string): Promise<void> {
    const op = startRollout();
    await waitFor(what, when, 240_000, 20);
    // the worker holds the lock once the critical section began: kill it with the terminal's group
    const lock = JSON.parse(readFileSync(join(stack.stateDir, 'ops.lock'), 'utf8')) as { pid: number };
    for (const pid of [-op.child.pid!, -lock.pid]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await op.exited;
  }

  beforeAll(async () => {
    stack = await startStack({ name: 'recov' });
    src = ReleaseSource.create(repoRoot, 'recov');
  });
  afterAll(async () => {
    removeImages(e2eImages().appImage, stack ? journal().map((r) => r.appTag ?? '') : [], [e2eImages().appTag]);
    await stack?.down();
    src?.cleanup();
  }, 180_000);

  it('kill -9 of the whole group and its worker mid-swap: recover.mts (as the timer runs it) brings the site back', async () => {
    const before = await version();
    const sha = src.commit('v3');
    const apps = sampleContainers(async () => (await stack.containers('app')).length);
    await killMidSwap();
    expect(journal().find((r) => r.gitSha === sha)?.result).toBe('in-progress');
    // exactly what the installed unit runs
    const rec = dockerRecorder();
    const r = await runScript('recover.mts', ['--config', stack.envFile], { timeoutMs: 240_000, env: { NO_COLOR: '1', ...rec.env } });
    const seen = await apps.stop();
    const why = `${r.stdout}\n${r.stderr}`;
    expect(r.code, why).toBe(0);
    // Caddy's active health check takes the app back into rotation within its interval
    await waitFor(`the site to answer ${before} again\n${why}`, async () => (await version().catch(() => '')) === before || undefined, 20_000);
    expect(await stack.containers('app')).toHaveLength(1);
    expect(Math.max(...seen.map((x) => x.n))).toBeLessThanOrEqual(1);
    expect(journal().find((x) => x.gitSha === sha)).toMatchObject({ result: 'rolled-back' });
    // recovery started the previous release with the one start, and stopped nothing any other way
    const one = oneStopOneStart(stack.envFile);
    const ran = appLifecycle(rec.argvs());
    expect(ran, why).toContainEqual(one.start);
    expect(noneOf(ran, one.stop, one.start), why).toEqual([]);
    rec.done();
    // run twice = once
    const again = await runScript('recover.mts', ['--config', stack.envFile, '--json'], { timeoutMs: 120_000 });
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).actions).toEqual([]);
  }, 480_000);

  it('a restore run after a rollout was killed mid-swap first finishes that release, so no later recovery undoes the restore', async () => {
    const before = await version();
    const sha = src.commit('v4');
    await killMidSwap();
    expect(journal().find((r) => r.gitSha === sha)?.result).toBe('in-progress');
    // the operator restores the pre-deploy backup (the newest) before any timer ran
    const rec = dockerRecorder();
    const r = await runScript('restore.mts', ['--config', stack.envFile, '--from', 'latest', '--yes', '--ca', stack.caPem], { timeoutMs: 240_000, env: { NO_COLOR: '1', ...rec.env } });
    const why = `${r.stdout}\n${r.stderr}`;
    expect(r.code, why).toBe(0);
    // recovery's start, then the restore's stop and start: the one stop and the one start, nothing else
    const one = oneStopOneStart(stack.envFile);
    expect(appLifecycle(rec.argvs()).slice(-2), why).toEqual([one.stop, one.start]);
    expect(noneOf(appLifecycle(rec.argvs()), one.stop, one.start), why).toEqual([]);
    rec.done();
    expect(why).toMatch(/recovery: /);
    expect(journal().find((x) => x.gitSha === sha), why).toMatchObject({ result: 'rolled-back' });
    await waitFor(`the site to answer ${before} again\n${why}`, async () => (await version().catch(() => '')) === before || undefined, 20_000);
    // nothing is left for the timer: it would otherwise judge the schema on the restored data
    const again = await runScript('recover.mts', ['--config', stack.envFile, '--json'], { timeoutMs: 120_000 });
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).actions).toEqual([]);
  }, 480_000);

  it('a schema-changing release killed -9 in its gates serves 20 writes; the next rollout keeps every acknowledged write', async () => {
    const sha = src.commit('v5: a migration', (dir) => patchFile(dir, 'app/src/db.ts', 'export const SCHEMA_VERSION = MIGRATIONS.length;',
      '(MIGRATIONS as string[]).push("ALTER TABLE tasks ADD COLUMN v5_note TEXT");\nexport const SCHEMA_VERSION = MIGRATIONS.length;'));
    const tag = sha.slice(0, 12);
    await killWhen(async () => (journal().find((r) => r.gitSha === sha)?.phase === 'health' ? true : undefined), 'the release to reach its health gate');
    expect(journal().find((r) => r.gitSha === sha)).toMatchObject({ result: 'in-progress', phase: 'health' });
    // its container keeps serving: 20 writes through the site
    await waitFor('the killed release to serve', async () => (await version().catch(() => '')) === tag || undefined, 60_000);
    const auth = `tma ${signInitData(stack.botToken, { user: { id: 7770005, first_name: 'Fwd' } })}`;
    const acked: string[] = [];
    for (let i = 0; i < 20; i++) {
      const title = `fwd-write-${i}-${Date.now()}`;
      const r = await stack.fetch('/tasks', { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ title }) }).catch(() => null);
      if (r && r.status >= 200 && r.status < 300) acked.push(title);
    }
    expect(acked.length).toBe(20);
    // the next rollout recovers first: the unfinished release runs healthy, is judged by its gates and kept
    const next = src.commit('v6');
    const r = await runScript('rollout.mts', args(), { timeoutMs: 300_000, env: { NO_COLOR: '1' } });
    const why = `${r.stdout}\n${r.stderr}`;
    expect(r.code, why).toBe(0);
    expect(why).toMatch(/judge .* by its gates/);
    expect(journal().find((x) => x.gitSha === sha), why).toMatchObject({ result: 'ok', judgedBy: 'recovery' });
    expect(journal().find((x) => x.gitSha === next)).toMatchObject({ result: 'ok' });
    expect(await version()).toBe(next.slice(0, 12));
    const db = new Database(join(stack.stateDir, 'data', 'lazyflow.db'), { readonly: true, fileMustExist: true });
    try {
      const titles = new Set((db.prepare('SELECT title FROM tasks').all() as { title: string }[]).map((t) => t.title));
      expect(acked.filter((t) => !titles.has(t)), 'acknowledged writes missing from the live database').toEqual([]);
    } finally {
      db.close();
    }
  }, 600_000);
});
