// Kept-aside states: what a restore (or a schema rollback, which is a restore) replaced, moved
// whole by rename into STATE_DIR/kept/<op>-<label>/ (data/, uploads/, kept.json). Never deleted on
// the spot: listed by restore.mts --list and removed only by retention (backup.mts, keptRetention).
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StateLayout } from '../config/state.mts';
import { fsyncDir, fsyncPath } from '../host/fsutil.mts';
import { KEPT_META } from './swap.mts';

export interface KeptMeta {
  /** why it was kept: pre-restore (restore.mts) or what the engine passed (e.g. pre-rollback) */
  label: string;
  /** when it was moved aside */
  createdAt: string;
  /** the backup restored over it */
  replacedBy: string;
  op: string;
}

export interface KeptEntry {
  name: string;
  dir: string;
  createdAt: Date;
  meta: KeptMeta | null;
  /** data/ and uploads/ are there */
  items: string[];
}

export const keptRoot = (layout: Pick<StateLayout, 'root'>) => join(layout.root, 'kept');

export function keptDirFor(layout: Pick<StateLayout, 'root'>, op: string, label: string): string {
  return join(keptRoot(layout), `${op}-${label.replace(/[^a-z0-9-]/gi, '') || 'pre-restore'}`);
}

/** written before anything is moved in, so a kept dir always says what it is */
export function writeKeptMeta(dir: string, meta: KeptMeta) {
  const p = join(dir, KEPT_META);
  writeFileSync(`${p}.tmp`, JSON.stringify(meta, null, 2) + '\n', { mode: 0o600 });
  fsyncPath(`${p}.tmp`);
  renameSync(`${p}.tmp`, p);
  fsyncDir(dir);
}

export function listKept(layout: Pick<StateLayout, 'root'>): KeptEntry[] {
  const root = keptRoot(layout);
  if (!existsSync(root)) return [];
  const out: KeptEntry[] = [];
  for (const ent of readdirSync(root, { withFileTypes: true })) {
    if (!ent.isDirectory() || ent.name.startsWith('.')) continue;
    const dir = join(root, ent.name);
    let meta: KeptMeta | null = null;
    try {
      meta = JSON.parse(readFileSync(join(dir, KEPT_META), 'utf8')) as KeptMeta;
    } catch {
      /* a kept dir without meta: dated by its mtime */
    }
    const at = meta?.createdAt ? new Date(meta.createdAt) : statSync(dir).mtime;
    out.push({ name: ent.name, dir, createdAt: Number.isNaN(at.getTime()) ? statSync(dir).mtime : at, meta, items: readdirSync(dir).filter((n) => n !== KEPT_META) });
  }
  return out.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
}
