// Backups against the real stack (Compose, Caddy, the app in its container writing its WAL
// database on a bind mount), with the toolkit running on the host as an operator runs it.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, statSync, statfsSync, writeFileSync, appendFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describeDocker } from '../support/docker.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { run } from '../support/run.ts';
import { backupDirs, createTask, manifestOf, readDb, script, sha256, startWriter, upload } from '../support/backup.ts';

describeDocker('backup.mts against a running stack', () => {
  let stack: Stack;
  const uploads: { id: string; content: Buffer }[] = [];
  let firstId = '';
  let mounted = '';

  beforeAll(async () => {
    stack = await startStack({ name: 'backup' });
    for (let i = 0; i < 3; i++) {
      const content = randomBytes(50_000 + i * 1000);
      const m = await upload(stack, content, `pic-${i}.bin`);
      uploads.push({ id: m.id, content });
    }
  });

  afterAll(async () => {
    if (mounted) await run('umount', ['-l', mounted]);
    await stack?.down();
  });

  it('takes a consistent backup while the app commits continuously', async () => {
    const writer = startWriter(stack, 'during-backup');
    await new Promise((r) => setTimeout(r, 1500));
    const beforeStart = Date.now();
    const ackedBefore = writer.acked.filter((a) => a.at < beforeStart).map((a) => a.title);
    const r = await script(stack, 'backup.mts', ['--reason', 'manual', '--json']);
    const afterEnd = Date.now();
    await new Promise((res) => setTimeout(res, 1000));
    await writer.stop();
    expect(r.code, r.stderr).toBe(0);
    expect(writer.failures).toEqual([]);
    // the app kept committing while the backup ran
    expect(writer.acked.filter((a) => a.at > beforeStart && a.at < afterEnd).length).toBeGreaterThan(0);
    expect(writer.acked.filter((a) => a.at > afterEnd).length).toBeGreaterThan(0);

    const out = JSON.parse(r.stdout);
    firstId = out.backup.id;
    const m = manifestOf(stack.stateDir, firstId);
    expect(m).toMatchObject({ reason: 'manual', verified: true, database: { integrity: 'ok', compression: 'none' } });
    expect(m.database.rowCounts.tasks).toBeGreaterThan(0);
    expect(m.app.schemaVersion).toBeGreaterThan(0);
    expect(m.app.image).toContain(stack.env.APP_IMAGE);
    expect(m.toolkit.version).toMatch(/^\d+\.\d+\.\d+/);
    const db = join(stack.stateDir, 'backups', firstId, 'lazyflow.db');
    expect(sha256(readFileSync(db))).toBe(m.database.sha256);
    // integrity again, independently, and every row committed before the snapshot is in it
    const { integrity, titles } = readDb(db, (d) => ({
      integrity: d.pragma('integrity_check', { simple: true }),
      titles: new Set(d.prepare('SELECT title FROM tasks').pluck().all() as string[]),
    }));
    expect(integrity).toBe('ok');
    const missing = ackedBefore.filter((t) => !titles.has(t));
    expect(missing).toEqual([]);
    expect(ackedBefore.length).toBeGreaterThan(0);
    // no WAL left growing on the live database
    const wal = join(stack.stateDir, 'data', 'lazyflow.db-wal');
    if (existsSync(wal)) expect(statSync(wal).size).toBeLessThan(16 * 2 ** 20);
    // sidecar files stay the app's (uid 1000), even though the toolkit ran as root
    for (const f of ['lazyflow.db', 'lazyflow.db-wal', 'lazyflow.db-shm']) {
      const p = join(stack.stateDir, 'data', f);
      if (existsSync(p)) expect(statSync(p).uid, f).toBe(1000);
    }
    // the uploads, byte for byte
    const media = readDb(db, (d) => d.prepare('SELECT id, file_name FROM media').all() as { id: string; file_name: string }[]);
    for (const u of uploads) {
      const row = media.find((x) => x.id === u.id)!;
      expect(row, u.id).toBeTruthy();
      expect(readFileSync(join(stack.stateDir, 'backups', firstId, 'uploads', row.file_name)).equals(u.content)).toBe(true);
    }
    expect(m.uploads).toMatchObject({ files: 3, copied: 3, linked: 0, missing: [] });
  });

  it('hard-links unchanged uploads to the previous backup, and gzip stores what it checksums', async () => {
    await createTask(stack, 'between backups');
    const r = await script(stack, 'backup.mts', ['--reason', 'cron', '--gzip', '--json', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const id = JSON.parse(r.stdout).backup.id;
    const m = manifestOf(stack.stateDir, id);
    expect(m.uploads).toMatchObject({ files: 3, linked: 3, copied: 0 });
    expect(m.database.file).toBe('lazyflow.db.gz');
    const gz = readFileSync(join(stack.stateDir, 'backups', id, 'lazyflow.db.gz'));
    expect(sha256(gz)).toBe(m.database.sha256);
    for (const e of m.uploads.entries) {
      const a = statSync(join(stack.stateDir, 'backups', firstId, 'uploads', e.path));
      const b = statSync(join(stack.stateDir, 'backups', id, 'uploads', e.path));
      expect(b.ino).toBe(a.ino);
    }
  });

  it('--list prints a table, --json the same as data', async () => {
    const t = await script(stack, 'backup.mts', ['--list']);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/^id\s+age\s+reason\s+size\s+verified/m);
    expect(t.stdout).toContain(firstId);
    expect(t.stdout).toMatch(/cron .* yes/);
    const j = await script(stack, 'backup.mts', ['--list', '--json']);
    const list = JSON.parse(j.stdout);
    expect(list.map((b: { id: string }) => b.id)).toContain(firstId);
    expect(list[0]).toMatchObject({ reason: 'cron', verified: true });
  });

  it('retention deletes by policy but never the newest nor a backup a rollback to a kept image can use', async () => {
    // a third backup; the journal pins the first
    const r3 = await script(stack, 'backup.mts', ['--reason', 'pre-deploy', '--json', '--quiet']);
    expect(r3.code, r3.stderr).toBe(0);
    const ids = backupDirs(stack.stateDir).filter((n) => !n.startsWith('.'));
    expect(ids).toHaveLength(3);
    // release b was deployed over a, taking ids[0]: rollback --with-db to a restores ids[0]
    appendFileSync(join(stack.stateDir, 'releases.jsonl'), [
      { id: 'r0', kind: 'rollout', appTag: 'a', result: 'ok' },
      { id: 'r1', kind: 'rollout', appTag: 'b', backupId: ids[0], previousAppTag: 'a', previousRelease: 'r0', result: 'ok' },
    ].map((l) => JSON.stringify(l) + '\n').join(''));
    const dry = await script(stack, 'backup.mts', ['--forget', '--keep-last', '1', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(new RegExp(`${ids[1]}\\s+DELETE`));
    expect(dry.stdout).toMatch(new RegExp(`${ids[0]}\\s+keep\\s+rollback --with-db to a uses it`));
    // once image a is no longer kept (--keep-images 1: only b), no rollback can use ids[0]: not pinned
    const onlyB = await script(stack, 'backup.mts', ['--forget', '--keep-last', '1', '--keep-images', '1', '--dry-run']);
    expect(onlyB.stdout).toMatch(new RegExp(`${ids[0]}\\s+DELETE`));
    expect(backupDirs(stack.stateDir).filter((n) => !n.startsWith('.'))).toHaveLength(3);
    const real = await script(stack, 'backup.mts', ['--forget', '--keep-last', '1']);
    expect(real.code, real.stderr).toBe(0);
    expect(backupDirs(stack.stateDir).filter((n) => !n.startsWith('.'))).toEqual([ids[0], ids[2]]);
    // the hard-linked uploads of the survivors are intact
    const m = manifestOf(stack.stateDir, ids[2]);
    for (const e of m.uploads.entries) expect(sha256(readFileSync(join(stack.stateDir, 'backups', ids[2], 'uploads', e.path)))).toBe(e.sha256);
  });

  it('rejects bad flags with exit 2 before touching anything', async () => {
    const before = backupDirs(stack.stateDir);
    for (const args of [['--keep-daily', 'x'], ['--reason', 'whim'], ['--bogus'], ['--forget']]) {
      const r = await script(stack, 'backup.mts', args);
      expect(r.code, args.join(' ')).toBe(2);
    }
    // (a missing --config path is reported by Node 24 itself, which scans argv for --config: exit 9)
    const missing = await run(process.execPath, ['scripts/backup.mts', '--config', '/nonexistent/.env.prod']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('/nonexistent/.env.prod');
    const badFile = join(stack.runDir, 'bad.env');
    writeFileSync(badFile, 'STATE_DIR=/srv/x\nAPP-URL=https://x\n', { mode: 0o600 });
    const bad = await run(process.execPath, ['scripts/backup.mts', '--config', badFile]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${badFile}:2: invalid key name "APP-URL"`);
    expect(backupDirs(stack.stateDir)).toEqual(before);
  });

  it('disk full: a clear error, no partial backup, older backups intact', async () => {
    // a small file system mounted for STATE_DIR/backups; one backup fits, the next does not
    const backups = join(stack.stateDir, 'backups');
    const keep = backupDirs(stack.stateDir);
    // room for one backup of the database and the small uploads, not for two more big uploads
    // (the snapshot copies the database file and its WAL, then folds the WAL in)
    const live = (f: string) => (existsSync(join(stack.stateDir, 'data', f)) ? statSync(join(stack.stateDir, 'data', f)).size : 0);
    const size = Math.ceil((2 * (live('lazyflow.db') + live('lazyflow.db-wal')) + 2 ** 20) / 4096) * 4096;
    const r0 = await run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', backups]);
    expect(r0.code, r0.stderr).toBe(0);
    mounted = backups;
    const ok = await script(stack, 'backup.mts', ['--json', '--quiet']);
    expect(ok.code, ok.stderr).toBe(0);
    const fitted = JSON.parse(ok.stdout).backup.id;
    const fittedSums = manifestOf(stack.stateDir, fitted);
    // new uploads (not linkable) that cannot fit in what is left, while the database still does
    const free = statfsSync(backups).bavail * statfsSync(backups).bsize;
    for (let i = 0; i < Math.ceil((free + 2 ** 19) / 1_500_000); i++) await upload(stack, randomBytes(1_500_000), `big-${i}.bin`);
    const full = await script(stack, 'backup.mts', ['--reason', 'cron']);
    expect(full.code).toBe(1);
    expect(full.stderr).toMatch(new RegExp(`disk full on ${backups} \\(tmpfs`));
    expect(full.stderr).toMatch(/older backups are untouched/);
    expect(full.stderr).toMatch(/ENOSPC|no space left/i); // the real write failure, not the up-front estimate
    expect(readdirSync(backups)).toEqual([fitted]); // no .tmp-*, no partial backup
    const list = await script(stack, 'backup.mts', ['--list', '--json']);
    expect(JSON.parse(list.stdout).map((b: { id: string; verified: boolean }) => [b.id, b.verified])).toEqual([[fitted, true]]);
    expect(sha256(readFileSync(join(backups, fitted, 'lazyflow.db')))).toBe(fittedSums.database.sha256);
    const um = await run('umount', [backups]);
    expect(um.code, um.stderr).toBe(0);
    mounted = '';
    expect(backupDirs(stack.stateDir)).toEqual(keep);
  });
});
