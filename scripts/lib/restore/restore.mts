// Restore a backup over the live state, crash-safely.
//
// Order: verify the chosen backup in a staging directory next to the live state (checksums of
// every stored file, integrity_check, row counts) -> pre-restore safety backup of the live state ->
// stop the app -> swap the data and uploads directories by rename (the old database's -wal/-shm
// leave with the old data directory, so they can never be applied to the restored file) -> start
// the app, wait until healthy -> smoke checks (scripts/lib/smoke.mts, when present).
//
// A journal (STATE_DIR/restore-journal.json, written atomically before every phase) makes a
// killed restore recoverable: the next restore (or --recover) rolls back when the live state was
// not touched yet, and rolls forward (completes the swap) once the swap has begun, since the staged
// copy was fully verified before it. The app is never started on a mix of old and new state.
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, constants as fsc, createReadStream, createWriteStream, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline/promises';
import { $ } from 'zx';
import { StepError, UsageError, errorMessage } from '../cli/errors.mts';
import { acquireLock, type LockHandle } from '../host/lock.mts';
import { formatBytes, formatDuration, type Logger } from '../cli/log.mts';
import { DB_FILE_NAME, stateLayout, type StateLayout } from '../config/state.mts';
import type { OpsEnv } from '../config/env.mts';
import { composeEnv, parseComposePs, psArgs, startArgs, stopArgs, upArgs, logsArgs } from '../commands/compose.mts';
import { APP_GID, APP_UID, fsyncDir, fsyncPath, isDiskFull, isRoot, fsInfo, describeFs } from '../host/fsutil.mts';
import { verifyDatabase } from '../backup/sqlite-snapshot.mts';
import { ID_RE, listBackups, type BackupEntry, type BackupManifest } from '../backup/manifest.mts';
import { runBackup } from '../backup/backup.mts';

export type RestorePhase =
  | 'staging' // copying + verifying into the staging dir; live untouched
  | 'safety-backup' // taking the pre-restore backup; live untouched
  | 'stopping' // stopping the app; live data untouched
  | 'swapping' // renames in progress: from here on we roll forward
  | 'swapped'
  | 'starting'
  | 'started'
  | 'rolling-back' // the restored state did not come up healthy: putting the old state back
  | 'cleanup';

export interface RestoreJournal {
  op: string;
  backupId: string;
  staging: string;
  phase: RestorePhase;
  startedAt: string;
  updatedAt: string;
  pid: number;
  /** the app container existed and ran before the restore */
  appWasRunning: boolean;
  /** image of the app container before the restore (to recreate it if needed) */
  appImage: string | null;
  startApp: boolean;
  safetyBackupId: string | null;
  /** keep the replaced live directories (when no safety backup could be taken) */
  keepOld: boolean;
}

export interface RestoreOptions {
  ctx: OpsEnv;
  /** backup id or 'latest' */
  from: string;
  log: Logger;
  yes?: boolean;
  dryRun?: boolean;
  lockHeld?: boolean;
  waitLockMs?: number;
  /** take a pre-restore safety backup (default true) */
  safetyBackup?: boolean;
  /** start the app afterwards and wait until healthy (default true); rollout starts it itself */
  startApp?: boolean;
  /** run scripts/lib/smoke.mts after the start, when it exists (default true) */
  smoke?: boolean;
  /** PEM root for smoke's TLS check (private CA) */
  ca?: string;
  /** image tag to start the app with when its container has to be recreated */
  appTag?: string;
  healthTimeoutMs?: number;
  /** ask the operator; default: a readline prompt on a TTY */
  confirm?: (question: string) => Promise<boolean>;
  /** for tests: called after each journal write (e.g. to observe phases) */
  onPhase?: (phase: RestorePhase) => void;
  /** offsite (issue 9): a backup the caller fetched (offsite:...); verified and swapped like a local one */
  backup?: BackupEntry;
}

export interface RestoreResult {
  backupId: string;
  safetyBackupId: string | null;
  restored: boolean;
  recovered?: string;
  phases: Record<string, number>;
  smoke?: { failed: boolean; results: unknown[] };
}

const STAGING_PREFIX = '.restore-';
const ITEMS = ['data', 'uploads'] as const;

// ---------------------------------------------------------------------------------------------
// journal

function writeJournal(layout: StateLayout, j: RestoreJournal) {
  j.updatedAt = new Date().toISOString();
  const tmp = `${layout.restoreJournal}.tmp`;
  writeFileSync(tmp, JSON.stringify(j, null, 2) + '\n', { mode: 0o600 });
  fsyncPath(tmp);
  renameSync(tmp, layout.restoreJournal);
  fsyncDir(layout.root);
}

export function readRestoreJournal(layout: StateLayout): RestoreJournal | null {
  if (!existsSync(layout.restoreJournal)) return null;
  try {
    return JSON.parse(readFileSync(layout.restoreJournal, 'utf8')) as RestoreJournal;
  } catch (err) {
    throw new StepError(`${layout.restoreJournal} is unreadable: ${errorMessage(err)}`, {
      step: 'restore',
      hint: `inspect ${layout.root} (data/, uploads/ and ${STAGING_PREFIX}* directories) by hand before removing the journal`,
    });
  }
}

function setPhase(layout: StateLayout, j: RestoreJournal, phase: RestorePhase, opts: { onPhase?: (p: RestorePhase) => void }) {
  j.phase = phase;
  writeJournal(layout, j);
  opts.onPhase?.(phase);
}

// ---------------------------------------------------------------------------------------------
// app container control

interface AppState {
  id: string | null;
  running: boolean;
  image: string | null;
}

async function appState(ctx: OpsEnv): Promise<AppState> {
  const r = await $({ quiet: true, nothrow: true, env: composeEnv(ctx.values), timeout: 30_000 })`docker ${psArgs(ctx, { all: true, service: 'app' })}`;
  if (r.exitCode !== 0) throw new StepError(`docker compose ps failed: ${r.stderr.trim()}`, { step: 'restore', hint: 'is the Docker engine running? docker info' });
  const app = parseComposePs(r.stdout).find((e) => e.Service === 'app');
  if (!app) return { id: null, running: false, image: null };
  return { id: app.ID, running: app.State === 'running', image: app.Image ?? null };
}

async function stopApp(ctx: OpsEnv, log: Logger) {
  const step = log.step('stop the app (Caddy holds incoming requests)');
  const r = await $({ quiet: true, nothrow: true, env: composeEnv(ctx.values), timeout: 120_000 })`docker ${stopArgs(ctx, { timeoutS: 30 })}`;
  if (r.exitCode !== 0) {
    step.fail(r.stderr.trim());
    throw new StepError(`docker compose stop app failed: ${r.stderr.trim()}`, { step: 'restore' });
  }
  step.done();
}

async function containerHealth(id: string): Promise<{ status: string; health: string | null; exitCode: number }> {
  const r = await $({ quiet: true, nothrow: true, timeout: 20_000 })`docker inspect --format ${'{{json .State}}'} ${id}`;
  if (r.exitCode !== 0) return { status: 'missing', health: null, exitCode: -1 };
  const s = JSON.parse(r.stdout) as { Status: string; ExitCode: number; Health?: { Status: string } };
  return { status: s.Status, health: s.Health?.Status ?? null, exitCode: s.ExitCode };
}

async function appLogsTail(ctx: OpsEnv, lines = 20): Promise<string> {
  const r = await $({ quiet: true, nothrow: true, env: composeEnv(ctx.values), timeout: 20_000 })`docker ${logsArgs(ctx, { service: 'app', tail: lines })}`;
  return r.stdout.trim();
}

/** start the existing app container (same image and config), or recreate it; wait until healthy */
async function startApp(ctx: OpsEnv, log: Logger, j: RestoreJournal, appTag: string | undefined, timeoutMs: number) {
  const step = log.step('start the app and wait until healthy');
  const before = await appState(ctx);
  let r;
  if (before.id) {
    r = await $({ quiet: true, nothrow: true, env: composeEnv(ctx.values), timeout: 120_000 })`docker ${startArgs(ctx)}`;
  } else {
    const env = composeEnv(ctx.values);
    const tag = appTag ?? (j.appImage && j.appImage.includes(':') ? j.appImage.slice(j.appImage.lastIndexOf(':') + 1) : undefined);
    if (tag) env.APP_TAG = tag;
    r = await $({ quiet: true, nothrow: true, env, timeout: timeoutMs + 30_000 })`docker ${upArgs(ctx, { noBuild: true, wait: false })}`;
  }
  if (r.exitCode !== 0) {
    step.fail(r.stderr.trim());
    throw new StepError(`starting the app failed: ${r.stderr.trim()}`, { step: 'restore' });
  }
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const now = await appState(ctx);
    if (now.id) {
      const h = await containerHealth(now.id);
      last = `${h.status}${h.health ? `/${h.health}` : ''}`;
      if (h.status === 'running' && (h.health === 'healthy' || h.health === null)) break;
      if (h.status === 'exited' || h.status === 'dead') {
        step.fail(`container ${last} (exit code ${h.exitCode})`);
        throw new StepError(`the app exited on the restored data (exit code ${h.exitCode}):\n${await appLogsTail(ctx)}`, { step: 'restore' });
      }
    }
    if (Date.now() > deadline) {
      step.fail(`not healthy after ${formatDuration(timeoutMs)} (${last})`);
      throw new StepError(`the app did not become healthy within ${formatDuration(timeoutMs)} (${last}):\n${await appLogsTail(ctx)}`, { step: 'restore' });
    }
    await new Promise((res) => setTimeout(res, 500));
  }
  step.done(last);
}

// ---------------------------------------------------------------------------------------------
// staging: copy a backup somewhere and prove it is what the manifest says

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
}

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

  let step = opts.log.step(`verify and stage the database of ${b.id}`);
  const stored = join(b.dir, m.database.file);
  if (!existsSync(stored)) throw bad(`${m.database.file} is missing`);
  const storedHash = createHash('sha256');
  const rawHash = createHash('sha256');
  try {
    if (m.database.compression === 'gzip') {
      await pipeline(createReadStream(stored), hashingCopyTransform(storedHash), createGunzip(), hashingCopyTransform(rawHash), createWriteStream(db, { mode: 0o644 }));
    } else {
      await pipeline(createReadStream(stored), hashingCopyTransform(storedHash), createWriteStream(db, { mode: 0o644 }));
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
  const v = verifyDatabase(db);
  if (!v.ok) {
    step.fail(v.messages[0]);
    throw bad(`integrity_check: ${v.messages.slice(0, 3).join('; ')}`);
  }
  for (const [t, n] of Object.entries(m.database.rowCounts)) {
    if (v.rowCounts[t] !== n) throw bad(`table ${t} has ${v.rowCounts[t]} rows, the manifest says ${n}`);
  }
  fsyncPath(db);
  setOwner(db, uid, gid);
  step.done(`sha256 ok, integrity ok, ${Object.entries(v.rowCounts).map(([t, n]) => `${t} ${n}`).join(', ')}`);

  step = opts.log.step(`verify and stage ${m.uploads.files} uploads`);
  let bytes = 0;
  for (const e of m.uploads.entries) {
    const src = join(b.dir, m.uploads.dir, e.path);
    const dst = join(upDir, e.path);
    if (e.path.split('/').includes('..')) throw bad(`upload path ${e.path} escapes the uploads directory`);
    mkdirSync(dirname(dst), { recursive: true, mode: dirMode });
    if (!existsSync(src)) throw bad(`upload ${e.path} is missing`);
    const h = createHash('sha256');
    if (opts.linkUploads) {
      await pipeline(createReadStream(src), h);
      linkSync(src, dst);
    } else {
      try {
        await pipeline(createReadStream(src), hashingCopyTransform(h), createWriteStream(dst, { mode: 0o644 }));
      } catch (err) {
        if (isDiskFull(err)) throw err;
        throw bad(`upload ${e.path} cannot be read: ${errorMessage(err)}`);
      }
      chmodSync(dst, e.mode & 0o7777 ? e.mode & 0o666 : 0o644);
      setOwner(dst, uid, gid);
    }
    const sha = h.digest('hex');
    if (sha !== e.sha256) {
      step.fail('checksum mismatch');
      throw bad(`upload ${e.path} sha256 does not match the manifest`);
    }
    bytes += e.size;
  }
  for (const d of [dataDir, upDir]) {
    setOwner(d, uid, gid);
    chmodSync(d, dirMode);
    fsyncDir(d);
  }
  step.done(`${m.uploads.files} files, ${formatBytes(bytes)}, sha256 ok`);
  // nothing but the database may sit in the staged data dir: no -wal/-shm to apply to it
  for (const f of readdirSync(dataDir)) if (f !== DB_FILE_NAME) rmSync(join(dataDir, f), { force: true });
  return { rowCounts: v.rowCounts, userVersion: v.userVersion };
}

// ---------------------------------------------------------------------------------------------
// swap and recovery

export function swapIn(layout: Pick<StateLayout, "root">, staging: string) {
  // per item: live -> staging/old-<item>, then staging/<item> -> live. Idempotent: a re-run after a
  // crash between any two renames finishes the job.
  for (const item of ITEMS) {
    const live = join(layout.root, item);
    const fresh = join(staging, item);
    const old = join(staging, `old-${item}`);
    if (!existsSync(fresh)) continue; // already swapped
    if (existsSync(live) && !existsSync(old)) renameSync(live, old);
    else if (existsSync(live) && existsSync(old)) rmSync(live, { recursive: true, force: true }); // cannot happen unless edited by hand
    renameSync(fresh, live);
  }
  fsyncDir(layout.root);
  fsyncDir(staging);
}

export function swapBack(layout: Pick<StateLayout, "root">, staging: string) {
  for (const item of ITEMS) {
    const live = join(layout.root, item);
    const fresh = join(staging, item);
    const old = join(staging, `old-${item}`);
    if (!existsSync(old)) continue; // never swapped, or already back
    if (existsSync(live)) {
      if (existsSync(fresh)) rmSync(fresh, { recursive: true, force: true });
      renameSync(live, fresh);
    }
    renameSync(old, live);
  }
  fsyncDir(layout.root);
}

function stagingDirs(layout: StateLayout): string[] {
  if (!existsSync(layout.root)) return [];
  return readdirSync(layout.root)
    .filter((n) => n.startsWith(STAGING_PREFIX))
    .map((n) => join(layout.root, n));
}

function cleanupStaging(layout: StateLayout, j: RestoreJournal | null, log: Logger) {
  for (const dir of stagingDirs(layout)) {
    if (j?.keepOld && dir === j.staging) {
      // keep the replaced live state; drop only what is not needed
      rmSync(join(dir, 'data'), { recursive: true, force: true });
      rmSync(join(dir, 'uploads'), { recursive: true, force: true });
      log.warn(`the replaced live state is kept in ${dir} (old-data, old-uploads): no safety backup was taken`);
      continue;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Finish or roll back a restore that was interrupted (killed, power loss). Returns a description of
 * what was done, or null when there was nothing to recover. Caller holds the lock.
 */
export async function recoverRestore(ctx: OpsEnv, log: Logger, opts: { healthTimeoutMs?: number; appTag?: string } = {}): Promise<string | null> {
  const layout = ctx.layout;
  const j = readRestoreJournal(layout);
  if (!j) {
    // staging dirs without a journal: a restore died before writing it; nothing live was touched
    const stray = stagingDirs(layout).filter((d) => !existsSync(join(d, 'old-data')) && !existsSync(join(d, 'old-uploads')));
    for (const d of stray) {
      rmSync(d, { recursive: true, force: true });
      log.warn(`removed ${d}: left by a restore that was interrupted before it touched anything`);
    }
    return null;
  }
  const timeout = opts.healthTimeoutMs ?? 120_000;
  log.warn(`found an interrupted restore of ${j.backupId} (phase ${j.phase}, pid ${j.pid}, started ${j.startedAt}): recovering`);
  let what: string;
  switch (j.phase) {
    case 'staging':
    case 'safety-backup':
    case 'stopping': {
      // live data never touched: discard the staged copy, bring the app back if we stopped it
      if (existsSync(j.staging)) swapBack(layout, j.staging); // no-op unless renamed by hand
      cleanupStaging(layout, null, log);
      if (j.phase === 'stopping' && j.appWasRunning) await startApp(ctx, log, j, opts.appTag, timeout);
      what = `rolled back: the live data was never touched${j.phase === 'stopping' && j.appWasRunning ? '; the app was started again on it' : ''}`;
      break;
    }
    case 'swapping':
    case 'swapped':
    case 'starting': {
      // the staged copy was verified before the swap began: complete it
      if (existsSync(j.staging)) swapIn(layout, j.staging);
      setPhase(layout, j, 'swapped', {});
      if (j.startApp || j.appWasRunning) {
        setPhase(layout, j, 'starting', {});
        try {
          await startApp(ctx, log, j, opts.appTag, timeout);
        } catch (err) {
          log.error(`the restored state did not come up: ${errorMessage(err)}; putting the old state back`);
          await rollBackToOld(ctx, log, j, opts.appTag, timeout);
          what = `rolled back to the old state: the restored state of ${j.backupId} did not become healthy`;
          break;
        }
      }
      cleanupStaging(layout, j, log);
      what = `completed: the live state is backup ${j.backupId}`;
      break;
    }
    case 'rolling-back': {
      await rollBackToOld(ctx, log, j, opts.appTag, timeout);
      what = 'rolled back to the old state (the interrupted restore had already decided to)';
      break;
    }
    case 'started':
    case 'cleanup':
    default: {
      cleanupStaging(layout, j, log);
      what = `completed: the live state is backup ${j.backupId}`;
    }
  }
  rmSync(layout.restoreJournal, { force: true });
  fsyncDir(layout.root);
  log.ok(`interrupted restore ${what}`);
  return what;
}

async function rollBackToOld(ctx: OpsEnv, log: Logger, j: RestoreJournal, appTag: string | undefined, timeoutMs: number) {
  const layout = ctx.layout;
  setPhase(layout, j, 'rolling-back', {});
  const st = await appState(ctx);
  if (st.running) await stopApp(ctx, log);
  if (existsSync(j.staging)) swapBack(layout, j.staging);
  cleanupStaging(layout, null, log);
  if (j.appWasRunning) await startApp(ctx, log, j, appTag, timeoutMs);
}

// ---------------------------------------------------------------------------------------------
// choosing a backup

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

async function defaultConfirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) {
    throw new UsageError('restore needs a confirmation and stdin is not a terminal', { hint: 'pass --yes to confirm non-interactively' });
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const a = (await rl.question(`${question} [type yes] `)).trim().toLowerCase();
    return a === 'yes' || a === 'y';
  } finally {
    rl.close();
  }
}

async function loadSmoke(): Promise<null | ((env: OpsEnv, o: { log?: Logger; ca?: string }) => Promise<{ failed: boolean; results: { name: string; status: string; detail: string }[] }>)> {
  const p = join(dirname(fileURLToPath(import.meta.url)), '..', 'checks', 'smoke.mts');
  if (!existsSync(p)) return null;
  const mod = (await import(p)) as { runSmoke?: unknown };
  return typeof mod.runSmoke === 'function' ? (mod.runSmoke as never) : null;
}

// ---------------------------------------------------------------------------------------------
// the restore

export async function runRestore(opts: RestoreOptions): Promise<RestoreResult> {
  const { ctx, log } = opts;
  const layout = ctx.layout ?? stateLayout(ctx.stateDir);
  const phases: Record<string, number> = {};
  const t = (name: string, t0: number) => (phases[name] = Math.round(performance.now() - t0));
  let lock: LockHandle | undefined;
  if (!opts.lockHeld && !opts.dryRun) {
    lock = await acquireLock(layout, { operation: `restore ${opts.from}`, waitMs: opts.waitLockMs ?? 0, log });
  }
  try {
    let recovered: string | undefined;
    if (!opts.dryRun) {
      const r = await recoverRestore(ctx, log, { healthTimeoutMs: opts.healthTimeoutMs, appTag: opts.appTag });
      if (r) recovered = r;
    } else if (readRestoreJournal(layout)) {
      log.warn(`an interrupted restore is pending (${layout.restoreJournal}); a real run recovers it first`);
    }
    const b = opts.backup ?? resolveBackup(layout, opts.from);
    const m = b.manifest;
    const before0 = opts.dryRun ? null : await appState(ctx);
    // start afterwards: when asked to, or when it ran before (a stopped app stays stopped)
    const startAppAfter = opts.startApp === false ? false : opts.startApp === true || Boolean(before0?.running);
    const safety = opts.safetyBackup ?? true;
    const liveExists = existsSync(layout.db);

    const plan = [
      `restore backup ${b.id} (${m.reason}, taken ${m.createdAt}, app ${m.app.tag ?? '?'}, schema ${m.database.userVersion})`,
      `  database ${formatBytes(m.database.rawBytes)} (${Object.entries(m.database.rowCounts).map(([k, n]) => `${k} ${n}`).join(', ')}), ${m.uploads.files} uploads (${formatBytes(m.uploads.bytes)})`,
      `  into ${layout.data} and ${layout.uploads}`,
      `1. verify the backup (sha256 of every file, integrity_check, row counts) in ${join(layout.root, `${STAGING_PREFIX}<op>`)}`,
      `2. ${safety && liveExists ? 'take a pre-restore safety backup of the live state' : safety ? 'no live database: no safety backup' : 'no safety backup (--skip-safety-backup): the replaced state is kept aside'}`,
      '3. stop the app (docker compose stop app); Caddy holds incoming requests',
      '4. swap data/ and uploads/ by rename (the old -wal/-shm leave with the old data/)',
      startAppAfter ? '5. start the app, wait until healthy, run the smoke checks' : '5. leave the app stopped (the caller starts it)',
    ];
    if (opts.dryRun) {
      for (const l of plan) log.out(l);
      log.out('dry run: nothing changed');
      return { backupId: b.id, safetyBackupId: null, restored: false, recovered, phases };
    }
    for (const l of plan) log.info(l);
    if (recovered && recovered.startsWith('completed') && readRestoreJournalBackup(recovered, b.id)) {
      log.ok(`backup ${b.id} is already the live state (the interrupted restore was completed)`);
      return { backupId: b.id, safetyBackupId: null, restored: true, recovered, phases };
    }
    if (!opts.yes) {
      const ok = await (opts.confirm ?? defaultConfirm)(`Replace the live data with backup ${b.id}? Every write since ${m.createdAt} is lost.`);
      if (!ok) throw new StepError('not confirmed: nothing changed', { step: 'restore' });
    }

    const op = `${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${process.pid}`;
    const staging = join(layout.root, `${STAGING_PREFIX}${op}`);
    const before = before0 ?? (await appState(ctx));
    const j: RestoreJournal = {
      op,
      backupId: b.id,
      staging,
      phase: 'staging',
      startedAt: new Date().toISOString(),
      updatedAt: '',
      pid: process.pid,
      appWasRunning: before.running,
      appImage: before.image,
      startApp: startAppAfter,
      safetyBackupId: null,
      keepOld: !safety && liveExists,
    };
    setPhase(layout, j, 'staging', opts);

    // 1. verify into staging (same file system as the live state: the swap is a rename)
    let t0 = performance.now();
    const liveDataSt = existsSync(layout.data) ? statSync(layout.data) : null;
    const liveUpSt = existsSync(layout.uploads) ? statSync(layout.uploads) : null;
    try {
      mkdirSync(staging, { mode: 0o700 });
      await stageBackup(b, staging, {
        log,
        uid: isRoot() ? APP_UID : liveDataSt?.uid,
        gid: isRoot() ? APP_GID : liveDataSt?.gid,
        dirMode: liveDataSt ? liveDataSt.mode & 0o777 : 0o750,
      });
      if (liveUpSt) chmodSync(join(staging, 'uploads'), liveUpSt.mode & 0o777);
    } catch (err) {
      rmSync(staging, { recursive: true, force: true });
      rmSync(layout.restoreJournal, { force: true });
      if (isDiskFull(err)) {
        throw new StepError(`disk full on ${describeFs(fsInfo(layout.root), formatBytes)} while staging backup ${b.id}; live data untouched`, { step: 'restore', hint: 'free space in STATE_DIR and run the restore again' });
      }
      throw err;
    }
    t('verify', t0);

    // 2. safety backup of the live state (online)
    if (safety && liveExists) {
      setPhase(layout, j, 'safety-backup', opts);
      t0 = performance.now();
      try {
        const sb = await runBackup({ ctx, reason: 'pre-restore', log, lockHeld: true, skipRestoreCheck: true });
        j.safetyBackupId = sb.id;
      } catch (err) {
        rmSync(staging, { recursive: true, force: true });
        rmSync(layout.restoreJournal, { force: true });
        throw new StepError(`the pre-restore safety backup failed: ${errorMessage(err)}; live data untouched`, {
          step: 'restore',
          hint: 'if the live database is unusable anyway, run the restore with --skip-safety-backup (the replaced state is then kept in STATE_DIR/.restore-*)',
        });
      }
      t('safety-backup', t0);
    } else if (!liveExists) {
      log.warn(`no live database at ${layout.db}: nothing to save first`);
    }

    // 3. stop the app
    setPhase(layout, j, 'stopping', opts);
    t0 = performance.now();
    if (before.running) await stopApp(ctx, log);
    t('stop', t0);

    // 4. swap
    setPhase(layout, j, 'swapping', opts);
    t0 = performance.now();
    swapIn(layout, staging);
    setPhase(layout, j, 'swapped', opts);
    t('swap', t0);
    log.ok(`swapped in backup ${b.id} (${formatDuration(phases.swap)})`);

    // 5. start, wait healthy
    if (startAppAfter) {
      setPhase(layout, j, 'starting', opts);
      t0 = performance.now();
      try {
        await startApp(ctx, log, j, opts.appTag, opts.healthTimeoutMs ?? 120_000);
      } catch (err) {
        log.error(`the app did not come up on backup ${b.id}: ${errorMessage(err)}`);
        await rollBackToOld(ctx, log, j, opts.appTag, opts.healthTimeoutMs ?? 120_000);
        rmSync(layout.restoreJournal, { force: true });
        throw new StepError(`restore of ${b.id} rolled back: the app did not become healthy on it; the previous live state is back`, {
          step: 'restore',
          hint: `check the app logs (docker compose logs app); the backup's schema is ${m.database.userVersion}: it may need another app release`,
        });
      }
      t('start', t0);
      setPhase(layout, j, 'started', opts);
    } else if (opts.startApp !== false) {
      log.warn('the app was not running before the restore: left stopped (start it with: docker compose up -d app, or rollout)');
    }

    setPhase(layout, j, 'cleanup', opts);
    cleanupStaging(layout, j, log);
    rmSync(layout.restoreJournal, { force: true });
    fsyncDir(layout.root);

    // 6. smoke
    let smoke: RestoreResult['smoke'];
    if (startAppAfter && (opts.smoke ?? true)) {
      const runSmoke = await loadSmoke();
      if (runSmoke) {
        t0 = performance.now();
        const step = log.step('smoke checks');
        const r = await runSmoke(ctx, { log, ...(opts.ca ? { ca: opts.ca } : {}) });
        const failed = r.results.filter((x) => x.status === 'fail');
        if (r.failed) step.fail(failed.map((f) => `${f.name}: ${f.detail}`).join('; '));
        else step.done(`${r.results.filter((x) => x.status === 'pass').length} passed, ${r.results.filter((x) => x.status === 'warn').length} warnings`);
        smoke = { failed: r.failed, results: r.results };
        t('smoke', t0);
      }
    }
    log.ok(`restored ${b.id}${j.safetyBackupId ? `; the previous state is in backup ${j.safetyBackupId}` : ''} (${Object.entries(phases).map(([k, v]) => `${k} ${formatDuration(v)}`).join(', ')})`);
    if (smoke?.failed) {
      throw new StepError(`restore of ${b.id} done, but smoke checks failed`, {
        step: 'smoke',
        hint: `inspect: smoke.mts --config ${ctx.file}${opts.ca ? ` --ca ${opts.ca}` : ''}; go back: restore.mts --config ${ctx.file} --from ${j.safetyBackupId ?? '<id>'}`,
      });
    }
    return { backupId: b.id, safetyBackupId: j.safetyBackupId, restored: true, recovered, phases, smoke };
  } finally {
    lock?.release();
  }
}

function readRestoreJournalBackup(recovered: string, id: string): boolean {
  return recovered.includes(`backup ${id}`);
}
