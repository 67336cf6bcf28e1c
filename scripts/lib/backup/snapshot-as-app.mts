// The backup's database snapshot, taken with the app's uid when the toolkit runs as root.
// SQLite opens the database's -wal and -shm by name in data/, which the app controls, creates them
// when missing and, as root, fchowns what it opened: a -shm swapped for a link to a root-owned file
// would be given to uid 1000 and overwritten. So a child process with the app's uid and gid
// (snapshot-worker.mts, no secrets in its environment) takes the snapshot into a staging directory
// of its own in STATE_DIR, and root moves the result into the backup without following any link.
import { spawn } from 'node:child_process';
import { lstatSync, mkdirSync, openSync, closeSync, renameSync, rmSync, constants as fsc } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertNotLink, treeOwner, blockedForApp, blockedMessage, chownNoFollow, copyFromFd, mustDropTo, type AppIdentity } from '../host/app-files.mts';
import { SqliteDiskFullError, snapshotDatabase, type SnapshotOptions, type SnapshotResult } from './sqlite-snapshot.mts';

const WORKER = fileURLToPath(new URL('./snapshot-worker.mts', import.meta.url));
/** STATE_DIR/<STAGING_PREFIX><backup id>: the worker's own directory, removed afterwards (and by the next backup if killed) */
export const SNAPSHOT_STAGING_PREFIX = '.backup-snapshot-';

export interface SnapshotAsAppOptions extends Omit<SnapshotOptions, 'onProgress'> {
  /** the worker's directory: must not exist, in a directory the app's uid can pass but not write (STATE_DIR) */
  stagingDir: string;
  /** default: the owner of the database's directory (host/app-files.mts treeOwner) */
  id?: AppIdentity;
  /** the snapshot ran as root because the app's uid cannot reach the database, its staging directory, the worker or node: what and the fix */
  onRootFallback?: (why: { message: string; hint: string }) => void;
}

export async function snapshotAsApp(srcPath: string, destPath: string, o: SnapshotAsAppOptions): Promise<SnapshotResult> {
  const { stagingDir, id = treeOwner(dirname(srcPath)), onRootFallback: _, ...opts } = o;
  // a healthy app never links its database or sidecars: say so rather than fail on EACCES below
  for (const p of [srcPath, `${srcPath}-wal`, `${srcPath}-shm`, `${srcPath}-journal`]) assertNotLink(p);
  if (!mustDropTo(id)) return snapshotDatabase(srcPath, destPath, opts);
  // the app's uid cannot pass through to STATE_DIR, or to the worker: as root, with the link checks above and every
  // copy O_NOFOLLOW, rather than no backup at all; the caller warns with the chmod that fixes it
  // (the worker itself, node and this checkout's better-sqlite3 must be reachable for that uid too: a checkout
  // under a 0700 directory, /root or a mkdtemp, is root's alone)
  const needed = [
    { what: `the database ${srcPath}`, path: srcPath },
    { what: `the staging directory ${stagingDir}`, path: join(stagingDir, 'x') },
    { what: `the toolkit's snapshot worker ${WORKER}`, path: WORKER },
    { what: `node ${process.execPath}`, path: process.execPath },
  ].map((n) => ({ ...n, blocked: blockedForApp(n.path, id) }));
  const blocked = [...new Set(needed.flatMap((n) => n.blocked))];
  if (blocked.length) {
    // name what it cannot reach: the database, or (a checkout only root may read) the worker and node
    o.onRootFallback?.(blockedMessage(needed.filter((n) => n.blocked.length).map((n) => n.what).join(', '), blocked, id));
    const res = await snapshotDatabase(srcPath, destPath, opts);
    // SQLite as root hands the file it created to the database's owner (uid 1000): the backup is root's
    chownNoFollow(destPath, 0, 0);
    return res;
  }
  mkdirSync(stagingDir, { mode: 0o700 });
  try {
    chownNoFollow(stagingDir, id.uid, id.gid);
    const staged = join(stagingDir, basename(destPath));
    const res = await runWorker({ src: srcPath, dest: staged, opts }, id);
    if (!res.ok) {
      if (res.code === 'SQLITE_FULL' || res.code === 'ENOSPC') throw new SqliteDiskFullError(res.message);
      throw new Error(res.message);
    }
    // the worker's file, never a link someone put in its place
    if (!lstatSync(staged).isFile()) throw new Error(`${staged} is not a regular file after the snapshot: refused`);
    try {
      renameSync(staged, destPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      const fd = openSync(staged, fsc.O_RDONLY | fsc.O_NOFOLLOW);
      try {
        copyFromFd(fd, destPath);
      } finally {
        closeSync(fd);
      }
    }
    chownNoFollow(destPath, 0, 0);
    return res.result!;
  } finally {
    rmSync(stagingDir, { recursive: true, force: true });
  }
}

interface WorkerAnswer {
  ok: boolean;
  result?: SnapshotResult;
  message: string;
  code?: string | null;
}

function runWorker(req: { src: string; dest: string; opts: SnapshotOptions }, id: AppIdentity): Promise<WorkerAnswer> {
  return new Promise((resolve, reject) => {
    // a minimal environment: the toolkit's own may hold secrets, and the worker is readable by uid 1000
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent', LANG: 'C.UTF-8' };
    if (process.env.LAZYFLOW_BACKUP_SYNC_MIB) env.LAZYFLOW_BACKUP_SYNC_MIB = process.env.LAZYFLOW_BACKUP_SYNC_MIB;
    const child = spawn(process.execPath, [WORKER, JSON.stringify(req)], { uid: id.uid, gid: id.gid, cwd: '/', env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as WorkerAnswer);
      } catch {
        resolve({ ok: false, message: `the snapshot process (uid ${id.uid}) ended with ${signal ?? `exit ${code}`} and no answer${err.trim() ? `: ${err.trim().split('\n').slice(-3).join(' | ')}` : ''}` });
      }
    });
  });
}
