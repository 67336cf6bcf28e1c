// Faults under load during release operations, one representative interruption per phase, on one
// shared stack (Pebble ACME, fake Bot API): SIGHUP to the group during the swap, SIGINT during the
// automatic revert of a bad release, kill -9 of the group during `rollback --with-db`, kill -9 of
// recovery itself, and, for an app without a readiness path, SIGHUP and a reboot during the toolkit's
// drain. Nothing acts afterwards but the simulated recovery timer (scripts/recover.mts every
// RECOVERY_INTERVAL_S). The whole matrix is bench/faults/run.mts.
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeDocker } from '../support/docker.ts';
import { startStack, e2eImages, type Stack } from '../support/stack.ts';
import { repoRoot, runScript, type RunResult } from '../support/run.ts';
import { BAD, ReleaseSource, removeImages } from '../support/release-source.mts';
import {
  RECOVERY_INTERVAL_S, SWAP_BOUND_S, appContainerStates, deliver, describeApps, ensureServing, explainResult, inProgress, recoverScriptExists,
  releases, revertUnderway, runFault, startOperation, summarize, swapUnderway, waitForPoint, type FaultResult,
} from '../support/faults.ts';

const explain = (r: RunResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
const KILL9_BOUND_S = RECOVERY_INTERVAL_S + SWAP_BOUND_S;
// a case that does not settle waits this long before reporting what it saw (well above the bound)
const SETTLE_TIMEOUT_S = 90;
const CASE_TIMEOUT_MS = 420_000;

/** What every fault must leave, whatever the interruption. */
function expectNoHarm(r: FaultResult) {
  const why = explainResult(r);
  expect(r.secondsToSettled, why).not.toBeNull();
  expect(r.maxAppContainers, why).toBeLessThanOrEqual(1);
  expect(r.data.lostWrites, why).toEqual([]);
  expect(r.data.acked, why).toBeGreaterThan(0);
  expect(r.data.lostUpdates, why).toEqual([]);
  expect(r.data.duplicateUpdates, why).toEqual([]);
  expect(r.data.updates, why).toBeGreaterThan(5);
}

describeDocker('faults during release operations, under load', () => {
  let stack: Stack;
  let src: ReleaseSource;
  let good = ''; // the last good commit: later releases build on it, not on a bad one
  const builtTags: string[] = [];
  const version = async () => (await stack.fetch('/health')).json().version as string;
  const tagOf = (sha: string) => sha.slice(0, 12);
  const args = (...extra: string[]) => ['--source', src.dir, '--ca', stack.caPem, '--no-notify', '--skip-smoke', ...extra];

  beforeAll(async () => {
    stack = await startStack({ name: 'faults-rel' });
    src = ReleaseSource.create(repoRoot, 'faults');
  });
  // an earlier case that failed may have left the site down: each case measures its own fault
  beforeEach(async () => {
    if (!stack) return;
    if (good) src.checkout(good);
    await ensureServing(stack, args());
  }, 300_000);
  afterAll(async () => {
    removeImages(e2eImages().appImage, [...builtTags, ...(stack ? releases(stack.stateDir).map((r) => r.appTag ?? '') : [])], [e2eImages().appTag]);
    await stack?.down();
    src?.cleanup();
  }, CASE_TIMEOUT_MS);

  it('SIGHUP to the group during the swap (dropped SSH session): the swap finishes, no request fails', async () => {
    const sha = src.commit('v2');
    good = sha;
    builtTags.push(tagOf(sha));
    const [oldApp] = await stack.containers('app');
    const r = await runFault({
      stack, label: 'rollout: swap', script: 'rollout.mts', args: args(), interruption: 'sighup', recoveryIntervalS: RECOVERY_INTERVAL_S, settleTimeoutS: SETTLE_TIMEOUT_S,
      at: { what: 'the swap stopping the old app', when: swapUnderway(oldApp) },
    });
    console.log(summarize(r));
    expectNoHarm(r);
    expect(r.failures, explainResult(r)).toEqual([]);
    expect(await version()).toBe(tagOf(sha));
    expect(releases(stack.stateDir).find((x) => x.gitSha === sha), explainResult(r)).toMatchObject({ result: 'ok' });
  }, CASE_TIMEOUT_MS);

  it('SIGINT to the group during the automatic revert of a bad release: the revert finishes, no request fails', async () => {
    const goodTag = await version();
    if (good) src.checkout(good);
    const sha = src.commit('bad: crash at boot', BAD.crashAtBoot);
    builtTags.push(tagOf(sha));
    const revertLine = revertUnderway(stack.stateDir, sha);
    const r = await runFault({
      // --skip-contract: the contract gate would refuse the image before the swap; the revert is what is interrupted here
      stack, label: 'rollout: automatic revert', script: 'rollout.mts', args: args('--skip-contract'), interruption: 'sigint', recoveryIntervalS: RECOVERY_INTERVAL_S, settleTimeoutS: SETTLE_TIMEOUT_S,
      at: { what: 'the automatic revert of the bad release', when: revertLine },
    });
    console.log(summarize(r));
    expectNoHarm(r);
    expect(r.failures, explainResult(r)).toEqual([]);
    expect(await version()).toBe(goodTag);
    const bad = releases(stack.stateDir).find((x) => x.gitSha === sha)!;
    expect(bad, explainResult(r)).toMatchObject({ result: 'rolled-back' });
    expect(releases(stack.stateDir).filter((x) => x.previousRelease === bad.id).at(-1), explainResult(r)).toMatchObject({ result: 'ok', appTag: goodTag });
  }, CASE_TIMEOUT_MS);

  it(`kill -9 of the group during rollback --with-db: back within one recovery interval plus the swap (${KILL9_BOUND_S} s), no write lost`, async () => {
    if (good) src.checkout(good);
    const sha = src.commit('v3');
    good = sha;
    builtTags.push(tagOf(sha));
    const up = await runScript('rollout.mts', ['--config', stack.envFile, ...args()], { timeoutMs: 240_000 });
    expect(up.code, explain(up)).toBe(0);
    const known = new Set(releases(stack.stateDir).map((x) => x.id));
    const r = await runFault({
      stack, label: 'rollback --with-db', script: 'rollback.mts', args: ['--ca', stack.caPem, '--no-notify', '--skip-smoke', '--with-db', '--yes'],
      interruption: 'kill9-group', recoveryIntervalS: RECOVERY_INTERVAL_S, settleTimeoutS: SETTLE_TIMEOUT_S,
      at: {
        what: 'the app stopped while rollback --with-db replaces the data',
        when: async () => releases(stack.stateDir).some((x) => !known.has(x.id) && x.kind === 'rollback' && x.result === 'in-progress') && (await stack.containers('app')).length === 0,
      },
    });
    console.log(summarize(r));
    expectNoHarm(r);
    expect(r.secondsToFirst2xx, explainResult(r)).toBeLessThanOrEqual(KILL9_BOUND_S);
  }, CASE_TIMEOUT_MS);

  it(`kill -9 of recovery itself, then the timer's next recovery: back within the bound, never two app containers`, async () => {
    expect(recoverScriptExists(), `scripts/recover.mts (the engine's boot + timer entry point) does not exist`).toBe(true);
    // leave an interrupted rollout behind: kill -9 of the script in the middle of its swap
    if (good) src.checkout(good);
    const sha = src.commit('v4');
    builtTags.push(tagOf(sha));
    const [oldApp] = await stack.containers('app');
    const killed = startOperation(stack, 'rollout.mts', args(), 'rollout v4');
    await waitForPoint(killed, 'the swap stopping the old app', swapUnderway(oldApp), 180_000);
    // the swap's detached worker holds the lock in its own session, out of the group's reach (that is
    // what keeps a dropped terminal from stopping it): a reboot kills it and its compose child too
    const worker = (JSON.parse(readFileSync(join(stack.stateDir, 'ops.lock'), 'utf8')) as { pid: number }).pid;
    deliver(killed, 'kill9-group');
    try {
      // its whole session: the worker leads it, and its docker compose child must die with it
      process.kill(-worker, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await killed.exited;
    console.log(`after kill -9 mid-swap: ${describeApps(await appContainerStates(stack))}; unfinished: ${inProgress(stack.stateDir).map((x) => x.id).join(', ')}`);
    const journalFile = join(stack.stateDir, 'releases.jsonl');
    const before = readFileSync(journalFile, 'utf8').length;
    const r = await runFault({
      stack, label: 'recovery', script: 'recover.mts', args: [], interruption: 'kill9-group', recoveryIntervalS: RECOVERY_INTERVAL_S, settleTimeoutS: SETTLE_TIMEOUT_S,
      at: { what: 'recovery writing its first journal line', when: () => readFileSync(journalFile, 'utf8').length > before },
    });
    console.log(summarize(r));
    expectNoHarm(r);
    expect(r.secondsToFirst2xx, explainResult(r)).toBeLessThanOrEqual(KILL9_BOUND_S);
    expect(inProgress(stack.stateDir)).toEqual([]);
  }, CASE_TIMEOUT_MS);

  // From here on the stack stands in for an app without a readiness path (READY_PATH=/health): the
  // toolkit drains it itself (scripts/lib/docker/drain.mts), and these cases interrupt that drain.
  const drainFlag = () => join(stack.stateDir, 'proxy', 'draining');
  const withoutReadiness = async () => {
    if (readFileSync(stack.envFile, 'utf8').includes('\nREADY_PATH=/health\n')) return;
    appendFileSync(stack.envFile, '\nREADY_PATH=/health\n');
    // Caddy's health check now polls /health (its certificate stays in its volume)
    const up = await stack.compose('up', '-d', '--no-deps', '--wait', 'caddy');
    expect(up.code, up.stdout + up.stderr).toBe(0);
  };

  it('READY_PATH=/health, SIGHUP to the group during the toolkit\'s drain: the swap finishes, no request fails, no flag left', async () => {
    await withoutReadiness();
    if (good) src.checkout(good);
    const sha = src.commit('v5');
    good = sha;
    builtTags.push(tagOf(sha));
    const r = await runFault({
      stack, label: 'rollout: drain', script: 'rollout.mts', args: args(), interruption: 'sighup', recoveryIntervalS: RECOVERY_INTERVAL_S, settleTimeoutS: SETTLE_TIMEOUT_S,
      at: { what: 'the toolkit draining the old app', when: () => existsSync(drainFlag()) },
    });
    console.log(summarize(r));
    expectNoHarm(r);
    expect(r.failures, explainResult(r)).toEqual([]);
    expect(await version()).toBe(tagOf(sha));
    expect(existsSync(drainFlag()), explainResult(r)).toBe(false);
  }, CASE_TIMEOUT_MS);

  it(`READY_PATH=/health, a reboot during the toolkit's drain: the flag it left is removed by the timer's recovery, back within ${KILL9_BOUND_S} s, no write lost`, async () => {
    await withoutReadiness();
    if (good) src.checkout(good);
    const sha = src.commit('v6');
    builtTags.push(tagOf(sha));
    const r = await runFault({
      stack, label: 'rollout: drain', script: 'rollout.mts', args: args(), interruption: 'reboot', recoveryIntervalS: RECOVERY_INTERVAL_S, settleTimeoutS: SETTLE_TIMEOUT_S,
      at: { what: 'the toolkit draining the old app', when: () => existsSync(drainFlag()) },
    });
    console.log(summarize(r));
    expectNoHarm(r);
    expect(r.secondsToFirst2xx, explainResult(r)).toBeLessThanOrEqual(KILL9_BOUND_S);
    expect(r.timerRuns, explainResult(r)).toBeGreaterThan(0);
    expect(existsSync(drainFlag()), explainResult(r)).toBe(false);
    expect(inProgress(stack.stateDir)).toEqual([]);
  }, CASE_TIMEOUT_MS);
});
