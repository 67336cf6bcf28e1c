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
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline/promises';
import { StepError, UsageError, errorMessage } from '../cli/errors.mts';
import { acquireLock, type LockHandle } from '../host/lock.mts';
import { formatBytes, formatDuration, type Logger } from '../cli/log.mts';
import { stateLayout, type StateLayout } from '../config/state.mts';
import type { OpsEnv } from '../config/env.mts';
import { APP_GID, APP_UID, fsyncDir, isDiskFull, isRoot, fsInfo, describeFs } from '../host/fsutil.mts';
import { runBackup } from '../backup/backup.mts';
import { STAGING_PREFIX, readRestoreJournal, setPhase, type RestoreJournal, type RestorePhase } from './journal.mts';
import { resolveBackup, stageBackup } from './stage.mts';
import { swapBack, swapIn } from './swap.mts';
import { appState, startApp, stopApp } from './app.mts';

export type { RestoreJournal, RestorePhase } from './journal.mts';
export { readRestoreJournal } from './journal.mts';
export { CorruptBackupError, resolveBackup, stageBackup } from './stage.mts';
export { swapBack, swapIn } from './swap.mts';

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
}

export interface RestoreResult {
  backupId: string;
  safetyBackupId: string | null;
  restored: boolean;
  recovered?: string;
  phases: Record<string, number>;
  smoke?: { failed: boolean; results: unknown[] };
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
    const b = resolveBackup(layout, opts.from);
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
