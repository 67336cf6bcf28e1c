// The swap: the live data/ and uploads/ are moved aside whole into the kept-aside directory, and the
// staged copies take their place, by rename only (all on STATE_DIR's filesystem: instant at any
// size, and the old database's -wal/-shm leave with the old data/, so they can never be applied to
// the restored file). Both directions are idempotent: a re-run after a crash between any two
// renames finishes the job.
import { existsSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { StepError } from '../cli/errors.mts';
import { dirname, join } from 'node:path';
import type { StateLayout } from '../config/state.mts';
import { fsyncDir } from '../host/fsutil.mts';

export const ITEMS = ['data', 'uploads'] as const;

/** live/<item> -> kept/<item>, then staging/<item> -> live/<item>, per item */
export function swapIn(layout: Pick<StateLayout, 'root'>, staging: string, kept: string) {
  mkdirSync(kept, { recursive: true, mode: 0o700 });
  for (const item of ITEMS) {
    const live = join(layout.root, item);
    const fresh = join(staging, item);
    const old = join(kept, item);
    if (!existsSync(fresh)) continue; // already swapped
    if (existsSync(live)) {
      // old already there and live still there: only possible if edited by hand; never delete, park it
      if (existsSync(old)) renameSync(live, join(kept, `${item}.${Date.now()}`));
      else renameSync(live, old);
    }
    renameSync(fresh, live);
  }
  fsyncDir(kept);
  fsyncDir(dirname(kept));
  fsyncDir(layout.root);
  fsyncDir(staging);
}

/** put the kept-aside state back live; the restored copy goes back into staging (it is a backup's copy) */
export function swapBack(layout: Pick<StateLayout, 'root'>, staging: string, kept: string) {
  for (const item of ITEMS) {
    const live = join(layout.root, item);
    const fresh = join(staging, item);
    const old = join(kept, item);
    if (!existsSync(old)) continue; // never swapped, or already back
    if (existsSync(live)) {
      mkdirSync(staging, { recursive: true, mode: 0o700 });
      if (existsSync(fresh)) rmSync(fresh, { recursive: true, force: true });
      renameSync(live, fresh);
    }
    renameSync(old, live);
  }
  fsyncDir(layout.root);
  // an empty kept-aside dir (the state went back live) is no kept state; anything else stays
  if (existsSync(kept) && readdirSync(kept).every((n) => n === KEPT_META)) {
    rmSync(join(kept, KEPT_META), { force: true });
    rmdirSync(kept);
    fsyncDir(dirname(kept));
  }
}

export const KEPT_META = 'kept.json';

/**
 * Pure: which of the paths the swap renames between are not on STATE_DIR's filesystem. A rename cannot
 * cross filesystems (EXDEV) nor move a mount point (EBUSY): found only after the app stopped, that
 * left the site down and the restore failing every minute. Checked before the stop instead.
 */
export function crossDevice(rootDev: number, paths: { path: string; dev: number }[]): string[] {
  return paths.filter((p) => p.dev !== rootDev).map((p) => p.path);
}

/** The nearest existing path at or above p (kept/<op> does not exist before the swap). */
function existingAncestor(p: string): string {
  let cur = p;
  while (!existsSync(cur) && dirname(cur) !== cur) cur = dirname(cur);
  return cur;
}

/** Refuse, before anything live is touched, a swap whose renames would fail (see crossDevice). */
export function assertSwapRenames(layout: Pick<StateLayout, 'root'>, staging: string, kept: string): void {
  const rootDev = statSync(layout.root).dev;
  const paths = [
    ...ITEMS.map((i) => join(layout.root, i)).filter((p) => existsSync(p)),
    ...ITEMS.map((i) => join(staging, i)).filter((p) => existsSync(p)),
    existingAncestor(kept),
  ].map((path) => ({ path, dev: statSync(path).dev }));
  const bad = crossDevice(rootDev, paths);
  if (bad.length) {
    throw new StepError(`${bad.join(', ')} ${bad.length === 1 ? 'is' : 'are'} not on the filesystem of ${layout.root}: the restore moves the live data aside and the restored copy in by rename, which cannot cross filesystems; nothing was stopped or changed`, {
      step: 'restore',
      hint: `keep data/, uploads/ and kept/ as plain directories of ${layout.root} (unmount what is mounted there, move its content in, e.g. mount the volume at ${layout.root} itself), then run the restore again`,
    });
  }
}
