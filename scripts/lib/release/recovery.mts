// Every operation runs recovery first (under its lock): what a killed process left unfinished is
// decided by recovery/decide.mts and executed by recovery/run.mts, the same code recover.mts runs.
// When it acted that is an operation of its own, notified as "recovery" before the operation that
// ran it goes on; with nothing to do it is silent. When it fails there, the operation fails with
// that reason and sends the one notification (recover.mts, on its own, notifies the failure).
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import { StepError, errorMessage } from '../cli/errors.mts';
import { compactJournal, JOURNAL_KEEP_RELEASES } from './journal.mts';
import { runRecovery, type RecoveryOptions, type RecoveryReport } from '../recovery/run.mts';
import { currentReleaseLabel, withNotice } from '../notify/operation.mts';
import { recoveryReport } from '../notify/reports.mts';
import type { GateOptions } from './gates.mts';

/** runRecovery, notified once when it acted or failed (recover.mts, and every operation before it starts). */
export async function recoverAndNotify(env: OpsEnv, log: Logger, o: RecoveryOptions & { notify?: boolean; apiRoot?: string; notifyFailure?: boolean }): Promise<RecoveryReport> {
  let label: string | undefined;
  return withNotice(
    { env, log, operation: 'recovery', enabled: o.notify !== false, apiRoot: o.apiRoot },
    async (n) => {
      let r: RecoveryReport;
      try {
        r = await runRecovery(env, log, o);
      } catch (err) {
        if (o.notifyFailure === false) n.handOff(); // the operation that ran it reports it
        throw err;
      }
      n.release = label = currentReleaseLabel(env);
      return r;
    },
    (r) => {
      const rep = recoveryReport(r);
      if (rep?.outcome === 'failed' && o.notifyFailure === false) return null;
      return rep && { ...rep, release: label };
    },
  );
}

export async function recoverUnfinished(env: OpsEnv, log: Logger, gates: GateOptions & { notify?: boolean }, _operator: string): Promise<void> {
  const r = await recoverAndNotify(env, log, { healthTimeoutS: gates.healthTimeoutS, stopTimeoutS: gates.stopTimeoutS, notify: gates.notify, apiRoot: gates.smoke?.telegramApiRoot, notifyFailure: false, gates });
  if (r.exitCode !== 0) {
    throw new StepError(`recovering what an interrupted operation left failed: ${r.error ?? 'see above'}`, { step: 'recovery', hint: r.next ?? `node scripts/recover.mts --config ${env.file} --dry-run` });
  }
  // the journal's bound holds without a successful rollout too (failed ones, rollbacks): rollout and
  // rollback compact it here, under their lock, before they append (journal.mts compactJournal)
  try {
    const aside = compactJournal(env.layout.releases);
    if (aside) log.info(`the releases journal was long: compacted to one line per release (the newest ${JOURNAL_KEEP_RELEASES}); the full one is kept as ${aside}`);
  } catch (err) {
    log.warn(`compacting the releases journal failed (nothing else changed): ${errorMessage(err)}`);
  }
}
