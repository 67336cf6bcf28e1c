// Staging: copy a backup somewhere and prove it is what the manifest says (sha256 of every stored
// file, integrity_check, row counts), before anything live is touched.
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, createReadStream, createWriteStream, existsSync, linkSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { StepError, UsageError, errorMessage } from '../cli/errors.mts';
import { formatBytes, type Logger } from '../cli/log.mts';
import { DB_FILE_NAME, type StateLayout } from '../config/state.mts';
import { APP_GID, APP_UID, fsyncDir, fsyncPath, isDiskFull, isRoot } from '../host/fsutil.mts';
import { verifyDatabase } from '../backup/sqlite-snapshot.mts';
import { ID_RE, listBackups, type BackupEntry, type BackupManifest } from '../backup/manifest.mts';

export class CorruptBackupError extends StepError {}

function hashingCopyTransform(h: ReturnType<typeof createHash>) {
  return new Transform({
    transform(chunk, _enc, cb) {
      h.update(chunk);
      cb(null, chunk);
    },
  });
}

function setOwner(path: string, uid: number, gid: number) {
  if (isRoot()) chownSync(path, uid, gid);
}

export interface StageOptions {
  /** hard-link uploads instead of copying (the drill: backups are read-only files) */
  linkUploads?: boolean;
  uid?: number;
  gid?: number;
  dirMode?: number;
  log: Logger;
  /**
   * Resumable (recovery stages beside the serving app, under a timer that stops a run after 15 min):
   * every file is written under target/.parts and renamed to its place only once verified, so a file
   * in its place is a verified one, and a later run skips it instead of starting from zero.
   */
  resume?: boolean;
}

/** where a resumable stage writes a file before it is verified (removed when staging completes) */
export const PARTS_DIR = '.parts';

/**
 * Copy backup `b` into target/data/lazyflow.db and target/uploads/, verifying on the way: sha256 of
 * the stored database file and of the database itself, integrity_check, row counts and every
 * upload's size and sha256. Throws CorruptBackupError; target is then left for the caller to remove.
 */
export async function stageBackup(b: BackupEntry, target: string, opts: StageOptions): Promise<{ rowCounts: Record<string, number>; userVersion: number }> {
  const m: BackupManifest = b.manifest;
  const uid = opts.uid ?? APP_UID;
  const gid = opts.gid ?? APP_GID;
  const dirMode = opts.dirMode ?? 0o750;
  const bad = (what: string) =>
    new CorruptBackupError(`backup ${b.id} is damaged: ${what}; live data untouched`, {
      step: 'verify',
      hint: `choose another backup: restore.mts --list, then --from <id>`,
    });
  const dataDir = join(target, 'data');
  const upDir = join(target, 'uploads');
  mkdirSync(dataDir, { recursive: true, mode: dirMode });
  mkdirSync(upDir, { recursive: true, mode: dirMode });
  const db = join(dataDir, DB_FILE_NAME);

  const parts = join(target, PARTS_DIR);
  if (opts.resume) mkdirSync(parts, { recursive: true, mode: 0o700 });
  const dbDone = Boolean(opts.resume) && existsSync(db);
  const dbOut = opts.resume ? join(parts, DB_FILE_NAME) : db;

  let step = opts.log.step(`verify and stage the database of ${b.id}${dbDone ? ' (staged by an earlier run: checked again)' : ''}`);
  const stored = join(b.dir, m.database.file);
  if (!existsSync(stored)) throw bad(`${m.database.file} is missing`);
  const storedHash = createHash('sha256');
  const rawHash = createHash('sha256');
  try {
    if (dbDone) {
      // verified and renamed into place by an earlier run: the checks below (integrity, rows) run again
      await pipeline(createReadStream(stored), storedHash);
      if (m.database.compression === 'gzip') await pipeline(createReadStream(db), rawHash);
    } else if (m.database.compression === 'gzip') {
      await pipeline(createReadStream(stored), hashingCopyTransform(storedHash), createGunzip(), hashingCopyTransform(rawHash), createWriteStream(dbOut, { mode: 0o644 }));
    } else {
      await pipeline(createReadStream(stored), hashingCopyTransform(storedHash), createWriteStream(dbOut, { mode: 0o644 }));
      rawHash.update('');
    }
  } catch (err) {
    if (isDiskFull(err)) throw err;
    step.fail(err);
    throw bad(`${m.database.file} cannot be read${m.database.compression === 'gzip' ? ' or decompressed' : ''}: ${errorMessage(err)}`);
  }
  const storedSha = storedHash.digest('hex');
  if (storedSha !== m.database.sha256) {
    step.fail('checksum mismatch');
    throw bad(`${m.database.file} sha256 is ${storedSha.slice(0, 16)}..., the manifest says ${m.database.sha256.slice(0, 16)}...`);
  }
  if (m.database.compression === 'gzip') {
    const rawSha = rawHash.digest('hex');
    if (rawSha !== m.database.rawSha256) throw bad(`decompressed database sha256 does not match the manifest`);
  }
  const v = verifyDatabase(dbOut === db || dbDone ? db : dbOut);
  if (!v.ok) {
    step.fail(v.messages[0]);
    throw bad(`integrity_check: ${v.messages.slice(0, 3).join('; ')}`);
  }
  for (const [t, n] of Object.entries(m.database.rowCounts)) {
    if (v.rowCounts[t] !== n) throw bad(`table ${t} has ${v.rowCounts[t]} rows, the manifest says ${n}`);
  }
  if (dbOut !== db && !dbDone) {
    fsyncPath(dbOut);
    renameSync(dbOut, db);
  }
  fsyncPath(db);
  setOwner(db, uid, gid);
  step.done(`sha256 ok, integrity ok, ${Object.entries(v.rowCounts).map(([t, n]) => `${t} ${n}`).join(', ')}`);

  step = opts.log.step(`verify and stage ${m.uploads.files} uploads`);
  let bytes = 0;
  let resumed = 0;
  const dirs = new Set<string>([upDir]);
  for (const e of m.uploads.entries) {
    const src = join(b.dir, m.uploads.dir, e.path);
    const dst = join(upDir, e.path);
    if (e.path.split('/').includes('..')) throw bad(`upload path ${e.path} escapes the uploads directory`);
    for (let d = dirname(dst); d.length > upDir.length; d = dirname(d)) dirs.add(d);
    mkdirSync(dirname(dst), { recursive: true, mode: dirMode });
    if (!existsSync(src)) throw bad(`upload ${e.path} is missing`);
    if (opts.resume && existsSync(dst) && statSync(dst).size === e.size) {
      // renamed into place only after its sha256 matched (below): staged by an earlier run
      bytes += e.size;
      resumed++;
      continue;
    }
    const out = opts.resume ? join(parts, 'upload') : dst;
    const h = createHash('sha256');
    let linked = false;
    if (opts.linkUploads) {
      await pipeline(createReadStream(src), h);
      try {
        linkSync(src, dst);
        linked = true;
      } catch (err) {
        // backups/ on another filesystem (EXDEV), or links refused (EPERM, EMLINK): copy instead
        if (isDiskFull(err)) throw err;
        opts.log.debug(`cannot hard-link ${src} (${(err as NodeJS.ErrnoException).code}): copying`);
        copyFileSync(src, dst);
        chmodSync(dst, 0o444);
      }
    } else {
      try {
        await pipeline(createReadStream(src), hashingCopyTransform(h), createWriteStream(out, { mode: 0o644 }));
      } catch (err) {
        if (isDiskFull(err)) throw err;
        throw bad(`upload ${e.path} cannot be read: ${errorMessage(err)}`);
      }
      chmodSync(out, e.mode & 0o7777 ? e.mode & 0o666 : 0o644);
      setOwner(out, uid, gid);
    }
    // the staged uploads become the live ones by rename: they must be on disk before the swap
    if (!linked) fsyncPath(out);
    const sha = h.digest('hex');
    if (sha !== e.sha256) {
      step.fail('checksum mismatch');
      throw bad(`upload ${e.path} sha256 does not match the manifest`);
    }
    if (out !== dst) renameSync(out, dst);
    bytes += e.size;
  }
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) {
    if (d !== upDir) setOwner(d, uid, gid);
    fsyncDir(d);
  }
  for (const d of [dataDir, upDir]) {
    setOwner(d, uid, gid);
    chmodSync(d, dirMode);
    fsyncDir(d);
  }
  if (opts.resume) rmSync(parts, { recursive: true, force: true });
  fsyncDir(target);
  step.done(`${m.uploads.files} files, ${formatBytes(bytes)}, sha256 ok${resumed ? ` (${resumed} staged by an earlier run)` : ''}`);
  // nothing but the database may sit in the staged data dir: no -wal/-shm to apply to it
  for (const f of readdirSync(dataDir)) if (f !== DB_FILE_NAME) rmSync(join(dataDir, f), { force: true });
  return { rowCounts: v.rowCounts, userVersion: v.userVersion };
}

export function resolveBackup(layout: StateLayout, from: string): BackupEntry {
  if (from !== 'latest' && !ID_RE.test(from)) {
    throw new UsageError(`"${from}" is not a backup id (like 20250315T031700Z-cron) nor "latest"`, { hint: 'list them: restore.mts --list' });
  }
  const { backups } = listBackups(layout);
  if (from === 'latest') {
    const b = backups.find((x) => x.verified);
    if (!b) throw new StepError(`no verified backup in ${layout.backups}`, { step: 'restore', hint: 'take one: backup.mts --config <file>' });
    return b;
  }
  const b = backups.find((x) => x.id === from);
  if (!b) throw new StepError(`no backup ${from} in ${layout.backups}`, { step: 'restore', hint: 'list them: restore.mts --list' });
  if (!b.verified) throw new CorruptBackupError(`backup ${from} is incomplete: ${b.problems.join('; ')}; live data untouched`, { step: 'verify', hint: 'choose another: restore.mts --list' });
  return b;
}

