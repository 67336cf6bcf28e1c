// The root toolkit beside files the app controls (host/app-files.mts, host/sqlite-read.mts,
// backup/snapshot-as-app.mts), against real files, real symlinks and a real SQLite database in a
// temporary directory: a link swapped in mid-walk, a link as a directory component, a link as the
// database's -shm. The secret and the canary are root-owned files outside the app's tree; nothing
// may change them nor copy them. The uid cases need root (as the toolkit runs): they are skipped,
// loudly, otherwise.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { asAppUser, blockedForApp, copyFromFd, treeOwner, walkRegularFiles, type AppFile } from '../../scripts/lib/host/app-files.mts';
import { withDbReadOnly } from '../../scripts/lib/host/sqlite-read.mts';
import { snapshotAsApp } from '../../scripts/lib/backup/snapshot-as-app.mts';
import { runBackup } from '../../scripts/lib/backup/backup.mts';
import { stateLayout } from '../../scripts/lib/config/state.mts';
import { createLogger } from '../../scripts/lib/cli/log.mts';

const ROOT = process.getuid?.() === 0;
if (!ROOT) console.warn('app-files.test.ts: not root, the cases that run as the app\'s uid are SKIPPED');
const APP = { uid: 1000, gid: 1000 };
const SECRET = 'root secret: restic password 0123456789abcdef';
const log = createLogger({ quiet: true });
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

let dir: string;
let app: string; // the app's tree (data/ or uploads/)
let secret: string;
let secretDir: string;

/** owner, mode and content of a file: what must never change */
const fingerprint = (p: string) => {
  const st = lstatSync(p);
  return { uid: st.uid, gid: st.gid, mode: st.mode, size: st.size, content: readFileSync(p, 'utf8') };
};
const readFd = (f: AppFile) => {
  const buf = Buffer.alloc(f.stat.size);
  readSync(f.fd, buf, 0, buf.length, 0);
  return buf.toString();
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'app-files-'));
  chmodSync(dir, 0o711); // like /srv/lazyflow: the app's uid may pass, not list
  app = join(dir, 'uploads');
  mkdirSync(join(app, 'sub'), { recursive: true });
  writeFileSync(join(app, 'a.txt'), 'a');
  writeFileSync(join(app, 'b.txt'), 'b');
  writeFileSync(join(app, 'sub', 'c.txt'), 'c');
  secretDir = join(dir, 'root-only');
  mkdirSync(secretDir, { mode: 0o700 });
  secret = join(secretDir, 'restic-password');
  writeFileSync(secret, SECRET, { mode: 0o600 });
  if (ROOT) execFileSync('chown', ['-R', `${APP.uid}:${APP.gid}`, app]);
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('walkRegularFiles: never through a link', () => {
  it('yields the regular files only: links to files and to directories, and FIFOs, are left out', () => {
    symlinkSync(secret, join(app, 'evil.txt'));
    symlinkSync(secretDir, join(app, 'evil-dir'));
    execFileSync('mkfifo', [join(app, 'pipe')]);
    const seen = [...walkRegularFiles(app)].map((f) => f.rel);
    expect(seen).toEqual(['a.txt', 'b.txt', 'sub/c.txt']);
  });

  it('a file swapped for a link after the listing is skipped, and a directory swapped for a link is not entered', () => {
    const seen: Record<string, string> = {};
    for (const f of walkRegularFiles(app)) {
      seen[f.rel] = readFd(f);
      if (f.rel === 'a.txt') {
        // the app, between our readdir and our open of the next names
        rmSync(join(app, 'b.txt'));
        symlinkSync(secret, join(app, 'b.txt'));
        renameSync(join(app, 'sub'), join(app, 'sub-moved'));
        symlinkSync(secretDir, join(app, 'sub'));
      }
    }
    expect(seen).toEqual({ 'a.txt': 'a' });
    expect(Object.values(seen).join()).not.toContain(SECRET);
  });

  it('a directory renamed away while we are in it: we keep reading the directory we opened, never the link put at its name', () => {
    const seen: string[] = [];
    writeFileSync(join(app, 'sub', 'd.txt'), 'd');
    for (const f of walkRegularFiles(app)) {
      seen.push(`${f.rel}=${readFd(f)}`);
      if (f.rel === 'sub/c.txt') {
        renameSync(join(app, 'sub'), join(app, 'elsewhere'));
        symlinkSync(secretDir, join(app, 'sub'));
        symlinkSync(secret, join(app, 'elsewhere', 'd.txt.tmp'));
        renameSync(join(app, 'elsewhere', 'd.txt.tmp'), join(app, 'elsewhere', 'd.txt'));
      }
    }
    expect(seen).toEqual(['a.txt=a', 'b.txt=b', 'sub/c.txt=c']);
  });

  it('copyFromFd copies the file that was opened, even when its name is a link to the secret by then', () => {
    const out = join(dir, 'copy');
    for (const f of walkRegularFiles(app)) {
      if (f.rel !== 'a.txt') continue;
      renameSync(join(app, 'a.txt'), join(app, 'a.old'));
      symlinkSync(secret, join(app, 'a.txt'));
      copyFromFd(f.fd, out);
    }
    expect(readFileSync(out, 'utf8')).toBe('a');
  });

  it('a missing tree yields nothing; a tree that is itself a link is refused', () => {
    expect([...walkRegularFiles(join(dir, 'nope'))]).toEqual([]);
    symlinkSync(secretDir, join(dir, 'linked'));
    expect(() => [...walkRegularFiles(join(dir, 'linked'))]).toThrow(/ELOOP|ENOTDIR/);
  });
});

describe('the app\'s uid', () => {
  it('treeOwner: the app\'s tree is the app\'s; a root-only tree stays root\'s', () => {
    if (ROOT) expect(treeOwner(app)).toEqual(APP);
    expect(treeOwner(secretDir)).toEqual({ uid: 0, gid: 0 });
  });

  it('blockedForApp names every directory on the way that the app\'s uid cannot pass', () => {
    expect(blockedForApp(join(app, 'a.txt'), APP)).toEqual([]);
    chmodSync(dir, 0o700);
    expect(blockedForApp(join(app, 'a.txt'), APP)).toEqual([dir]);
  });

  it.skipIf(!ROOT)('asAppUser: what the app cannot read, the code in it cannot either; the uid comes back', () => {
    expect(() => asAppUser(() => readFileSync(secret), APP)).toThrow(/EACCES/);
    expect(asAppUser(() => readFileSync(join(app, 'a.txt'), 'utf8'), APP)).toBe('a');
    expect(process.geteuid!()).toBe(0);
    expect(process.getegid!()).toBe(0);
  });
});

describe.skipIf(!ROOT)('SQLite next to the app\'s files', () => {
  let data: string;
  let db: string;
  let appDb: Database.Database | undefined; // the app's own connection: it keeps -wal and -shm
  const canary = () => join(dir, 'root-canary');
  /** the hostile app: its real -shm moved aside (its connection keeps it mapped), a link in its place */
  const plantShmLink = () => {
    renameSync(`${db}-shm`, `${db}-shm.real`);
    symlinkSync(canary(), `${db}-shm`);
  };

  beforeEach(() => {
    data = join(dir, 'data');
    mkdirSync(data, { mode: 0o750 });
    db = join(data, 'lazyflow.db');
    appDb = new Database(db);
    appDb.pragma('journal_mode = WAL');
    appDb.exec('CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT); CREATE TABLE media (id TEXT PRIMARY KEY, file_name TEXT)');
    for (let i = 0; i < 50; i++) appDb.prepare('INSERT INTO tasks (title) VALUES (?)').run(`t${i}`);
    appDb.pragma('user_version = 3');
    execFileSync('chown', ['-R', `${APP.uid}:${APP.gid}`, data]);
    writeFileSync(canary(), 'canary: root-owned, outside STATE_DIR\n'.repeat(100), { mode: 0o644 });
  });
  afterEach(() => {
    appDb?.close();
    appDb = undefined;
  });

  // SQLite itself opens -shm with O_NOFOLLOW (seen here: SQLITE_CANTOPEN, canary intact); what
  // changed the canary's owner was the toolkit's own chown by path after it (matchSidecarOwnership),
  // which the cases below would catch: each checks the canary after a -shm link was planted.
  it('withDbReadOnly refuses a -shm that is a link; the canary keeps owner, mode and content', () => {
    const before = fingerprint(canary());
    plantShmLink();
    expect(() => withDbReadOnly(db, (d) => d.pragma('user_version', { simple: true }))).toThrow(/lazyflow\.db-shm is a symbolic link/);
    expect(fingerprint(canary())).toEqual(before);
  });

  it('a -shm link that appears after the check reaches only what the app could: the canary is unchanged', () => {
    const before = fingerprint(canary());
    plantShmLink();
    // the race withDbReadOnly's lstat cannot close: SQLite opens the link itself, in asAppUser, in
    // another process (in this one SQLite would reuse appDb's -shm)
    const script = join(dir, 'read-as-app.mts');
    writeFileSync(script, [
      `import Database from ${JSON.stringify(resolve('node_modules/better-sqlite3/lib/index.js'))};`,
      `import { asAppUser } from ${JSON.stringify(resolve('scripts/lib/host/app-files.mts'))};`,
      `asAppUser(() => { const d = new Database(process.argv[2], { readonly: true }); try { d.pragma('user_version'); } finally { d.close(); } }, ${JSON.stringify(APP)});`,
    ].join('\n'));
    try {
      execFileSync(process.execPath, [script, db], { stdio: 'pipe' });
    } catch {
      /* refused or not: what counts is the canary */
    }
    expect(fingerprint(canary())).toEqual(before);
  });

  it('withDbReadOnly reads as the app: the sidecars SQLite creates belong to the app, without any chown', () => {
    expect(withDbReadOnly(db, (d) => d.pragma('user_version', { simple: true }))).toBe(3);
    for (const f of readdirSync(data)) expect({ f, uid: lstatSync(join(data, f)).uid }).toEqual({ f, uid: APP.uid });
  });

  it('snapshotAsApp: taken by a process with the app\'s uid, stored root-owned; a -shm link is refused and the canary untouched', async () => {
    const staging = join(dir, '.backup-snapshot-1');
    const dest = join(dir, 'backup.db');
    // the worker runs as uid 1000 only where that uid can reach it: a checkout under a 0700 directory
    // (/root, a mkdtemp) is root's alone, and the snapshot is then taken as root (the next case)
    const checkoutReachable = blockedForApp(fileURLToPath(new URL('../../scripts/lib/backup/snapshot-worker.mts', import.meta.url))).length === 0 && blockedForApp(process.execPath).length === 0;
    if (!checkoutReachable) console.warn(`!!! app-files.test.ts: uid 1000 cannot reach this checkout (${resolve('.')}): the snapshot is taken as root here, not by the app's uid`);
    const fellBack: string[] = [];
    const r = await snapshotAsApp(db, dest, { stagingDir: staging, onRootFallback: (w) => fellBack.push(w.message) });
    expect(fellBack.length).toBe(checkoutReachable ? 0 : 1);
    expect(r.userVersion).toBe(3);
    expect(lstatSync(dest).uid).toBe(0);
    expect(existsSync(staging)).toBe(false);
    const copy = new Database(dest, { readonly: true });
    expect(copy.prepare('SELECT count(*) FROM tasks').pluck().get()).toBe(50);
    copy.close();
    for (const f of readdirSync(data)) expect({ f, uid: lstatSync(join(data, f)).uid }).toEqual({ f, uid: APP.uid });

    const before = fingerprint(canary());
    plantShmLink();
    await expect(snapshotAsApp(db, join(dir, 'backup2.db'), { stagingDir: staging })).rejects.toThrow(/-shm is a symbolic link/);
    expect(fingerprint(canary())).toEqual(before);
  });

  it('snapshotAsApp where the app\'s uid cannot pass through to the database: taken as root, and the caller told the fix', async () => {
    chmodSync(dir, 0o700);
    const told: string[] = [];
    const r = await snapshotAsApp(db, join(dir, 'backup.db'), { stagingDir: join(dir, '.backup-snapshot-2'), onRootFallback: (w) => told.push(`${w.message} | ${w.hint}`) });
    expect(r.userVersion).toBe(3);
    const backup = join(dir, 'backup.db');
    expect(lstatSync(backup).uid).toBe(0);
    // the database and the directory that blocks it, named, with the chmod; a checkout only root may read
    // (/root, a mkdtemp) is named too, with its own directory
    expect(told).toHaveLength(1);
    expect(told[0]).toMatch(new RegExp(`^the app's uid 1000 cannot reach the database ${escape(db)}(, the staging directory [^,]+)?(, the toolkit's snapshot worker \\S+)?(, node \\S+)?: (\\S+, )*${escape(dir)}(, \\S+)* (is|are) not passable for it \\| sudo chmod o\\+x (\\S+ )*${escape(dir)}( \\S+)*   \\(x only: lets uid 1000 pass through, not list\\)$`));
  });

  it('runBackup: links in uploads/ (to the secret, to a root-only directory) never reach the backup', async () => {
    const layout = stateLayout(dir);
    mkdirSync(layout.uploads, { recursive: true });
    writeFileSync(join(layout.uploads, 'ok.bin'), 'fine');
    symlinkSync(secret, join(layout.uploads, 'password.bin'));
    symlinkSync(secretDir, join(layout.uploads, 'dir'));
    const { dir: out, manifest } = await runBackup({ layout, reason: 'manual', log, skipAppInfo: true });
    expect(manifest.uploads.entries.map((e) => e.path).sort()).toEqual(['a.txt', 'b.txt', 'ok.bin', 'sub/c.txt']);
    const all = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? all(join(d, e.name)) : [join(d, e.name)]));
    expect(all(out).filter((f) => readFileSync(f).includes(SECRET))).toEqual([]);
    expect(all(out).filter((f) => lstatSync(f).isSymbolicLink())).toEqual([]);
  });
});
