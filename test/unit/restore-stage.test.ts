// Staging a backup (restore and drill) against real files: every upload verified and fsynced, and
// the drill's hard links fall back to copies when backups/ is on another filesystem (a real tmpfs
// mounted on backups/, as root), instead of failing with EXDEV.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { stateLayout, type StateLayout } from '../../scripts/lib/config/state.mts';
import { createLogger } from '../../scripts/lib/cli/log.mts';
import { runBackup } from '../../scripts/lib/backup/backup.mts';
import { listBackups } from '../../scripts/lib/backup/manifest.mts';
import { stageBackup } from '../../scripts/lib/restore/stage.mts';

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
