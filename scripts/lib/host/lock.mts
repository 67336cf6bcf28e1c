// The one operation lock (STATE_DIR/ops.lock) shared by backup, restore, rollout and rollback.
// Created atomically: the JSON is written to a temporary file and hard-linked to the lock name,
// which fails if the lock exists, so a reader never sees a half-written lock. A lock whose pid is
// dead on this host is stale and taken over with a warning; a live one is reported by operation,
// pid, host, operator and age.
import { hostname, userInfo } from 'node:os';
import { linkSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { StepError } from '../cli/errors.mts';
import { formatDuration } from '../cli/log.mts';
import type { StateLayout } from '../config/state.mts';

export interface LockInfo {
  pid: number;
  host: string;
  operation: string;
  operator: string;
  startedAt: string;
  /** process start time from /proc, to tell a reused pid from the holder */
  pidStart?: string;
  token?: string;
  /** /proc/sys/kernel/random/boot_id when taken: a holder from another boot is gone, whatever host it names */
  bootId?: string;
  /** set by readLock for a file that is not a whole lock (empty, torn, foreign) */
  unreadable?: boolean;
}

/** This boot: its id and when it began (ms); absent where /proc cannot tell. */
export interface BootInfo {
  id?: string;
  startedMs?: number;
}

export function currentBoot(): BootInfo {
  const b: BootInfo = {};
  try {
    b.id = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    /* not Linux */
  }
  try {
    const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    if (m) b.startedMs = Number(m[1]) * 1000;
  } catch {
    /* not Linux */
  }
  return b;
}

export interface LockHandle {
  info: LockInfo;
  path: string;
  release(): void;
}

export interface AcquireOptions {
  operation: string;
  operator?: string;
  /** keep retrying this long while another live operation holds the lock (default 0: refuse at once) */
  waitMs?: number;
  pollMs?: number;
  log?: { warn(m: string): void; info(m: string): void };
  /** for tests */
  now?: () => Date;
}

export class LockBusyError extends StepError {
  holder: LockInfo;
  constructor(lockFile: string, holder: LockInfo, now: Date, waitedMs: number) {
    super(describeHolder(holder, now) + `; lock file ${lockFile}` + (waitedMs > 0 ? ` (waited ${formatDuration(waitedMs)})` : ''), {
      step: 'lock',
      hint:
        `wait for the ${holder.operation} to finish and retry, or pass --wait-lock <seconds>. ` +
        `Only if pid ${holder.pid} is not running on ${holder.host}: rm ${lockFile}`,
    });
    this.holder = holder;
  }
}

export function describeHolder(h: LockInfo, now: Date = new Date()): string {
  const started = new Date(h.startedAt);
  const age = Number.isNaN(started.getTime()) ? 'unknown age' : `${formatDuration(Math.max(0, now.getTime() - started.getTime()))} ago`;
  return `another operation holds the lock: ${h.operation} (pid ${h.pid} on ${h.host}, operator ${h.operator}) since ${h.startedAt} (${age})`;
}

export function currentOperator(): string {
  const env = process.env;
  if (env.LAZYFLOW_OPERATOR) return env.LAZYFLOW_OPERATOR;
  if (env.SUDO_USER) return env.SUDO_USER;
  try {
    return userInfo().username;
  } catch {
    return env.USER ?? 'unknown';
  }
}

/** start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), or undefined */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

/**
 * The process a journal or flag names (pid, and its /proc start time when recorded) still runs: a pid
 * reused by another process since is not it.
 */
export function recordedPidAlive(pid: unknown, pidStart: unknown): boolean {
  if (typeof pid !== 'number' || !isProcessAlive(pid)) return false;
  if (typeof pidStart === 'string' && pidStart) return processStartTime(pid) === pidStart;
  return true;
}

export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // kill(pid, 0) succeeds on a zombie: a killed detached worker whose parent is gone stays one until
  // PID 1 reaps it, and a container's or VM's init may never do so. A zombie holds nothing.
  return !isZombie(pid);
}

/** /proc/<pid>/stat state Z (zombie) or X (dead); false where /proc cannot tell */
export function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (2nd field) is in parentheses and may contain spaces: the state follows the last ')'
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return false;
  }
}

/** true when the lock's holder certainly no longer runs (same host, pid dead or reused) */
export function isStale(info: LockInfo, host: string = hostname(), boot: BootInfo = currentBoot()): boolean {
  // A lock is linked into place whole (tryCreate): a file that is not a whole lock was written by no
  // live holder of ours. Treating it as held would silence recovery for good.
  if (info.unreadable) return true;
  // No process survives a reboot: a holder of an earlier boot is gone, also when it names another
  // hostname (a renamed VPS, a state restored onto a new one by recover-vps.mts).
  if (info.bootId && boot.id && info.bootId !== boot.id) return true;
  // (a lock of an older toolkit has no boot id: another host's, taken before this boot began, is gone;
  // on this host the pid rule below is exact and does not depend on the wall clock)
  if (!info.bootId && info.host !== host && boot.startedMs !== undefined && Date.parse(info.startedAt) < boot.startedMs - 1000) return true;
  if (info.host !== host) return false;
  if (!isProcessAlive(info.pid)) return true;
  if (info.pidStart) {
    const now = processStartTime(info.pid);
    if (now !== undefined && now !== info.pidStart) return true;
  }
  return false;
}

export function readLock(path: string): LockInfo | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const v = JSON.parse(text) as LockInfo;
    if (typeof v.pid === 'number' && typeof v.host === 'string') return v;
  } catch {
    /* fall through */
  }
  // unparsable: treat as held by an unknown process; the file's mtime tells since when
  let since = new Date(0).toISOString();
  try {
    since = statSync(path).mtime.toISOString();
  } catch {
    /* ignore */
  }
  return { pid: -1, host: 'unknown', operation: 'unknown (unreadable lock file)', operator: 'unknown', startedAt: since, unreadable: true };
}

function tryCreate(path: string, info: LockInfo): boolean {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, JSON.stringify(info) + '\n', { mode: 0o644 });
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      /* ignore */
    }
  }
}

/** a takeover mutex older than this belongs to a taker that died inside its critical section */
export const TAKEOVER_MUTEX_MAX_AGE_MS = 10_000;

interface LockWatcher {
  /** resolves after ms, or earlier when an entry of the directory changes */
  sleep(ms: number): Promise<void>;
  close(): void;
}

/** inotify on the lock's directory where the platform has it; a plain timer where it does not.
 * Only events naming the lock file wake (our own temporary files would otherwise wake us at once). */
function watchLockFile(path: string): LockWatcher {
  const name = basename(path);
  let wake: (() => void) | undefined;
  let w: FSWatcher | undefined;
  try {
    w = watch(dirname(path), { persistent: false }, (_event, file) => {
      if (file === null || String(file) === name) wake?.();
    });
    w.on('error', () => {
      w?.close();
      w = undefined;
    });
  } catch {
    w = undefined;
  }
  return {
    sleep: (ms) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(done, ms);
        function done() {
          clearTimeout(t);
          wake = undefined;
          resolve();
        }
        wake = done;
      }),
    close: () => w?.close(),
  };
}

/** remove a stale lock, serialised by a short-lived takeover mutex so two takers cannot both win */
function removeStale(path: string, stale: LockInfo): boolean {
  const mutex = `${path}.takeover`;
  try {
    writeFileSync(mutex, String(process.pid), { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // a taker died inside the (tiny) critical section: clear its mutex after a while
    try {
      if (Date.now() - statSync(mutex).mtimeMs > TAKEOVER_MUTEX_MAX_AGE_MS) unlinkSync(mutex);
    } catch {
      /* ignore */
    }
    return false;
  }
  try {
    const again = readLock(path);
    if (!again) return true;
    if (again.pid !== stale.pid || again.startedAt !== stale.startedAt || again.token !== stale.token) return false;
    const aside = `${path}.stale-${process.pid}`;
    renameSync(path, aside);
    unlinkSync(aside);
    return true;
  } finally {
    try {
      unlinkSync(mutex);
    } catch {
      /* ignore */
    }
  }
}

const held = new Set<string>();
let exitHookInstalled = false;

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const entry of held) {
      const [path, token] = entry.split('\0');
      try {
        if (readLock(path)?.token === token) unlinkSync(path);
      } catch {
        /* ignore */
      }
    }
  });
}

/**
 * Holders an operation waits for even without --wait-lock: the recovery timer's runs are automatic and
 * short (finishing an interrupted swap is the longest), and an operator who started nothing should not
 * be refused because the timer fired at that moment.
 */
export const WAIT_FOR_HOLDER_MS: Readonly<Record<string, number>> = { recover: 120_000 };

export async function acquireLock(layout: Pick<StateLayout, 'lockFile'>, opts: AcquireOptions): Promise<LockHandle> {
  const path = layout.lockFile;
  const now = opts.now ?? (() => new Date());
  mkdirSync(dirname(path), { recursive: true });
  const info: LockInfo = {
    pid: process.pid,
    host: hostname(),
    operation: opts.operation,
    operator: opts.operator ?? currentOperator(),
    startedAt: now().toISOString(),
    pidStart: processStartTime(process.pid),
    token: randomBytes(8).toString('hex'),
    bootId: currentBoot().id,
  };
  const waitMs = opts.waitMs ?? 0;
  const pollMs = opts.pollMs ?? 500;
  const t0 = performance.now(); // monotonic: a wall-clock jump neither ends nor stretches the wait
  // A stale holder whose takeover another taker is in the middle of (or died in) is waited for
  // even with waitMs 0, until that taker's mutex expires.
  const staleDeadline = t0 + Math.max(waitMs, TAKEOVER_MUTEX_MAX_AGE_MS + 2 * pollMs);
  let announced = false;
  let attempt = 0;
  let watcher: LockWatcher | undefined;
  try {
    for (;;) {
      if (tryCreate(path, info)) break;
      const holder = readLock(path);
      if (!holder) continue; // released between our attempt and the read: retry at once (progress)
      const patience = holder.operation === opts.operation ? 0 : (WAIT_FOR_HOLDER_MS[holder.operation] ?? 0);
      let deadline = t0 + Math.max(waitMs, patience);
      if (isStale(holder)) {
        if (removeStale(path, holder)) {
          opts.log?.warn(`took over a stale lock: ${holder.operation} (pid ${holder.pid} on ${holder.host}, operator ${holder.operator}, since ${holder.startedAt}) is no longer running`);
          continue;
        }
        deadline = staleDeadline;
      }
      const waited = performance.now() - t0;
      if (waited >= deadline - t0) throw new LockBusyError(path, holder, now(), Math.round(waited));
      if (!announced && !isStale(holder)) {
        announced = true;
        opts.log?.info(`${describeHolder(holder, now())}; waiting up to ${formatDuration(deadline - t0)}`);
      }
      // Never spin: sleep with a jittered exponential backoff (25 ms doubling up to pollMs), woken
      // early when the lock's directory changes (the holder's unlink), never past the deadline.
      watcher ??= watchLockFile(path);
      const backoff = Math.min(pollMs, 25 * 2 ** Math.min(attempt++, 10)) * (0.75 + Math.random() / 2);
      await watcher.sleep(Math.max(1, Math.min(backoff, deadline - performance.now())));
    }
  } finally {
    watcher?.close();
  }
  const entry = `${path}\0${info.token}`;
  held.add(entry);
  installExitHook();
  let released = false;
  return {
    info,
    path,
    release() {
      if (released) return;
      released = true;
      held.delete(entry);
      try {
        if (readLock(path)?.token === info.token) unlinkSync(path);
      } catch {
        /* ignore */
      }
    },
  };
}
