// File-system helpers shared by backup and restore: durability (fsync), disk-full detection and a
// human description of the file system a path lives on.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, realpathSync, statfsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** the app container's user (Dockerfile: user bun, uid 1000) */
export const APP_UID = Number(process.env.LAZYFLOW_APP_UID ?? 1000);
export const APP_GID = Number(process.env.LAZYFLOW_APP_GID ?? 1000);

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export function fsyncPath(path: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    fsyncSync(fd);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** fsync a directory so a rename or a new entry in it survives a power loss */
export function fsyncDir(path: string): void {
  try {
    fsyncPath(path);
  } catch {
    /* some file systems refuse fsync on directories: nothing more we can do */
  }
}

export function isDiskFull(err: unknown): boolean {
  for (let e = err as { code?: string; message?: string; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.code === 'ENOSPC' || e.code === 'EDQUOT' || e.code === 'SQLITE_FULL') return true;
    if (/ENOSPC|no space left on device|database or disk is full|disk quota exceeded/i.test(e.message ?? '')) return true;
  }
  return false;
}

export interface FsInfo {
  mountPoint: string;
  fsType: string;
  source: string;
  freeBytes: number;
  totalBytes: number;
}

function unescapeMount(s: string): string {
  return s.replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** the mount a path is on (longest matching mount point in /proc/self/mountinfo) and its free space */
export function fsInfo(path: string): FsInfo {
  let p = resolve(path);
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  try {
    p = realpathSync(p);
  } catch {
    /* keep p */
  }
  let best = { mountPoint: '/', fsType: '?', source: '?' };
  try {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      if (!line) continue;
      const [left, right] = line.split(' - ');
      const mp = unescapeMount(left.split(' ')[4]);
      const [fsType, source] = (right ?? '').split(' ');
      const within = p === mp || p.startsWith(mp.endsWith('/') ? mp : `${mp}/`);
      if (within && mp.length >= best.mountPoint.length) best = { mountPoint: mp, fsType, source };
    }
  } catch {
    /* not Linux: keep the default */
  }
  let freeBytes = NaN;
  let totalBytes = NaN;
  try {
    const st = statfsSync(p);
    freeBytes = Number(st.bavail) * Number(st.bsize);
    totalBytes = Number(st.blocks) * Number(st.bsize);
  } catch {
    /* ignore */
  }
  return { ...best, freeBytes, totalBytes };
}

export function describeFs(info: FsInfo, fmtBytes: (n: number) => string): string {
  return `${info.mountPoint} (${info.fsType} on ${info.source}, ${fmtBytes(info.freeBytes)} free of ${fmtBytes(info.totalBytes)})`;
}
