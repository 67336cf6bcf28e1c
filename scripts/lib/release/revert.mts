// Going back: after a failed gate (or for an interrupted release) start the previous image again and
// restore the pre-deploy backup only when the failed release moved the schema.
import { $ } from 'zx';
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import { formatDuration } from '../cli/log.mts';
import { GateError, StepError, errorMessage } from '../cli/errors.mts';
import { composeEnvFor, swapCommands } from '../commands/compose.mts';
import { imageExists } from '../docker/app-container.mts';
import { appendJournal, newReleaseId, readJournal } from './journal.mts';
import { decideRollback, type RollbackDecision } from './plan.mts';
import { readUserVersion, runSmoke } from '../checks/smoke.mts';
import { swapApp } from './swap.mts';
import { healthGate, telegramGate, type GateOptions } from './gates.mts';

interface BackupApi {
  runBackup(o: Record<string, unknown>): Promise<{ id: string; dir?: string }>;
}
interface RestoreApi {
  runRestore(o: Record<string, unknown>): Promise<unknown>;
}

async function backupApi(): Promise<BackupApi> {
  try {
    return (await import('../backup/backup.mts')) as unknown as BackupApi;
  } catch (e) {
    throw new StepError(`scripts/lib/backup.mts is not available: ${errorMessage(e)}`, { step: 'backup', hint: 'pass --skip-backup only if you accept that a schema-changing release cannot be undone' });
  }
}

export async function preDeployBackup(env: OpsEnv, log: Logger, appTag: string | null): Promise<string> {
  const api = await backupApi();
  const r = await api.runBackup({ ctx: env, env, layout: env.layout, reason: 'pre-deploy', appTag: appTag ?? undefined, lockHeld: true, log });
  return r.id;
}

/** Restore a backup with the app stopped; the caller starts the app with the image it wants. */
export async function restoreBackup(env: OpsEnv, log: Logger, backupId: string, appTag: string | null): Promise<void> {
  let api: RestoreApi;
  try {
    api = (await import('../restore/restore.mts')) as unknown as RestoreApi;
  } catch (e) {
    throw new StepError(`scripts/lib/restore.mts is not available: ${errorMessage(e)}`, { step: 'restore' });
  }
  await api.runRestore({
    ctx: env, env, layout: env.layout, from: backupId, lockHeld: true, yes: true, log,
    // the rollout decides which image runs afterwards and runs its own gates
    appTag: appTag ?? undefined, startApp: false, smoke: false, safetyBackup: true,
  });
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
 * Automatic rollback after a failed gate (or recovery of an interrupted release): back to the previous
 * image; the pre-deploy backup is restored only if the failed release moved user_version.
 * Journals both the failed release (rolled-back) and the rollback itself.
 */
export async function revert(i: RevertInput): Promise<{ ok: boolean; decision: RollbackDecision; rollbackId: string; error?: string }> {
  const { env, log } = i;
  const uvAfter = readUserVersion(env.layout.db);
  const decision = decideRollback({
    previous: i.previous,
    userVersionBefore: i.failed.userVersionBefore,
    userVersionAfter: uvAfter,
    backupId: i.failed.backupId,
  });
  log.warn(`${i.kind === 'recovery' ? 'recovering' : 'rolling back'} ${i.failed.id}: ${i.reason}`);
  for (const w of decision.why) log.warn(`  - ${w}`);
  const journal = readJournal(env.layout.releases);
  const rollbackId = newReleaseId(new Date(), i.kind, journal.releases.map((r) => r.id));
  const startedAt = new Date().toISOString();
  appendJournal(env.layout.releases, {
    id: rollbackId, kind: i.kind, appTag: decision.toAppTag ?? undefined, image: decision.toAppTag ? `${env.appImage}:${decision.toAppTag}` : undefined,
    operator: i.operator, startedAt, result: 'in-progress', phase: 'swap', previousRelease: i.failed.id, previousAppTag: i.failed.appTag,
    backupId: decision.restoreDb ? decision.backupId : null, reason: `automatic ${i.kind} of ${i.failed.id}: ${i.reason}`,
  });
  const phases: Record<string, number> = {};
  let ok = true;
  let error: string | undefined;
  try {
    const e = composeEnvFor(env, decision.toAppTag);
    const cmds = swapCommands(env, { stopTimeoutS: i.gates.stopTimeoutS });
    let t = performance.now();
    await $({ quiet: true, env: e })`docker ${cmds.stop}`;
    phases.stop = Math.round(performance.now() - t);
    if (decision.restoreDb && decision.backupId) {
      const s = log.step(`restore pre-deploy backup ${decision.backupId}`);
      t = performance.now();
      try {
        await restoreBackup(env, log, decision.backupId, decision.toAppTag);
        s.done();
      } catch (err) {
        s.fail(err);
        throw err;
      }
      phases.restore = Math.round(performance.now() - t);
    }
    if (decision.toAppTag) {
      if (!(await imageExists(`${env.appImage}:${decision.toAppTag}`))) {
        throw new StepError(`image ${env.appImage}:${decision.toAppTag} of ${decision.toRelease} no longer exists`, { step: 'rollback', hint: `rebuild it: git checkout <sha> && node scripts/rollout.mts --config ${env.file}` });
      }
      const s = log.step(`start ${env.appImage}:${decision.toAppTag}`);
      t = performance.now();
      const swap = await swapApp(env, decision.toAppTag, { log, healthTimeoutS: i.gates.healthTimeoutS, stopTimeoutS: i.gates.stopTimeoutS });
      s.done(`healthy ${formatDuration(swap.startToHealthyMs)} after start`);
      phases.swap = Math.round(performance.now() - t);
      t = performance.now();
      log.ok(await healthGate(env, decision.toAppTag, { smoke: i.gates.smoke }));
      phases.health = Math.round(performance.now() - t);
      t = performance.now();
      const tg = await telegramGate(env, swap.startedAt, { timeoutMs: (i.gates.telegramTimeoutS ?? 60) * 1000, pendingMax: i.gates.pendingMax, apiRoot: i.gates.smoke?.telegramApiRoot });
      log.info(`telegram: ${tg}`);
      phases.telegram = Math.round(performance.now() - t);
      // smoke on the release we went back to: reported, not acted on (there is nowhere further to go)
      if (!i.gates.skipSmoke) {
        t = performance.now();
        const rep = await runSmoke(env, { ...(i.gates.smoke ?? {}), expectVersion: decision.toAppTag, log });
        phases.smoke = Math.round(performance.now() - t);
        const bad = rep.results.filter((r) => r.status === 'fail');
        if (bad.length) log.error(`smoke after the ${i.kind} still fails: ${bad.map((r) => `${r.name} (${r.detail})`).join('; ')}`);
        else log.ok(`smoke after the ${i.kind}: no check failed`);
      }
    } else {
      log.warn('no earlier release to go back to: the app stays stopped; fix the release and roll out again');
    }
  } catch (err) {
    ok = false;
    error = errorMessage(err);
    log.error(`${i.kind} FAILED: ${error}`);
    if (err instanceof GateError && err.diagnostics) log.error(err.diagnostics);
  }
  const endedAt = new Date().toISOString();
  appendJournal(env.layout.releases, {
    id: rollbackId, result: ok ? 'ok' : 'failed', endedAt, phases, dbRestored: decision.restoreDb && ok, userVersionAfter: readUserVersion(env.layout.db),
    ...(error ? { reason: `automatic ${i.kind} of ${i.failed.id} failed: ${error}` } : {}),
  });
  appendJournal(env.layout.releases, {
    id: i.failed.id, result: 'rolled-back', endedAt, rolledBackTo: decision.toRelease, dbRestored: decision.restoreDb && ok,
    userVersionAfter: uvAfter, reason: i.reason, rollbackId,
  });
  return { ok, decision, rollbackId, error };
}
