// Faults during a restore with the app stopped, under load, on one shared stack:
// - SIGHUP to the restore's process group (a dropped SSH session) during its swap, with no recovery
//   timer at all: the detached worker finishes the restore by itself, no request fails, the terminal
//   that went away was told where it continues;
// - a reboot at the same point (kill -9 of the group and of the detached worker's session): with no
//   operator action but the simulated recovery timer, the site serves again within one recovery
//   interval plus the swap.
// After each: never two app containers, and every write and Telegram update the app acknowledged is in
// the live database or in a kept-aside state that the output names.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker } from '../support/docker.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { seedAndBackUp } from '../support/backup.ts';
import { RECOVERY_INTERVAL_S, SWAP_BOUND_S, explainResult, restoreJournal, runFault, summarize, type FaultResult } from '../support/faults.ts';

const KILL9_BOUND_S = RECOVERY_INTERVAL_S + SWAP_BOUND_S;
// a case that does not settle waits this long before reporting what it saw (well above the bound)
const SETTLE_TIMEOUT_S = 90;
const CASE_TIMEOUT_MS = 420_000;
// until here the live state is untouched and nothing needs recovering; after it, the app is stopped
// or about to be, and the live data is being (or has been) set aside
const BEFORE_KEPT_ASIDE = new Set(['staging', 'safety-backup']);
const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function expectNoHarm(r: FaultResult) {
  const why = explainResult(r);
  expect(r.secondsToSettled, why).not.toBeNull();
  expect(r.maxAppContainers, why).toBeLessThanOrEqual(1);
  expect(r.data.acked, why).toBeGreaterThan(0);
  expect(r.data.lostWrites, why).toEqual([]);
  expect(r.data.updates, why).toBeGreaterThan(5);
  expect(r.data.lostUpdates, why).toEqual([]);
  expect(r.data.duplicateUpdates, why).toEqual([]);
}

describeDocker('faults during restore, under load', () => {
  let stack: Stack;
  let backupId = '';
  const appStoppedForSwap = {
    what: 'the restore past its safety step, with the app stopped',
    when: async () => {
      const phase = restoreJournal(stack.stateDir)?.phase;
      return typeof phase === 'string' && !BEFORE_KEPT_ASIDE.has(phase) && (await stack.containers('app')).length === 0;
    },
  };

  beforeAll(async () => {
    stack = await startStack({ name: 'faults-restore' });
    ({ backupId } = await seedAndBackUp(stack, { tasks: 3, prefix: 'seed', bytes: 20_000, fileName: 'seed.bin' }));
  });
  afterAll(async () => {
    await stack?.down();
  }, CASE_TIMEOUT_MS);

  it('SIGHUP to the group during the swap, no recovery timer: the restore finishes by itself, no request fails', async () => {
    const r = await runFault({
      stack, label: 'restore: swap', script: 'restore.mts', args: ['--from', backupId, '--yes', '--skip-smoke'],
      interruption: 'sighup', recoveryIntervalS: null, settleTimeoutS: SETTLE_TIMEOUT_S, at: appStoppedForSwap,
    });
    console.log(summarize(r));
    const why = explainResult(r);
    expectNoHarm(r);
    expect(r.timerRuns, why).toBe(0);
    expect(r.failures, why).toEqual([]);
    // the terminal was gone: the script said where the restore continues (ops.log), the worker's log says how it ended
    expect(r.logs, why).toMatch(new RegExp(`SIGHUP: this terminal stops following, but the restore of backup ${re(backupId)} continues in pid \\d+`));
    expect(r.logs, why).toMatch(new RegExp(`restored ${re(backupId)}; the previous state is kept in ${re(stack.stateDir)}/kept/\\S+-pre-restore`));
  }, CASE_TIMEOUT_MS);

  it(`a reboot with the app stopped (kill -9 of the group and of the detached worker): back within ${KILL9_BOUND_S} s, no acknowledged write or update lost`, async () => {
    const r = await runFault({
      stack, label: 'restore', script: 'restore.mts', args: ['--from', backupId, '--yes', '--skip-smoke'],
      interruption: 'reboot', recoveryIntervalS: RECOVERY_INTERVAL_S, settleTimeoutS: SETTLE_TIMEOUT_S, at: appStoppedForSwap,
    });
    console.log(summarize(r));
    const why = explainResult(r);
    expectNoHarm(r);
    expect(r.secondsToFirst2xx, why).toBeLessThanOrEqual(KILL9_BOUND_S);
    // the worker died with everything else: the timer's recovery finished the restore
    expect(r.timerRuns, why).toBeGreaterThan(0);
  }, CASE_TIMEOUT_MS);
});
