// The swap: live data/ and uploads/ change places with the staged copies by rename only (one
// filesystem: STATE_DIR), so the old database's -wal/-shm leave with the old data/ and can never be
// applied to the restored file. Both directions are idempotent: a re-run after a crash between any
// two renames finishes the job.
import { existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { StateLayout } from '../config/state.mts';
import { fsyncDir } from '../host/fsutil.mts';

export const ITEMS = ['data', 'uploads'] as const;

export function swapIn(layout: Pick<StateLayout, "root">, staging: string) {
  // per item: live -> staging/old-<item>, then staging/<item> -> live. Idempotent: a re-run after a
  // crash between any two renames finishes the job.
  for (const item of ITEMS) {
    const live = join(layout.root, item);
    const fresh = join(staging, item);
    const old = join(staging, `old-${item}`);
    if (!existsSync(fresh)) continue; // already swapped
    if (existsSync(live) && !existsSync(old)) renameSync(live, old);
    else if (existsSync(live) && existsSync(old)) rmSync(live, { recursive: true, force: true }); // cannot happen unless edited by hand
    renameSync(fresh, live);
  }
  fsyncDir(layout.root);
  fsyncDir(staging);
}

export function swapBack(layout: Pick<StateLayout, "root">, staging: string) {
  for (const item of ITEMS) {
    const live = join(layout.root, item);
    const fresh = join(staging, item);
    const old = join(staging, `old-${item}`);
    if (!existsSync(old)) continue; // never swapped, or already back
    if (existsSync(live)) {
      if (existsSync(fresh)) rmSync(fresh, { recursive: true, force: true });
      renameSync(live, fresh);
    }
    renameSync(old, live);
  }
  fsyncDir(layout.root);
}
