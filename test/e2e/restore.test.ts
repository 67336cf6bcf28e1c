// Restore against the real stack: round trip, refusal of damaged backups, dry run, confirmation,
// and a backup racing a restore for the one operation lock.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync, chmodSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describeDocker } from '../support/docker.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { appContainer, backupDirs, startWriter, createTask, download, listTasks, manifestOf, readDb, script, sha256, spawnScript, until, upload, seedAndBackUp, waitHealthy } from '../support/backup.ts';

describeDocker('restore.mts against a running stack', () => {
  let stack: Stack;
  let backupId = '';
  let u1: { id: string; content: Buffer };

  beforeAll(async () => {
    stack = await startStack({ name: 'restore' });
    ({ backupId, upload: u1 } = await seedAndBackUp(stack, { tasks: 5, prefix: 'before', bytes: 80000, fileName: 'kept.bin' }));
  });

  afterAll(async () => {
    await stack?.down();
  });

  it('round trip under writes: rows after the backup are gone, every acknowledged write is in the live or the kept-aside state, uploads match byte for byte', async () => {
    for (let i = 0; i < 3; i++) await createTask(stack, `after-${i}`);
    const u2 = await upload(stack, randomBytes(30_000), 'later.bin');
    const before = await appContainer(stack);

    // a writer keeps committing through Caddy during the whole restore
    const writer = startWriter(stack, 'during');
    const r = await script(stack, 'restore.mts', ['--from', backupId, '--yes', '--ca', stack.caPem]);
    await writer.stop();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/integrity ok/);
    const keptDir = /kept aside: (\S+)/.exec(r.stdout)?.[1];
    expect(keptDir, r.stdout).toBeTruthy();
    expect(keptDir!.startsWith(join(stack.stateDir, 'kept') + '/')).toBe(true);
    expect(keptDir!).toMatch(/-pre-restore$/);
    expect(r.stdout + r.stderr).toMatch(/requests were held \d+\.\d s/);

    const titles = (await listTasks(stack)).map((t) => t.title);
    for (let i = 0; i < 5; i++) expect(titles).toContain(`before-${i}`);
    for (let i = 0; i < 3; i++) expect(titles).not.toContain(`after-${i}`);
    const f1 = await download(stack, u1.id);
    expect(f1.status).toBe(200);
    expect(f1.body.equals(u1.content)).toBe(true);
    expect((await download(stack, u2.id)).status).toBe(404);

    // nothing the app accepted is lost: it is live (held by Caddy, committed after the start) or kept aside
    const keptTitles = new Set(readDb(join(keptDir!, 'data', 'lazyflow.db'), (d) => d.prepare('SELECT title FROM tasks').pluck().all() as string[]));
    for (let i = 0; i < 3; i++) expect(keptTitles).toContain(`after-${i}`);
    expect(writer.acked.length).toBeGreaterThan(0);
    const liveTitles = new Set(titles);
    const lost = writer.acked.filter((a) => !liveTitles.has(a.title) && !keptTitles.has(a.title));
    expect(lost).toEqual([]);
    expect(readdirSync(join(keptDir!, 'uploads')).map((n) => statSync(join(keptDir!, 'uploads', n)).size)).toContain(30_000);

    // the live uploads are exactly the backup's, owned by the app user
    const m = manifestOf(stack.stateDir, backupId);
    const live = readdirSync(join(stack.stateDir, 'uploads')).filter((n) => !n.startsWith('.')).sort();
    expect(live).toEqual(m.uploads.entries.map((e: { path: string }) => e.path).sort());
    for (const e of m.uploads.entries) {
      const p = join(stack.stateDir, 'uploads', e.path);
      expect(sha256(readFileSync(p))).toBe(e.sha256);
      expect(statSync(p).uid).toBe(1000);
    }
    expect(statSync(join(stack.stateDir, 'data', 'lazyflow.db')).uid).toBe(1000);
    expect(statSync(join(stack.stateDir, 'data')).uid).toBe(1000);

    // the app really restarted; nothing of the restore is left behind but the kept state, which --list names
    const after = await appContainer(stack);
    expect(after?.startedAt).not.toBe(before?.startedAt);
    expect(existsSync(join(stack.stateDir, 'restore-journal.json'))).toBe(false);
    expect(readdirSync(stack.stateDir).filter((n) => n.startsWith('.restore-'))).toEqual([]);
    expect(backupDirs(stack.stateDir).filter((n) => n.endsWith('-pre-restore'))).toEqual([]);
    const list = await script(stack, 'restore.mts', ['--list', '--json']);
    expect(JSON.parse(list.stdout).kept.map((k: { dir: string }) => k.dir)).toContain(keptDir);
  });

  it('a gzip backup restores too', async () => {
    await createTask(stack, 'in-gzip');
    const b = await script(stack, 'backup.mts', ['--gzip', '--json', '--quiet']);
    const id = JSON.parse(b.stdout).backup.id;
    await createTask(stack, 'after-gzip');
    const r = await script(stack, 'restore.mts', ['--from', id, '--yes', '--quiet', '--ca', stack.caPem]);
    expect(r.code, r.stderr).toBe(0);
    const titles = (await listTasks(stack)).map((t) => t.title);
    expect(titles).toContain('in-gzip');
    expect(titles).not.toContain('after-gzip');
  });

  async function liveFingerprint() {
    return { app: await appContainer(stack), tasks: (await listTasks(stack)).map((t) => t.title), backups: backupDirs(stack.stateDir) };
  }

  async function expectRefused(id: string, pattern: RegExp) {
    const before = await liveFingerprint();
    const keptBefore = existsSync(join(stack.stateDir, 'kept')) ? readdirSync(join(stack.stateDir, 'kept')) : [];
    const r = await script(stack, 'restore.mts', ['--from', id, '--yes']);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).toMatch(/live data untouched/);
    const after = await liveFingerprint();
    expect(after).toEqual(before); // same container run, same rows, no backup taken
    expect(existsSync(join(stack.stateDir, 'kept')) ? readdirSync(join(stack.stateDir, 'kept')).filter((n) => !keptBefore.includes(n)) : []).toEqual([]);
    expect(existsSync(join(stack.stateDir, 'restore-journal.json'))).toBe(false);
    expect(readdirSync(stack.stateDir).filter((n) => n.startsWith('.restore-'))).toEqual([]);
  }

  async function freshBackup(args: string[] = []): Promise<string> {
    const r = await script(stack, 'backup.mts', ['--json', '--quiet', ...args]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout).backup.id;
  }

  it('refuses a corrupted backup (checksum), live data untouched', async () => {
    const id = await freshBackup();
    const db = join(stack.stateDir, 'backups', id, 'lazyflow.db');
    const buf = readFileSync(db);
    buf[Math.floor(buf.length / 2)] ^= 0xff;
    chmodSync(db, 0o600);
    writeFileSync(db, buf);
    await expectRefused(id, /backup \S+ is damaged: lazyflow\.db sha256 is/);
  });

  it('refuses a corrupted gzip backup', async () => {
    const id = await freshBackup(['--gzip']);
    const gz = join(stack.stateDir, 'backups', id, 'lazyflow.db.gz');
    const buf = readFileSync(gz);
    buf[Math.floor(buf.length / 2)] ^= 0xff;
    chmodSync(gz, 0o600);
    writeFileSync(gz, buf);
    await expectRefused(id, /is damaged/);
  });

  it('refuses a truncated backup', async () => {
    const id = await freshBackup();
    const db = join(stack.stateDir, 'backups', id, 'lazyflow.db');
    truncateSync(db, Math.floor(statSync(db).size / 2));
    const list = await script(stack, 'restore.mts', ['--list']);
    expect(list.stdout).toMatch(new RegExp(`${id}.*NO: lazyflow\\.db has \\d+ bytes, manifest says \\d+`));
    await expectRefused(id, /incomplete: lazyflow\.db has/);
  });

  it('refuses a backup whose database fails integrity_check even when its checksums match', async () => {
    const id = await freshBackup();
    const dir = join(stack.stateDir, 'backups', id);
    const db = join(dir, 'lazyflow.db');
    const buf = readFileSync(db);
    const pageSize = buf.readUInt16BE(16) === 1 ? 65536 : buf.readUInt16BE(16);
    // scribble over page 3 (a b-tree page of the schema's tables), keep the size
    buf.fill(0x5a, pageSize * 2 + 8, pageSize * 2 + 200);
    chmodSync(db, 0o600);
    writeFileSync(db, buf);
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    m.database.sha256 = m.database.rawSha256 = sha256(buf);
    chmodSync(join(dir, 'manifest.json'), 0o600);
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
    await expectRefused(id, /is damaged: (integrity_check|table)/);
  });

  it('--dry-run prints the plan and changes nothing; without --yes and no terminal it refuses', async () => {
    const before = await liveFingerprint();
    const d = await script(stack, 'restore.mts', ['--from', backupId, '--dry-run']);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toContain(`restore backup ${backupId}`);
    expect(d.stdout).toMatch(/stop the app/);
    expect(d.stdout).toContain('dry run: nothing changed');
    const n = await script(stack, 'restore.mts', ['--from', backupId]);
    expect(n.code).toBe(2);
    expect(n.stderr).toMatch(/pass --yes/);
    expect(await liveFingerprint()).toEqual(before);
    const u = await script(stack, 'restore.mts', ['--from', '../../etc']);
    expect(u.code).toBe(2);
  });

  it('a backup during a restore refuses with a clear message, or waits with --wait-lock', async () => {
    const restore = await spawnScript(stack, 'restore.mts', ['--from', backupId, '--yes', '--ca', stack.caPem]);
    await until('the restore to hold the lock', () => {
      try {
        return JSON.parse(readFileSync(join(stack.stateDir, 'ops.lock'), 'utf8')).operation.startsWith('restore');
      } catch {
        return false;
      }
    });
    const refused = await script(stack, 'backup.mts', ['--reason', 'cron']);
    expect(refused.code).toBe(1);
    const holder = new RegExp(`another operation holds the lock: restore ${backupId} \\(pid (\\d+) on \\S+, operator \\S+\\) since \\d{4}-\\d\\d-\\d\\dT\\S+Z \\(\\d+(\\.\\d+)? (ms|s) ago\\)`).exec(refused.stderr);
    expect(holder, refused.stderr).not.toBeNull();
    expect(refused.stderr).toMatch(/--wait-lock/);
    const waiting = await spawnScript(stack, 'backup.mts', ['--reason', 'cron', '--wait-lock', '180', '--json']);
    const r = await restore.done;
    expect(r.code, r.stderr).toBe(0);
    // the holder named is the restore: its script, or the worker it handed the lock to for the stop..healthy part
    const worker = /the restore runs in pid (\d+)/.exec(r.stdout + r.stderr)?.[1];
    expect(worker, r.stdout + r.stderr).toBeDefined();
    expect([String(restore.child.pid), worker]).toContain(holder![1]);
    const w = await waiting.done;
    expect(w.code, w.stderr).toBe(0);
    expect(w.stdout + w.stderr).toMatch(/waiting up to/);
    // the waiting backup ran after the restore: it holds the restored rows
    const id = JSON.parse(w.stdout).backup.id;
    const titles = readDb(join(stack.stateDir, 'backups', id, 'lazyflow.db'), (d) => d.prepare('SELECT title FROM tasks').pluck().all());
    expect(titles).not.toContain('after-0');
    expect(titles).toContain('before-0');
  });

  it('a backup the app cannot start on (schema newer than the release): the previous live state is renamed back, the app serves it, exit 1 names why', async () => {
    const db = join(stack.stateDir, 'data', 'lazyflow.db');
    const setUserVersion = (v: number) => {
      const d = new Database(db);
      try {
        const old = d.pragma('user_version', { simple: true }) as number;
        d.pragma(`user_version = ${v}`);
        return old;
      } finally {
        d.close();
      }
    };
    // a backup from "a future release": the same data with a schema this release refuses to open
    await stack.mustCompose('stop', 'app');
    const v0 = setUserVersion(99);
    const b = await script(stack, 'backup.mts', ['--json', '--quiet']);
    setUserVersion(v0);
    expect(b.code, b.stderr).toBe(0);
    const futureId = JSON.parse(b.stdout).backup.id as string;
    await stack.mustCompose('start', 'app');
    await waitHealthy(stack);
    const live = await createTask(stack, 'live-before-the-refused-restore');

    const r = await script(stack, 'restore.mts', ['--from', futureId, '--yes', '--ca', stack.caPem, '--health-timeout', '25']);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`restore of ${futureId} rolled back: the app did not become healthy on it; the previous live state is back`));
    // what users see: the site serves the state from before the restore, with the write just made
    await waitHealthy(stack);
    expect((await listTasks(stack)).map((t) => t.title)).toContain(live.title);
    expect(readDb(db, (d) => d.pragma('user_version', { simple: true }))).toBe(v0);
    expect(existsSync(join(stack.stateDir, 'restore-journal.json')), 'no restore left pending').toBe(false);
  });
});
