// Offsite copies of published local backups, with restic. One local backup = one restic snapshot
// of its directory (database, uploads, manifest), tagged id=<backup id>, reason=, release=,
// schema=. What is missing offsite is found by comparing local backup ids with the id= tags, so
// a failed upload is caught up by the next run. Retention offsite uses the same keep flags and
// the same decision function as local retention (backup/retention.mts): the newest snapshot and
// every backup a release in the journal names are always kept.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { StepError, UsageError } from '../cli/errors.mts';
import { formatBytes, formatDuration, type Logger, type StepHandle } from '../cli/log.mts';
import type { OpsEnv } from '../config/env.mts';
import { isProcessAlive } from '../host/lock.mts';
import { newerUpload, readJsonRecord, writeJsonAtomic, type UploadRecord } from '../host/records.mts';
import { readJournal } from '../release/journal.mts';
import { DEFAULT_KEEP_IMAGES, rollbackPins } from '../backup/retention.mts';
import { ID_RE, listBackups, quickCheck, readManifest, type BackupEntry } from '../backup/manifest.mts';
import { applyRetention, describePolicy, type RetentionDecision, type RetentionPolicy } from '../backup/retention.mts';
import { backupArgs, catConfigArgs, checkArgs, forgetArgs, initArgs, parseBackupSummary, parseSnapshots, pruneArgs, restoreArgs, snapshotsArgs, unlockArgs, type OffsiteSnapshot } from '../commands/restic.mts';
import type { OffsiteConfig } from './config.mts';
import { resticFailure, resticOk, runRestic } from './runner.mts';
import { resticProgress } from './progress.mts';

const FETCH_PREFIX = '.offsite-fetch-';

function next(ctx: OpsEnv, sub: string): string {
  return `npx zx scripts/offsite.mts --config ${ctx.file} ${sub}`;
}

export async function initRepository(ctx: OpsEnv, cfg: OffsiteConfig, log: Logger): Promise<'created' | 'exists'> {
  const probe = await runRestic(cfg, catConfigArgs(cfg.target), { timeoutMs: Math.min(cfg.timeoutMs, 120_000) });
  if (resticOk(probe)) {
    log.ok(`a restic repository already exists at ${cfg.target.repository} and the password opens it`);
    return 'exists';
  }
  if (probe.code !== 10) throw resticFailure(cfg, probe, 'opening the offsite repository', next(ctx, '--init'), ctx.file);
  const r = await runRestic(cfg, initArgs(cfg.target));
  if (!resticOk(r)) throw resticFailure(cfg, r, 'creating the offsite repository', next(ctx, '--init'), ctx.file);
  log.ok(`created an encrypted restic repository at ${cfg.target.repository}`);
  return 'created';
}

export async function listSnapshots(ctx: OpsEnv, cfg: OffsiteConfig): Promise<OffsiteSnapshot[]> {
  const r = await runRestic(cfg, snapshotsArgs(cfg.target), { timeoutMs: Math.min(cfg.timeoutMs, 300_000) });
  if (!resticOk(r)) throw resticFailure(cfg, r, 'listing offsite snapshots', next(ctx, '--list'), ctx.file);
  return parseSnapshots(r.stdout);
}

export interface UploadResult {
  backupId: string;
  snapshotId: string;
  /** bytes sent to the backend (new data, compressed and encrypted) */
  dataAdded: number;
  /** the same new data before compression */
  dataAddedRaw: number;
  totalBytes: number;
  ms: number;
}

/** restic's status lines as the step's progress (RUNBOOK: an upload of a large backup is not a silent wait) */
function progressOf(step: StepHandle, line: string, verb: 'uploaded' | 'fetched'): void {
  const p = resticProgress(line, verb);
  if (p) step.progress(p);
}

export async function uploadBackup(ctx: OpsEnv, cfg: OffsiteConfig, b: BackupEntry, log: Logger): Promise<UploadResult> {
  const step = log.step(`offsite: upload backup ${b.id}`);
  const m = b.manifest;
  const r = await runRestic(cfg, backupArgs(cfg.target, { dir: b.dir, tags: { backupId: b.id, reason: m.reason, release: m.app.tag, schema: m.database.userVersion }, time: new Date(m.createdAt) }), { onLine: (l) => progressOf(step, l, 'uploaded') });
  const summary = parseBackupSummary(r.stdout);
  if (!resticOk(r) || !summary?.snapshotId) {
    const err = resticOk(r) ? new StepError(`upload of backup ${b.id} failed: restic reported no snapshot`, { step: 'offsite', hint: next(ctx, '--push') }) : resticFailure(cfg, r, `upload of backup ${b.id}`, next(ctx, '--push'), ctx.file);
    step.fail(err.message);
    throw err;
  }
  step.done(`snapshot ${summary.snapshotId.slice(0, 8)}: ${formatBytes(summary.totalBytes)} read, ${formatBytes(summary.dataAddedPacked)} sent (${formatDuration(r.ms)})`);
  noteUpload(ctx, { backupId: b.id, backupCreatedAt: b.createdAt.toISOString(), at: new Date().toISOString(), snapshotId: summary.snapshotId, source: 'upload' }, log);
  return { backupId: b.id, snapshotId: summary.snapshotId, dataAdded: summary.dataAddedPacked, dataAddedRaw: summary.dataAdded, totalBytes: summary.totalBytes, ms: r.ms };
}

export interface PushResult {
  uploaded: UploadResult[];
  alreadyOffsite: number;
  pending: string[];
}

/**
 * Upload every verified local backup that has no offsite snapshot yet, newest first (the newest is
 * the one that matters most if the run is cut short). Caller holds the ops lock, so local retention
 * cannot remove a directory while restic reads it. Throws on the first failure; the local backups
 * stay published and the next run uploads what is still missing.
 */
export async function pushMissing(ctx: OpsEnv, cfg: OffsiteConfig, log: Logger, opts: { dryRun?: boolean } = {}): Promise<PushResult> {
  const local = listBackups(ctx.layout).backups.filter((b) => b.verified);
  let offsite: OffsiteSnapshot[];
  try {
    offsite = await listSnapshots(ctx, cfg);
  } catch (err) {
    // the backend is unreachable before any upload began: say what that means for the new backup
    if (!(err instanceof StepError) || !local.length) throw err;
    throw new StepError(`upload of backup ${local[0].id} failed: ${err.message.replace(/^offsite: /, '')}; the local backup ${local[0].id} is intact and published`, { step: 'offsite', hint: next(ctx, '--push') });
  }
  // the newest lazyflow snapshot the listing shows (seeds the record for copies uploaded before it existed)
  const newestOffsite = offsite.filter((s) => s.backupId).sort((a, b) => b.time.getTime() - a.time.getTime())[0];
  if (newestOffsite) noteUpload(ctx, { backupId: newestOffsite.backupId!, backupCreatedAt: newestOffsite.time.toISOString(), at: new Date().toISOString(), snapshotId: newestOffsite.snapshotId, source: 'listing' }, log);
  const have = new Set(offsite.map((s) => s.backupId).filter(Boolean));
  const missing = local.filter((b) => !have.has(b.id));
  const res: PushResult = { uploaded: [], alreadyOffsite: local.length - missing.length, pending: missing.map((b) => b.id) };
  if (!missing.length) {
    log.info(`offsite: all ${local.length} local backup(s) are offsite already`);
    return res;
  }
  log.info(`offsite: ${missing.length} local backup(s) not offsite yet: ${missing.map((b) => b.id).join(', ')}${opts.dryRun ? ' (dry run: nothing uploaded)' : ''}`);
  if (opts.dryRun) return res;
  for (const b of missing) {
    try {
      res.uploaded.push(await uploadBackup(ctx, cfg, b, log));
      res.pending = res.pending.filter((id) => id !== b.id);
    } catch (err) {
      if (err instanceof StepError) {
        err.message += `; the local backup ${b.id} is intact and published${res.pending.length > 1 ? `, ${res.pending.length} backup(s) wait for upload` : ''}`;
      }
      throw err;
    }
  }
  return res;
}

export interface OffsiteRetentionResult {
  decisions: (RetentionDecision & { snapshotId: string })[];
  forgotten: string[];
  pruned: boolean;
}

/** The retention decision offsite: the same function and flags as local; the journal's backups are protected. */
export function offsiteDecisions(snapshots: OffsiteSnapshot[], policy: RetentionPolicy, protectedIds: Iterable<string>): (RetentionDecision & { snapshotId: string })[] {
  const key = (s: OffsiteSnapshot) => s.backupId ?? `snapshot:${s.snapshotId}`;
  const byKey = new Map(snapshots.map((s) => [key(s), s]));
  return applyRetention(snapshots.map((s) => ({ id: key(s), createdAt: s.time })), policy, { protectedIds }).map((d) => ({ ...d, snapshotId: byKey.get(d.id)!.snapshotId }));
}

export async function forgetOffsite(ctx: OpsEnv, cfg: OffsiteConfig, policy: RetentionPolicy, log: Logger, opts: { dryRun?: boolean } = {}): Promise<OffsiteRetentionResult> {
  const snaps = await listSnapshots(ctx, cfg);
  // the same pins as local retention: backups a rollback to a still-kept image can use
  const pins = rollbackPins(readJournal(ctx.layout.releases).releases, DEFAULT_KEEP_IMAGES);
  const decisions = offsiteDecisions(snaps, policy, pins.keys());
  const drop = decisions.filter((d) => !d.keep);
  log.info(`offsite retention (${describePolicy(policy)}): keep ${decisions.length - drop.length}, forget ${drop.length}${opts.dryRun ? ' (dry run: nothing forgotten)' : ''}`);
  if (opts.dryRun || !drop.length) return { decisions, forgotten: [], pruned: false };
  let r = await runRestic(cfg, forgetArgs(cfg.target, drop.map((d) => d.snapshotId)));
  if (!resticOk(r)) throw resticFailure(cfg, r, 'offsite forget', next(ctx, '--forget <keep flags>'), ctx.file);
  for (const d of drop) log.info(`offsite: forgot ${d.id} (snapshot ${d.snapshotId.slice(0, 8)})`);
  const step = log.step('offsite: prune unreferenced data');
  r = await runRestic(cfg, pruneArgs(cfg.target));
  if (!resticOk(r)) {
    const err = resticFailure(cfg, r, 'offsite prune', next(ctx, '--forget <keep flags>'), ctx.file);
    step.fail(err.message);
    throw err;
  }
  step.done();
  return { decisions, forgotten: drop.map((d) => d.id), pruned: true };
}

// ---- records the watch and status read (they never call restic) --------------------------------

export function readLastUpload(ctx: OpsEnv): UploadRecord | null {
  return readJsonRecord<UploadRecord>(ctx.layout.offsiteLastUpload);
}

/**
 * Record the newest backup known to be offsite in STATE_DIR/offsite/last-upload.json. An older
 * backup (pushMissing uploads newest first) or a listing that shows what is recorded already does
 * not replace it. A record that cannot be written is a warning: the upload itself succeeded.
 */
export function noteUpload(ctx: OpsEnv, rec: UploadRecord, log: Logger): void {
  try {
    let have: UploadRecord | null = null;
    try {
      have = readLastUpload(ctx);
    } catch {
      have = null; // unreadable: replace it
    }
    if (have && rec.source === 'listing' && have.backupId === rec.backupId) return;
    if (!newerUpload(have, rec)) return;
    writeJsonAtomic(ctx.layout.offsiteLastUpload, rec);
  } catch (err) {
    log.warn(`offsite: could not record the upload of ${rec.backupId} in ${ctx.layout.offsiteLastUpload}: ${(err as Error).message}`);
  }
}

export interface CheckRecord {
  at: string;
  ok: boolean;
  readDataSubset: string | null;
  detail: string;
}

export function lastCheckFile(ctx: OpsEnv): string {
  return ctx.layout.offsiteLastCheck;
}

export function readLastCheck(ctx: OpsEnv): CheckRecord | null {
  try {
    return JSON.parse(readFileSync(lastCheckFile(ctx), 'utf8')) as CheckRecord;
  } catch {
    return null;
  }
}

export async function checkRepository(ctx: OpsEnv, cfg: OffsiteConfig, log: Logger, opts: { readDataSubset?: string } = {}): Promise<CheckRecord> {
  const step = log.step(`offsite: restic check${opts.readDataSubset ? ` --read-data-subset ${opts.readDataSubset}` : ''}`);
  const r = await runRestic(cfg, checkArgs(cfg.target, opts));
  const rec: CheckRecord = { at: new Date().toISOString(), ok: resticOk(r), readDataSubset: opts.readDataSubset ?? null, detail: '' };
  if (r.code === 12) throw resticFailure(cfg, r, 'offsite check', next(ctx, '--check'), ctx.file);
  if (!rec.ok) {
    const err = resticFailure(cfg, r, 'offsite check', `inspect: restic check output above; a damaged pack is repaired with restic repair packs (RUNBOOK: offsite)`, ctx.file);
    rec.detail = err.message;
    step.fail(err.message);
  } else {
    rec.detail = 'no errors were found';
    step.done(rec.detail);
  }
  writeJsonAtomic(lastCheckFile(ctx), rec);
  return rec;
}

export async function unlockRepository(ctx: OpsEnv, cfg: OffsiteConfig, log: Logger): Promise<void> {
  const r = await runRestic(cfg, unlockArgs(cfg.target));
  if (!resticOk(r)) throw resticFailure(cfg, r, 'offsite unlock', next(ctx, '--unlock'), ctx.file);
  log.ok('removed stale restic locks');
}

// ---- fetching a snapshot back ------------------------------------------------------------------

/** "offsite:latest", "offsite:<backup id>", "offsite:<snapshot id>" -> the part after "offsite:", or null for a local source */
export function offsiteSource(from: string | undefined): string | null {
  if (!from || !from.startsWith('offsite:')) return null;
  const what = from.slice('offsite:'.length);
  if (!what || !(what === 'latest' || ID_RE.test(what) || /^[0-9a-f]{8,64}$/.test(what))) {
    throw new UsageError(`"${from}" names no offsite backup: use offsite:latest, offsite:<backup id> or offsite:<snapshot id>`, { hint: 'see them: offsite.mts --list' });
  }
  return what;
}

export function pickSnapshot(snaps: OffsiteSnapshot[], what: string): OffsiteSnapshot | undefined {
  if (what === 'latest') return snaps.find((s) => s.backupId);
  return snaps.find((s) => s.backupId === what) ?? snaps.find((s) => s.snapshotId.startsWith(what));
}

export interface FetchedBackup {
  backup: BackupEntry;
  snapshot: OffsiteSnapshot;
  ms: number;
  /** remove the fetched copy (always call it, also on failure) */
  remove(): void;
}

/** remove fetch directories of runs that are gone (killed -9) */
export function removeFetchLeftovers(ctx: OpsEnv, log: Logger): void {
  if (!existsSync(ctx.layout.root)) return;
  for (const name of readdirSync(ctx.layout.root)) {
    if (!name.startsWith(FETCH_PREFIX)) continue;
    const pid = Number(name.slice(FETCH_PREFIX.length).split('-')[0]);
    if (isProcessAlive(pid)) continue;
    rmSync(join(ctx.layout.root, name), { recursive: true, force: true });
    log.warn(`removed ${name}: left by an offsite fetch that was interrupted`);
  }
}

/**
 * Fetch one offsite snapshot into STATE_DIR/.offsite-fetch-<pid>-<rand>/ (same file system as the
 * live state; never listed as a backup). The result is a BackupEntry that restore and drill verify
 * exactly like a local backup (sha256 of every file, integrity_check, row counts).
 */
export async function fetchSnapshot(ctx: OpsEnv, cfg: OffsiteConfig, what: string, log: Logger): Promise<FetchedBackup> {
  const t0 = performance.now();
  mkdirSync(ctx.layout.root, { recursive: true, mode: 0o755 });
  removeFetchLeftovers(ctx, log);
  const snaps = await listSnapshots(ctx, cfg);
  const s = pickSnapshot(snaps, what);
  if (!s) throw new StepError(`no offsite snapshot ${what === 'latest' ? 'of a lazyflow backup' : what} in ${cfg.target.repository} (host ${cfg.target.host})`, { step: 'offsite', hint: next(ctx, '--list') });
  const dir = join(ctx.layout.root, `${FETCH_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`);
  const remove = () => rmSync(dir, { recursive: true, force: true });
  const step = log.step(`offsite: fetch backup ${s.backupId} (snapshot ${s.shortId}) into ${dir}`);
  mkdirSync(dir, { mode: 0o700 });
  try {
    const r = await runRestic(cfg, restoreArgs(cfg.target, { snapshotId: s.snapshotId, path: s.path, target: dir }), { onLine: (l) => progressOf(step, l, 'fetched') });
    if (!resticOk(r)) throw resticFailure(cfg, r, `fetching offsite snapshot ${s.shortId}`, `npx zx scripts/restore.mts --config ${ctx.file} --from offsite:${what}`, ctx.file);
    let m;
    try {
      m = readManifest(dir);
    } catch (err) {
      throw new StepError(`offsite snapshot ${s.shortId} holds no valid manifest: ${(err as Error).message}; live data untouched`, { step: 'verify', hint: 'choose another: offsite.mts --list' });
    }
    const problems = quickCheck(dir, m);
    const backup: BackupEntry = { id: m.id, dir, manifest: m, createdAt: new Date(m.createdAt), sizeBytes: m.database.bytes + m.uploads.bytes, verified: problems.length === 0, problems };
    if (!backup.verified) throw new StepError(`offsite backup ${m.id} is incomplete: ${problems.join('; ')}; live data untouched`, { step: 'verify', hint: 'choose another: offsite.mts --list' });
    const ms = performance.now() - t0;
    step.done(`${formatBytes(backup.sizeBytes)} in ${formatDuration(ms)}`);
    return { backup, snapshot: s, ms, remove };
  } catch (err) {
    step.fail(err);
    remove();
    throw err;
  }
}

// ---- listing: local and offsite side by side ----------------------------------------------------

export interface SideBySide {
  id: string;
  createdAt: string;
  reason: string | null;
  local: { sizeBytes: number; verified: boolean; problems: string[] } | null;
  offsite: { snapshotId: string; bytes: number | null; dataAdded: number | null; release: string | null; schema: number | null } | null;
}

export function sideBySide(local: BackupEntry[], offsite: OffsiteSnapshot[]): SideBySide[] {
  const rows = new Map<string, SideBySide>();
  for (const b of local) rows.set(b.id, { id: b.id, createdAt: b.createdAt.toISOString(), reason: b.manifest.reason, local: { sizeBytes: b.sizeBytes, verified: b.verified, problems: b.problems }, offsite: null });
  for (const s of offsite) {
    const id = s.backupId ?? `snapshot:${s.shortId}`;
    const row = rows.get(id) ?? { id, createdAt: s.time.toISOString(), reason: s.reason, local: null, offsite: null };
    row.offsite = { snapshotId: s.snapshotId, bytes: s.bytes, dataAdded: s.dataAdded, release: s.release, schema: s.schema };
    rows.set(id, row);
  }
  return [...rows.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
}
