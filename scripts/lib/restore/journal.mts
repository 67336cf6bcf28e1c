// The restore journal (STATE_DIR/restore-journal.json): what a restore resolved and how far it got,
// written atomically (temp name, fsync, rename, fsync of the directory) before every phase, so a
// killed restore can be finished or rolled back by the next run.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { StepError, errorMessage } from '../cli/errors.mts';
import type { StateLayout } from '../config/state.mts';
import { fsyncDir, fsyncPath } from '../host/fsutil.mts';

export type RestorePhase =
  | 'staging' // copying + verifying into the staging dir; live untouched
  | 'stopping' // stopping the app; live data untouched
  | 'swapping' // live data/ and uploads/ renamed into the kept-aside dir, staged ones renamed live: from here on we roll forward
  | 'swapped'
  | 'starting'
  | 'started'
  | 'rolling-back' // the restored state did not come up healthy: putting the kept-aside state back
  | 'cleanup';

/** phases of journals written before the kept-aside design; recovery treats them as 'staging' */
export const LEGACY_UNTOUCHED_PHASES = ['safety-backup'] as const;

export interface RestoreJournal {
  op: string;
  /** what the operator asked for ('latest' or an id) */
  requested?: string;
  /** the backup it resolved to, once: every re-run continues with this one */
  backupId: string;
  staging: string;
  /** where the replaced live data/ and uploads/ go (STATE_DIR/kept/<op>-<label>); kept, removed only by retention */
  kept?: string;
  phase: RestorePhase | (typeof LEGACY_UNTOUCHED_PHASES)[number];
  startedAt: string;
  updatedAt: string;
  pid: number;
  /** /proc start time of pid: after a reboot a reused pid is not the restore (host/lock.mts recordedPidAlive) */
  pidStart?: string;
  /** the app container existed and ran before the restore */
  appWasRunning: boolean;
  /** image of the app container before the restore (to recreate it if needed) */
  appImage: string | null;
  startApp: boolean;
  /** legacy journals only */
  safetyBackupId?: string | null;
  keepOld?: boolean;
}

export const STAGING_PREFIX = '.restore-';

export function writeJournal(layout: StateLayout, j: RestoreJournal) {
  j.updatedAt = new Date().toISOString();
  const tmp = `${layout.restoreJournal}.tmp`;
  writeFileSync(tmp, JSON.stringify(j, null, 2) + '\n', { mode: 0o600 });
  fsyncPath(tmp);
  renameSync(tmp, layout.restoreJournal);
  fsyncDir(layout.root);
}

export function readRestoreJournal(layout: StateLayout): RestoreJournal | null {
  if (!existsSync(layout.restoreJournal)) return null;
  try {
    return JSON.parse(readFileSync(layout.restoreJournal, 'utf8')) as RestoreJournal;
  } catch (err) {
    throw new StepError(`${layout.restoreJournal} is unreadable: ${errorMessage(err)}`, {
      step: 'restore',
      hint: `inspect ${layout.root} (data/, uploads/ and ${STAGING_PREFIX}* directories) by hand before removing the journal`,
    });
  }
}

export function setPhase(layout: StateLayout, j: RestoreJournal, phase: RestorePhase, opts: { onPhase?: (p: RestorePhase) => void }) {
  j.phase = phase;
  writeJournal(layout, j);
  opts.onPhase?.(phase);
}
