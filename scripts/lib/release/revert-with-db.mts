// Going back from a rollback --with-db whose gate failed, as docker-rollout does: dump the failed
// app's health and logs, then undo only what the rollback did. It replaced the live data with a
// backup by renames, keeping the live state whole in STATE_DIR/kept/<op>-pre-rollback; going back is
// the same renames the other way: the state the failed attempt served on (the backup, plus whatever
// it wrote during its gates) is moved aside whole into STATE_DIR/kept/<id>-failed-rollback, named in
// the output, and the pre-rollback state is renamed live again; then the release that ran before
// starts on it. No copy, so no wait that grows with the data, and nothing is deleted.
//
// Journaled (phase revert-data, then revert-start, with both directories) before each step: an
// interruption is finished by recovery (recovery/decide.mts, goal of a rollback --with-db with
// revertData), which repeats the idempotent renames and starts the previous release.
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../cli/log.mts';
import type { OpsEnv } from '../config/env.mts';
import { errorMessage } from '../cli/errors.mts';
import { appDiagnostics, waitHealthy } from '../docker/app-container.mts';
import { startApp, stopApp } from '../docker/app-lifecycle.mts';
import { fsyncDir } from '../host/fsutil.mts';
import { keptDirFor, keptRoot, writeKeptMeta } from '../restore/kept.mts';
import { assertSwapRenames, KEPT_META, swapIn } from '../restore/swap.mts';
import { appendJournal } from './journal.mts';

export const FAILED_ROLLBACK_LABEL = 'failed-rollback';

/** The directories of the data revert, as journaled: the live state goes to `to`, `from` comes back live. */
export interface RevertData {
  /** STATE_DIR/kept/<op>-pre-rollback: the state that was live before the rollback */
  from: string;
  /** STATE_DIR/kept/<id>-failed-rollback: what the failed attempt served on */
  to: string;
}

/**
 * The renames of a data revert (idempotent: a re-run after a crash between two renames finishes it).
 * The app must be stopped. The pre-rollback dir, emptied, goes (its state is live again).
 */
export function swapKeptBack(env: OpsEnv, d: RevertData, rollbackId: string): void {
  mkdirSync(keptRoot(env.layout), { recursive: true, mode: 0o700 });
  if (!existsSync(d.to)) {
    mkdirSync(d.to, { mode: 0o700 });
    writeKeptMeta(d.to, { label: FAILED_ROLLBACK_LABEL, createdAt: new Date().toISOString(), replacedBy: `the state before ${rollbackId}`, op: rollbackId });
  }
  if (existsSync(d.from)) {
    swapIn(env.layout, d.from, d.to);
    if (readdirSync(d.from).every((n) => n === KEPT_META)) {
      rmSync(join(d.from, KEPT_META), { force: true });
      rmdirSync(d.from);
      fsyncDir(keptRoot(env.layout));
    }
  }
}

export interface RevertWithDbInput {
  env: OpsEnv;
  log: Logger;
  /** the rollback that failed */
  id: string;
  appTag: string;
  /** the release that ran before it (null: no app ran; the data still goes back, the app stays stopped) */
  previous: { id: string; appTag: string } | null;
  /** where the restore moved the live state (RestoreResult.keptDir) */
  keptPre: string;
  healthTimeoutS?: number;
  stopTimeoutS?: number;
}

export async function revertWithDb(i: RevertWithDbInput): Promise<{ ok: boolean; keptFailed: string; error?: string; journaled: boolean }> {
  const { env, log } = i;
  log.error(`the app on ${i.appTag} as its gate failed:\n${await appDiagnostics(env)}`);
  const d: RevertData = { from: i.keptPre, to: keptDirFor(env.layout, i.id, FAILED_ROLLBACK_LABEL) };
  // once journaled, a failure is left to recovery, which finishes going back (not forward onto the backup)
  let journaled = false;
  try {
    // refused before the stop when a rename could not work (kept/ on another filesystem)
    assertSwapRenames(env.layout, d.from, d.to);
    appendJournal(env.layout.releases, { id: i.id, phase: 'revert-data', revertData: d });
    journaled = true;
    await stopApp(env, log, 'rollback --with-db failed: stop the app', { timeoutS: i.stopTimeoutS, step: 'revert' });
    swapKeptBack(env, d, i.id);
    appendJournal(env.layout.releases, { id: i.id, phase: 'revert-start', dbRestored: false, keptFailed: d.to });
    log.warn(`the data live before the rollback is back; what the failed attempt served on (backup and writes during its gates) is kept in ${d.to}`);
    if (!i.previous) return { ok: true, keptFailed: d.to, journaled };
    const s = log.step(`start ${env.appImage}:${i.previous.appTag} again and wait until healthy`);
    await startApp(env, i.previous.appTag, log, { step: 'revert' });
    await waitHealthy(env, (i.healthTimeoutS ?? 90) * 1000, log, { what: `the app on ${i.previous.appTag}`, step: 'revert' });
    s.done();
    return { ok: true, keptFailed: d.to, journaled };
  } catch (err) {
    return { ok: false, keptFailed: d.to, error: errorMessage(err), journaled };
  }
}
