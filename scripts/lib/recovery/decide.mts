// Recovery as a pure decision: the releases journal, the restore journal and the observed live state
// in, the actions to take out. Nothing here runs anything (recovery/run.mts does), so every
// interruption point of every operation is a row in test/unit/recovery-decide.test.ts.
//
// The decision is a convergence rule, not a replay: for an operation that died after it touched the
// live app, it names the state the site must reach (the goal image, with or without the data of a
// backup) and the next steps from what is observed now. The runner executes the first action,
// observes again and decides again, until nothing is left. So recovery interrupted at any point
// (recovery itself killed) is recovered by the next run, and running it twice is running it once.
//
// Rules:
// - Restore first: a restore journal holds the data; release actions wait until it is resolved.
// - A journal whose pid is still alive belongs to a running operation: leave it alone.
// - Interrupted before the swap (build, backup): nothing live changed; mark it failed.
// - Interrupted from the swap on: go back to what ran before (a rollout, a plain rollback), or finish
//   going where it was going (an automatic revert: never to the failed image; a rollback --with-db
//   once its restore began: the operator chose that data).
// - The schema is judged only with no foreign app container running (the failing release might
//   still be migrating), from user_version read then: moved and a pre-deploy backup exists -> restore
//   it; unreadable -> stop and ask (never "moved"); otherwise keep the data.
// - Finish forward (a rollout only): an unfinished rollout whose container runs healthy, alone, is
//   judged by its gates (judge-release) and kept when it passes them: what it acknowledged stays.
//   Going back with a restore of its pre-deploy backup is automatic only within its own gate window
//   (gateWindowS from when it began serving); past it, when going back would restore, recovery holds
//   it: it keeps (or gets) it serving on its own data, notifies once, and asks the operator to choose
//   (recover.mts --keep / --roll-back). Nothing automatic throws away weeks of writes.
import type { ObservedApp, ObservedState } from './observed.mts';
import type { Release, ReleaseLine } from '../release/journal.mts';
import type { RestoreJournal } from '../restore/restore.mts';
import { decideRestoreRecovery, type RestoreRecoveryAction as RestoreStep } from '../restore/recovery-plan.mts';

/**
 * The restore half as one action: its steps (restore/recovery-plan.mts) are carried out by the restore's
 * own runner (recoverRestore), which decides them again from the same journal, so this stays idempotent.
 */
export interface RestoreRecoveryAction {
  kind: 'restore-recover';
  how: 'roll-back' | 'roll-forward' | 'clean-up';
  backupId: string;
  phase: string;
  reason: string;
  steps: RestoreStep[];
}

export function restoreHalf(journal: RestoreJournal | null, observed: ObservedState): RestoreRecoveryAction[] {
  const steps = decideRestoreRecovery(journal, observed);
  if (!steps.length || steps.some((st) => st.kind === 'leave')) return [];
  const finish = steps.find((st): st is Extract<RestoreStep, { kind: 'finish' }> => st.kind === 'finish');
  const how = finish?.outcome === 'completed' ? 'roll-forward' : finish?.outcome === 'rolled-back' ? 'roll-back' : 'clean-up';
  return [{
    kind: 'restore-recover', how, backupId: journal?.backupId ?? '-', phase: journal?.phase ?? '-', steps,
    reason: finish?.what ?? `leftovers of a restore that died before it touched anything (${steps.length} to remove)`,
  }];
}

/** Phases in which an operation has not touched the live app yet. */
export const BEFORE_LIVE_PHASES: ReadonlySet<string> = new Set(['preflight', 'lock', 'build', 'backup']);

export type ReleaseRecoveryAction =
  /** interrupted before the swap: write its final line, nothing else */
  | { kind: 'mark-failed'; releaseId: string; reason: string }
  /** stop every running app container (the failed release must not write while the schema is judged) */
  | { kind: 'stop-app'; reason: string }
  /** remove app containers that do not run (a `Created` new one, the stopped old one) */
  | { kind: 'remove-app-containers'; ids: string[]; reason: string }
  /** a rollback --with-db going back: the live state into `to`, the pre-rollback state (`from`) live again, by rename (release/revert-with-db.mts) */
  | { kind: 'revert-data'; releaseId: string; from: string; to: string; reason: string }
  /** copy and verify a backup beside the live data while the app still serves (restore/prestage.mts), so the restore after the stop is renames */
  | { kind: 'stage-backup'; releaseId: string; backupId: string; reason: string }
  /** remove staged copies of backups nothing open needs any more */
  | { kind: 'discard-staged'; backupIds: string[]; reason: string }
  /** restore a backup with the app stopped (the restore half journals and recovers it) */
  | { kind: 'restore-backup'; releaseId: string; backupId: string; reason: string }
  /** the proxy is down: start it */
  | { kind: 'start-proxy'; reason: string }
  /** start the one app container on this image and wait until it is healthy */
  | { kind: 'start-app'; appTag: string; reason: string }
  /** remove the drain flag its dead owner left: Caddy would hold every request until it is gone */
  | { kind: 'undrain'; reason: string }
  /** remove a webhook hold nothing is judging any more: Telegram's updates would wait for good */
  | { kind: 'release-webhook'; reason: string }
  /** point the served front end (STATE_DIR/frontend/current) at this release's and reload Caddy */
  | { kind: 'activate-frontend'; appTag: string; reason: string }
  /** run the gates the release has not passed yet against its running container; pass: it is kept (result ok) */
  | { kind: 'judge-release'; releaseId: string; appTag: string; fromPhase: string; reason: string }
  /** past its gate window and going back would restore: keep it serving, notify, ask the operator (next) */
  | { kind: 'hold'; releaseId: string; appTag: string; servedS: number; reason: string; next: string }
  /** write the final lines: the goal is reached (or cannot be) */
  | {
      kind: 'finish';
      /** the operation recovery acted for (a revert, or the interrupted release itself) */
      releaseId: string;
      result: 'ok' | 'failed' | 'rolled-back';
      /** the release a revert went back from: marked rolled-back when the revert succeeded */
      failedReleaseId?: string;
      appTag: string | null;
      dbRestored: boolean;
      reason: string;
      /** set when nothing automatic is safe: exit 1 and print this exact next command */
      next?: string;
    };

export type RecoveryAction = RestoreRecoveryAction | ReleaseRecoveryAction;

export interface DecideInput {
  releases: Release[];
  restoreJournal: RestoreJournal | null;
  observed: ObservedState;
  /** the env file the operator uses, for the exact next command in an ask */
  configFile?: string;
}

/** What an interrupted live-touching operation must converge to. */
export interface RecoveryGoal {
  /** the release whose journal line the recovery finishes (a revert or the operation itself) */
  releaseId: string;
  /** the release a revert is undoing (finished as rolled-back / failed with it) */
  failedReleaseId?: string;
  /** image tag the one app container must run at the end; null: nothing to go back to (first deploy) */
  appTag: string | null;
  /** the release that last ran appTag (for the operator's next command) */
  appRelease: string | null;
  /** judge the schema against this (the failed release's pre-deploy state), or do not judge */
  schema: { userVersionBefore: number | null; backupId: string | null; restored: boolean; servingSince?: string | null } | null;
  /** data the goal needs (rollback --with-db): restore this backup unless it is already live */
  data: { backupId: string; restored: boolean } | null;
  /** result of the finished operation when the goal is reached */
  result: 'ok' | 'failed' | 'rolled-back';
  why: string;
  /**
   * The operation died in its swap: compose may already have asked Docker to stop the goal container,
   * and Docker finishes such a stop without compose. A goal container started before this time is
   * restarted, not trusted (it may be seconds from exiting, and nothing would start it again).
   */
  distrustStartedBefore?: string | null;
  /** a held release: reach the goal (it serving) but write no final line, the operator decides */
  open?: boolean;
  /** a rollback --with-db whose gate failed, going back: the renames of its data, unless done */
  revertData?: { from: string; to: string; done: boolean } | null;
}

const unfinished = (r: Release) => r.result === 'in-progress';

/** The goal of one unfinished release that touched the live app (see the rules above). */
export function recoveryGoal(r: Release, releases: Release[]): RecoveryGoal {
  const g = goalOf(r, releases);
  return { ...g, distrustStartedBefore: r.phase === 'swap' && typeof r.startedAt === 'string' ? r.startedAt : null };
}

function goalOf(r: Release, releases: Release[]): RecoveryGoal {
  const prevTag = (r.previousAppTag as string | null | undefined) ?? null;
  const prevRelease = (r.previousRelease as string | null | undefined) ?? null;
  const revertOf = r.revertOf as string | undefined;
  if (revertOf) {
    // an automatic revert: finish going to its own target; the failed release's pre-deploy state judges the schema
    const failed = releases.find((x) => x.id === revertOf);
    return {
      releaseId: r.id, failedReleaseId: revertOf, appTag: r.appTag ?? null, appRelease: (r.target as string | undefined) ?? null,
      schema: { userVersionBefore: failed?.userVersionBefore ?? null, backupId: failed?.backupId ?? null, restored: r.dbRestored === true, servingSince: (failed?.servingSince as string | undefined) ?? null },
      data: null, result: 'ok',
      why: `automatic revert ${r.id} of ${revertOf} (phase ${r.phase ?? '?'}): back to ${r.appTag ?? 'nothing'}, never the failed image ${String(r.failedAppTag ?? failed?.appTag ?? '?')}`,
    };
  }
  const rd = r.revertData as { from?: unknown; to?: unknown } | undefined;
  if (r.kind === 'rollback' && r.withDb && rd && typeof rd.from === 'string' && typeof rd.to === 'string') {
    // rollback --with-db that failed its gate and was going back: finish going back (the operator's
    // choice was judged and failed), never forward onto the backup again
    return {
      releaseId: r.id, appTag: prevTag, appRelease: prevRelease, schema: null, data: null, result: 'rolled-back',
      revertData: { from: rd.from, to: rd.to, done: r.phase !== 'revert-data' },
      why: `rollback --with-db ${r.id} failed its gate and was interrupted going back (phase ${r.phase ?? '?'}): back to ${prevTag ?? 'nothing'} with the data live before it`,
    };
  }
  if (r.kind === 'rollback' && r.withDb && r.backupId) {
    // rollback --with-db from its restore on: the operator chose that release with that data
    return {
      releaseId: r.id, appTag: r.appTag ?? null, appRelease: (r.target as string | undefined) ?? null, schema: null,
      data: { backupId: r.backupId, restored: r.dbRestored === true }, result: 'ok',
      why: `rollback --with-db ${r.id} was interrupted in phase ${r.phase ?? '?'}: finishing it (${r.appTag} on backup ${r.backupId})`,
    };
  }
  return {
    releaseId: r.id, appTag: prevTag, appRelease: prevRelease, data: null,
    schema: r.kind === 'rollout' ? { userVersionBefore: r.userVersionBefore ?? null, backupId: r.backupId ?? null, restored: r.dbRestored === true, servingSince: (r.servingSince as string | undefined) ?? null } : null,
    result: r.kind === 'rollout' ? 'rolled-back' : 'failed',
    why: `${r.kind ?? 'release'} ${r.id} (to ${r.appTag ?? '?'}) was interrupted in phase ${r.phase ?? '?'}: going back to ${prevTag ?? 'nothing (first deploy)'}`,
  };
}

const isRunning = (a: ObservedApp) => a.state === 'running' || a.state === 'restarting' || a.state === 'paused';

/**
 * A restore of `backupId` will follow a stop that is about to happen: stage it first, while the app
 * still serves, so the site is down for the renames only, not for a copy that grows with the data.
 * Null when it is staged already (complete), or nothing runs (the site is down anyway: the restore stages).
 */
function stageFirst(g: RecoveryGoal, backupId: string, o: ObservedState, why: string): ReleaseRecoveryAction | null {
  if (!o.apps.some(isRunning)) return null;
  if (o.staged?.some((s) => s.backupId === backupId && s.complete)) return null;
  return { kind: 'stage-backup', releaseId: g.releaseId, backupId, reason: `${why}: staging backup ${backupId} beside the live data while the app still serves, so the stop lasts the renames, not the copy` };
}

/** the backup the goal will restore if the schema, as observed now, stays as it is (null: none) */
function restoreAhead(g: RecoveryGoal, o: ObservedState): string | null {
  if (g.revertData && !g.revertData.done) return null;
  if (g.data && !g.data.restored) return g.data.backupId;
  const s = g.schema;
  if (!s || s.restored || !s.backupId || !g.appTag || s.userVersionBefore === null) return null;
  // the failing release may still migrate; it is judged again after the stop (and staged then if need be)
  return o.userVersion.kind === 'read' && o.userVersion.value !== s.userVersionBefore ? s.backupId : null;
}

/** Steps from the observed state to the goal; [] never happens for an unfinished goal (it ends in finish). */
export function stepsToGoal(g: RecoveryGoal, o: ObservedState, configFile = '<env file>'): ReleaseRecoveryAction[] {
  const running = o.apps.filter(isRunning);
  const foreign = running.filter((a) => a.tag !== g.appTag);
  const finish = (extra: Partial<Extract<ReleaseRecoveryAction, { kind: 'finish' }>> = {}): ReleaseRecoveryAction => ({
    kind: 'finish', releaseId: g.releaseId, failedReleaseId: g.failedReleaseId, result: g.result, appTag: g.appTag,
    dbRestored: Boolean(g.data) || Boolean(extra.dbRestored), reason: g.why, ...extra,
  });
  // 0. a restore will follow the stop: stage it first, while the app serves (re-checked after the stop)
  const ahead = restoreAhead(g, o);
  const stage = ahead ? stageFirst(g, ahead, o, g.why) : null;
  if (stage && (foreign.length || running.length)) return [stage];
  // 1. nothing but the goal image may run; anything else (the failed release, a half-swapped one) stops
  if (foreign.length) return [{ kind: 'stop-app', reason: `app container(s) ${foreign.map((a) => `${a.id.slice(0, 12)} (${a.tag}, ${a.state})`).join(', ')} must stop before the data is judged` }];
  const goalRunning = running.filter((a) => a.tag === g.appTag);
  const since = g.distrustStartedBefore;
  const suspect = since ? goalRunning.filter((a) => a.startedAt !== undefined && a.startedAt < since) : [];
  if (suspect.length) return [{ kind: 'stop-app', reason: `${suspect.map((a) => a.id.slice(0, 12)).join(', ')} (${g.appTag}) ran before the swap that died: compose may have asked Docker to stop it; restarting it instead of trusting it` }];
  // 2. the data: the state live before a failed rollback --with-db, the chosen backup, or the schema rule
  if (g.revertData && !g.revertData.done) {
    if (running.length) return [{ kind: 'stop-app', reason: `the data live before ${g.releaseId} goes back by rename with the app stopped` }];
    return [{ kind: 'revert-data', releaseId: g.releaseId, from: g.revertData.from, to: g.revertData.to, reason: `${g.why}: ${g.revertData.from} goes live again, the state the failed attempt served on is kept in ${g.revertData.to}` }];
  }
  let restored = false;
  if (g.data && !g.data.restored) {
    if (goalRunning.length) return [{ kind: 'stop-app', reason: `backup ${g.data.backupId} must be restored with the app stopped` }];
    return [{ kind: 'restore-backup', releaseId: g.releaseId, backupId: g.data.backupId, reason: `${g.why}; its restore may not have finished: restoring ${g.data.backupId} again (a re-run loses nothing, the first run's safety backup is kept)` }];
  }
  if (g.schema?.restored) restored = true;
  else if (g.schema && g.appTag) {
    const uv = o.userVersion;
    const before = g.schema.userVersionBefore;
    if (uv.kind === 'unreadable') {
      const rel = g.appRelease ?? g.appTag;
      return [finish({
        result: 'failed', appTag: null,
        reason: `${g.why}; user_version cannot be read (${uv.error}): not deciding whether the schema moved`,
        next: `node scripts/rollback.mts --config ${configFile} --to ${rel} --force   # keep the data as it is; or --with-db to restore the backup taken before ${g.failedReleaseId ?? g.releaseId}`,
      })];
    }
    if (uv.kind === 'read' && before !== null && uv.value !== before && g.schema.backupId) {
      if (goalRunning.length) return [{ kind: 'stop-app', reason: `schema moved (user_version ${before} -> ${uv.value}): the app must stop before backup ${g.schema.backupId} is restored` }];
      return [{ kind: 'restore-backup', releaseId: g.releaseId, backupId: g.schema.backupId, reason: `schema moved (user_version ${before} -> ${uv.value}): old code cannot run on it, restoring the pre-deploy backup ${g.schema.backupId}; every write since that backup was taken (the failed release's${g.schema.servingSince ? `, serving since ${g.schema.servingSince}` : ''}, and the previous release's between the backup and the swap) is moved into STATE_DIR/kept/ with the live data it replaces, not deleted` }];
    }
  }
  // 3. no goal image: the failed app stays stopped
  if (!g.appTag) return [finish({ result: 'failed', reason: `${g.why}; no earlier release to go back to: the app stays stopped`, next: `fix the release and roll out again: node scripts/rollout.mts --config ${configFile}` })];
  // 4. stray containers (a `Created` new one next to the stopped old one) go before the start
  const stray = o.apps.filter((a) => !isRunning(a));
  if (!goalRunning.length && stray.length) return [{ kind: 'remove-app-containers', ids: stray.map((a) => a.id), reason: 'containers left by the interrupted swap' }];
  if (!o.proxyRunning) return [{ kind: 'start-proxy', reason: 'the proxy (caddy) is not running' }];
  // (a goal container still `starting` gets start-app too: compose leaves it as it is, the runner waits until healthy)
  const needsStart = goalRunning.length !== 1 || goalRunning[0].health === 'unhealthy' || goalRunning[0].health === 'starting' || goalRunning[0].state !== 'running';
  if (needsStart && !o.imageTags.includes(g.appTag)) {
    return [finish({ result: 'failed', appTag: null, reason: `${g.why}; image tag ${g.appTag} no longer exists locally`, next: `rebuild it: git checkout <sha of ${g.appRelease ?? g.appTag}> && node scripts/rollout.mts --config ${configFile}` })];
  }
  // 5. the goal's front end, before its app starts, as rollout does (releases before per-release front ends keep what is served)
  const fe = o.frontend;
  if (fe && fe.staged.includes(g.appTag) && fe.live !== g.appTag) {
    return [{ kind: 'activate-frontend', appTag: g.appTag, reason: `the served front end is ${fe.live ?? "the proxy image's own"}, the app goes back to ${g.appTag}` }];
  }
  if (needsStart) {
    if (goalRunning.length && goalRunning[0].health !== 'starting') return [{ kind: 'stop-app', reason: `the app on ${g.appTag} is ${goalRunning.map((a) => `${a.state}/${a.health ?? '-'}`).join(', ')}: restarting it` }];
    return [{ kind: 'start-app', appTag: g.appTag, reason: g.why }];
  }
  return g.open ? [] : [finish({ dbRestored: restored })];
}

/** How long after it began serving an unfinished rollout may still be reverted with a restore, when its journal does not say. */
export const DEFAULT_GATE_WINDOW_S = 300;

/**
 * Seconds the release has served: from the earliest of its journaled servingSince and the start of a
 * container on its image, to the observed clock. 0 when nothing says it served (or no clock was observed).
 */
export function servedSeconds(r: Release, o: ObservedState): number {
  const now = o.now ? Date.parse(o.now) : NaN;
  if (!Number.isFinite(now)) return 0;
  const starts = [r.servingSince as string | undefined, ...o.apps.filter((a) => a.tag === r.appTag).map((a) => a.startedAt)]
    .map((t) => (typeof t === 'string' ? Date.parse(t) : NaN))
    .filter(Number.isFinite);
  return starts.length ? Math.max(0, Math.round((now - Math.min(...starts)) / 1000)) : 0;
}

export const gateWindowOf = (r: Release) => (typeof r.gateWindowS === 'number' && r.gateWindowS > 0 ? r.gateWindowS : DEFAULT_GATE_WINDOW_S);

/** The two commands an operator chooses between for a held release. */
export function heldNext(r: Release, configFile: string): string {
  const keep = `node scripts/recover.mts --config ${configFile} --keep ${r.id}   # keep ${r.appTag} and everything it wrote (mark the release good)`;
  const back = !r.previousAppTag
    ? `node scripts/recover.mts --config ${configFile} --roll-back ${r.id}   # or: stop it (the first deploy, nothing to go back to; its data stays)`
    : r.backupId
      ? `node scripts/recover.mts --config ${configFile} --roll-back ${r.id}   # or: back to ${String(r.previousRelease ?? r.previousAppTag)} with the pre-deploy backup ${r.backupId}; what ${r.appTag} wrote since it began serving is moved to STATE_DIR/kept/`
      : `node scripts/recover.mts --config ${configFile} --roll-back ${r.id}   # or: back to ${String(r.previousRelease ?? r.previousAppTag)}, data kept`;
  return `${keep}\n${back}`;
}

/**
 * Finish forward (see the rules above): the steps for an unfinished rollout, or null to go back as
 * before (within its gate window, the operator chose to roll back, or going back restores nothing).
 */
export function forwardSteps(r: Release, o: ObservedState, configFile = '<env file>'): ReleaseRecoveryAction[] | null {
  if (r.kind !== 'rollout' || r.revertOf || !r.appTag || r.operatorChoice === 'roll-back') return null;
  const served = servedSeconds(r, o);
  if (r.held) {
    // the operator decides; meanwhile the release serves on its own data (restarted if it stopped)
    const g: RecoveryGoal = { releaseId: r.id, appTag: r.appTag, appRelease: r.id, schema: null, data: null, result: 'ok', open: true, why: `${r.id} (${r.appTag}) is held for the operator's decision` };
    return stepsToGoal(g, o, configFile);
  }
  const running = o.apps.filter(isRunning);
  const mine = running.filter((a) => a.tag === r.appTag);
  const healthyAlone = running.length === 1 && mine.length === 1 && mine[0].state === 'running' && mine[0].health !== 'unhealthy' && mine[0].health !== 'starting';
  if (healthyAlone && !r.judgedFailed) {
    return [{ kind: 'judge-release', releaseId: r.id, appTag: r.appTag, fromPhase: r.phase ?? 'health', reason: `${r.id} was interrupted in phase ${r.phase ?? '?'} and its container runs healthy (serving for ${served} s): judging it by its gates instead of throwing away what it acknowledged` }];
  }
  const window = gateWindowOf(r);
  if (served <= window) return null;
  // past its window: going back is automatic only when it restores nothing (schema unchanged, or no backup)
  const before = r.userVersionBefore ?? null;
  const uv = o.userVersion;
  const restores = Boolean(r.backupId) && before !== null && !(uv.kind === 'read' && uv.value === before);
  // a first deploy has nothing to go back to: going back would only take the site down
  const firstDeploy = !r.previousAppTag;
  if (!restores && !firstDeploy) return null;
  const why = r.judgedFailed ? `its gates failed (${String(r.judgedFailed)})` : `its container is not healthy (${mine.map((a) => `${a.state}/${a.health ?? '-'}`).join(', ') || 'not running'})`;
  return [{
    kind: 'hold', releaseId: r.id, appTag: r.appTag, servedS: served, next: heldNext(r, configFile),
    reason: `${r.id} (${r.appTag}) has served for ${served} s, past its gate window (${window} s), and ${why}; ${firstDeploy ? 'it is the first deploy: going back would only stop the site' : `going back would restore backup ${r.backupId} and move everything it acknowledged since then into STATE_DIR/kept/`}: not doing that automatically, it keeps serving until you choose`,
  }];
}

/**
 * The whole decision. A drain flag whose owner died goes first; then restore actions; then, for each
 * unfinished release, either mark it failed (it never touched the live app) or the steps towards its goal. Releases with a live pid are
 * left alone; a release an unfinished revert covers is handled through that revert.
 */
export function decideRecovery(i: DecideInput): RecoveryAction[] {
  const d = i.observed.drain;
  // first, whatever else is to do: while the flag exists no app container can serve
  const undrain: RecoveryAction[] = d && !d.ownerAlive ? [{ kind: 'undrain', reason: `the drain flag of "${d.what}" (since ${d.since}) outlived its process: Caddy holds every request while it exists` }] : [];
  const journals = decideJournals(i);
  // a webhook hold outlives what it was for only when nothing is open: no release left to judge
  const stray = i.observed.webhookHeld && !journals.length && !i.releases.some((r) => r.result === 'in-progress' && !r.held) && !i.restoreJournal;
  const unhold: RecoveryAction[] = stray ? [{ kind: 'release-webhook', reason: 'STATE_DIR/proxy/webhook-hold outlived the release it held Telegram for: Caddy answers every update 503 while it exists' }] : [];
  // staged copies of backups outlive what they were for only when nothing is open
  const done = !journals.length && !i.releases.some((r) => r.result === 'in-progress') && !i.restoreJournal;
  const stale = done ? (i.observed.staged ?? []).map((s) => s.backupId) : [];
  const discard: RecoveryAction[] = stale.length ? [{ kind: 'discard-staged', backupIds: stale, reason: 'copies of backups staged for a restore that is over (or never came): removed, they are only copies' }] : [];
  return [...undrain, ...journals, ...unhold, ...discard];
}

/**
 * Whether an action that threw closes the open releases as failed (closeAfterFailure). Staging and the
 * restore do not: a full disk or a timer's time limit is not a verdict on the release; it stays open
 * and the next recovery run tries again (resuming a stage), saying why every time.
 */
export function closesOnFailure(a: RecoveryAction): boolean {
  return a.kind !== 'stage-backup' && a.kind !== 'restore-backup';
}

function decideJournals(i: DecideInput): RecoveryAction[] {
  const { releases, restoreJournal, observed } = i;
  const restore = restoreHalf(restoreJournal, observed);
  if (restore.length) return restore;
  // a restore that still runs holds the data: nothing of ours may touch the app meanwhile
  if (restoreJournal && observed.alivePids.includes(restoreJournal.pid)) return [];
  const open = releases.filter(unfinished);
  const alive = (r: Release) => typeof r.pid === 'number' && observed.alivePids.includes(r.pid as number);
  if (open.some(alive)) return [];
  const actions: RecoveryAction[] = [];
  const coveredByRevert = new Set(open.map((r) => r.revertOf as string | undefined).filter(Boolean) as string[]);
  const live: Release[] = [];
  for (const r of open) {
    if (coveredByRevert.has(r.id)) continue;
    if (r.phase === undefined || BEFORE_LIVE_PHASES.has(r.phase)) {
      actions.push({ kind: 'mark-failed', releaseId: r.id, reason: `interrupted in phase ${r.phase ?? '?'} (the process died) before the swap: nothing live changed` });
    } else live.push(r);
  }
  if (!live.length) return actions;
  // several interrupted live operations cannot normally exist (each runs recovery first); the newest wins,
  // the older ones are closed as failed so their goals do not fight
  const newest = live[live.length - 1];
  for (const r of live.slice(0, -1)) actions.push({ kind: 'mark-failed', releaseId: r.id, reason: `interrupted in phase ${r.phase}; superseded by the later interrupted ${newest.id}, which recovery finishes` });
  const forward = forwardSteps(newest, observed, i.configFile);
  if (forward) return [...actions, ...forward];
  const g = recoveryGoal(newest, releases);
  actions.push(...stepsToGoal(g, observed, i.configFile));
  return actions;
}

/**
 * An action threw: the goal cannot be reached automatically. Every open release is closed as failed,
 * never rolled-back (a revert that did not finish undid nothing), each naming the failure: the revert
 * as the failed automatic rollback of its release, that release as the one whose rollback failed.
 */
export function closeAfterFailure(releases: Release[], error: string, endedAt: string): ReleaseLine[] {
  const open = releases.filter(unfinished);
  return open.map((r) => ({
    id: r.id, result: 'failed', endedAt,
    reason: r.revertOf ? `automatic rollback of ${String(r.revertOf)} failed: ${error}` : open.some((x) => x.revertOf === r.id) ? `its rollback failed: ${error}` : `recovery failed: ${error}`,
  }));
}

export function describeAction(a: RecoveryAction): string {
  switch (a.kind) {
    case 'mark-failed': return `mark ${a.releaseId} failed: ${a.reason}`;
    case 'stop-app': return `stop the app: ${a.reason}`;
    case 'undrain': return `let Caddy route to the app again: ${a.reason}`;
    case 'release-webhook': return `let Telegram's updates through again: ${a.reason}`;
    case 'remove-app-containers': return `remove app container(s) ${a.ids.map((x) => x.slice(0, 12)).join(', ')}: ${a.reason}`;
    case 'revert-data': return `put the data live before ${a.releaseId} back: ${a.reason}`;
    case 'stage-backup': return `stage backup ${a.backupId}: ${a.reason}`;
    case 'discard-staged': return `remove staged ${a.backupIds.join(', ')}: ${a.reason}`;
    case 'restore-backup': return `restore backup ${a.backupId}: ${a.reason}`;
    case 'start-proxy': return `start the proxy: ${a.reason}`;
    case 'start-app': return `start the app on ${a.appTag}: ${a.reason}`;
    case 'activate-frontend': return `serve the front end of ${a.appTag}: ${a.reason}`;
    case 'finish': return `record ${a.releaseId} as ${a.result}${a.failedReleaseId ? ` (${a.failedReleaseId}: ${a.result === 'ok' ? 'rolled-back' : 'failed'})` : ''}: ${a.reason}${a.next ? `; next: ${a.next}` : ''}`;
    case 'judge-release': return `judge ${a.releaseId} (${a.appTag}) by its gates from ${a.fromPhase}: ${a.reason}`;
    case 'hold': return `hold ${a.releaseId} (${a.appTag}) for the operator: ${a.reason}`;
    case 'restore-recover': return `${a.how} the interrupted restore of ${a.backupId} (phase ${a.phase}): ${a.reason}`;
    default: return JSON.stringify(a);
  }
}
