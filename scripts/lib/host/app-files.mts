// The trees the app can write (STATE_DIR/data, STATE_DIR/uploads) seen from the root toolkit.
//
// The app (uid 1000, exposed to the internet) can put anything there: a symlink to /root/.ssh, a
// file swapped for a link between our listing and our open, a directory replaced by a link. Root
// must never resolve a path through them, so:
//   - a walk holds a directory fd per level and opens each entry relative to it (openat through
//     /proc/self/fd/N/<name>, which the kernel resolves from the fd, not from a path) with
//     O_NOFOLLOW: a link anywhere fails with ELOOP and is skipped, and a directory renamed or
//     replaced mid-walk cannot redirect us, since we never look its path up again;
//   - a file is copied from the fd we opened and fstat'ed (/proc/self/fd/N is that open file);
//   - SQLite, which opens -wal and -shm by name, creates them and fchowns them when run as root,
//     runs with the app's uid (asAppUser below, or a child process with uid/gid set): it can then
//     reach only what the app itself can.
// The top directories (STATE_DIR/data, STATE_DIR/uploads) sit in root-owned STATE_DIR: the app can
// change what is in them, never what they are, so opening them by path with O_NOFOLLOW is safe.
import fs from 'node:fs';
import path from 'node:path';
import { APP_GID, APP_UID, isRoot } from './fsutil.mts';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = fs.constants;

/** deeper than this is refused: every level holds one fd open, and no real app nests uploads like that */
export const MAX_DEPTH = 32;

/** a path the kernel resolves from an open fd: openat(fd, name) for a runtime without openat */
export const fdPath = (fd: number, name?: string): string => {
  if (name !== undefined && (!name || name === '.' || name === '..' || name.includes('/') || name.includes('\0'))) {
    throw new Error(`"${name}" is not a plain file name`);
  }
  return name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;
};

/** open a directory that is not a link (ELOOP if it is, ENOTDIR if it is not a directory) */
export function openDirNoFollow(dir: string): number {
  return fs.openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
}

/**
 * open `name` in the directory `dirFd` for reading, never through a link; a FIFO does not block.
 * null: gone, or a link (the app's business: we never follow it).
 */
export function openEntry(dirFd: number, name: string): { fd: number; stat: fs.Stats } | null {
  let fd: number;
  try {
    fd = fs.openSync(fdPath(dirFd, name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOENT' || code === 'ENXIO' || code === 'ENOTDIR') return null;
    throw err;
  }
  return { fd, stat: fs.fstatSync(fd) };
}

export interface AppFile {
  /** path relative to the walked root, with / */
  rel: string;
  /** open for reading; valid until the consumer asks for the next file */
  fd: number;
  stat: fs.Stats;
}

/**
 * Every regular file under `root` (a directory the app cannot replace), depth first, names sorted.
 * Links (to files or directories) are never followed nor returned; sockets, FIFOs and devices are
 * skipped. `skip(name)` leaves out an entry (a file or a whole directory). A missing root yields nothing.
 */
export function* walkRegularFiles(root: string, skip: (name: string) => boolean = () => false): Generator<AppFile> {
  let rootFd: number;
  try {
    rootFd = openDirNoFollow(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    yield* walkDir(rootFd, '', 0, skip, root);
  } finally {
    fs.closeSync(rootFd);
  }
}

function* walkDir(dirFd: number, rel: string, depth: number, skip: (name: string) => boolean, root: string): Generator<AppFile> {
  if (depth > MAX_DEPTH) throw new Error(`${path.join(root, rel)} is nested deeper than ${MAX_DEPTH} directories: refused`);
  let names: string[];
  try {
    names = fs.readdirSync(fdPath(dirFd)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const name of names) {
    if (skip(name)) continue;
    const e = openEntry(dirFd, name);
    if (!e) continue;
    const r = rel ? `${rel}/${name}` : name;
    try {
      if (e.stat.isDirectory()) yield* walkDir(e.fd, r, depth + 1, skip, root);
      else if (e.stat.isFile()) yield { rel: r, fd: e.fd, stat: e.stat };
    } finally {
      fs.closeSync(e.fd);
    }
  }
}

/** copy the open file `fd` to a new file `dest` (which must not exist); the bytes come from that fd, whatever its path became */
export function copyFromFd(fd: number, dest: string): void {
  fs.copyFileSync(fdPath(fd), dest, fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE);
}

/** owner and group of an open file, as root, never through a link: fchown on an fd opened O_NOFOLLOW */
export function chownNoFollow(file: string, uid: number, gid: number): void {
  const fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  try {
    fs.fchownSync(fd, uid, gid);
  } finally {
    fs.closeSync(fd);
  }
}

export interface AppIdentity {
  uid: number;
  gid: number;
}

export const APP_IDENTITY: AppIdentity = { uid: APP_UID, gid: APP_GID };

/**
 * Who can write the tree `dir` (STATE_DIR/data, STATE_DIR/uploads, a drill's copy): its owner; for a
 * root-owned directory that others may write, the app's uid. Root's own tree (no one else can
 * write it: nothing to fear) gives uid 0, which asAppUser runs as is.
 */
export function treeOwner(dir: string): AppIdentity {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch {
    return APP_IDENTITY;
  }
  if (st.uid !== 0) return { uid: st.uid, gid: st.gid };
  return st.mode & 0o022 || st.gid !== 0 ? APP_IDENTITY : { uid: 0, gid: 0 };
}

/** whether the toolkit must drop to the app's uid before touching the app's files */
export function mustDropTo(id: AppIdentity = APP_IDENTITY): boolean {
  return isRoot() && id.uid !== 0;
}

/**
 * Run `fn` with the app's effective uid and gid (and no supplementary groups): every path SQLite or
 * `fn` opens is resolved with the app's rights, so a link the app planted reaches only what the app
 * could reach itself, and files created (SQLite's -wal, -shm) belong to the app with no chown.
 * Synchronous only: the effective uid is process wide, so nothing else may run meanwhile. Not root:
 * `fn` runs as is (the toolkit then has no more rights than its user).
 */
export function asAppUser<T>(fn: () => T, id: AppIdentity = APP_IDENTITY): T extends PromiseLike<unknown> ? never : T {
  if (!mustDropTo(id)) return check(fn()) as never;
  const groups = process.getgroups!();
  const egid = process.getegid!();
  process.setgroups!([id.gid]);
  process.setegid!(id.gid);
  process.seteuid!(id.uid);
  try {
    return check(fn()) as never;
  } finally {
    process.seteuid!(0);
    process.setegid!(egid);
    process.setgroups!(groups);
  }
}

function check<T>(v: T): T {
  if (v && typeof (v as { then?: unknown }).then === 'function') throw new Error('asAppUser runs synchronous work only');
  return v;
}

/**
 * The directories above `target` that the app's uid cannot pass through (no x for it): running as
 * the app's uid needs them passable (STATE_DIR is 0755 by the RUNBOOK's setup; 0711 is enough).
 */
export function blockedForApp(target: string, id: AppIdentity = APP_IDENTITY): string[] {
  const out: string[] = [];
  for (let d = path.dirname(path.resolve(target)); ; d = path.dirname(d)) {
    try {
      const st = fs.statSync(d);
      const bits = st.uid === id.uid ? (st.mode >> 6) & 1 : st.gid === id.gid ? (st.mode >> 3) & 1 : st.mode & 1;
      if (!bits) out.push(d);
    } catch {
      /* missing: the caller's own error says so */
    }
    if (d === path.dirname(d)) break;
  }
  return out.reverse();
}

/** the error for blockedForApp's answer, with the command that fixes it */
export function blockedMessage(target: string, blocked: string[], id: AppIdentity = APP_IDENTITY): { message: string; hint: string } {
  return {
    message: `the app's uid ${id.uid} cannot reach ${target}: ${blocked.join(', ')} ${blocked.length === 1 ? 'is' : 'are'} not passable for it`,
    hint: `sudo chmod o+x ${blocked.join(' ')}   (x only: lets uid ${id.uid} pass through, not list)`,
  };
}

/** refuse a path in an app tree that is a link now (a healthy app never puts one next to its database) */
export function assertNotLink(file: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    return;
  }
  if (st.isSymbolicLink()) throw new Error(`${file} is a symbolic link: refused (the app's files are never followed through links)`);
}
