// placeholder: the restore helper's version replaces this.
//
// The restore half of the recovery decision, encoding today's recoverRestore() behaviour
// (scripts/lib/restore/restore.mts) as data so the release engine compiles and its table test runs:
// a restore interrupted before its swap began is rolled back (live data never touched), one
// interrupted from the swap on is completed (the staged copy was verified before the swap).
import type { ObservedState } from '../recovery/observed.mts';
import type { RestoreJournal } from './restore.mts';

export type RestoreRecoveryAction = {
  kind: 'restore-recover';
  /** what recoverRestore() will do for this journal phase */
  how: 'roll-back' | 'roll-forward' | 'clean-up';
  backupId: string;
  phase: string;
  reason: string;
};

const BEFORE_SWAP = new Set(['staging', 'safety-backup', 'stopping']);

export function decideRestoreRecovery(journal: RestoreJournal | null, observed: ObservedState): RestoreRecoveryAction[] {
  if (!journal) return [];
  // the restore still runs: leave it alone
  if (observed.alivePids.includes(journal.pid)) return [];
  const base = { kind: 'restore-recover' as const, backupId: journal.backupId, phase: journal.phase };
  if (BEFORE_SWAP.has(journal.phase)) return [{ ...base, how: 'roll-back', reason: `restore of ${journal.backupId} was interrupted in phase ${journal.phase}, before the live data was touched` }];
  if (journal.phase === 'rolling-back') return [{ ...base, how: 'roll-back', reason: `restore of ${journal.backupId} was interrupted while putting the old state back` }];
  if (journal.phase === 'started' || journal.phase === 'cleanup') return [{ ...base, how: 'clean-up', reason: `restore of ${journal.backupId} was done; only its clean-up was interrupted` }];
  return [{ ...base, how: 'roll-forward', reason: `restore of ${journal.backupId} was interrupted in phase ${journal.phase}, after its verified copy began to replace the live data` }];
}
