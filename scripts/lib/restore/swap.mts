// The swap: the live data/ and uploads/ are moved aside whole into the kept-aside directory, and the
// staged copies take their place, by rename only (all on STATE_DIR's filesystem: instant at any
// size, and the old database's -wal/-shm leave with the old data/, so they can never be applied to
// the restored file). Both directions are idempotent: a re-run after a crash between any two
// renames finishes the job.
import { existsSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync } from 'node:fs';
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
