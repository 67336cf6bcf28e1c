// One verified backup of the live state: a consistent online snapshot of the SQLite database
// (taken on the host while the app keeps writing), the uploads (hard-linked to the previous
// backup when unchanged), and a manifest with checksums. Everything is written under
// STATE_DIR/backups/.tmp-<id>, verified, fsynced and only then renamed to STATE_DIR/backups/<id>:
// a failed, interrupted or unverified backup never shows up as a backup.
import { createReadStream, createWriteStream, chmodSync, chownSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { getPriority, hostname, setPriority } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { StepError, UsageError, errorMessage } from '../cli/errors.mts';
import { acquireLock, type LockHandle } from '../host/lock.mts';
import { formatAge, formatBytes, formatDuration, type Logger } from '../cli/log.mts';
import { DB_FILE_NAME, stateLayout, type StateLayout } from '../config/state.mts';
import { REPO_ROOT, type OpsEnv } from '../config/env.mts';
import { psArgs, parseComposePs } from '../commands/compose.mts';
import { builderPruneArgs } from '../commands/docker.mts';
import { docker } from '../docker/run.mts';
import { describeFs, fsInfo, fsyncDir, fsyncPath, isDiskFull, isRoot } from '../host/fsutil.mts';
import { verifyDatabase, readColumn, type SnapshotMethod, DEFAULT_SNAPSHOT_METHOD } from './sqlite-snapshot.mts';
import { SNAPSHOT_STAGING_PREFIX, snapshotAsApp } from './snapshot-as-app.mts';
import { copyFromFd, walkRegularFiles } from '../host/app-files.mts';
import {
  BACKUP_REASONS,
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  listBackups,
  makeBackupId,
  sha256File,
  type BackupEntry,
  type BackupManifest,
  type BackupReason,
  type UploadEntry,
} from './manifest.mts';
import { DEFAULT_KEEP_IMAGES, DEFAULT_KEPT_POLICY, KEEP_PRE_DEPLOY, decideBackupRetention, describePolicy, keptRetention, policyIsEmpty, preDeployOverflow, type KeptPolicy, type RetentionDecision, type RetentionPolicy } from './retention.mts';
import { readJournal } from '../release/journal.mts';
import { listKept } from '../restore/kept.mts';

export interface BackupOptions {
  /** the operator env (gives layout, compose project for the app's image); or pass layout */
  ctx?: OpsEnv;
  layout?: StateLayout;
  reason: BackupReason;
  /** app image tag recorded in the manifest; default: the running app container's image */
  appTag?: string;
  gzip?: boolean;
  log: Logger;
  /** the caller already holds the ops lock (restore's safety backup, rollout's pre-deploy backup) */
  lockHeld?: boolean;
  waitLockMs?: number;
  method?: SnapshotMethod;
  /** for tests and the benchmark: the database to back up (default layout.db) */
  dbPath?: string;
  /** CPU niceness while the backup runs (default 10): the app's commits come first */
  nice?: number;
  /** restore's own safety backup: a restore journal is expected to exist */
  skipRestoreCheck?: boolean;
  /** do not ask docker for the app image (benchmark, no stack) */
  skipAppInfo?: boolean;
  now?: () => Date;
}

export interface BackupResult {
  id: string;
  dir: string;
  manifest: BackupManifest;
}

const TMP_PREFIX = '.tmp-';
const DELETING_PREFIX = '.deleting-';

export function toolkitVersion(): { version: string; gitSha: string | null } {
  let version = '0.0.0';
  try {
    version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    /* ignore */
  }
  let gitSha: string | null = null;
  try {
    const head = readFileSync(join(REPO_ROOT, '.git', 'HEAD'), 'utf8').trim();
    if (head.startsWith('ref: ')) {
      const ref = head.slice(5);
      const refFile = join(REPO_ROOT, '.git', ref);
      if (existsSync(refFile)) gitSha = readFileSync(refFile, 'utf8').trim().slice(0, 12);
      else {
        const packed = readFileSync(join(REPO_ROOT, '.git', 'packed-refs'), 'utf8');
        const line = packed.split('\n').find((l) => l.endsWith(` ${ref}`));
        gitSha = line ? line.slice(0, 12) : null;
      }
    } else gitSha = head.slice(0, 12);
  } catch {
    /* not a git checkout */
  }
  return { version, gitSha };
}

/** image of the running app container (e.g. lazyflow-app:3f2a9c1), or null */
export async function runningAppImage(ctx: OpsEnv): Promise<string | null> {
  try {
    const r = await docker(psArgs(ctx, { service: 'app' }), { nothrow: true, timeoutMs: 20_000 });
    if (r.exitCode !== 0) return null;
    const app = parseComposePs(r.stdout).find((e) => e.Service === 'app');
    return app?.Image ?? null;
  } catch {
    return null;
  }
}

function resolveLayout(opts: { ctx?: OpsEnv; layout?: StateLayout }): StateLayout {
  if (opts.layout) return opts.layout;
  if (opts.ctx) return opts.ctx.layout ?? stateLayout(opts.ctx.stateDir);
  throw new UsageError('runBackup needs ctx or layout');
}

/** in-progress uploads (*.part) and dotfiles (files or whole directories) are not backed up */
export const skipUpload = (name: string): boolean => name.startsWith('.') || name.endsWith('.part');

/** every regular file under dir (never through a link: host/app-files.mts), as paths relative to it */
export function listUploadFiles(dir: string): string[] {
  return [...walkRegularFiles(dir, skipUpload)].map((f) => f.rel).sort();
}

function removeLeftovers(layout: StateLayout, log: Logger) {
  // the snapshot worker's directory of a killed backup (snapshot-as-app.mts)
  for (const name of existsSync(layout.root) ? readdirSync(layout.root) : []) {
    if (name.startsWith(SNAPSHOT_STAGING_PREFIX)) {
      rmSync(join(layout.root, name), { recursive: true, force: true });
      log.warn(`removed ${name} in ${layout.root}: left by an interrupted backup`);
    }
  }
  if (!existsSync(layout.backups)) return;
  for (const name of readdirSync(layout.backups)) {
    if (name.startsWith(TMP_PREFIX) || name.startsWith(DELETING_PREFIX)) {
      // we hold the lock: whoever wrote these is gone
      rmSync(join(layout.backups, name), { recursive: true, force: true });
      log.warn(`removed ${name} in ${layout.backups}: left by an interrupted backup or prune`);
    }
  }
}

function diskFullError(where: string, id: string, err: unknown): StepError {
  const info = fsInfo(where);
  return new StepError(
    `disk full on ${describeFs(info, formatBytes)} while writing backup ${id}; the partial backup was removed, older backups are untouched (${errorMessage(err)})`,
    {
      step: 'backup',
      hint: `free space on ${info.mountPoint}, e.g. drop old backups: npx zx scripts/backup.mts --config <file> --forget --keep-daily 7 --keep-weekly 4 --keep-monthly 6 --dry-run`,
      cause: err,
    },
  );
}

async function gzipFile(src: string, dest: string): Promise<void> {
  await pipeline(createReadStream(src), createGzip({ level: 6 }), createWriteStream(dest, { mode: 0o400 }));
}

export async function runBackup(opts: BackupOptions): Promise<BackupResult> {
  const { log } = opts;
  if (!BACKUP_REASONS.includes(opts.reason)) {
    throw new UsageError(`unknown backup reason "${opts.reason}": one of ${BACKUP_REASONS.join(', ')}`);
  }
  const layout = resolveLayout(opts);
  const dbPath = opts.dbPath ?? layout.db;
  const now = opts.now ?? (() => new Date());
  let lock: LockHandle | undefined;
  if (!opts.lockHeld) {
    lock = await acquireLock(layout, { operation: `backup (${opts.reason})`, waitMs: opts.waitLockMs ?? 0, log });
  }
  let tmpDir: string | undefined;
  let id = '';
  // the app comes first: copying, hashing and integrity_check run at a lower CPU priority
  const priorityBefore = lowerPriority(opts.nice ?? 10);
  try {
    if (!opts.skipRestoreCheck && existsSync(layout.restoreJournal)) {
      throw new StepError(`an interrupted restore is pending (${layout.restoreJournal}): the live state may be half swapped`, {
        step: 'backup',
        hint: 'finish or roll it back first: npx zx scripts/restore.mts --config <file> --recover',
      });
    }
    if (!existsSync(dbPath)) {
      throw new StepError(`no database at ${dbPath}`, {
        step: 'backup',
        hint: 'check STATE_DIR in the env file; the app creates the database on its first start',
      });
    }
    mkdirSync(layout.backups, { recursive: true, mode: 0o700 });
    removeLeftovers(layout, log);
    const started = performance.now();
    const snapshotAt = now();
    id = makeBackupId(snapshotAt, opts.reason);
    for (let n = 2; existsSync(join(layout.backups, id)); n++) id = `${makeBackupId(snapshotAt, opts.reason)}-${n}`;
    const { backups: previous } = listBackups(layout);
    const prev = previous.find((b) => b.verified);

    // refuse early when the database alone cannot fit: nothing is written then
    // file-copy copies the WAL file too (then folds it in); the other methods write about the db's size
    const method = opts.method ?? DEFAULT_SNAPSHOT_METHOD;
    // lstat: sizes of what is in data/, never of what a link there points at
    const walBytes = method === 'file-copy' && existsSync(`${dbPath}-wal`) ? lstatSync(`${dbPath}-wal`).size : 0;
    const dbBytes = lstatSync(dbPath).size + walBytes;
    const fsBefore = fsInfo(layout.backups);
    if (Number.isFinite(fsBefore.freeBytes) && fsBefore.freeBytes < dbBytes) {
      throw diskFullError(layout.backups, id, new Error(`${formatBytes(dbBytes)} needed for the database, ${formatBytes(fsBefore.freeBytes)} free`));
    }

    tmpDir = join(layout.backups, `${TMP_PREFIX}${id}`);
    mkdirSync(tmpDir, { mode: 0o700 });
    const rawDb = join(tmpDir, DB_FILE_NAME);

    // 1. the database snapshot
    let step = log.step(`snapshot ${dbPath}`);
    const snap = await snapshotAsApp(dbPath, rawDb, {
      method,
      stagingDir: join(layout.root, `${SNAPSHOT_STAGING_PREFIX}${id}`),
      onRootFallback: (why) => log.warn(`${why.message}: the snapshot ran as root instead; fix: ${why.hint}`),
    }).catch((err) => {
      step.fail(err);
      throw err;
    });
    step.done(`${formatBytes(snap.bytes)}, ${snap.pageCount} pages (${snap.method})`);

    // 2. verified before anything else
    step = log.step('integrity_check of the copy');
    const verify = verifyDatabase(rawDb);
    if (!verify.ok) {
      step.fail(verify.messages.slice(0, 3).join('; '));
      throw new StepError(`the snapshot of ${dbPath} failed integrity_check: ${verify.messages.slice(0, 3).join('; ')}`, {
        step: 'backup',
        hint: 'the live database may be damaged: run npx zx scripts/smoke.mts --only database, and restore the newest good backup if it fails',
      });
    }
    step.done(Object.entries(verify.rowCounts).map(([t, n]) => `${t} ${n}`).join(', '));
    const referenced = readColumn(rawDb, 'media', 'file_name');

    // 3. uploads: unchanged files are hard links to the previous backup
    step = log.step(`uploads from ${layout.uploads}`);
    const upDir = join(tmpDir, 'uploads');
    mkdirSync(upDir, { mode: 0o700 });
    const prevEntries = new Map<string, UploadEntry>();
    if (prev) for (const e of prev.manifest.uploads.entries) prevEntries.set(e.path, e);
    const entries: UploadEntry[] = [];
    let linked = 0;
    let copied = 0;
    let bytes = 0;
    // each file is opened once, never through a link, and copied from that open file
    const files = walkRegularFiles(layout.uploads, skipUpload);
    for (const { rel, fd, stat: st } of files) {
      const target = join(upDir, rel);
      mkdirSync(join(target, '..'), { recursive: true, mode: 0o700 });
      const old = prevEntries.get(rel);
      const oldPath = prev ? join(prev.dir, prev.manifest.uploads.dir, rel) : '';
      let entry: UploadEntry | undefined;
      if (old && old.size === st.size && old.mtimeMs === st.mtimeMs && existsSync(oldPath) && lstatSync(oldPath).size === st.size) {
        try {
          linkSync(oldPath, target);
          entry = { ...old, mode: st.mode & 0o777 };
          linked++;
        } catch (err) {
          if (isDiskFull(err)) throw err;
          entry = undefined; // e.g. EMLINK: copy instead
        }
      }
      if (!entry) {
        copyFromFd(fd, target);
        utimesSync(target, st.atime, st.mtime);
        // backups are immutable: read-only and, as root, owned by root, so the drill's app (uid 1000)
        // can read the hard links it gets but never change them
        if (isRoot()) chownSync(target, 0, 0);
        chmodSync(target, 0o444);
        fsyncPath(target);
        entry = { path: rel, size: statSync(target).size, sha256: await sha256File(target), mtimeMs: st.mtimeMs, mode: st.mode & 0o777 };
        copied++;
      }
      entries.push(entry);
      bytes += entry.size;
    }
    entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const have = new Set(entries.map((e) => e.path));
    const missing = referenced.filter((f) => !have.has(f));
    step.done(`${entries.length} files, ${formatBytes(bytes)} (${linked} linked to ${prev?.id ?? '-'}, ${copied} copied)`);
    if (missing.length) {
      log.warn(`${missing.length} upload(s) named in the database are not in ${layout.uploads}: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`);
    }

    // 4. checksums of what is stored, optional gzip
    step = log.step(opts.gzip ? 'gzip and checksum the database copy' : 'checksum the database copy');
    const rawSha256 = await sha256File(rawDb);
    const rawBytes = statSync(rawDb).size;
    let dbFile = DB_FILE_NAME;
    if (opts.gzip) {
      dbFile = `${DB_FILE_NAME}.gz`;
      await gzipFile(rawDb, join(tmpDir, dbFile));
      rmSync(rawDb);
    } else {
      chmodSync(rawDb, 0o400);
    }
    const storedPath = join(tmpDir, dbFile);
    fsyncPath(storedPath);
    const sha256 = opts.gzip ? await sha256File(storedPath) : rawSha256;
    const storedBytes = statSync(storedPath).size;
    step.done(`${dbFile} ${formatBytes(storedBytes)} sha256 ${sha256.slice(0, 12)}`);

    // 5. manifest
    let image: string | null = null;
    if (!opts.skipAppInfo && opts.ctx) image = await runningAppImage(opts.ctx);
    const tag = opts.appTag ?? (image && image.includes(':') ? image.slice(image.lastIndexOf(':') + 1) : opts.ctx?.appTag ?? null);
    const manifest: BackupManifest = {
      format: MANIFEST_FORMAT,
      id,
      createdAt: snapshotAt.toISOString(),
      finishedAt: now().toISOString(),
      durationMs: Math.round(performance.now() - started),
      reason: opts.reason,
      host: hostname(),
      app: { image, tag, schemaVersion: verify.userVersion },
      toolkit: toolkitVersion(),
      database: {
        file: dbFile,
        compression: opts.gzip ? 'gzip' : 'none',
        sha256,
        bytes: storedBytes,
        rawSha256,
        rawBytes,
        pageSize: verify.pageSize,
        pageCount: verify.pageCount,
        userVersion: verify.userVersion,
        integrity: 'ok',
        rowCounts: verify.rowCounts,
        snapshotMethod: snap.method,
        snapshotMs: Math.round(snap.ms),
      },
      uploads: { dir: 'uploads', files: entries.length, bytes, linked, copied, missing, entries },
      verified: true,
    };
    const manifestPath = join(tmpDir, MANIFEST_FILE);
    writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n', { mode: 0o400 });
    fsyncPath(manifestPath);
    fsyncDir(upDir);
    fsyncDir(tmpDir);

    // 6. publish: one rename makes it a backup
    const dir = join(layout.backups, id);
    renameSync(tmpDir, dir);
    tmpDir = undefined;
    fsyncDir(layout.backups);
    log.ok(`backup ${id} (${opts.reason}) in ${formatDuration(manifest.durationMs)}: ${formatBytes(storedBytes)} database, ${entries.length} uploads, verified`);
    return { id, dir, manifest };
  } catch (err) {
    if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
    if (isDiskFull(err) && !(err instanceof StepError && /disk full/.test(err.message))) throw diskFullError(layout.backups, id, err);
    throw err;
  } finally {
    restorePriority(priorityBefore);
    lock?.release();
  }
}

function lowerPriority(nice: number): number | undefined {
  try {
    const before = getPriority(0);
    if (nice > before) setPriority(0, nice);
    return before;
  } catch {
    return undefined;
  }
}

function restorePriority(before: number | undefined) {
  if (before === undefined) return;
  try {
    setPriority(0, before); // going back up needs root; as another user the process just stays nicer
  } catch {
    /* ignore */
  }
}

export interface PruneOptions {
  layout: StateLayout;
  policy: RetentionPolicy;
  /** release images rollout keeps (its --keep-images): backups only those releases can use are pinned */
  keepImages?: number;
  /** kept-aside states (STATE_DIR/kept/) to keep */
  keptPolicy?: KeptPolicy;
  dryRun?: boolean;
  log: Logger;
  /** extra ids that must survive (e.g. a restore in progress) */
  protectedIds?: string[];
  now?: Date;
}

export interface PruneResult {
  decisions: (RetentionDecision & { sizeBytes: number })[];
  removed: string[];
  kept: { name: string; keep: boolean; why: string }[];
  removedKept: string[];
}

/** apply the retention policy to backups and to kept-aside states; the caller holds the lock */
export function pruneBackups(opts: PruneOptions): PruneResult {
  const { layout, policy, log } = opts;
  const { backups } = listBackups(layout);
  if (policyIsEmpty(policy)) {
    log.info('no retention policy given (--keep-daily/--keep-weekly/--keep-monthly): nothing deleted');
    return { decisions: [], removed: [], kept: [], removedKept: [] };
  }
  const journal = readJournal(layout.releases);
  if (journal.skipped.length) log.warn(`${layout.releases}: unreadable line(s) ${journal.skipped.map((x) => x.line).join(', ')} ignored`);
  const pending = existsSync(layout.restoreJournal) ? readRestoreJournalId(layout.restoreJournal) : null;
  const decisions = decideBackupRetention({
    backups: backups.map((b) => ({ id: b.id, createdAt: b.createdAt, verified: b.verified })),
    releases: journal.releases,
    policy,
    keepImages: opts.keepImages ?? DEFAULT_KEEP_IMAGES,
    protectedIds: [...(opts.protectedIds ?? []), ...(pending ? [pending] : [])],
  }).map((d) => ({ ...d, sizeBytes: backups.find((b) => b.id === d.id)?.sizeBytes ?? 0 }));
  const removed: string[] = [];
  const toRemove = decisions.filter((d) => !d.keep);
  log.info(`retention (${describePolicy(policy)}, pins for the newest ${opts.keepImages ?? DEFAULT_KEEP_IMAGES} release images): keep ${decisions.length - toRemove.length}, delete ${toRemove.length}${opts.dryRun ? ' (dry run: nothing deleted)' : ''}`);
  for (const d of toRemove) {
    if (opts.dryRun) {
      log.info(`would delete ${d.id}`);
      continue;
    }
    removeBackup(layout, d.id);
    removed.push(d.id);
    log.info(`deleted ${d.id}`);
  }

  // kept-aside states: what restores replaced; bounded by count and age, never removed elsewhere
  const keptPolicy = opts.keptPolicy ?? DEFAULT_KEPT_POLICY;
  const keptRootDir = join(layout.root, 'kept');
  const keptEntries = listKept(layout);
  const kept = keptRetention(keptEntries, keptPolicy, opts.now ?? new Date());
  const removedKept: string[] = [];
  if (existsSync(keptRootDir)) {
    for (const name of readdirSync(keptRootDir)) if (name.startsWith(DELETING_PREFIX)) rmSync(join(keptRootDir, name), { recursive: true, force: true });
  }
  for (const k of kept.filter((x) => !x.keep)) {
    if (opts.dryRun) {
      log.info(`would delete kept-aside ${join(keptRootDir, k.name)} (${k.why})`);
      continue;
    }
    const aside = join(keptRootDir, `${DELETING_PREFIX}${k.name}`);
    renameSync(join(keptRootDir, k.name), aside);
    rmSync(aside, { recursive: true, force: true });
    removedKept.push(k.name);
    log.info(`deleted kept-aside ${k.name} (${k.why})`);
  }
  return { decisions, removed, kept, removedKept };
}

/**
 * The build cache's bound (the daily job, with --prune-build-cache): every rollout builds two images
 * and nothing else ever removes the cache. Entries unused for a week go (commands/docker.mts
 * builderPruneArgs). Housekeeping: a failure is reported, the next day retries.
 */
export async function pruneBuildCache(log: Logger): Promise<{ ok: boolean; detail: string }> {
  const r = await docker(builderPruneArgs(), { nothrow: true, timeoutMs: 600_000 });
  const last = (r.stdout.trim().split('\n').pop() ?? '').trim();
  if (r.exitCode !== 0) {
    log.warn(`docker builder prune failed (the build cache stays as it is until the next run): ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}`);
    return { ok: false, detail: r.stderr.trim() };
  }
  log.info(`build cache: ${last || 'nothing to reclaim'}`);
  return { ok: true, detail: last };
}

function removeBackup(layout: StateLayout, id: string): void {
  const dir = join(layout.backups, id);
  const aside = join(layout.backups, `${DELETING_PREFIX}${id}`);
  // rename first: an interrupted delete never leaves a half backup that looks like a backup
  renameSync(dir, aside);
  rmSync(aside, { recursive: true, force: true });
}

/**
 * The bound on pre-deploy backups, applied right after one is taken (release/revert.mts): the newest
 * KEEP_PRE_DEPLOY stay, and every one a rollback or recovery can use (retention.mts preDeployOverflow).
 * The caller holds the lock.
 */
export function boundPreDeployBackups(layout: StateLayout, log: Logger, o: { keep?: number; keepImages?: number; protectedIds?: string[] } = {}): string[] {
  const { backups } = listBackups(layout);
  const pending = existsSync(layout.restoreJournal) ? readRestoreJournalId(layout.restoreJournal) : null;
  const drop = preDeployOverflow({
    backups: backups.map((b) => ({ id: b.id, createdAt: b.createdAt, verified: b.verified, reason: b.manifest.reason })),
    releases: readJournal(layout.releases).releases,
    keep: o.keep ?? KEEP_PRE_DEPLOY,
    keepImages: o.keepImages,
    protectedIds: [...(o.protectedIds ?? []), ...(pending ? [pending] : [])],
  });
  for (const id of drop) {
    removeBackup(layout, id);
    log.info(`deleted pre-deploy backup ${id}: more than the newest ${o.keep ?? KEEP_PRE_DEPLOY}, and no rollback can use it`);
  }
  return drop;
}

function readRestoreJournalId(file: string): string | null {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { backupId?: string }).backupId ?? null;
  } catch {
    return null;
  }
}

export function backupRows(backups: BackupEntry[], now: Date = new Date()) {
  return backups.map((b) => ({
    id: b.id,
    age: formatAge(now.getTime() - b.createdAt.getTime()),
    reason: b.manifest.reason,
    size: formatBytes(b.sizeBytes),
    verified: b.verified ? 'yes' : `NO: ${b.problems.join('; ')}`,
    app: b.manifest.app.tag ?? '-',
    schema: b.manifest.app.schemaVersion,
  }));
}

