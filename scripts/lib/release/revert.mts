// Going back: after a failed gate (or for an interrupted release) start the previous image again and
// restore the pre-deploy backup only when the failed release moved the schema.
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import { errorMessage } from '../cli/errors.mts';
import { processStartTime } from '../host/lock.mts';
import { runRecovery } from '../recovery/run.mts';
import { appendJournal, newReleaseId, readJournal } from './journal.mts';
import type { RollbackDecision } from './plan.mts';
import { runSmoke } from '../checks/smoke.mts';
import { healthGate, healthGateMs, telegramGate, type GateOptions } from './gates.mts';

// Imported when used: backup and restore pull in much that a plain rollout without a database never needs.
/** keepImages: rollout's --keep-images, so the bound keeps the backups a rollback to those images uses */
export async function preDeployBackup(env: OpsEnv, log: Logger, appTag: string | null, keepImages?: number): Promise<string> {
  const { runBackup } = await import('../backup/backup.mts');
  const r = await runBackup({ ctx: env, layout: env.layout, reason: 'pre-deploy', appTag: appTag ?? undefined, lockHeld: true, log });
  // bounded at creation: the daily retention alone lets a day of deploys pile them up
  const { boundPreDeployBackups } = await import('../backup/backup.mts');
  try {
    boundPreDeployBackups(env.layout, log, { protectedIds: [r.id], keepImages });
  } catch (err) {
    // the new backup is published and verified: the deploy goes on, the daily retention catches up
    log.warn(`bounding the pre-deploy backups failed (the new backup ${r.id} is fine): ${errorMessage(err)}`);
  }
  return r.id;
}

/**
 * Restore a backup with the app stopped, for a schema rollback; the caller starts the app with the
 * image it wants and runs its own gates. The data it replaces is moved aside whole (a rename, after
 * the stop: no write the app accepted is lost) into STATE_DIR/kept/<op>-pre-rollback, returned.
 */
export async function restoreBackup(env: OpsEnv, log: Logger, backupId: string, appTag: string | null): Promise<string | null> {
  const { runRestore } = await import('../restore/restore.mts');
  const { completeStage } = await import('../restore/prestage.mts');
  // staged beforehand while the app served (recovery's stage-backup, rollback --with-db): no copy now
  const prestaged = completeStage(env.layout, backupId) ?? undefined;
  const r = await runRestore({
    ctx: env, from: backupId, lockHeld: true, yes: true, log,
    appTag: appTag ?? undefined, startApp: false, smoke: false, keptLabel: 'pre-rollback', prestaged,
  });
  // where the replaced live state went: rollback --with-db puts it back when its gate fails
  return r.keptDir;
}

// ---------------------------------------------------------------------------------------------
// going back

export interface RevertInput {
  env: OpsEnv;
  log: Logger;
  failed: { id: string; appTag?: string; backupId?: string | null; userVersionBefore?: number | null; phase?: string };
  previous: { id: string; appTag: string } | null;
  reason: string;
  kind: 'rollback' | 'recovery';
  gates: GateOptions;
  operator: string;
}

/**
 * Automatic rollback after a failed gate: back to the previous image. Its journal line names its own
 * target (appTag) and the release it undoes (revertOf, failedAppTag), never the failed tag as a
 * "previous" one, so an interrupted revert is finished, not re-deployed. The work itself is the
 * recovery runner's: stop the failed app, read user_version only then, restore the pre-deploy backup
 * when it moved (unreadable: stop and ask), start the target. The failed release is marked
 * rolled-back only when that succeeded.
 */
export async function revert(i: RevertInput): Promise<{ ok: boolean; decision: RollbackDecision; rollbackId: string; error?: string; next?: string }> {
  const { env, log } = i;
  log.warn(`${i.kind === 'recovery' ? 'recovering' : 'rolling back'} ${i.failed.id}: ${i.reason}`);
  const journal = readJournal(env.layout.releases);
  const rollbackId = newReleaseId(new Date(), i.kind, journal.releases.map((r) => r.id));
  const toAppTag = i.previous?.appTag && i.previous.appTag !== i.failed.appTag ? i.previous.appTag : null;
  appendJournal(env.layout.releases, {
    id: rollbackId, kind: 'rollback', appTag: toAppTag ?? undefined, image: toAppTag ? `${env.appImage}:${toAppTag}` : undefined,
    operator: i.operator, startedAt: new Date().toISOString(), result: 'in-progress', phase: 'swap',
    revertOf: i.failed.id, failedAppTag: i.failed.appTag, previousRelease: i.failed.id, target: i.previous?.id ?? null,
    pid: process.pid, pidStart: processStartTime(process.pid), backupId: null, reason: `automatic ${i.kind} of ${i.failed.id}: ${i.reason}`,
  });
  appendJournal(env.layout.releases, { id: i.failed.id, reason: i.reason, rollbackId });
  const t = performance.now();
  const rec = await runRecovery(env, log, { selfPid: process.pid, healthTimeoutS: i.gates.healthTimeoutS, stopTimeoutS: i.gates.stopTimeoutS });
  const ok = rec.exitCode === 0;
  const why: string[] = [];
  const before = i.failed.userVersionBefore ?? null;
  const uv = rec.judgedUserVersion;
  if (before === null) why.push('no database before this release: nothing to restore, data kept');
  else if (uv?.kind === 'unreadable') why.push(`user_version could not be read after the failed app stopped (${uv.error}): not restoring; the app stays stopped until you decide`);
  else if (rec.restored) why.push(`schema moved: user_version ${before} -> ${uv?.kind === 'read' ? uv.value : '?'}; old code cannot run on the new schema, so the pre-deploy backup ${i.failed.backupId} is restored`);
  else why.push(`schema unchanged (user_version ${uv?.kind === 'read' ? uv.value : before}): data kept, no restore`);
  why.push(toAppTag ? `going back to release ${i.previous!.id} (image tag ${toAppTag})` : 'no earlier successful release: the failed app container is stopped, nothing to go back to');
  for (const w of why) log.warn(`  - ${w}`);
  const decision: RollbackDecision = { toAppTag, toRelease: i.previous?.id ?? null, restoreDb: rec.restored, backupId: i.failed.backupId ?? null, why };
  if (ok && toAppTag) {
    // reported, not acted on: there is nowhere further to go
    try {
      log.ok(await healthGate(env, toAppTag, { smoke: i.gates.smoke, timeoutMs: healthGateMs(i.gates.healthTimeoutS) }));
      // the revert's own swap: from its start until the app it went back to is healthy (now)
      const swapWindow = { beganAt: Date.now() - (performance.now() - t), endedAt: Date.now() };
      const tg = await telegramGate(env, new Date(swapWindow.beganAt).toISOString(), { timeoutMs: (i.gates.telegramTimeoutS ?? 60) * 1000, pendingMax: i.gates.pendingMax, apiRoot: i.gates.smoke?.telegramApiRoot, swapWindow });
      log.info(`telegram: ${tg}`);
      if (!i.gates.skipSmoke) {
        const rep = await runSmoke(env, { ...(i.gates.smoke ?? {}), expectVersion: toAppTag, log, swapWindow });
        const bad = rep.results.filter((r) => r.status === 'fail');
        if (bad.length) log.error(`smoke after the ${i.kind} still fails: ${bad.map((r) => `${r.name} (${r.detail})`).join('; ')}`);
        else log.ok(`smoke after the ${i.kind}: no check failed`);
      }
    } catch (err) {
      log.error(`after the ${i.kind}: ${errorMessage(err)}`);
    }
  }
  const error = ok ? undefined : rec.error ?? (rec.next ? `stopped to ask: ${rec.next}` : 'see above');
  if (!ok) log.error(`${i.kind} FAILED: ${error}`);
  return { ok: ok && Boolean(toAppTag), decision, rollbackId, error: toAppTag ? error : error ?? 'nothing to go back to', next: rec.next };
}
