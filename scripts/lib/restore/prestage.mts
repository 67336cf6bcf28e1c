// A backup staged beside the serving app, for a restore that must not keep the site down for as long
// as a copy takes (a schema revert, rollback --with-db): STATE_DIR/.stage-<backup id>/ holds data/ and
// uploads/ verified as a restore's staging does (stage.mts), on the live data's filesystem, so the
// restore itself is then the stop, renames and the start. Resumable: a run stopped half way (the
// recovery timer's 15-minute limit) leaves every verified file in place, and the next run goes on
// from there. Complete only once STATE_DIR/.stage-<id>/staged.json is written (after everything is
// fsynced). Only ever a copy of a backup: removed freely (decide.mts: discard-staged).
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StepError } from '../cli/errors.mts';
import { formatBytes, type Logger } from '../cli/log.mts';
import type { OpsEnv } from '../config/env.mts';
import type { StateLayout } from '../config/state.mts';
import { APP_GID, APP_UID, describeFs, fsInfo, fsyncDir, fsyncPath, isRoot } from '../host/fsutil.mts';
import { resolveBackup, stageBackup } from './stage.mts';

export const STAGE_PREFIX = '.stage-';
export const STAGED_MARK = 'staged.json';

export interface StagedMark {
  backupId: string;
  userVersion: number;
  completedAt: string;
}

export const stageDirFor = (layout: Pick<StateLayout, 'root'>, backupId: string) => join(layout.root, `${STAGE_PREFIX}${backupId}`);

/** the staged backups under STATE_DIR, complete or not (what recovery observes) */
export function observeStaged(layout: Pick<StateLayout, 'root'>): { backupId: string; complete: boolean }[] {
  let names: string[] = [];
  try {
    names = readdirSync(layout.root).filter((n) => n.startsWith(STAGE_PREFIX));
  } catch {
    return [];
  }
  return names.map((n) => ({ backupId: n.slice(STAGE_PREFIX.length), complete: readMark(join(layout.root, n)) !== null }));
}

function readMark(dir: string): StagedMark | null {
  try {
    return JSON.parse(readFileSync(join(dir, STAGED_MARK), 'utf8')) as StagedMark;
  } catch {
    return null;
  }
}

/** the complete staged copy of this backup, or null */
export function completeStage(layout: Pick<StateLayout, 'root'>, backupId: string): string | null {
  const dir = stageDirFor(layout, backupId);
  return readMark(dir)?.backupId === backupId ? dir : null;
}

/** bytes of what an earlier run already staged (so a resumed stage asks only for the rest) */
function stagedBytes(dir: string): number {
  let n = 0;
  const walk = (p: string) => {
    for (const e of readdirSync(p, { withFileTypes: true })) {
      const q = join(p, e.name);
      if (e.isDirectory()) walk(q);
      else if (e.isFile()) n += statSync(q).size;
    }
  };
  if (existsSync(dir)) walk(dir);
  return n;
}

/** room kept free beyond the staged copy (the live database's WAL, logs, journals) */
export const PRESTAGE_MARGIN_BYTES = 64 * 2 ** 20;

/** Pure: bytes still needed to stage `total` when `done` are staged, and whether `free` holds them. */
export function prestageSpace(total: number, done: number, free: number): { fits: boolean; needBytes: number } {
  const needBytes = Math.max(0, total - done) + PRESTAGE_MARGIN_BYTES;
  return { fits: !Number.isFinite(free) || free >= needBytes, needBytes };
}

/**
 * Stage backup `backupId` beside the live data while the app serves; returns the complete dir. Refuses
 * with nothing changed when the filesystem cannot hold it; resumes what an earlier run staged.
 */
export async function prestageBackup(env: OpsEnv, log: Logger, backupId: string): Promise<string> {
  const layout = env.layout;
  const dir = stageDirFor(layout, backupId);
  if (completeStage(layout, backupId)) {
    log.info(`backup ${backupId} is already staged in ${dir}`);
    return dir;
  }
  const b = resolveBackup(layout, backupId);
  const total = b.manifest.database.rawBytes + b.manifest.uploads.bytes;
  const fs = fsInfo(layout.root);
  const space = prestageSpace(total, stagedBytes(dir), fs.freeBytes);
  if (!space.fits) {
    throw new StepError(`not enough free space to stage backup ${backupId} in ${dir} (${describeFs(fs, formatBytes)}): it needs ${formatBytes(space.needBytes)} (${space.needBytes} bytes: database and uploads not staged yet, plus ${formatBytes(PRESTAGE_MARGIN_BYTES)} to spare); nothing was changed, the app still serves`, {
      step: 'recovery', hint: `free space in ${layout.root} (old kept/ states: node scripts/restore.mts --list; old backups: node scripts/backup.mts --forget ...); the next recovery run tries again`,
    });
  }
  const liveDataSt = existsSync(layout.data) ? statSync(layout.data) : null;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const r = await stageBackup(b, dir, {
    log, resume: true,
    uid: isRoot() ? APP_UID : liveDataSt?.uid,
    gid: isRoot() ? APP_GID : liveDataSt?.gid,
    dirMode: liveDataSt ? liveDataSt.mode & 0o777 : 0o750,
  });
  const mark: StagedMark = { backupId, userVersion: r.userVersion, completedAt: new Date().toISOString() };
  const p = join(dir, STAGED_MARK);
  writeFileSync(`${p}.tmp`, JSON.stringify(mark) + '\n', { mode: 0o600 });
  fsyncPath(`${p}.tmp`);
  renameSync(`${p}.tmp`, p);
  fsyncDir(dir);
  log.ok(`staged backup ${backupId} in ${dir} while the app serves`);
  return dir;
}

/** remove staged copies (never live or kept state: copies of backups only) */
export function discardStaged(layout: Pick<StateLayout, 'root'>, backupIds: string[]): void {
  for (const id of backupIds) rmSync(stageDirFor(layout, id), { recursive: true, force: true });
  if (backupIds.length) fsyncDir(layout.root);
}
