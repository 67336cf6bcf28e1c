// What each operation's result means for its one notification (pure: results in, report out; null =
// nothing to tell). The operations call these where their final outcome is known.
import type { OperationReport } from './operation.mts';
import type { OpResult } from '../release/rollout.mts';
import type { DrillResult } from '../restore/drill.mts';
import type { RecoveryReport } from '../recovery/run.mts';
import { describeAction } from '../recovery/decide.mts';
import { releaseLabel } from './operation.mts';

/** A rollout or rollback result: ok, failed (nothing live changed), or failed and reverted automatically. */
export function releaseReport(r: OpResult): OperationReport | null {
  if (r.result === 'dry-run') return null;
  const release = releaseLabel(r.appTag, r.id || undefined);
  if (r.result === 'ok') return { outcome: 'ok', release };
  const rep: OperationReport = { outcome: 'failed', release, reason: r.reason ?? 'failed (see the ops log)' };
  if (r.rollback) {
    rep.revert = { ok: r.rollback.ok, to: r.rollback.decision.toAppTag, restoredDb: r.rollback.decision.restoreDb };
    if (!r.rollback.ok && r.revertError) rep.revert.error = r.revertError;
  }
  return rep;
}

export function drillReport(r: DrillResult): OperationReport {
  if (!r.failed) return { outcome: 'ok', backup: r.backupId };
  const bad = r.checks.find((c) => c.status === 'fail');
  return { outcome: 'failed', backup: r.backupId, reason: bad ? `${bad.name}: ${bad.detail}` : 'a drill check failed' };
}

/** Recovery notifies only when it acted or failed: a run with nothing to do (every minute) is silent. */
export function recoveryReport(r: RecoveryReport): OperationReport | null {
  // a held release that still waits was notified when recovery held it, not again every minute
  if (!r.actions.length && (r.exitCode === 0 || r.waiting)) return null;
  const did = r.actions.map((a) => describeAction(a)).join('; ');
  if (r.exitCode === 0) return { outcome: 'ok', reason: `recovered: ${did}` };
  return { outcome: 'failed', reason: r.error ?? (r.next ? `stopped to ask: ${r.next}` : `recovery failed after: ${did || 'nothing'}`) };
}
