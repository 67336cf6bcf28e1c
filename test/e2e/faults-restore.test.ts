// kill -9 of the whole process group of a restore after its kept-aside/safety step, under load: with
// no operator action but the simulated recovery timer, the site serves again within one recovery
// interval plus the swap, never two app containers, and every write and Telegram update the app
// acknowledged is in the live database or in a kept-aside state that the output names.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker } from '../support/docker.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { seedAndBackUp } from '../support/backup.ts';
import { RECOVERY_INTERVAL_S, SWAP_BOUND_S, explainResult, restoreJournal, runFault, summarize } from '../support/faults.ts';

const KILL9_BOUND_S = RECOVERY_INTERVAL_S + SWAP_BOUND_S;
// a case that does not settle waits this long before reporting what it saw (well above the bound)
const SETTLE_TIMEOUT_S = 90;
const CASE_TIMEOUT_MS = 420_000;
// until here the live state is untouched and nothing needs recovering; after it, the app is stopped
// or about to be, and the live data is being (or has been) set aside
const BEFORE_KEPT_ASIDE = new Set(['staging', 'safety-backup']);

describeDocker('faults during restore, under load', () => {
  let stack: Stack;
  let backupId = '';

  beforeAll(async () => {
    stack = await startStack({ name: 'faults-restore' });
    ({ backupId } = await seedAndBackUp(stack, { tasks: 3, prefix: 'seed', bytes: 20_000, fileName: 'seed.bin' }));
  });
  afterAll(async () => {
    await stack?.down();
  }, CASE_TIMEOUT_MS);

  it(`kill -9 of the group after the safety step, the app stopped: back within ${KILL9_BOUND_S} s, no acknowledged write or update lost`, async () => {
    const r = await runFault({
      stack, label: 'restore', script: 'restore.mts', args: ['--from', backupId, '--yes', '--skip-smoke'],
      interruption: 'kill9-group', recoveryIntervalS: RECOVERY_INTERVAL_S, settleTimeoutS: SETTLE_TIMEOUT_S,
      at: {
        what: 'the restore past its safety step, with the app stopped',
        when: async () => {
          const phase = restoreJournal(stack.stateDir)?.phase;
          return typeof phase === 'string' && !BEFORE_KEPT_ASIDE.has(phase) && (await stack.containers('app')).length === 0;
        },
      },
    });
    console.log(summarize(r));
    const why = explainResult(r);
    expect(r.secondsToSettled, why).not.toBeNull();
    expect(r.secondsToFirst2xx, why).toBeLessThanOrEqual(KILL9_BOUND_S);
    expect(r.maxAppContainers, why).toBeLessThanOrEqual(1);
    expect(r.data.acked, why).toBeGreaterThan(0);
    expect(r.data.lostWrites, why).toEqual([]);
    expect(r.data.updates, why).toBeGreaterThan(5);
    expect(r.data.lostUpdates, why).toEqual([]);
    expect(r.data.duplicateUpdates, why).toEqual([]);
  }, CASE_TIMEOUT_MS);
});
