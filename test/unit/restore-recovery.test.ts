// Recovery of an interrupted restore is a pure decision: every phase the journal can record, against
// the live states a kill -9 or reboot can leave, gives a fixed list of actions; executing them (on a
// model of the state) and deciding again gives nothing: recovery run twice is recovery run once.
import { describe, expect, it } from 'vitest';
import { decideRestoreRecovery, type RestoreRecoveryAction } from '../../scripts/lib/restore/recovery-plan.mts';
import type { RestoreJournal, RestorePhase } from '../../scripts/lib/restore/journal.mts';
import type { ObservedApp, ObservedState } from '../../scripts/lib/recovery/observed.mts';

const journal = (phase: RestoreJournal['phase'], over: Partial<RestoreJournal> = {}): RestoreJournal => ({
  op: '20260101T000000Z-4242', requested: 'latest', backupId: '20251231T031700Z-cron', staging: '/s/.restore-20260101T000000Z-4242',
  kept: '/s/kept/20260101T000000Z-4242-pre-restore', phase, startedAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:01Z',
  pid: 4242, appWasRunning: true, appImage: 'lazyflow-app:abc', startApp: true, ...over,
});

const app = (state: ObservedApp['state'], health?: ObservedApp['health']): ObservedApp => ({ id: 'c1', tag: 'abc', state, health });
const observed = (over: Partial<ObservedState> = {}): ObservedState => ({
  apps: [], proxyRunning: true, userVersion: { kind: 'read', value: 3 }, backupIds: [], imageTags: ['abc'],
  stateEntries: ['data', 'uploads', 'backups', 'kept', '.restore-20260101T000000Z-4242', 'restore-journal.json'], alivePids: [], ...over,
});

const kinds = (a: RestoreRecoveryAction[]) => a.map((x) => (x.kind === 'set-phase' ? `set-phase:${x.phase}` : x.kind === 'start-app' ? `start-app:${x.on}` : x.kind === 'finish' ? `finish:${x.outcome}` : x.kind));

const stopped = [app('exited')];
const running = [app('running', 'healthy')];
const none: ObservedApp[] = [];

// phase × observed apps -> actions
const table: [RestoreJournal['phase'], string, ObservedApp[], string[]][] = [
  ['staging', 'app running', running, ['discard-staging', 'finish:rolled-back']],
  ['safety-backup', 'app running (journal of an older toolkit)', running, ['discard-staging', 'finish:rolled-back']],
  ['stopping', 'app still running (killed before the stop)', running, ['discard-staging', 'finish:rolled-back']],
  ['stopping', 'app stopped', stopped, ['discard-staging', 'start-app:old', 'finish:rolled-back']],
  ['stopping', 'no container', none, ['discard-staging', 'start-app:old', 'finish:rolled-back']],
  ['swapping', 'app stopped', stopped, ['swap-in', 'set-phase:swapped', 'set-phase:starting', 'start-app:restored', 'discard-staging', 'finish:completed']],
  ['swapping', 'app running again (restart policy after a reboot)', running, ['stop-app', 'swap-in', 'set-phase:swapped', 'set-phase:starting', 'start-app:restored', 'discard-staging', 'finish:completed']],
  ['swapped', 'app stopped', stopped, ['swap-in', 'set-phase:swapped', 'set-phase:starting', 'start-app:restored', 'discard-staging', 'finish:completed']],
  ['starting', 'app stopped', stopped, ['swap-in', 'set-phase:swapped', 'set-phase:starting', 'start-app:restored', 'discard-staging', 'finish:completed']],
  ['starting', 'app healthy (killed before "started" was written)', running, ['swap-in', 'set-phase:swapped', 'discard-staging', 'finish:completed']],
  ['starting', 'app running, health still starting: waited for', [app('running', 'starting')], ['swap-in', 'set-phase:swapped', 'set-phase:starting', 'start-app:restored', 'discard-staging', 'finish:completed']],
  ['started', 'app healthy', running, ['discard-staging', 'finish:completed']],
  ['cleanup', 'app healthy', running, ['discard-staging', 'finish:completed']],
  ['rolling-back', 'app running on the failed state', running, ['stop-app', 'swap-back', 'discard-staging', 'start-app:old', 'finish:rolled-back']],
  ['rolling-back', 'app stopped', stopped, ['swap-back', 'discard-staging', 'start-app:old', 'finish:rolled-back']],
];

/** a model of the state the actions change: enough to decide again */
function apply(j: RestoreJournal | null, o: ObservedState, actions: RestoreRecoveryAction[]): { j: RestoreJournal | null; o: ObservedState } {
  let apps = o.apps;
  let entries = o.stateEntries;
  let cur = j ? { ...j } : null;
  for (const a of actions) {
    if (a.kind === 'stop-app') apps = apps.map((x) => ({ ...x, state: 'exited' as const, health: undefined }));
    if (a.kind === 'start-app') apps = [app('running', 'healthy')];
    if (a.kind === 'set-phase' && cur) cur.phase = a.phase;
    if (a.kind === 'discard-staging' && cur) entries = entries.filter((n) => n !== cur!.staging.split('/').pop());
    if (a.kind === 'remove-stray-staging') entries = entries.filter((n) => n !== a.dir);
    if (a.kind === 'finish') {
      cur = null;
      entries = entries.filter((n) => n !== 'restore-journal.json');
    }
  }
  return { j: cur, o: { ...o, apps, stateEntries: entries } };
}

describe('decideRestoreRecovery', () => {
  for (const [phase, what, apps, want] of table) {
    it(`${phase}, ${what}`, () => {
      const j = journal(phase);
      const o = observed({ apps });
      const acts = decideRestoreRecovery(j, o);
      expect(kinds(acts)).toEqual(want);
      // run twice = once
      const after = apply(j, o, acts);
      expect(after.j).toBeNull();
      expect(decideRestoreRecovery(after.j, after.o)).toEqual([]);
    });
  }

  it('the outcome names the backup the journal resolved, never a newer one', () => {
    const acts = decideRestoreRecovery(journal('swapped'), observed({ apps: stopped, backupIds: ['20260101T000001Z-manual', '20251231T031700Z-cron'] }));
    expect(acts.at(-1)).toEqual({ kind: 'finish', outcome: 'completed', what: 'completed: the live state is backup 20251231T031700Z-cron' });
  });

  it('a restore whose process is still alive is left alone', () => {
    expect(decideRestoreRecovery(journal('swapping'), observed({ apps: stopped, alivePids: [4242] }))).toEqual([{ kind: 'leave', why: 'restore process 4242 is still running' }]);
  });

  it('the app is not started when it did not run before and the caller starts it (rollout)', () => {
    expect(kinds(decideRestoreRecovery(journal('swapped', { appWasRunning: false, startApp: false }), observed({ apps: stopped })))).toEqual(['swap-in', 'set-phase:swapped', 'discard-staging', 'finish:completed']);
    expect(kinds(decideRestoreRecovery(journal('stopping', { appWasRunning: false, startApp: false }), observed({ apps: stopped })))).toEqual(['discard-staging', 'finish:rolled-back']);
  });

  it('no journal: staging dirs are strays of a restore that touched nothing; otherwise nothing to do', () => {
    const o = observed({ stateEntries: ['data', '.restore-a', '.restore-b', 'kept'] });
    expect(decideRestoreRecovery(null, o)).toEqual([{ kind: 'remove-stray-staging', dir: '.restore-a' }, { kind: 'remove-stray-staging', dir: '.restore-b' }]);
    const after = apply(null, o, decideRestoreRecovery(null, o));
    expect(decideRestoreRecovery(null, after.o)).toEqual([]);
    expect(decideRestoreRecovery(null, observed({ stateEntries: ['data', 'uploads', 'kept'] }))).toEqual([]);
  });

  it('other staging dirs next to a journal are removed as strays too; the kept dir never is', () => {
    const acts = decideRestoreRecovery(journal('started'), observed({ apps: running, stateEntries: ['data', 'kept', '.restore-20260101T000000Z-4242', '.restore-old'] }));
    expect(acts).toContainEqual({ kind: 'remove-stray-staging', dir: '.restore-old' });
    expect(JSON.stringify(acts)).not.toMatch(/kept/);
  });

  it('a restored state that fails its start sends recovery to rolling-back, which then puts the kept state back', () => {
    const phases: RestorePhase[] = ['rolling-back'];
    for (const p of phases) expect(kinds(decideRestoreRecovery(journal(p), observed({ apps: stopped })))).toContain('swap-back');
  });
});
