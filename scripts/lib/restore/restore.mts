// Restore a backup over the live state, crash-safely and losing nothing.
//
// Order: resolve the backup once (written to the journal) -> verify it in a staging directory next
// to the live state (checksums of every stored file, integrity_check, row counts; everything
// fsynced) -> refuse a layout the renames cannot handle -> stop the app (Caddy holds requests) ->
// move the live data/ and uploads/ aside whole by rename into STATE_DIR/kept/<op>-pre-restore/ and
// rename the staged copies live (instant at any size; every write the app accepted before it
// stopped is in the kept-aside state) -> start the app, wait until healthy -> smoke checks.
//
// A journal (STATE_DIR/restore-journal.json, written atomically before every phase) makes a killed
// restore recoverable (recovery-plan.mts): the next restore (any --from) or --recover continues
// that same restore. The kept-aside state is never deleted here: retention removes it (backup.mts).
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline/promises';
import { GateError, StepError, UsageError, errorMessage } from '../cli/errors.mts';
import { acquireLock, processStartTime, type LockHandle } from '../host/lock.mts';
import { formatBytes, formatDuration, type Logger } from '../cli/log.mts';
import { stateLayout } from '../config/state.mts';
import type { OpsEnv } from '../config/env.mts';
import { APP_GID, APP_UID, fsyncDir, isDiskFull, isRoot, fsInfo, describeFs } from '../host/fsutil.mts';
import { checkStateLayout, observeStateLayout } from '../checks/preflight.mts';
import type { BackupEntry } from '../backup/manifest.mts';
import { STAGING_PREFIX, readRestoreJournal, setPhase, type RestoreJournal, type RestorePhase } from './journal.mts';
import { resolveBackup, stageBackup } from './stage.mts';
import { assertSwapRenames, swapIn } from './swap.mts';
import { startApp, stopApp } from './app.mts';
import { liveApp } from '../docker/app-container.mts';
import { keptDirFor, keptRoot, writeKeptMeta } from './kept.mts';
import { recoverRestore, type RestoreRecoveryResult } from './recovery-plan.mts';
import { runDetached } from '../release/critical.mts';
import { currentReleaseLabel, withNotice, type OperationNotice } from '../notify/operation.mts';

export type { RestoreJournal, RestorePhase } from './journal.mts';
export { readRestoreJournal } from './journal.mts';
export { CorruptBackupError, resolveBackup, stageBackup } from './stage.mts';
export { swapBack, swapIn } from './swap.mts';
export { recoverRestore } from './recovery-plan.mts';

export interface RestoreOptions {
  ctx: OpsEnv;
  /** backup id or 'latest'; ignored when an interrupted restore is pending (that one is continued) */
  from: string;
  log: Logger;
  yes?: boolean;
  dryRun?: boolean;
  lockHeld?: boolean;
  waitLockMs?: number;
  /** name of the kept-aside dir's label: pre-restore (default); the engine passes e.g. pre-rollback */
  keptLabel?: string;
  /** start the app afterwards and wait until healthy (default true); rollout starts it itself */
  startApp?: boolean;
  /** run the smoke checks after the start (default true) */
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
  /**
   * run the critical section (stop, swap, start, healthy, smoke) in a detached worker of its own
   * session (default true; only when this restore takes the lock itself, never under a caller's lock)
   */
  detach?: boolean;
  /** the caller's notification: handed to the worker when the critical section runs detached */
  notice?: OperationNotice;
  /**
   * a complete staged copy of this backup (prestage.mts, staged while the app served): renamed into
   * the restore's staging dir instead of copying now, so the app's stop does not wait for a copy
   */
  prestaged?: string;
}

export interface RestoreResult {
  backupId: string;
  /** where the replaced live state is kept (null: there was none, or the restore did not swap) */
  keptDir: string | null;
  restored: boolean;
  recovered?: string;
  /** ms per phase; hold = app stopped until healthy again (what Caddy held) */
  phases: Record<string, number>;
  smoke?: { failed: boolean; results: unknown[] };
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

/** refuse, before anything is stopped, a layout where the renames or SQLite locking cannot work */
function refuseBadLayout(ctx: OpsEnv) {
  const bad = checkStateLayout(observeStateLayout(ctx.layout)).filter((r) => !r.ok);
  if (bad.length) {
    throw new StepError(`STATE_DIR layout refused: ${bad.map((r) => r.message).join('; ')}; nothing was stopped or changed`, {
      step: 'preflight',
      hint: bad.map((r) => r.fix).filter(Boolean).join('; '),
    });
  }
}

/**
 * A rollout or rollback killed mid-swap is finished (or undone) before a restore touches the data:
 * left in progress, the next recovery run would judge the schema on the restored data and could undo
 * the restore. Callers that hold the lock for an operation (rollback --with-db, recovery) already did.
 */
async function recoverUnfinishedRelease(ctx: OpsEnv, log: Logger, healthTimeoutMs?: number): Promise<void> {
  const { readJournal } = await import('../release/journal.mts');
  if (!readJournal(ctx.layout.releases).releases.some((r) => r.result === 'in-progress')) return;
  // imported here: recovery runs restores itself (a cycle at load time otherwise)
  const { runRecovery } = await import('../recovery/run.mts');
  const r = await runRecovery(ctx, log, { healthTimeoutS: healthTimeoutMs ? Math.ceil(healthTimeoutMs / 1000) : undefined });
  if (r.exitCode !== 0) {
    throw new StepError(`an interrupted rollout or rollback could not be recovered, so nothing was restored: ${r.error ?? 'see above'}`, {
      step: 'restore', hint: r.next ?? `node scripts/recover.mts --config ${ctx.file} --dry-run`,
    });
  }
}

/** What the restore's critical section needs, as plain data (it crosses into the detached worker as JSON). */
export interface RestoreCriticalContext {
  /** names the worker's log: logs/critical-<id>.log */
  id: string;
  /** written at phase staging: the verified copy is in journal.staging */
  journal: RestoreJournal;
  backupId: string;
  backupSchema: number | null;
  /** RestoreOptions.startApp as the caller gave it */
  startAppOption?: boolean;
  appTag?: string;
  healthTimeoutMs?: number;
  smoke: boolean;
  ca?: string;
  phases: Record<string, number>;
  recovered?: string;
  /** set when the caller's notice was handed to the worker: it reports the restore */
  notify?: { release?: string; elapsedMs: number };
}

/** the app container before the restore: does it run, on which image (to recreate it if needed) */
async function appNow(ctx: OpsEnv): Promise<{ running: boolean; image: string | null }> {
  const app = await liveApp(ctx);
  return { running: app?.status === 'running', image: app?.imageRef ?? null };
}

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
    // resolve once: a pending restore is continued with the backup it resolved, whatever --from says
    const pending = readRestoreJournal(layout);
    let recovered: RestoreRecoveryResult | null = null;
    if (pending && pending.backupId !== opts.from) {
      log.warn(`an interrupted restore of ${pending.backupId} (asked as "${pending.requested ?? pending.backupId}") is pending: continuing it${opts.from !== 'latest' ? `; --from ${opts.from} is not used` : ''}`);
    }
    if (opts.dryRun) {
      if (pending) log.warn(`a real run first continues the interrupted restore of ${pending.backupId} (${layout.restoreJournal})`);
    } else {
      if (!opts.lockHeld) await recoverUnfinishedRelease(ctx, log, opts.healthTimeoutMs);
      recovered = await recoverRestore(ctx, log, { healthTimeoutMs: opts.healthTimeoutMs, appTag: opts.appTag });
    }
    if (recovered?.outcome === 'left') throw new StepError(`another restore is still running: ${recovered.what}`, { step: 'restore', hint: 'wait for it, then run restore.mts --list' });
    if (recovered?.outcome === 'completed') {
      const j = recovered.journal;
      log.ok(`backup ${j.backupId} is the live state (the interrupted restore was completed)${j.kept && existsSync(j.kept) ? `; the replaced state is kept in ${j.kept}` : ''}`);
      if (opts.from !== 'latest' && opts.from !== j.backupId) log.warn(`to restore ${opts.from} as well, run the restore again`);
      return { backupId: j.backupId, keptDir: j.kept && existsSync(j.kept) ? j.kept : null, restored: true, recovered: recovered.what, phases };
    }
    if (recovered?.outcome === 'rolled-back' && pending && !['staging', 'safety-backup', 'stopping'].includes(pending.phase)) {
      // the restored state was tried and did not come up: do not try it again by itself
      throw new StepError(`the interrupted restore of ${pending.backupId} was rolled back: the app did not become healthy on it; the previous live state is back`, {
        step: 'restore',
        hint: 'check the app logs (docker compose logs app); the backup may need another app release (schema)',
      });
    }
    const requested = pending?.requested ?? opts.from;
    // offsite (issue 9): a fetched backup is used as given, unless an interrupted restore is continued
    const b: BackupEntry = pending ? resolveBackup(layout, pending.backupId) : (opts.backup ?? resolveBackup(layout, opts.from));
    const m = b.manifest;
    const before0 = opts.dryRun ? null : await appNow(ctx);
    // start afterwards: when asked to, or when it ran before (a stopped app stays stopped)
    const startAppAfter = opts.startApp === false ? false : opts.startApp === true || Boolean(before0?.running);
    const label = opts.keptLabel ?? 'pre-restore';

    const plan = [
      `restore backup ${b.id} (${m.reason}, taken ${m.createdAt}, app ${m.app.tag ?? '?'}, schema ${m.database.userVersion})${requested === 'latest' ? ' = latest' : ''}`,
      `  database ${formatBytes(m.database.rawBytes)} (${Object.entries(m.database.rowCounts).map(([k, n]) => `${k} ${n}`).join(', ')}), ${m.uploads.files} uploads (${formatBytes(m.uploads.bytes)})`,
      `  into ${layout.data} and ${layout.uploads}`,
      `1. verify the backup (sha256 of every file, integrity_check, row counts) in ${join(layout.root, `${STAGING_PREFIX}<op>`)}`,
      '2. stop the app (docker compose stop app); Caddy holds incoming requests',
      `3. move the live data/ and uploads/ aside by rename into ${join(keptRoot(layout), `<op>-${label}`)} (kept; removed only by retention), rename the verified copies live`,
      startAppAfter ? '4. start the app, wait until healthy, run the smoke checks' : '4. leave the app stopped (the caller starts it)',
    ];
    if (opts.dryRun) {
      refuseBadLayout(ctx);
      for (const l of plan) log.out(l);
      log.out('dry run: nothing changed');
      return { backupId: b.id, keptDir: null, restored: false, phases };
    }
    for (const l of plan) log.info(l);
    if (!opts.yes && !pending) {
      const ok = await (opts.confirm ?? defaultConfirm)(`Replace the live data with backup ${b.id}? The current state is kept aside in ${keptRoot(layout)}/.`);
      if (!ok) throw new StepError('not confirmed: nothing changed', { step: 'restore' });
    }
    refuseBadLayout(ctx);

    // the verified copy is staged in STATE_DIR before anything live is touched: refuse now, not half way
    const space = opts.prestaged ? { fits: true, needBytes: 0 } : stagingSpace(m.database.rawBytes + m.uploads.bytes, fsInfo(layout.root).freeBytes);
    if (!space.fits) {
      throw new StepError(`not enough free space on ${describeFs(fsInfo(layout.root), formatBytes)} to stage backup ${b.id}: it needs ${formatBytes(space.needBytes)} (database and uploads, plus ${formatBytes(STAGING_MARGIN_BYTES)} to spare); nothing was changed`, {
        step: 'restore', hint: 'free space in STATE_DIR (old kept/ states: node scripts/restore.mts --list; old backups: node scripts/backup.mts --forget ...) and run it again',
      });
    }
    const op = `${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${process.pid}`;
    const staging = join(layout.root, `${STAGING_PREFIX}${op}`);
    const before = before0 ?? (await appNow(ctx));
    const j: RestoreJournal = {
      op,
      requested,
      backupId: b.id,
      staging,
      kept: keptDirFor(layout, op, label),
      phase: 'staging',
      startedAt: new Date().toISOString(),
      updatedAt: '',
      pid: process.pid,
      pidStart: processStartTime(process.pid),
      appWasRunning: before.running,
      appImage: before.image,
      startApp: startAppAfter,
    };
    setPhase(layout, j, 'staging', opts);

    // 1. verify into staging (same file system as the live state: the swap is a rename)
    let t0 = performance.now();
    const liveDataSt = existsSync(layout.data) ? statSync(layout.data) : null;
    const liveUpSt = existsSync(layout.uploads) ? statSync(layout.uploads) : null;
    try {
      if (opts.prestaged) {
        // verified when it was staged, beside the serving app: a rename, instant at any size
        renameSync(opts.prestaged, staging);
        fsyncDir(layout.root);
        log.ok(`using backup ${b.id} as staged beforehand (${opts.prestaged})`);
      } else {
        mkdirSync(staging, { mode: 0o700 });
        await stageBackup(b, staging, {
          log,
          uid: isRoot() ? APP_UID : liveDataSt?.uid,
          gid: isRoot() ? APP_GID : liveDataSt?.gid,
          dirMode: liveDataSt ? liveDataSt.mode & 0o777 : 0o750,
        });
      }
      if (liveUpSt) chmodSync(join(staging, 'uploads'), liveUpSt.mode & 0o777);
      mkdirSync(keptRoot(layout), { recursive: true, mode: 0o700 });
      mkdirSync(j.kept!, { mode: 0o700 });
      writeKeptMeta(j.kept!, { label, createdAt: new Date().toISOString(), replacedBy: b.id, op });
    } catch (err) {
      rmSync(staging, { recursive: true, force: true });
      rmSync(j.kept!, { recursive: true, force: true }); // holds only kept.json yet
      rmSync(layout.restoreJournal, { force: true });
      if (isDiskFull(err)) {
        throw new StepError(`disk full on ${describeFs(fsInfo(layout.root), formatBytes)} while staging backup ${b.id}; live data untouched`, { step: 'restore', hint: 'free space in STATE_DIR and run the restore again' });
      }
      throw err;
    }
    t('verify', t0);

    // 2-5. the critical section: from the app's stop until it is healthy on the restored data (or back
    // on the kept-aside state). Taking its own lock, a restore runs it in a worker of its own session:
    // a dropped SSH session, Ctrl-C or SIGTERM here cannot leave the app stopped halfway
    const job: RestoreCriticalContext = {
      id: `restore-${op}`, journal: j, backupId: b.id, backupSchema: m.database.userVersion, startAppOption: opts.startApp,
      appTag: opts.appTag, healthTimeoutMs: opts.healthTimeoutMs, smoke: opts.smoke ?? true, ca: opts.ca,
      phases: { ...phases }, recovered: recovered?.what,
      notify: opts.notice ? { release: opts.notice.release, elapsedMs: opts.notice.elapsedMs() } : undefined,
    };
    if (lock && opts.detach !== false) {
      opts.notice?.handOff(); // the worker notifies, wherever it runs
      return await runDetached(ctx, log, lock, { kind: 'restore' as const, ...job });
    }
    return await restoreCritical(ctx, log, job, opts);
  } finally {
    lock?.release();
  }
}

/**
 * Stop the app, move the live state aside and swap the verified copy in, start the app and wait until
 * healthy (or put the kept-aside state back), clean up, smoke. The caller holds the lock; the journal
 * is at phase staging. Runs in the detached worker (critical-worker.mts) or inline under a caller's lock.
 */
export async function restoreCritical(ctx: OpsEnv, log: Logger, c: RestoreCriticalContext, opts: { onPhase?: (p: RestorePhase) => void } = {}): Promise<RestoreResult> {
  const layout = ctx.layout;
  // this process does the work from here: recovery must leave the journal to it while it runs
  const j: RestoreJournal = { ...c.journal, pid: process.pid, pidStart: processStartTime(process.pid) };
  const phases = { ...c.phases };
  const t = (name: string, t0: number) => (phases[name] = Math.round(performance.now() - t0));
  const startAppAfter = j.startApp;

  // 2. stop the app: from here until healthy, Caddy holds the requests (not when the swap's renames
  // could not work: refused while the app still runs)
  assertSwapRenames(layout, j.staging, j.kept!);
  setPhase(layout, j, 'stopping', opts);
  const hold0 = performance.now();
  let t0 = hold0;
  if (j.appWasRunning) await stopApp(ctx, log);
  t('stop', t0);

  // 3. move aside and swap: renames only, instant whatever the database size
  setPhase(layout, j, 'swapping', opts);
  t0 = performance.now();
  const hadLive = existsSync(layout.data) || existsSync(layout.uploads);
  swapIn(layout, j.staging, j.kept!);
  setPhase(layout, j, 'swapped', opts);
  t('swap', t0);
  log.ok(`swapped in backup ${c.backupId} in ${formatDuration(phases.swap)}${hadLive ? `; the replaced state is kept in ${j.kept}` : ''}`);

  // 4. start, wait healthy
  if (startAppAfter) {
    setPhase(layout, j, 'starting', opts);
    t0 = performance.now();
    try {
      await startApp(ctx, log, j, c.appTag, c.healthTimeoutMs ?? 120_000);
    } catch (err) {
      log.error(`the app did not come up on backup ${c.backupId}: ${errorMessage(err)}`);
      if (err instanceof GateError && err.diagnostics) log.error(`diagnostics:\n${err.diagnostics}`);
      setPhase(layout, j, 'rolling-back', opts);
      await recoverRestore(ctx, log, { healthTimeoutMs: c.healthTimeoutMs, appTag: c.appTag });
      throw new StepError(`restore of ${c.backupId} rolled back: the app did not become healthy on it; the previous live state is back`, {
        step: 'restore',
        hint: `check the app logs (docker compose logs app); the backup's schema is ${c.backupSchema}: it may need another app release`,
      });
    }
    t('start', t0);
    if (j.appWasRunning) phases.hold = Math.round(performance.now() - hold0);
    setPhase(layout, j, 'started', opts);
  } else if (c.startAppOption !== false) {
    log.warn('the app was not running before the restore: left stopped (start it with: docker compose up -d app, or rollout)');
  }

  setPhase(layout, j, 'cleanup', opts);
  rmSync(j.staging, { recursive: true, force: true });
  const keptDir = hadLive ? j.kept! : null;
  if (!hadLive) rmSync(j.kept!, { recursive: true, force: true });
  rmSync(layout.restoreJournal, { force: true });
  fsyncDir(layout.root);

  // 5. smoke
  let smoke: RestoreResult['smoke'];
  if (startAppAfter && c.smoke) {
    const runSmoke = await loadSmoke();
    if (runSmoke) {
      t0 = performance.now();
      const step = log.step('smoke checks');
      const r = await runSmoke(ctx, { log, ...(c.ca ? { ca: c.ca } : {}) });
      const failed = r.results.filter((x) => x.status === 'fail');
      if (r.failed) step.fail(failed.map((f) => `${f.name}: ${f.detail}`).join('; '));
      else step.done(`${r.results.filter((x) => x.status === 'pass').length} passed, ${r.results.filter((x) => x.status === 'warn').length} warnings`);
      smoke = { failed: r.failed, results: r.results };
      t('smoke', t0);
    }
  }
  log.ok(`restored ${c.backupId}${keptDir ? `; the previous state is kept in ${keptDir}` : ''} (${Object.entries(phases).map(([k, v]) => `${k} ${formatDuration(v)}`).join(', ')})`);
  if (smoke?.failed) {
    throw new StepError(`restore of ${c.backupId} done, but smoke checks failed`, {
      step: 'smoke',
      hint: `inspect: smoke.mts --config ${ctx.file}${c.ca ? ` --ca ${c.ca}` : ''}; the previous state is in ${keptDir ?? '(none)'} (RUNBOOK: Restore, "go back to the kept-aside state")`,
    });
  }
  return { backupId: c.backupId, keptDir, restored: true, recovered: c.recovered, phases, smoke };
}

/** The critical section in the detached worker: it reports the restore when the caller handed its notice over. */
export async function restoreCriticalNotified(ctx: OpsEnv, log: Logger, c: RestoreCriticalContext): Promise<RestoreResult> {
  if (!c.notify) return restoreCritical(ctx, log, c);
  return withNotice(
    { env: ctx, log, operation: 'restore', release: c.notify.release, backup: c.backupId, elapsedBeforeMs: c.notify.elapsedMs },
    async (n) => {
      const r = await restoreCritical(ctx, log, c);
      n.release = currentReleaseLabel(ctx);
      return r;
    },
    (r) => ({ outcome: 'ok', backup: r.backupId }),
  );
}

/** room kept free beyond the staged copy (the database's WAL, logs, the journal) */
export const STAGING_MARGIN_BYTES = 64 * 2 ** 20;

/** Pure: whether a staged copy of `bytes` fits in `freeBytes` (unknown free space: assumed to fit). */
export function stagingSpace(bytes: number, freeBytes: number): { fits: boolean; needBytes: number } {
  const needBytes = bytes + STAGING_MARGIN_BYTES;
  return { fits: !Number.isFinite(freeBytes) || freeBytes >= needBytes, needBytes };
}
