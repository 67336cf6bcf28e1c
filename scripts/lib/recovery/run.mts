// The runner of recovery: observe -> decide -> execute the first action -> observe again, until the
// decision is empty. The caller holds the operation lock. Used by recover.mts (boot and timer), by
// every operation before it starts, and by the automatic revert itself (so an interrupted revert
// and a recovered one run the same code).
import { activateFrontend } from '../release/frontend.mts';
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import { errorMessage } from '../cli/errors.mts';
import { composeCtx, composeEnvFor, proxyUpArgs } from '../commands/compose.mts';
import { removeContainersArgs } from '../commands/docker.mts';
import { docker } from '../docker/run.mts';
import { waitHealthy } from '../docker/app-container.mts';
import { startApp, stopApp } from '../docker/app-lifecycle.mts';
import { clearDrain } from '../docker/drain.mts';
import { processStartTime } from '../host/lock.mts';
import { appendJournal, readJournal } from '../release/journal.mts';
import { readRestoreJournal, recoverRestore } from '../restore/restore.mts';
import { closeAfterFailure, closesOnFailure, decideRecovery, describeAction, type RecoveryAction } from './decide.mts';
import { observeState } from './observe.mts';
import type { ObservedUserVersion } from './observed.mts';
import { healthGate, healthGateMs, smokeGate, telegramGate, type GateOptions } from '../release/gates.mts';
import { readUserVersion } from '../checks/smoke.mts';
import { GateError } from '../cli/errors.mts';
import { holdWebhook, releaseWebhook } from '../release/webhook-hold.mts';

export interface RecoveryOptions {
  dryRun?: boolean;
  /** our own pid is in the journals (the automatic revert runs this): do not wait for ourselves */
  selfPid?: number;
  healthTimeoutS?: number;
  stopTimeoutS?: number;
  maxSteps?: number;
  /** the gates an unfinished release is judged by (judge-release): the interrupted operation's options when it runs recovery */
  gates?: GateOptions;
}

export interface RecoveryReport {
  /** descriptions of what was done (or, with dryRun, what would be) */
  actions: RecoveryAction[];
  exitCode: 0 | 1;
  /** the exact next command when recovery stopped to ask */
  next?: string;
  /** a backup was restored (the schema had moved, or rollback --with-db) */
  restored: boolean;
  /** user_version as judged with no foreign app running */
  judgedUserVersion?: ObservedUserVersion;
  error?: string;
  /** a held release still waits for the operator (already notified when it was held): nothing was done */
  waiting?: boolean;
}

async function decideNow(env: OpsEnv, o: RecoveryOptions) {
  const { releases } = readJournal(env.layout.releases);
  const restoreJournal = readRestoreJournal(env.layout);
  // after its first step this process journals itself as the one recovering: it must never wait on itself
  const observed = await observeState(env, { releases, restoreJournal }, { selfPid: o.selfPid ?? process.pid });
  return { releases, observed, actions: decideRecovery({ releases, restoreJournal, observed, configFile: env.file }) };
}

export async function runRecovery(env: OpsEnv, log: Logger, o: RecoveryOptions = {}): Promise<RecoveryReport> {
  const report: RecoveryReport = { actions: [], exitCode: 0, restored: false };
  const first = await decideNow(env, o);
  if (o.dryRun) {
    report.actions = first.actions;
    return report;
  }
  let current = first;
  let claimed = false;
  for (let step = 0; step < (o.maxSteps ?? 20); step++) {
    const a = current.actions[0];
    if (!a) return waitingFor(current.releases, report);
    if (!claimed && a.kind !== 'mark-failed') {
      // journal who recovers, so a second recovery waits for this one and a dead one is taken over
      claimed = true;
      for (const r of current.releases.filter((x) => x.result === 'in-progress')) {
        appendJournal(env.layout.releases, { id: r.id, pid: process.pid, pidStart: processStartTime(process.pid), recoveryStartedAt: new Date().toISOString() });
      }
    }
    // the decision stops every foreign app first, so the first later step sees the schema as judged
    // (staging runs before that stop, while the failing app may still migrate: not a judgement either)
    if (!report.judgedUserVersion && !['stop-app', 'mark-failed', 'restore-recover', 'stage-backup', 'discard-staged'].includes(a.kind)) report.judgedUserVersion = current.observed.userVersion;
    log.warn(`recovery: ${describeAction(a)}`);
    report.actions.push(a);
    try {
      await execute(env, log, a, o, { now: current.observed.userVersion, judged: report.judgedUserVersion });
    } catch (err) {
      report.exitCode = 1;
      report.error = `${a.kind} failed: ${errorMessage(err)}`;
      log.error(`recovery: ${report.error}`);
      if (!closesOnFailure(a)) {
        // not a verdict on the release: it stays open and the next run tries again (a stage resumes)
        report.next = `the next recovery run tries again (the timer, every minute); to see it now: node scripts/recover.mts --config ${env.file} --dry-run`;
        log.error(`recovery: ${report.next}`);
        return report;
      }
      // the goal cannot be reached automatically: close the open releases, naming the failure
      for (const line of closeAfterFailure(readJournal(env.layout.releases).releases, report.error, new Date().toISOString())) appendJournal(env.layout.releases, line);
      report.next = `node scripts/smoke.mts --config ${env.file}   # then: node scripts/rollback.mts --config ${env.file} --list`;
      return report;
    }
    if (a.kind === 'restore-backup') report.restored = true;
    if (a.kind === 'hold') {
      report.exitCode = 1;
      report.next = a.next;
      log.error(`recovery holds ${a.releaseId} for you: ${a.reason}`);
      log.error(`choose one:\n${a.next}`);
    }
    if (a.kind === 'finish') {
      if (a.dbRestored) report.restored = true;
      if (a.next) {
        report.exitCode = 1;
        report.next = a.next;
        log.error(`recovery stopped to ask: ${a.reason}`);
        log.error(`next: ${a.next}`);
      } else if (a.result === 'failed') report.exitCode = 1;
    }
    current = await decideNow(env, o);
  }
  report.exitCode = 1;
  report.error = `no fixpoint after ${o.maxSteps ?? 20} steps; next decided: ${current.actions.map(describeAction).join('; ')}`;
  log.error(`recovery: ${report.error}`);
  return report;
}

/** No action left: a held release still open waits for the operator, every run says so (exit 1), the notice went once. */
function waitingFor(releases: { result?: string; held?: unknown; next?: unknown; id: string }[], report: RecoveryReport): RecoveryReport {
  const held = releases.find((r) => r.result === 'in-progress' && r.held);
  if (!held || report.exitCode !== 0) return report;
  report.exitCode = 1;
  report.error ??= `release ${held.id} is held for your choice (recovery does not throw away what it wrote): run one of the two commands below`;
  report.next ??= typeof held.next === 'string' ? held.next : undefined;
  if (!report.actions.length) report.waiting = true;
  return report;
}

const uvValue = (u: ObservedUserVersion | undefined) => (u?.kind === 'read' ? u.value : null);

async function execute(env: OpsEnv, log: Logger, a: RecoveryAction, o: RecoveryOptions, uv: { now: ObservedUserVersion; judged?: ObservedUserVersion }): Promise<void> {
  const now = () => new Date().toISOString();
  switch (a.kind) {
    case 'mark-failed':
      appendJournal(env.layout.releases, { id: a.releaseId, result: 'failed', endedAt: now(), reason: a.reason });
      return;
    case 'stop-app':
      await stopApp(env, log, 'recovery: stop the app', { timeoutS: o.stopTimeoutS, step: 'recovery' });
      return;
    case 'undrain':
      clearDrain(env.layout);
      return;
    case 'release-webhook':
      releaseWebhook(env.layout);
      return;
    case 'remove-app-containers':
      await docker(removeContainersArgs(a.ids));
      return;
    case 'stage-backup': {
      const { prestageBackup } = await import('../restore/prestage.mts');
      await prestageBackup(env, log, a.backupId);
      return;
    }
    case 'discard-staged': {
      const { discardStaged } = await import('../restore/prestage.mts');
      discardStaged(env.layout, a.backupIds);
      return;
    }
    case 'revert-data': {
      const { swapKeptBack } = await import('../release/revert-with-db.mts');
      swapKeptBack(env, { from: a.from, to: a.to }, a.releaseId);
      appendJournal(env.layout.releases, { id: a.releaseId, phase: 'revert-start', dbRestored: false, keptFailed: a.to });
      log.warn(`the state the failed ${a.releaseId} served on is kept in ${a.to}`);
      return;
    }
    case 'restore-backup': {
      const { restoreBackup } = await import('../release/revert.mts');
      const s = log.step(`restore backup ${a.backupId}`);
      try {
        const keptPre = await restoreBackup(env, log, a.backupId, null);
        s.done();
        appendJournal(env.layout.releases, { id: a.releaseId, keptPre });
      } catch (err) {
        s.fail(err);
        throw err;
      }
      appendJournal(env.layout.releases, { id: a.releaseId, dbRestored: true, backupId: a.backupId, phase: 'start' });
      return;
    }
    case 'start-proxy':
      await docker(proxyUpArgs(composeCtx(env)), { env: composeEnvFor(env, null) });
      return;
    case 'start-app': {
      const s = log.step(`start ${env.appImage}:${a.appTag} and wait until healthy`);
      try {
        await startApp(env, a.appTag, log, { step: 'recovery' });
      } catch (err) {
        s.fail();
        throw err;
      }
      await waitHealthy(env, (o.healthTimeoutS ?? 90) * 1000, log);
      s.done();
      return;
    }
    case 'activate-frontend': {
      await activateFrontend(env, a.appTag, log);
      return;
    }
    case 'finish': {
      // whatever runs now is final: it may acknowledge Telegram updates (release/webhook-hold.mts)
      releaseWebhook(env.layout);
      const endedAt = now();
      appendJournal(env.layout.releases, {
        id: a.releaseId, result: a.result, endedAt, dbRestored: a.dbRestored, reason: a.reason, userVersionAfter: uvValue(uv.now), ...(a.next ? { next: a.next } : {}),
      });
      if (a.failedReleaseId) {
        const ok = a.result === 'ok';
        appendJournal(env.layout.releases, {
          // the schema the failed release left, as judged once it had stopped
          id: a.failedReleaseId, result: ok ? 'rolled-back' : 'failed', endedAt, rolledBackTo: ok ? a.appTag : null, dbRestored: a.dbRestored, rollbackId: a.releaseId,
          userVersionAfter: uvValue(uv.judged ?? uv.now),
          ...(ok ? {} : { reason: `its rollback ${a.releaseId} did not finish: ${a.reason}` }),
        });
      }
      return;
    }
    case 'judge-release':
      await judgeRelease(env, log, a, o);
      return;
    case 'hold':
      // a release held for weeks cannot keep Telegram waiting: Telegram gives up on updates at some point;
      // what it acknowledges from now on is part of the data the operator's choice keeps or moves aside
      releaseWebhook(env.layout);
      appendJournal(env.layout.releases, { id: a.releaseId, held: { since: now(), servedS: a.servedS, reason: a.reason }, next: a.next });
      return;
    case 'restore-recover':
      await recoverRestore(env, log, { healthTimeoutMs: (o.healthTimeoutS ?? 120) * 1000 });
      return;
  }
}

/**
 * The gates the interrupted rollout had not passed yet, against the container that runs it now: pass
 * -> the release is kept (its final line, as the rollout would have written it); fail -> journaled as
 * judged failed, and the next decision goes back (within its gate window) or holds it.
 */
async function judgeRelease(env: OpsEnv, log: Logger, a: Extract<RecoveryAction, { kind: 'judge-release' }>, o: RecoveryOptions): Promise<void> {
  const g = o.gates ?? {};
  const order = ['swap', 'health', 'telegram', 'smoke'];
  const from = Math.max(1, order.indexOf(a.fromPhase));
  const s = log.step(`judge ${a.releaseId} (${a.appTag}) by its gates from ${order[from]}`);
  let phase = order[from];
  try {
    if (from <= 1) {
      phase = 'health';
      log.info(await healthGate(env, a.appTag, { smoke: g.smoke, timeoutMs: healthGateMs(g.healthTimeoutS) }));
    }
    if (from <= 3 && !g.skipSmoke) {
      phase = 'smoke';
      // no update is acknowledged until smoke passed, as in the rollout (a torn rollout may have left no hold)
      if (env.values.BOT_TOKEN) holdWebhook(env.layout, a.releaseId);
      await smokeGate(env, a.appTag, { smoke: { ...g.smoke, skip: [...(g.smoke?.skip ?? []), 'telegram'] }, log });
    }
    if (from <= 3) {
      // last, as in the rollout: the held webhook is released only by a judged release (release/webhook-hold.mts)
      phase = 'telegram';
      releaseWebhook(env.layout);
      const since = new Date().toISOString();
      log.info(await telegramGate(env, since, { timeoutMs: (g.telegramTimeoutS ?? 60) * 1000, pendingMax: g.pendingMax, apiRoot: g.smoke?.telegramApiRoot }));
    }
  } catch (err) {
    s.fail(err);
    if (!(err instanceof GateError)) throw err;
    appendJournal(env.layout.releases, { id: a.releaseId, judgedFailed: `${phase}: ${errorMessage(err).split('\n')[0]}`, judgedAt: new Date().toISOString() });
    return;
  }
  s.done();
  appendJournal(env.layout.releases, { id: a.releaseId, result: 'ok', endedAt: new Date().toISOString(), phase: 'record', judgedBy: 'recovery', reason: `interrupted in ${a.fromPhase}; passed its gates when recovery judged it`, userVersionAfter: readUserVersion(env.layout.db) });
}
