// Manual rollback: back to the previous successful release (or --to one), optionally with its data
// (--with-db). The same swap and gates as a rollout; recorded in the journal as kind "rollback".
import { createPhaseTimer, formatDuration, type Logger } from '../cli/log.mts';
import type { OpsEnv } from '../config/env.mts';
import { ConfigError, StepError, UsageError, errorMessage } from '../cli/errors.mts';
import { acquireLock, currentOperator, processStartTime } from '../host/lock.mts';
import {
  appendJournal, backupWhileLive, currentRelease, newReleaseId, previousSuccessful, readJournal, resolveTarget,
  ResolveError, type Release,
} from './journal.mts';
import { preflightExitCode, runPreflight } from '../checks/preflight.mts';
import { readUserVersion } from '../checks/smoke.mts';
import { GateError } from '../cli/errors.mts';
import { imageIdArgs } from '../commands/docker.mts';
import { docker } from '../docker/run.mts';
import { stopApp } from '../docker/app-lifecycle.mts';
import { liveApp } from '../docker/app-container.mts';
import { healthGate, healthGateMs, smokeGate, telegramGate } from './gates.mts';
import { OperationNotice, releaseLabel, withNotice } from '../notify/operation.mts';
import { releaseReport } from '../notify/reports.mts';
import { recoverUnfinished } from './recovery.mts';
import { warnWithoutNet } from '../schedules/net.mts';
import { restoreBackup, revert } from './revert.mts';
import { revertWithDb } from './revert-with-db.mts';
import { prestageBackup } from '../restore/prestage.mts';
import { swapApp, swapWindowOf } from './swap.mts';
import { activateFrontend, observeFrontend } from './frontend.mts';
import { shapeOfRelease, pollingBot } from '../config/shape.mts';
import type { CommonOptions, CriticalOptions, OpResult } from './rollout.mts';
import { runDetached } from './critical.mts';
import { syncAppEnvFile } from '../config/app-env.mts';

export interface RollbackOptions extends CommonOptions {
  to?: string;
  withDb?: boolean;
  /** confirmation for --with-db (the script asks; tests pass true) */
  confirm?: (question: string) => Promise<boolean>;
  dryRun?: boolean;
  /** roll back although the database schema is newer than the target ran with */
  force?: boolean;
  skipPreflight?: boolean;
  /** run the critical section in a detached worker (default true) */
  detach?: boolean;
}

export interface RollbackPlan {
  target: Release;
  current: Release | undefined;
  liveTag: string | null;
  backupId: string | null;
  backupFrom: string | null;
  userVersionNow: number | null;
  warnings: string[];
}

/** Pure-ish planning (journal + live facts in, plan out); throws UsageError/ConfigError with a hint. */
export function planRollback(releases: Release[], o: { to?: string; withDb?: boolean; liveTag: string | null; userVersionNow: number | null; force?: boolean }): RollbackPlan {
  let target: Release | undefined;
  if (o.to) {
    try {
      target = resolveTarget(releases, o.to);
    } catch (e) {
      if (e instanceof ResolveError) throw new UsageError(e.message + (e.candidates.length ? `; candidates: ${e.candidates.join(', ')}` : ''), { hint: 'list releases: node scripts/rollback.mts --list' });
      throw e;
    }
  } else {
    target = previousSuccessful(releases);
    if (!target) throw new UsageError('there is no earlier successful release to roll back to', { hint: 'node scripts/rollback.mts --list' });
  }
  const current = currentRelease(releases);
  const warnings: string[] = [];
  if (o.liveTag === target.appTag) warnings.push(`the app already runs ${target.appTag}; the rollback restarts it and re-runs the gates`);
  let backupId: string | null = null;
  let backupFrom: string | null = null;
  if (o.withDb) {
    const b = backupWhileLive(releases, target);
    if (!b) throw new UsageError(`no pre-deploy backup holds the data of ${target.id}: no later release took one`, { hint: 'restore a backup by hand: node scripts/restore.mts --list' });
    backupId = b.backupId;
    backupFrom = b.release.id;
  } else {
    const targetSchema = typeof target.userVersionAfter === 'number' ? target.userVersionAfter : null;
    if (targetSchema !== null && o.userVersionNow !== null && o.userVersionNow > targetSchema) {
      const msg = `the database schema is newer (user_version ${o.userVersionNow}) than ${target.id} ran with (${targetSchema}): its code may not start on it`;
      if (!o.force) throw new ConfigError(msg, { hint: 'add --with-db to also restore the data from before the schema change (writes since are lost), or --force to try anyway' });
      warnings.push(`${msg} (--force)`);
    }
  }
  return { target, current, liveTag: o.liveTag, backupId, backupFrom, userVersionNow: o.userVersionNow, warnings };
}

/** The rollback, notified once: here up to the critical section, then by the critical section (inline or detached). */
export async function runRollback(o: RollbackOptions): Promise<OpResult> {
  return withNotice(
    { env: o.env, log: o.log, operation: 'rollback', enabled: o.notify !== false, apiRoot: o.smoke?.telegramApiRoot },
    (n) => rollbackSteps(o, n),
    releaseReport,
  );
}

async function rollbackSteps(o: RollbackOptions, n: OperationNotice): Promise<OpResult> {
  const { env, log } = o;
  const operator = o.operator ?? currentOperator();
  const { phases, timed } = createPhaseTimer();

  if (!o.skipPreflight) {
    const results = await timed('preflight', () => runPreflight(env, {}));
    for (const r of results.filter((x) => !x.ok)) log.error(`preflight ${r.name}: ${r.message}${r.fix ? ` (fix: ${r.fix})` : ''}`);
    const code = preflightExitCode(results);
    const bad = results.find((x) => !x.ok);
    if (code) return { id: '', exitCode: code, result: 'failed', phases, preflight: results, reason: `preflight failed: ${bad ? `${bad.name}: ${bad.message}` : 'see above'}` };
  }

  const plan0 = planRollback(readJournal(env.layout.releases).releases, {
    to: o.to, withDb: o.withDb, liveTag: (await liveApp(env))?.tag ?? null, userVersionNow: readUserVersion(env.layout.db), force: o.force,
  });
  for (const w of plan0.warnings) log.warn(w);
  const describe = (p: typeof plan0) =>
    `roll back ${p.liveTag ?? '(no app)'} -> ${p.target.appTag} (release ${p.target.id}, ${p.target.startedAt ?? ''})` +
    (p.backupId ? `, restoring backup ${p.backupId} (taken before ${p.backupFrom} replaced it)` : ', data kept');
  if (o.dryRun) {
    log.out(`Plan (dry run, nothing changed): ${describe(plan0)}`);
    return { id: '(dry run)', exitCode: 0, result: 'dry-run', appTag: plan0.target.appTag, phases };
  }
  if (o.withDb) {
    const q = `Restore backup ${plan0.backupId}? Every write since it was taken leaves the live database (the current data is moved aside whole into STATE_DIR/kept/, nothing is deleted).`;
    if (!o.confirm || !(await o.confirm(q))) throw new UsageError('--with-db not confirmed: nothing changed', { hint: 'answer yes, or pass --yes' });
  }

  const lock = await timed('lock', () => acquireLock(env.layout, { operation: 'rollback', operator, waitMs: (o.lockWaitS ?? 0) * 1000, log }));
  try {
    syncAppEnvFile(env, log); // the app's own keys, for the swap and any revert
    await warnWithoutNet(env, log, 'rollback'); // says what an interruption would cost without recovery
    await recoverUnfinished(env, log, o, operator);
    // re-plan under the lock: the journal may have changed while we waited or recovered
    const journal = readJournal(env.layout.releases);
    const live = await liveApp(env);
    const plan = planRollback(journal.releases, { to: o.to ?? plan0.target.id, withDb: o.withDb, liveTag: live?.tag ?? null, userVersionNow: readUserVersion(env.layout.db), force: o.force });
    const target = plan.target;
    const appTag = target.appTag!;
    log.info(describe(plan));
    const id = newReleaseId(new Date(), 'rollback', journal.releases.map((r) => r.id));
    n.release = releaseLabel(appTag, id);
    const previous = live && live.status === 'running'
      ? { id: plan.current && plan.current.appTag === live.tag ? plan.current.id : 'untracked', appTag: live.tag }
      : plan.current ? { id: plan.current.id, appTag: plan.current.appTag! } : null;
    const userVersionBefore = readUserVersion(env.layout.db);
    appendJournal(env.layout.releases, {
      id, kind: 'rollback', gitSha: target.gitSha, image: `${env.appImage}:${appTag}`, appTag, operator, startedAt: new Date().toISOString(),
      result: 'in-progress', phase: plan.backupId ? 'restore' : 'swap', previousRelease: previous?.id ?? null, previousAppTag: previous?.appTag ?? null,
      backupId: plan.backupId, withDb: Boolean(plan.backupId), userVersionBefore, pid: process.pid, pidStart: processStartTime(process.pid), reason: `manual rollback to ${target.id}${o.withDb ? ' with its data' : ''}`, target: target.id,
    });

    // the critical section (restore, swap, gates, going back) runs in a detached worker of its own session
    const ctx: RollbackCriticalContext = {
      id, appTag, target, backupId: plan.backupId, previous, userVersionBefore, operator, phases: { ...phases },
      options: { healthTimeoutS: o.healthTimeoutS, telegramTimeoutS: o.telegramTimeoutS, pendingMax: o.pendingMax, smoke: o.smoke ? { ca: o.smoke.ca, telegramApiRoot: o.smoke.telegramApiRoot, connect: o.smoke.connect } : undefined, skipSmoke: o.skipSmoke, stopTimeoutS: o.stopTimeoutS, notify: o.notify },
      elapsedMs: n.elapsedMs(),
    };
    n.handOff(); // the critical section notifies, wherever it runs
    if (o.detach === false) return await rollbackCritical(env, log, ctx);
    return await runDetached(env, log, lock, { kind: 'rollback', ...ctx });
  } finally {
    lock.release();
  }
}

export type { Logger };


export interface RollbackCriticalContext {
  id: string;
  appTag: string;
  target: Release;
  backupId: string | null;
  previous: { id: string; appTag: string } | null;
  userVersionBefore: number | null;
  operator: string;
  phases: Record<string, number>;
  options: CriticalOptions;
  /** how long the rollback had run before the critical section (the parent's monotonic clock) */
  elapsedMs?: number;
}

/**
 * Restore (--with-db), swap, gates, and going back on a failed gate. The caller holds the lock. Its
 * one notification is the rollback's (a --with-db restore is part of it, not a "restore" of its own).
 */
export async function rollbackCritical(env: OpsEnv, log: Logger, c: RollbackCriticalContext): Promise<OpResult> {
  return withNotice(
    { env, log, operation: 'rollback', release: releaseLabel(c.appTag, c.id), backup: c.backupId ?? undefined, enabled: c.options.notify !== false, apiRoot: c.options.smoke?.telegramApiRoot, elapsedBeforeMs: c.elapsedMs },
    (n) => rollbackCriticalSteps(env, log, c, n),
    releaseReport,
  );
}

async function rollbackCriticalSteps(env: OpsEnv, log: Logger, c: RollbackCriticalContext, n: OperationNotice): Promise<OpResult> {
  const { id, appTag, target, previous, userVersionBefore, operator, phases } = c;
  const o = c.options;
  const plan = { backupId: c.backupId };
  /** where the restore moved the live state: put back if a gate fails */
  let keptPre: string | null = null;
  const { timed } = createPhaseTimer(phases);
  appendJournal(env.layout.releases, { id, pid: process.pid, pidStart: processStartTime(process.pid) });
  let phase = 'swap';
  try {
    const img = await docker(imageIdArgs(`${env.appImage}:${appTag}`), { nothrow: true });
    if (img.exitCode !== 0) {
      throw new StepError(`image ${env.appImage}:${appTag} of ${target.id} no longer exists (pruned?)`, { step: 'swap', hint: `rebuild it: git -C <repo> checkout ${target.gitSha ?? '<sha>'} && node scripts/rollout.mts --config ${env.file}` });
    }
    if (plan.backupId) {
      phase = 'restore';
      // copied and verified beside the live data while the app still serves: the stop below lasts the renames
      await timed('stage', () => prestageBackup(env, log, plan.backupId!));
      const s = log.step(`restore backup ${plan.backupId}`);
      // stop first so nothing writes while the data is replaced
      // (through the drain, as every stop: an app without readiness of its own gets Caddy routing around it first)
      await stopApp(env, log, 'rollback --with-db: stop the app', { timeoutS: o.stopTimeoutS, step: 'restore' });
      keptPre = await timed('restore', () => restoreBackup(env, log, plan.backupId!, appTag));
      // from here on an interruption is finished forward: the data is the target's
      appendJournal(env.layout.releases, { id, phase: 'swap', dbRestored: true, keptPre, phases: { ...phases } });
      s.done();
    }
    phase = 'swap';
    // the target's front end first, as rollout does (a release from before per-release front ends has none)
    let proxyReloadAt: number | undefined;
    if (observeFrontend(env).staged.includes(appTag)) {
      proxyReloadAt = Date.now();
      await timed('frontend_switch', () => activateFrontend(env, appTag, log));
    } else if (['webhook', 'polling'].includes(shapeOfRelease(readJournal(env.layout.releases).releases, appTag) ?? '')) log.debug(`${appTag} has no Mini App (bot shape ${shapeOfRelease(readJournal(env.layout.releases).releases, appTag)}): no front end to switch`);
    else log.warn(`no front end staged for ${appTag}: the Mini App served stays as it is`);
    const ss = log.step(`swap app ${previous?.appTag ?? '?'} -> ${appTag}`);
    const swap = await timed('swap', () => swapApp(env, appTag, { log, healthTimeoutS: o.healthTimeoutS, stopTimeoutS: o.stopTimeoutS }));
    ss.done(`stop ${formatDuration(swap.stopMs)}, start ${formatDuration(swap.startMs)}, healthy ${formatDuration(swap.startToHealthyMs)} after start`);
    // the target's front end with its app (a release from before per-release front ends keeps what is served)
    appendJournal(env.layout.releases, { id, phase: 'health', phases: { ...phases } });
    phase = 'health';
    log.ok(await timed('health', () => healthGate(env, appTag, { smoke: o.smoke, timeoutMs: healthGateMs(o.healthTimeoutS) })));
    const swapWindow = swapWindowOf(swap, proxyReloadAt);
    phase = 'telegram';
    log.ok(`telegram: ${await timed('telegram', () => telegramGate(env, swap.startedAt, { timeoutMs: (o.telegramTimeoutS ?? 60) * 1000, pendingMax: o.pendingMax, apiRoot: o.smoke?.telegramApiRoot, swapWindow }))}`);
    phase = 'smoke';
    let smoke;
    if (!o.skipSmoke) smoke = await timed('smoke', () => smokeGate(env, appTag, { smoke: { ...o.smoke, swapWindow }, log }));
    appendJournal(env.layout.releases, { id, result: 'ok', endedAt: new Date().toISOString(), phases: { ...phases }, dbRestored: Boolean(plan.backupId), userVersionAfter: readUserVersion(env.layout.db) });
    await n.report({ outcome: 'ok' });
    log.ok(`rollback ${id} done: ${pollingBot(env.values) ? 'the polling bot' : env.appUrl} runs ${appTag}`);
    return { id, exitCode: 0, result: 'ok', appTag, phases, swap, smoke };
  } catch (err) {
    log.error(`rollback ${phase} FAILED: ${errorMessage(err)}`);
    if (err instanceof GateError && err.diagnostics) log.error(`diagnostics:\n${err.diagnostics}`);
    appendJournal(env.layout.releases, { id, phase, phases: { ...phases }, reason: `${phase} failed: ${errorMessage(err)}` });
    if (plan.backupId && keptPre) {
      // undo only what it did: the release and the data live before it (renamed back from kept/), never a mix
      const rb = await revertWithDb({ env, log, id, appTag, previous, keptPre, healthTimeoutS: o.healthTimeoutS, stopTimeoutS: o.stopTimeoutS });
      const endedAt = new Date().toISOString();
      const decision = {
        toAppTag: previous?.appTag ?? null, toRelease: previous?.id ?? null, restoreDb: false, backupId: null,
        why: [`the data live before the rollback is renamed back from ${keptPre}`, `the state the failed attempt served on is kept in ${rb.keptFailed}`],
      };
      if (rb.ok) {
        appendJournal(env.layout.releases, { id, result: 'rolled-back', endedAt, dbRestored: false, keptFailed: rb.keptFailed, rolledBackTo: previous?.appTag ?? null, userVersionAfter: readUserVersion(env.layout.db) });
        log.warn(`rollback to ${appTag} failed in ${phase}; back on ${previous ? `${previous.appTag} (release ${previous.id})` : 'no app, as before the rollback'} with the data live before it; the state the failed attempt served on is kept in ${rb.keptFailed}`);
        return { id, exitCode: 1, result: 'rolled-back', appTag, phases, rollback: { decision, ok: true }, reason: `${phase} failed: ${errorMessage(err)}` };
      }
      log.error(`rollback to ${appTag} failed in ${phase}, and going back FAILED: ${rb.error}`);
      if (rb.journaled) {
        // left open: the next recovery run finishes going back (recovery/decide.mts, revertData)
        log.error(`next: the recovery timer finishes going back; to see or do it now: node scripts/recover.mts --config ${env.file} --dry-run. Nothing was deleted: the data live before the rollback is in ${keptPre} or live, the failed attempt's in ${rb.keptFailed}`);
      } else {
        // nothing was moved: the target still runs on the backup; the operator decides
        appendJournal(env.layout.releases, { id, result: 'failed', endedAt, reason: `${phase} failed: ${errorMessage(err).split('\n')[0]}; going back failed before it changed anything: ${rb.error}` });
        log.error(`next: node scripts/smoke.mts --config ${env.file}; the data live before the rollback is kept in ${keptPre} (node scripts/restore.mts --config ${env.file} --list; RUNBOOK, "Go back to the kept-aside state")`);
      }
      return { id, exitCode: 1, result: 'failed', appTag, phases, rollback: { decision, ok: false }, revertError: rb.error, reason: errorMessage(err) };
    }
    if (plan.backupId) {
      // failed before its restore moved anything: the live data is untouched; the previous app goes back below
      log.warn(`the restore of ${plan.backupId} did not replace the live data: going back to ${previous?.appTag ?? 'nothing'} with the data as it is`);
    }
    const rb = await revert({
      env, log, operator, gates: o, kind: 'rollback',
      failed: { id, appTag, backupId: null, userVersionBefore, phase },
      previous,
      reason: `rollback ${phase} gate failed: ${errorMessage(err).split('\n')[0]}`,
    });
    log.warn(`rollback to ${appTag} failed in ${phase}; ${rb.ok ? `back on ${rb.decision.toAppTag}` : `and going back FAILED: ${rb.error}`}`);
    if (rb.next) log.error(`next: ${rb.next}`);
    return { id, exitCode: 1, result: rb.ok ? 'rolled-back' : 'failed', appTag, phases, rollback: { decision: rb.decision, ok: rb.ok }, revertError: rb.ok ? undefined : rb.error, reason: `${phase} failed: ${errorMessage(err)}` };
  }
}
