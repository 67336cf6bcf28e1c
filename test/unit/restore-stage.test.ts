// Staging a backup (restore and drill) against real files: every upload verified and fsynced, and
// the drill's hard links fall back to copies when backups/ is on another filesystem (a real tmpfs
// mounted on backups/, as root), instead of failing with EXDEV.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { stateLayout, type StateLayout } from '../../scripts/lib/config/state.mts';
import { createLogger } from '../../scripts/lib/cli/log.mts';
import { runBackup } from '../../scripts/lib/backup/backup.mts';
import { listBackups } from '../../scripts/lib/backup/manifest.mts';
import { PARTS_DIR, stageBackup } from '../../scripts/lib/restore/stage.mts';
import { completeStage, discardStaged, observeStaged, prestageBackup, prestageSpace, stageDirFor } from '../../scripts/lib/restore/prestage.mts';
import type { OpsEnv } from '../../scripts/lib/config/env.mts';

const MB = 2 ** 20;

const log = createLogger({ quiet: true });
let root: string;
let layout: StateLayout;
let mounted = false;
const files: Record<string, Buffer> = { 'a.bin': randomBytes(5000), 'sub/b.bin': randomBytes(70_000) };

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'stage-'));
  layout = stateLayout(root);
  for (const d of [layout.data, layout.uploads, layout.backups, join(layout.uploads, 'sub')]) mkdirSync(d, { recursive: true });
  const db = new Database(layout.db);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE media (id TEXT PRIMARY KEY, file_name TEXT NOT NULL); CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT)');
  db.prepare('INSERT INTO media VALUES (?, ?)').run('m1', 'a.bin');
  db.prepare('INSERT INTO tasks (title) VALUES (?)').run('t1');
  db.close();
  for (const [p, c] of Object.entries(files)) writeFileSync(join(layout.uploads, p), c);
});

afterEach(() => {
  if (mounted) spawnSync('umount', [layout.backups]);
  mounted = false;
  rmSync(root, { recursive: true, force: true });
});

async function stageLatest(linkUploads: boolean) {
  await runBackup({ layout, reason: 'manual', log, skipAppInfo: true, lockHeld: true });
  const b = listBackups(layout).backups[0];
  const target = join(root, '.drill-test');
  mkdirSync(target);
  const r = await stageBackup(b, target, { log, linkUploads, uid: process.getuid?.(), gid: process.getgid?.() });
  return { b, target, r };
}

describe('stageBackup', () => {
  it('copies and verifies every upload and the database', async () => {
    const { target, r } = await stageLatest(false);
    expect(r.rowCounts.tasks).toBe(1);
    for (const [p, c] of Object.entries(files)) expect(readFileSync(join(target, 'uploads', p)).equals(c)).toBe(true);
  });

  it('the drill hard-links uploads when backups/ shares the filesystem', async () => {
    const { b, target } = await stageLatest(true);
    expect(statSync(join(target, 'uploads', 'sub/b.bin')).ino).toBe(statSync(join(b.dir, 'uploads', 'sub/b.bin')).ino);
  });

  it.skipIf(process.getuid?.() !== 0)('the drill copies uploads when backups/ is another filesystem (EXDEV)', async () => {
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', layout.backups]);
    expect(m.status, String(m.stderr)).toBe(0);
    mounted = true;
    const { b, target } = await stageLatest(true);
    for (const [p, c] of Object.entries(files)) {
      expect(readFileSync(join(target, 'uploads', p)).equals(c)).toBe(true);
      expect(statSync(join(target, 'uploads', p)).dev).not.toBe(statSync(join(b.dir, 'uploads', p)).dev);
    }
  });
});

describe('staging beside the serving app (restore/prestage.mts): resumable, bounded by free space', () => {
  it('a stage stopped half way (the recovery timer stops a run at 15 min) goes on from what it verified, not from zero', async () => {
    await runBackup({ layout, reason: 'manual', log, skipAppInfo: true, lockHeld: true });
    const b = listBackups(layout).backups[0];
    const target = join(root, '.stage-test');
    mkdirSync(target);
    const opts = { log, resume: true, uid: process.getuid?.(), gid: process.getgid?.() };
    await stageBackup(b, target, opts);
    // as a run killed mid-copy leaves it: one upload not in place yet, a half-written part beside it
    rmSync(join(target, 'uploads', 'sub/b.bin'));
    mkdirSync(join(target, PARTS_DIR), { recursive: true });
    writeFileSync(join(target, PARTS_DIR, 'upload'), randomBytes(100));
    const inoA = statSync(join(target, 'uploads', 'a.bin')).ino;
    const inoDb = statSync(join(target, 'data', 'lazyflow.db')).ino;
    const r = await stageBackup(b, target, opts);
    expect(r.rowCounts.tasks).toBe(1);
    // verified in place by the first run: kept, not copied again
    expect(statSync(join(target, 'uploads', 'a.bin')).ino).toBe(inoA);
    expect(statSync(join(target, 'data', 'lazyflow.db')).ino).toBe(inoDb);
    for (const [p, c] of Object.entries(files)) expect(readFileSync(join(target, 'uploads', p)).equals(c)).toBe(true);
    expect(existsSync(join(target, PARTS_DIR))).toBe(false);
  });

  it('prestageBackup: complete only once verified whole; a second run does nothing; discarded as a copy', async () => {
    await runBackup({ layout, reason: 'manual', log, skipAppInfo: true, lockHeld: true });
    const b = listBackups(layout).backups[0];
    const env = { layout } as unknown as OpsEnv;
    expect(observeStaged(layout)).toEqual([]);
    const dir = await prestageBackup(env, log, b.id);
    expect(dir).toBe(stageDirFor(layout, b.id));
    expect(completeStage(layout, b.id)).toBe(dir);
    expect(observeStaged(layout)).toEqual([{ backupId: b.id, complete: true }]);
    for (const [p, c] of Object.entries(files)) expect(readFileSync(join(dir, 'uploads', p)).equals(c)).toBe(true);
    expect(await prestageBackup(env, log, b.id)).toBe(dir);
    discardStaged(layout, [b.id]);
    expect(observeStaged(layout)).toEqual([]);
  });

  it.each([
    { name: 'nothing staged, room for it', total: 100 * MB, done: 0, free: 200 * MB, fits: true, need: 164 * MB },
    { name: 'nothing staged, no room: refused before anything is written', total: 100 * MB, done: 0, free: 150 * MB, fits: false, need: 164 * MB },
    { name: 'half staged by an earlier run: only the rest is asked for', total: 100 * MB, done: 50 * MB, free: 120 * MB, fits: true, need: 114 * MB },
    { name: 'free space unknown: assumed to fit', total: 100 * MB, done: 0, free: Number.NaN, fits: true, need: 164 * MB },
  ])('prestageSpace: $name', ({ total, done, free, fits, need }) => {
    expect(prestageSpace(total, done, free)).toEqual({ fits, needBytes: need });
  });
});
