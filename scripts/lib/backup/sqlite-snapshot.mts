// A consistent, online copy of a live WAL-mode SQLite database, taken on the host with
// better-sqlite3 while the app (another process, in a container) keeps writing.
//
// Why not db.backup() as is: the SQLite backup API restarts from page 1 whenever another
// connection writes between two steps, and better-sqlite3 copies 100 pages per step, so under
// steady writes it may never finish. Each method here copies ONE snapshot (default file-copy, the
// fastest in bench/backup; all four pass test/unit/backup-snapshot.test.ts):
//   read-txn     hold one read transaction on the source for the whole (multi-step) backup: no
//                other connection's commit is visible to it, so the backup never restarts, and
//                the event loop runs between steps.
//   single-step  the backup API with all pages in one sqlite3_backup_step() call.
//   vacuum-into  VACUUM INTO: rebuilds a compact copy; CPU heavy.
//   file-copy    hold one read transaction and copy the database file and then the WAL file with
//                copy_file_range (cp speed), then open the copy, which replays the WAL's committed
//                frames, and fold it into one file. Why this is one consistent state: while we hold a
//                read mark > 0, a checkpoint only writes pages of frames at or below our mark into
//                the database file and the WAL cannot be restarted, so every page that changes under
//                the copy has its frame in the WAL copy, which SQLite's recovery applies (frames are
//                checksummed; recovery stops at the last complete commit). With read mark 0 no
//                checkpoint writes the database file at all, and a WAL restart only appends frames
//                on top of exactly that file. WAL databases only; otherwise read-txn is used.
// As root, backup.mts runs this in a child process with the app's uid (snapshot-as-app.mts): SQLite
// opens, creates and (as root) fchowns -wal and -shm by name, in a directory the app controls.
// In WAL mode a reader never blocks writers. A reader does keep the WAL from being reset while it
// reads, so afterwards a PASSIVE checkpoint (never waits for, never blocks writers) folds it back.
import { closeSync, constants as fsc, existsSync, fdatasyncSync, fstatSync, openSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { copyFromFd } from '../host/app-files.mts';
import Database from 'better-sqlite3';

export type SnapshotMethod = 'file-copy' | 'read-txn' | 'single-step' | 'vacuum-into';
export const SNAPSHOT_METHODS: SnapshotMethod[] = ['file-copy', 'read-txn', 'single-step', 'vacuum-into'];
export const DEFAULT_SNAPSHOT_METHOD: SnapshotMethod = 'file-copy';

export interface SnapshotResult {
  method: SnapshotMethod;
  ms: number;
  pageSize: number;
  pageCount: number;
  bytes: number;
  userVersion: number;
  /** result of the PASSIVE checkpoint after the copy: frames in the WAL and frames checkpointed */
  checkpoint?: { busy: number; log: number; checkpointed: number };
  /** the WAL had grown during the copy: whether it could be truncated right after */
  walTruncated?: boolean;
}

export interface SnapshotOptions {
  method?: SnapshotMethod;
  /** pages per backup step for read-txn (default 4096 = 16 MiB at 4 KiB pages) */
  pagesPerStep?: number;
  /** checkpoint the source WAL afterwards (default true) */
  checkpoint?: boolean;
  onProgress?: (done: number, total: number) => void;
  /**
   * file-copy: copy in chunks with an fdatasync every LAZYFLOW_BACKUP_SYNC_MIB (default 64) MiB
   * instead of one copy_file_range: slower, but gentler on the app's commit latency (bench/backup).
   * Default: on when LAZYFLOW_BACKUP_SYNC_MIB is set.
   */
  paced?: boolean;
  /** read the source through mmap (default true) */
  mmap?: boolean;
}

/** after a snapshot, a source WAL larger than this is truncated (between the app's commits) */
export const WAL_TRUNCATE_ABOVE_BYTES = 16 * 2 ** 20;

export class SqliteDiskFullError extends Error {
  code = 'SQLITE_FULL';
}

/**
 * Copy a file in chunks, flushing every `syncEveryBytes` (fdatasync), so the copy never piles up
 * a gigabyte of dirty pages whose writeback would then stall the app's own writes. Yields to the
 * event loop between flushes. Copies the bytes the file had when it was opened, as copyFileSync
 * does: a WAL that the app keeps appending to (it cannot restart it while the snapshot's read
 * transaction holds its mark) would otherwise be chased for as long as the app writes faster than
 * the paced copy, and the WAL would grow all that time. The frames the snapshot needs are all
 * below that size.
 */
export async function copyFilePaced(src: string, dest: string, opts: { chunkBytes?: number; syncEveryBytes?: number } = {}): Promise<number> {
  const chunk = opts.chunkBytes ?? 8 * 2 ** 20;
  // LAZYFLOW_BACKUP_SYNC_MIB: flush interval; smaller = gentler on the app, larger = faster copy
  const syncEvery = opts.syncEveryBytes ?? Number(process.env.LAZYFLOW_BACKUP_SYNC_MIB ?? 64) * 2 ** 20;
  const buf = Buffer.allocUnsafe(chunk);
  const fin = openSync(src, fsc.O_RDONLY | fsc.O_NOFOLLOW); // the file in data/, never what a link there points at
  const size = fstatSync(fin).size;
  const fout = openSync(dest, 'wx', 0o600);
  let pos = 0;
  let sinceSync = 0;
  try {
    while (pos < size) {
      const n = readSync(fin, buf, 0, Math.min(chunk, size - pos), pos);
      if (n === 0) break;
      let off = 0;
      while (off < n) off += writeSync(fout, buf, off, n - off, pos + off);
      pos += n;
      sinceSync += n;
      if (sinceSync >= syncEvery) {
        fdatasyncSync(fout);
        sinceSync = 0;
        await new Promise((r) => setImmediate(r));
      }
    }
    fdatasyncSync(fout);
  } finally {
    closeSync(fin);
    closeSync(fout);
  }
  return pos;
}

/** copy_file_range speed from the file opened with O_NOFOLLOW (ELOOP if the name is a link) */
function copyNoFollow(src: string, dest: string): void {
  const fd = openSync(src, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    copyFromFd(fd, dest);
  } finally {
    closeSync(fd);
  }
}

function isFull(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === 'SQLITE_FULL' || e?.code === 'ENOSPC' || /database or disk is full|ENOSPC|no space left/i.test(e?.message ?? '');
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

async function backupPages(src: Database.Database, dest: string, pagesPerStep: number, onProgress?: (d: number, t: number) => void) {
  // better-sqlite3 calls transfer(0) first, then whatever the progress callback returns
  await src.backup(dest, {
    progress: ({ totalPages, remainingPages }) => {
      onProgress?.(totalPages - remainingPages, totalPages);
      return pagesPerStep;
    },
  });
}

export async function snapshotDatabase(srcPath: string, destPath: string, opts: SnapshotOptions = {}): Promise<SnapshotResult> {
  const method = opts.method ?? DEFAULT_SNAPSHOT_METHOD;
  if (!SNAPSHOT_METHODS.includes(method)) throw new Error(`unknown snapshot method ${method}`);
  if (!existsSync(srcPath)) throw new Error(`no database at ${srcPath}`);
  if (existsSync(destPath)) throw new Error(`snapshot target ${destPath} already exists`);
  const t0 = performance.now();
  const src = new Database(srcPath, { fileMustExist: true, timeout: 10_000 });
  let result: SnapshotResult | undefined;
  try {
    // no pragma that writes: the app owns journal_mode and friends
    const pageSize = src.pragma('page_size', { simple: true }) as number;
    // read the source through a memory map (this connection only): no pread() per page
    if (opts.mmap ?? true) src.pragma(`mmap_size = ${Math.min(statSync(srcPath).size + 2 ** 20, 2 ** 40)}`);
    const userVersion = src.pragma('user_version', { simple: true }) as number;
    let pageCount = 0;
    try {
      const journalMode = String(src.pragma('journal_mode', { simple: true }));
      if (method === 'file-copy' && journalMode === 'wal') {
        src.exec('BEGIN');
        try {
          pageCount = src.pragma('page_count', { simple: true }) as number; // starts the read transaction
          if (opts.paced ?? Boolean(process.env.LAZYFLOW_BACKUP_SYNC_MIB)) {
            await copyFilePaced(srcPath, destPath);
            if (existsSync(`${srcPath}-wal`)) await copyFilePaced(`${srcPath}-wal`, `${destPath}-wal`);
          } else {
            copyNoFollow(srcPath, destPath);
            if (existsSync(`${srcPath}-wal`)) copyNoFollow(`${srcPath}-wal`, `${destPath}-wal`);
          }
        } finally {
          src.exec('COMMIT');
        }
        // recovery of the copy: replays committed WAL frames, then everything goes into one file
        const d = new Database(destPath, { fileMustExist: true });
        try {
          d.pragma('wal_checkpoint(TRUNCATE)');
        } finally {
          d.close();
        }
        rmSync(`${destPath}-wal`, { force: true });
        rmSync(`${destPath}-shm`, { force: true });
      } else if (method === 'read-txn' || method === 'file-copy') {
        src.exec('BEGIN');
        try {
          // the first read starts the read transaction: from here on this connection sees one snapshot
          pageCount = src.pragma('page_count', { simple: true }) as number;
          await backupPages(src, destPath, opts.pagesPerStep ?? 4096, opts.onProgress);
        } finally {
          src.exec('COMMIT');
        }
      } else if (method === 'single-step') {
        await backupPages(src, destPath, 0x7fffffff, opts.onProgress);
      } else {
        await yieldToEventLoop();
        src.prepare('VACUUM INTO ?').run(destPath);
      }
    } catch (err) {
      if (isFull(err)) throw new SqliteDiskFullError(`disk full while writing ${destPath}: ${(err as Error).message}`, { cause: err });
      throw err;
    }
    // the copy: rollback-journal mode, so it can be opened read-only without -wal/-shm next to it
    const dest = new Database(destPath, { fileMustExist: true });
    try {
      dest.pragma('journal_mode = DELETE');
      pageCount = dest.pragma('page_count', { simple: true }) as number;
    } catch (err) {
      if (isFull(err)) throw new SqliteDiskFullError(`disk full while writing ${destPath}: ${(err as Error).message}`, { cause: err });
      throw err;
    } finally {
      dest.close();
    }
    result = {
      method,
      ms: performance.now() - t0,
      pageSize,
      pageCount,
      bytes: statSync(destPath).size,
      userVersion,
    };
    if (opts.checkpoint ?? true) {
      const [cp] = src.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
      result.checkpoint = cp;
      // Our read transaction kept the WAL from being reused, so it may have grown; SQLite reuses it
      // from the start afterwards but never shrinks the file. Shrink it between the app's commits:
      // a short busy_timeout polls for the write lock without queueing the app's writers behind us
      // (a writer that commits back to back leaves gaps of microseconds, which busy_timeout 0 alone
      // missed 50 times in a row on a loaded machine); once we hold it, we keep it for one
      // checkpoint, like one of the app's own transactions, and wait at most that long for readers.
      // The bound is absolute, not relative to the size before: a WAL left large by an earlier
      // snapshot (whose truncation lost every race against the app's commits) must not raise the bar
      // for the next one, or every backup ratchets the WAL up by what was written during its copy.
      const walNow = existsSync(`${srcPath}-wal`) ? statSync(`${srcPath}-wal`).size : 0;
      if (walNow > WAL_TRUNCATE_ABOVE_BYTES) {
        src.pragma('busy_timeout = 25');
        result.walTruncated = false;
        const deadline = performance.now() + 5000;
        for (let attempt = 0; !result.walTruncated && (attempt < 50 || performance.now() < deadline); attempt++) {
          try {
            const [t] = src.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[];
            result.walTruncated = t.busy === 0;
          } catch {
            /* SQLITE_BUSY: try again */
          }
          if (!result.walTruncated) await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
  } finally {
    src.close();
  }
  return result;
}

export interface VerifyResult {
  ok: boolean;
  /** integrity_check's messages ("ok" when fine) */
  messages: string[];
  pageSize: number;
  pageCount: number;
  userVersion: number;
  journalMode: string;
  rowCounts: Record<string, number>;
}

/** integrity_check and facts of a database file that nothing else uses (a backup, a staged copy) */
export function verifyDatabase(path: string, opts: { quick?: boolean; maxErrors?: number } = {}): VerifyResult {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const pragma = opts.quick ? 'quick_check' : 'integrity_check';
    let messages: string[];
    try {
      const rows = db.pragma(`${pragma}(${opts.maxErrors ?? 20})`) as Record<string, string>[];
      messages = rows.map((r) => Object.values(r)[0]);
    } catch (err) {
      // "file is not a database", "database disk image is malformed", ...
      return { ok: false, messages: [(err as Error).message], pageSize: 0, pageCount: 0, userVersion: 0, journalMode: '', rowCounts: {} };
    }
    const ok = messages.length === 1 && messages[0] === 'ok';
    const rowCounts: Record<string, number> = {};
    if (ok) {
      const tables = db
        .prepare(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
        .pluck()
        .all() as string[];
      for (const t of tables) rowCounts[t] = db.prepare(`SELECT count(*) FROM "${t.replace(/"/g, '""')}"`).pluck().get() as number;
    }
    return {
      ok,
      messages,
      pageSize: db.pragma('page_size', { simple: true }) as number,
      pageCount: db.pragma('page_count', { simple: true }) as number,
      userVersion: db.pragma('user_version', { simple: true }) as number,
      journalMode: db.pragma('journal_mode', { simple: true }) as string,
      rowCounts,
    };
  } finally {
    db.close();
  }
}

/** values of one column of a verified database copy (e.g. media.file_name), [] if the table is absent */
export function readColumn(path: string, table: string, column: string): string[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const exists = db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?`).get(table);
    if (!exists) return [];
    return db.prepare(`SELECT "${column}" FROM "${table}"`).pluck().all() as string[];
  } finally {
    db.close();
  }
}
