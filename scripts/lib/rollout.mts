// Rollout and the machinery rollback shares: swap the one app container (never two, Caddy holds
// requests meanwhile), gate it (health through Caddy, Telegram, smoke), record it, and go back
// automatically when a gate fails. Plans and decisions are pure (release-plan.mts); this file runs them.
import fs from 'node:fs';
import path from 'node:path';
import { $ } from 'zx';
import { composeArgs, composeEnv, docker, type ComposeContext } from './compose.mts';
import type { OpsEnv } from './env.mts';
import type { Logger } from './log.mts';
import { createPhaseTimer, formatDuration } from './log.mts';
import { StepError, ConfigError, errorMessage } from './errors.mts';
import { acquireLock, currentOperator, type LockHandle } from './lock.mts';
import {
  appendJournal, currentRelease, newReleaseId, readJournal, unfinishedReleases,
  type Release, type ReleaseLine,
} from './journal.mts';
import {
  appTagFor, buildArgs, decideRollback, imagesToPrune, isDirtyPorcelain, rolloutPlan, type RollbackDecision,
} from './release-plan.mts';
import { preflightExitCode, runPreflight, type CheckResult } from './preflight.mts';
import { readUserVersion, runSmoke, smokeTarget, type SmokeOptions } from './smoke.mts';
import { httpsGet } from './checks/http.mts';
import { evalWebhookInfo, expectedWebhookUrl, type SmokeResult } from './checks/evaluate.mts';
import { getWebhookInfo, hostApiRoot, redactToken, sendMessage } from './telegram.mts';

export interface GateOptions {
  /** seconds to wait for the new container to become healthy */
  healthTimeoutS?: number;
  /** seconds to wait for the Telegram webhook to be registered and drained */
  telegramTimeoutS?: number;
  pendingMax?: number;
  smoke?: SmokeOptions;
  skipSmoke?: boolean;
  /** graceful stop timeout of the old container (default: compose's stop_grace_period) */
  stopTimeoutS?: number;
}

export interface CommonOptions extends GateOptions {
  env: OpsEnv;
  log: Logger;
  operator?: string;
  lockWaitS?: number;
  keepImages?: number;
  notify?: boolean;
  now?: () => Date;
}

export interface RolloutOptions extends CommonOptions {
  /** git working tree to build from (default: the compose project directory) */
  source?: string;
  allowDirty?: boolean;
  dryRun?: boolean;
  skipBackup?: boolean;
  /** skip preflight (only for tests of later phases; never in production) */
  skipPreflight?: boolean;
  /** tag the build with this instead of the git sha (advanced; must not exist yet) */
  tag?: string;
}

export interface OpResult {
  id: string;
  exitCode: number;
  result: 'ok' | 'failed' | 'rolled-back' | 'dry-run';
  appTag?: string;
  phases: Record<string, number>;
  swap?: SwapTiming;
  rollback?: { decision: RollbackDecision; ok: boolean };
  preflight?: CheckResult[];
  smoke?: SmokeResult[];
  plan?: { phase: string; what: string; argv?: string[] }[];
  reason?: string;
}

export function composeCtx(env: OpsEnv): ComposeContext {
  return { projectDir: env.projectDir, envFile: env.envFile, project: env.project, composeFiles: env.composeFiles };
}

/** Env for compose with the release tag: the shell value of APP_TAG wins over the env file's. */
export function composeEnvFor(env: OpsEnv, appTag: string | null): NodeJS.ProcessEnv {
  const e = composeEnv(env.values);
  if (appTag) e.APP_TAG = appTag;
  return e;
}

/** The swap as data: stop the old app container gracefully, then start the new image (no deps, no build, no pull). */
export function swapCommands(env: OpsEnv, opts: { stopTimeoutS?: number } = {}) {
  const ctx = composeCtx(env);
  return {
    stop: composeArgs(ctx, 'stop', ...(opts.stopTimeoutS !== undefined ? ['-t', String(opts.stopTimeoutS)] : []), 'app'),
    up: composeArgs(ctx, 'up', '-d', '--no-deps', '--no-build', '--pull', 'never', 'app'),
    upAll: composeArgs(ctx, 'up', '-d', '--no-build', '--pull', 'never', '--wait'),
    buildProxy: composeArgs(ctx, 'build', 'caddy'),
  };
}

// ---------------------------------------------------------------------------------------------
// live state

interface ContainerInspect {
  Id: string;
  Name: string;
  Image: string;
  Config: { Image: string; Labels?: Record<string, string> };
  State: {
    Status: string;
    Running: boolean;
    ExitCode: number;
    StartedAt: string;
    FinishedAt: string;
    Error?: string;
    OOMKilled?: boolean;
    Health?: { Status: string; FailingStreak?: number; Log?: { Start: string; End: string; ExitCode: number; Output: string }[] };
  };
  RestartCount: number;
}

export interface LiveApp {
  id: string;
  imageRef: string;
  image: string;
  tag: string;
  status: string;
  health?: string;
  startedAt: string;
}

function splitRef(ref: string): { image: string; tag: string } {
  const i = ref.lastIndexOf(':');
  if (i <= 0 || ref.slice(i).includes('/')) return { image: ref, tag: 'latest' };
  return { image: ref.slice(0, i), tag: ref.slice(i + 1) };
}

async function appContainers(env: OpsEnv, all = true): Promise<ContainerInspect[]> {
  const ids = (
    await docker(['ps', ...(all ? ['-a'] : []), '-q', '--no-trunc', '--filter', `label=com.docker.compose.project=${env.project}`, '--filter', 'label=com.docker.compose.service=app'])
  ).stdout.split('\n').filter(Boolean);
  if (!ids.length) return [];
  return JSON.parse((await docker(['inspect', ...ids])).stdout) as ContainerInspect[];
}

/** The app container as it is now (running preferred), or null when there is none. */
export async function liveApp(env: OpsEnv): Promise<LiveApp | null> {
  const list = await appContainers(env);
  const c = list.find((x) => x.State.Running) ?? list[0];
  if (!c) return null;
  const { image, tag } = splitRef(c.Config.Image);
  return { id: c.Id, imageRef: c.Config.Image, image, tag, status: c.State.Status, health: c.State.Health?.Status, startedAt: c.State.StartedAt };
}

export async function runningContainerCount(env: OpsEnv, service = 'app'): Promise<number> {
  const out = await docker(['ps', '-q', '--filter', `label=com.docker.compose.project=${env.project}`, '--filter', `label=com.docker.compose.service=${service}`]);
  return out.stdout.split('\n').filter(Boolean).length;
}

async function imageExists(ref: string): Promise<boolean> {
  return (await docker(['image', 'inspect', '--format', '{{.Id}}', ref], { nothrow: true })).exitCode === 0;
}

// ---------------------------------------------------------------------------------------------
// swap and gates

export interface SwapTiming {
  /** explicit graceful stop of the old container (0 in the default recreate mode: compose up does it) */
  stopMs: number;
  /** compose up: create the new container, (recreate mode: stop + remove the old one,) start it */
  startMs: number;
  /** container start -> Docker reports healthy */
  startToHealthyMs: number;
  /** whole swap: stop begins -> healthy */
  totalMs: number;
  containerId: string;
  startedAt: string;
  /** wall clock (epoch ms) when the swap began (stop issued) and ended (healthy) */
  beganAt?: number;
  endedAt?: number;
}

export class GateError extends StepError {
  diagnostics?: string;
  constructor(message: string, opts: { step: string; hint?: string; diagnostics?: string }) {
    super(message, { step: opts.step, hint: opts.hint });
    this.diagnostics = opts.diagnostics;
  }
}

/** Health log and last log lines of the app container: printed when a gate fails. */
export async function appDiagnostics(env: OpsEnv, containerId?: string): Promise<string> {
  const parts: string[] = [];
  const list = await appContainers(env).catch(() => []);
  const c = (containerId && list.find((x) => x.Id === containerId)) || list.find((x) => x.State.Running) || list[0];
  if (!c) return 'no app container exists';
  const st = c.State;
  const exit = st.Running ? '' : `, exit code ${st.ExitCode}`;
  parts.push(`container ${c.Name.replace(/^\//, '')} (${c.Id.slice(0, 12)}) image ${c.Config.Image}: status ${st.Status}${exit}, restarts ${c.RestartCount}${st.OOMKilled ? ', OOM-killed' : ''}${st.Error ? `, error ${st.Error}` : ''}`);
  if (st.Health) {
    parts.push(`health: ${st.Health.Status} (failing streak ${st.Health.FailingStreak ?? 0})`);
    for (const h of (st.Health.Log ?? []).slice(-3)) parts.push(`  check ${h.End?.slice(11, 23) ?? ''} exit ${h.ExitCode}: ${h.Output.trim().slice(0, 300)}`);
  }
  const logs = await docker(['logs', '--tail', '30', c.Id], { nothrow: true });
  const lines = `${logs.stdout}${logs.stderr}`.trim().split('\n').filter(Boolean).slice(-30);
  parts.push(`last ${lines.length} log lines:`);
  for (const l of lines) parts.push(`  ${redactToken(redactToken(l, env.values.BOT_TOKEN ?? ''), env.values.WEBHOOK_SECRET ?? '')}`);
  return parts.join('\n');
}

/** Poll docker inspect until the container is healthy; fail fast on exit, restart or unhealthy. */
export async function waitHealthy(env: OpsEnv, timeoutMs: number, log?: Logger): Promise<{ c: ContainerInspect; startToHealthyMs: number }> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const list = await appContainers(env);
    const c = list.find((x) => x.State.Running) ?? list[0];
    if (c) {
      const st = c.State;
      const h = st.Health?.Status;
      if (c.RestartCount > 0 || st.Status === 'restarting' || st.Status === 'exited' || st.Status === 'dead') {
        const how = c.RestartCount > 0 ? `exited and was restarted ${c.RestartCount} time(s) by the restart policy` : `${st.Status} with exit code ${st.ExitCode}`;
        throw new GateError(`the new app container ${how}: it crashes at boot`, { step: 'swap', diagnostics: await appDiagnostics(env, c.Id) });
      }
      if (st.Running && (h === 'healthy' || (!st.Health && Date.now() - Date.parse(st.StartedAt) > 2000))) {
        return { c, startToHealthyMs: Date.now() - Date.parse(st.StartedAt) };
      }
      if (h === 'unhealthy') {
        throw new GateError('the new app container is unhealthy', { step: 'swap', diagnostics: await appDiagnostics(env, c.Id) });
      }
      const now = `${st.Status}/${h ?? 'no healthcheck'}`;
      if (now !== last) log?.debug(`app container ${c.Id.slice(0, 12)}: ${now}`);
      last = now;
    }
    if (Date.now() > deadline) {
      throw new GateError(`the new app container did not become healthy within ${formatDuration(timeoutMs)} (last: ${last || 'no container'})`, { step: 'swap', diagnostics: await appDiagnostics(env, c?.Id) });
    }
    await new Promise((r) => setTimeout(r, 150));
  }
}

export function swapMode(): 'recreate' | 'stop-first' {
  return process.env.LAZYFLOW_SWAP === 'stop-first' ? 'stop-first' : 'recreate';
}

/**
 * Replace the one app container by one running `appTag`: the old one stops gracefully (it finishes
 * in-flight requests; Caddy holds new ones, retrying the dial for lb_try_duration), then the container
 * recreated on the new image starts. There is never a second app container running.
 */
export async function swapApp(env: OpsEnv, appTag: string, o: { log: Logger; healthTimeoutS?: number; stopTimeoutS?: number }): Promise<SwapTiming> {
  const cmds = swapCommands(env, { stopTimeoutS: o.stopTimeoutS });
  const e = composeEnvFor(env, appTag);
  const beganAt = Date.now();
  const t0 = performance.now();
  // Default: one `compose up`. Compose creates the new container first (not started), then stops the
  // old one gracefully, removes it, and only then starts the new one: still never two app containers
  // running and never two SQLite writers, but container creation and one compose start-up are no
  // longer inside the gap, and if creating fails the old container keeps serving. Measured in
  // bench/rollout against LAZYFLOW_SWAP=stop-first (an explicit `compose stop app` first).
  if (swapMode() === 'stop-first') await $({ quiet: true, env: e })`docker ${cmds.stop}`;
  const t1 = performance.now();
  const up = await $({ quiet: true, nothrow: true, env: e })`docker ${cmds.up}`;
  const t2 = performance.now();
  if (up.exitCode !== 0) {
    throw new GateError(`docker compose up app (APP_TAG=${appTag}) failed: ${(up.stderr || up.stdout).trim().split('\n').slice(-3).join(' | ')}`, { step: 'swap', diagnostics: await appDiagnostics(env) });
  }
  const { c, startToHealthyMs } = await waitHealthy(env, (o.healthTimeoutS ?? 90) * 1000, o.log);
  const t3 = performance.now();
  if (!c.Config.Image.endsWith(`:${appTag}`)) {
    throw new GateError(`after the swap the app runs ${c.Config.Image}, expected tag ${appTag}`, { step: 'swap' });
  }
  return { stopMs: t1 - t0, startMs: t2 - t1, startToHealthyMs, totalMs: t3 - t0, containerId: c.Id, startedAt: c.State.StartedAt, beganAt, endedAt: Date.now() };
}

/** /health through Caddy over HTTPS reports the expected version (retried: Caddy may still hold the first requests). */
export async function healthGate(env: OpsEnv, appTag: string, o: { smoke?: SmokeOptions; timeoutMs?: number }): Promise<string> {
  const target = await smokeTarget(env, o.smoke ?? {});
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  let last = '';
  for (;;) {
    // TLS is judged by smoke's tls check; this gate is about the version Caddy serves.
    const r = await httpsGet(target, '/health', { timeoutMs: 10_000 });
    if (!r.error && r.status === 200) {
      try {
        const j = JSON.parse(r.body) as { version?: string; status?: string };
        if (j.version === appTag && j.status === 'ok') return `https://${env.domain}/health -> 200, version ${j.version}`;
        last = `version ${j.version}, status ${j.status}`;
      } catch {
        last = 'body is not JSON';
      }
    } else last = r.error ?? `HTTP ${r.status}`;
    if (Date.now() > deadline) throw new GateError(`/health through Caddy did not report version ${appTag} (last: ${last})`, { step: 'health', diagnostics: await appDiagnostics(env) });
    await new Promise((res) => setTimeout(res, 250));
  }
}

/** Telegram gate: webhook registered at APP_URL/webhook/SECRET, no delivery error since start, queue drains. */
export async function telegramGate(env: OpsEnv, startedAt: string, o: { timeoutMs?: number; pendingMax?: number; apiRoot?: string }): Promise<string> {
  const v = env.values;
  const token = v.BOT_TOKEN ?? '';
  if (!token) return 'skipped: local mode (no BOT_TOKEN), Telegram is not used';
  const root = hostApiRoot(v, o.apiRoot);
  const expectedUrl = expectedWebhookUrl(env.appUrl, v.WEBHOOK_SECRET ?? '');
  const pendingMax = o.pendingMax ?? 10;
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  let last = '';
  for (;;) {
    try {
      const info = await getWebhookInfo(root, token);
      const verdict = evalWebhookInfo(info, { expectedUrl, secret: v.WEBHOOK_SECRET ?? '', startedAt: new Date(startedAt), pendingMax });
      if (verdict.status === 'pass') return verdict.detail;
      last = verdict.detail;
      // a delivery error after the new container started will not go away by waiting
      if (/delivery error/.test(verdict.detail) && !/pending_update_count/.test(verdict.detail) && info.url === expectedUrl) {
        throw new GateError(`Telegram: ${verdict.detail}`, { step: 'telegram', diagnostics: await appDiagnostics(env) });
      }
    } catch (e) {
      if (e instanceof GateError) throw e;
      last = redactToken(errorMessage(e), token);
    }
    if (Date.now() > deadline) throw new GateError(`Telegram gate: ${last}`, { step: 'telegram', diagnostics: await appDiagnostics(env) });
    await new Promise((res) => setTimeout(res, 500));
  }
}

export async function smokeGate(env: OpsEnv, appTag: string, o: { smoke?: SmokeOptions; log: Logger }): Promise<SmokeResult[]> {
  const report = await runSmoke(env, { ...(o.smoke ?? {}), expectVersion: appTag, log: o.log });
  for (const r of report.results) {
    if (r.status === 'fail') o.log.error(`smoke ${r.name}: FAIL ${r.detail}`);
    else if (r.status === 'warn') o.log.warn(`smoke ${r.name}: ${r.detail}`);
  }
  if (report.failed) {
    const failed = report.results.filter((r) => r.status === 'fail');
    throw Object.assign(new GateError(`smoke failed: ${failed.map((r) => `${r.name} (${r.detail})`).join('; ')}`, { step: 'smoke' }), { results: report.results });
  }
  return report.results;
}

// ---------------------------------------------------------------------------------------------
// backup / restore (worker "backup" owns them; imported lazily so rollout runs before they exist)

interface BackupApi {
  runBackup(o: Record<string, unknown>): Promise<{ id: string; dir?: string }>;
}
interface RestoreApi {
  runRestore(o: Record<string, unknown>): Promise<unknown>;
}

async function backupApi(): Promise<BackupApi> {
  try {
    return (await import('./backup.mts')) as unknown as BackupApi;
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
    api = (await import('./restore.mts')) as unknown as RestoreApi;
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
        throw new StepError(`image ${env.appImage}:${decision.toAppTag} of ${decision.toRelease} no longer exists`, { step: 'rollback', hint: `rebuild it: git checkout <sha> && node scripts/rollout.mts --env-file ${env.file}` });
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

/** Finish off releases a killed process left "in-progress": undo them (the re-run then proceeds). */
export async function recoverUnfinished(env: OpsEnv, log: Logger, gates: GateOptions, operator: string): Promise<void> {
  const { releases } = readJournal(env.layout.releases);
  for (const r of unfinishedReleases(releases)) {
    const touchedLive = r.phase !== undefined && !['preflight', 'lock', 'build', 'backup'].includes(r.phase);
    if (!touchedLive) {
      log.warn(`release ${r.id} (${r.kind}) was interrupted in phase ${r.phase ?? '?'} before the swap: nothing live changed; marked failed`);
      appendJournal(env.layout.releases, { id: r.id, result: 'failed', endedAt: new Date().toISOString(), reason: `interrupted in phase ${r.phase ?? '?'} (process died); nothing live changed` });
      continue;
    }
    const prevTag = (r.previousAppTag as string | undefined) ?? null;
    const live = await liveApp(env);
    log.warn(`release ${r.id} (${r.kind} to ${r.appTag}) was interrupted in phase ${r.phase} (process died: kill -9, OOM or reboot); the app is now ${live ? `${live.status} on ${live.tag}` : 'absent'}`);
    await revert({
      env, log, operator, gates, kind: 'recovery',
      failed: { id: r.id, appTag: r.appTag, backupId: r.backupId, userVersionBefore: r.userVersionBefore, phase: r.phase },
      previous: prevTag ? { id: (r.previousRelease as string | null) ?? 'untracked', appTag: prevTag } : null,
      reason: `interrupted in phase ${r.phase} (process died)`,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// git + build

export async function gitState(dir: string): Promise<{ sha: string; dirty: boolean; porcelain: string }> {
  const head = await $({ quiet: true, nothrow: true, cwd: dir })`git rev-parse HEAD`;
  if (head.exitCode !== 0) {
    throw new ConfigError(`${dir} is not a git working tree with a commit: ${head.stderr.trim()}`, { file: dir, hint: 'rollout builds from a git checkout: git clone <repo> && cd <repo>' });
  }
  const st = await $({ quiet: true, cwd: dir })`git status --porcelain --untracked-files=normal`;
  return { sha: head.stdout.trim(), dirty: isDirtyPorcelain(st.stdout), porcelain: st.stdout };
}

function buildArgValues(env: OpsEnv): Record<string, string | undefined> {
  return { BUN_IMAGE: env.values.BUN_IMAGE || process.env.BUN_IMAGE || undefined };
}

async function ensureProxyImage(env: OpsEnv, log: Logger): Promise<void> {
  const ref = `${env.values.PROXY_IMAGE || 'lazyflow-caddy'}:${env.values.PROXY_TAG || 'local'}`;
  if (await imageExists(ref)) return;
  const s = log.step(`build proxy image ${ref} (first deploy)`);
  const e = composeEnv(env.values);
  if (!env.values.CADDY_IMAGE && process.env.CADDY_IMAGE) e.CADDY_IMAGE = process.env.CADDY_IMAGE;
  if (!env.values.BUN_IMAGE && process.env.BUN_IMAGE) e.BUN_IMAGE = process.env.BUN_IMAGE;
  const r = await $({ quiet: true, nothrow: true, env: e })`docker ${swapCommands(env).buildProxy}`;
  if (r.exitCode !== 0) {
    s.fail();
    throw new StepError(`building ${ref} failed:\n${(r.stderr || r.stdout).trim().split('\n').slice(-15).join('\n')}`, { step: 'build' });
  }
  s.done();
}

// ---------------------------------------------------------------------------------------------
// rollout

function printPreflight(log: Logger, results: CheckResult[]) {
  for (const r of results) {
    if (!r.ok) {
      log.error(`preflight ${r.name}: ${r.message}`);
      if (r.fix) log.error(`  fix: ${r.fix}`);
    } else if (r.level === 'warn') log.warn(`preflight ${r.name}: ${r.message}`);
    else log.debug(`preflight ${r.name}: ${r.message}`);
  }
}

export async function runRollout(o: RolloutOptions): Promise<OpResult> {
  const { env, log } = o;
  const now = o.now ?? (() => new Date());
  const operator = o.operator ?? currentOperator();
  const { phases, timed } = createPhaseTimer();
  const source = path.resolve(o.source ?? env.projectDir);

  // 1. preflight (read-only, also in --dry-run)
  let preflight: CheckResult[] = [];
  if (!o.skipPreflight) {
    const s = log.step('preflight');
    preflight = await timed('preflight', () => runPreflight(env, {}));
    printPreflight(log, preflight);
    const code = preflightExitCode(preflight);
    if (code !== 0) {
      s.fail(`${preflight.filter((r) => !r.ok).length} check(s) failed`);
      return { id: '', exitCode: code, result: 'failed', phases, preflight, reason: 'preflight failed' };
    }
    s.done(`${preflight.length} checks`);
  }

  // git state and tag (read-only)
  const git = await gitState(source);
  if (git.dirty && !o.allowDirty && o.dryRun) {
    log.warn(`the working tree ${source} has uncommitted changes: a real rollout refuses it without --allow-dirty`);
  } else if (git.dirty && !o.allowDirty) {
    throw new ConfigError(`the working tree ${source} has uncommitted changes:\n${git.porcelain.trim().split('\n').slice(0, 10).join('\n')}`, {
      file: source,
      hint: 'commit (or stash) them and retry; or pass --allow-dirty to deploy them with a visible -dirty tag',
    });
  }
  const appTag = o.tag ?? appTagFor(git, now());
  const image = env.appImage;
  const build = buildArgs({ contextDir: source, image, appTag, buildArgs: buildArgValues(env), labels: { 'org.lazyflow.git-sha': git.sha, 'org.lazyflow.dirty': String(git.dirty) } });
  const cmds = swapCommands(env, { stopTimeoutS: o.stopTimeoutS });
  const journal0 = readJournal(env.layout.releases);
  const current0 = currentRelease(journal0.releases);

  if (o.dryRun) {
    const live0 = await liveApp(env);
    const previous0 = live0 && live0.status === 'running' ? { id: current0?.appTag === live0.tag ? current0.id : 'untracked', appTag: live0.tag } : current0;
    const plan = rolloutPlan({
      appTag, image, dirty: git.dirty, previous: previous0, build, composeUp: cmds.up,
      keepImages: o.keepImages ?? 5, telegram: Boolean(env.values.BOT_TOKEN), notify: Boolean(env.values.BOT_TOKEN && env.values.ADMIN_CHAT_ID),
      skipBackup: o.skipBackup, skipSmoke: o.skipSmoke,
    });
    return { id: '(dry run)', exitCode: 0, result: 'dry-run', appTag, phases, preflight, plan };
  }

  // 2. lock (a stale lock of a killed rollout is taken over), then recover what it left behind
  const lock: LockHandle = await timed('lock', () => acquireLock(env.layout, { operation: 'rollout', operator, waitMs: (o.lockWaitS ?? 0) * 1000, log }));
  try {
    await recoverUnfinished(env, log, o, operator);
    const journal = readJournal(env.layout.releases);
    const live = await liveApp(env);
    // What runs now is what we go back to. The journal's current release names it when it agrees.
    const cur = currentRelease(journal.releases);
    const previous = live && live.status === 'running'
      ? { id: cur && cur.appTag === live.tag ? cur.id : 'untracked', appTag: live.tag }
      : cur ? { id: cur.id, appTag: cur.appTag! } : null;
    const id = newReleaseId(now(), git.sha.slice(0, 12) + (git.dirty ? '-dirty' : ''), journal.releases.map((r) => r.id));
    const base: ReleaseLine = {
      id, kind: 'rollout', gitSha: git.sha, image: `${image}:${appTag}`, appTag, operator, startedAt: now().toISOString(),
      result: 'in-progress', phase: 'build', previousRelease: previous?.id ?? null, previousAppTag: previous?.appTag ?? null,
      dirty: git.dirty, source, backupId: null,
    };
    appendJournal(env.layout.releases, base);
    log.info(`release ${id}: ${image}:${appTag}${git.dirty ? ' (DIRTY tree)' : ''}, now running: ${previous ? `${previous.appTag} (${previous.id})` : 'nothing'}`);

    const fail = (phase: string, err: unknown): OpResult => {
      const reason = `${phase} failed: ${errorMessage(err)}`;
      appendJournal(env.layout.releases, { id, result: 'failed', endedAt: now().toISOString(), phases, reason });
      log.error(`rollout ${id} FAILED in ${phase}: ${errorMessage(err)}`);
      log.error('nothing live changed: the app still runs the previous release');
      return { id, exitCode: 1, result: 'failed', appTag, phases, reason };
    };

    // 3. build
    const bs = log.step(`build ${image}:${appTag}`);
    try {
      await timed('build', async () => {
        const r = await $({ quiet: true, nothrow: true, cwd: source })`docker ${build.argv}`;
        if (r.exitCode !== 0) throw new StepError(`docker build failed:\n${(r.stderr || r.stdout).trim().split('\n').slice(-20).join('\n')}`, { step: 'build' });
        if (!live) await ensureProxyImage(env, log);
      });
      bs.done();
    } catch (err) {
      bs.fail(err);
      return fail('build', err);
    }

    // 4. pre-deploy backup (only when there is a database to protect)
    let backupId: string | null = null;
    const userVersionBefore = readUserVersion(env.layout.db);
    if (o.skipBackup) {
      log.warn('--skip-backup: no pre-deploy backup; a failed schema-changing release could not be undone');
    } else if (userVersionBefore === null && !fs.existsSync(env.layout.db)) {
      log.info('no database yet (first deploy): no pre-deploy backup needed');
    } else {
      const s = log.step('pre-deploy backup');
      try {
        backupId = await timed('backup', () => preDeployBackup(env, log, previous?.appTag ?? null));
        s.done(backupId);
      } catch (err) {
        s.fail(err);
        return fail('backup', err);
      }
    }
    appendJournal(env.layout.releases, { id, phase: 'swap', backupId, userVersionBefore, phases: { ...phases } });

    // 5-8. swap and gates; any failure -> automatic rollback
    let swap: SwapTiming | undefined;
    let smoke: SmokeResult[] | undefined;
    let phase = 'swap';
    try {
      if (!live || (await runningContainerCount(env, 'caddy')) === 0) {
        // first deploy (or the proxy is down): bring the whole stack up on the new tag
        const s = log.step(`start the stack on ${appTag}`);
        const t = performance.now();
        const r = await $({ quiet: true, nothrow: true, env: composeEnvFor(env, appTag) })`docker ${cmds.upAll}`;
        if (r.exitCode !== 0) throw new GateError(`docker compose up failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`, { step: 'swap', diagnostics: await appDiagnostics(env) });
        const { c, startToHealthyMs } = await waitHealthy(env, (o.healthTimeoutS ?? 90) * 1000, log);
        swap = { stopMs: 0, startMs: performance.now() - t, startToHealthyMs, totalMs: performance.now() - t, containerId: c.Id, startedAt: c.State.StartedAt };
        phases.swap = Math.round(swap.totalMs);
        s.done();
      } else if (live.tag === appTag && live.status === 'running' && live.health === 'healthy') {
        // same image already live (a re-run): restarting it would only cost a gap; just gate it
        log.info(`the app already runs ${appTag} and is healthy: no swap, gates only`);
        swap = { stopMs: 0, startMs: 0, startToHealthyMs: 0, totalMs: 0, containerId: live.id, startedAt: live.startedAt };
        phases.swap = 0;
      } else {
        const s = log.step(`swap app ${previous?.appTag ?? '?'} -> ${appTag}`);
        swap = await timed('swap', () => swapApp(env, appTag, { log, healthTimeoutS: o.healthTimeoutS, stopTimeoutS: o.stopTimeoutS }));
        s.done(`stop ${formatDuration(swap.stopMs)}, start ${formatDuration(swap.startMs)}, healthy ${formatDuration(swap.startToHealthyMs)} after start`);
      }
      appendJournal(env.layout.releases, { id, phase: 'health', phases: { ...phases }, swap: roundSwap(swap) });

      phase = 'health';
      const hs = log.step('health gate');
      const hd = await timed('health', () => healthGate(env, appTag, { smoke: o.smoke }));
      hs.done(hd);

      phase = 'telegram';
      const ts = log.step('telegram gate');
      const td = await timed('telegram', () => telegramGate(env, swap!.startedAt, { timeoutMs: (o.telegramTimeoutS ?? 60) * 1000, pendingMax: o.pendingMax, apiRoot: o.smoke?.telegramApiRoot }));
      ts.done(td);

      phase = 'smoke';
      if (o.skipSmoke) log.warn('--skip-smoke: smoke checks skipped');
      else {
        const ss = log.step('smoke');
        smoke = await timed('smoke', () => smokeGate(env, appTag, { smoke: o.smoke, log }));
        ss.done(`${smoke.filter((r) => r.status === 'pass').length} pass, ${smoke.filter((r) => r.status === 'warn').length} warn, ${smoke.filter((r) => r.status === 'skip').length} skip`);
      }
    } catch (err) {
      log.error(`${phase} gate FAILED: ${errorMessage(err)}`);
      if (err instanceof GateError && err.diagnostics) log.error(`diagnostics of the new container:\n${err.diagnostics}`);
      appendJournal(env.layout.releases, { id, phase, phases: { ...phases }, reason: `${phase} failed: ${errorMessage(err)}`, ...(swap ? { swap: roundSwap(swap) } : {}) });
      const rb = await revert({
        env, log, operator, gates: o, kind: 'rollback',
        failed: { id, appTag, backupId, userVersionBefore, phase },
        previous,
        reason: `${phase} gate failed: ${errorMessage(err).split('\n')[0]}`,
      });
      const what = rb.ok
        ? `rolled back to ${rb.decision.toAppTag ?? 'nothing (app stopped)'}${rb.decision.restoreDb ? ` and restored backup ${rb.decision.backupId}` : ', data kept'}`
        : `rollback FAILED: ${rb.error}`;
      (rb.ok ? log.warn : log.error)(`rollout ${id} failed in ${phase}; ${what}`);
      for (const w of rb.decision.why) log.info(`  why: ${w}`);
      return { id, exitCode: 1, result: 'rolled-back', appTag, phases, swap, smoke: (err as { results?: SmokeResult[] }).results, rollback: { decision: rb.decision, ok: rb.ok }, reason: `${phase} failed: ${errorMessage(err)}` };
    }

    // 9. record + prune
    const rec = performance.now();
    appendJournal(env.layout.releases, { id, result: 'ok', endedAt: now().toISOString(), phase: 'record', phases: { ...phases }, swap: roundSwap(swap!), userVersionAfter: readUserVersion(env.layout.db) });
    try {
      const pruned = await pruneImages(env, o.keepImages ?? 5, [appTag, previous?.appTag ?? '']);
      if (pruned.length) log.info(`pruned ${pruned.length} old release image(s): ${pruned.join(', ')}`);
    } catch (err) {
      log.warn(`image pruning failed (the release is fine): ${errorMessage(err)}`);
    }
    phases.record = Math.round(performance.now() - rec);

    // 10. notify
    if (o.notify !== false) {
      const t = performance.now();
      const n = await notify(env, `lazyflow: deployed ${appTag} (${id}) in ${formatDuration(Object.values(phases).reduce((a, b) => a + b, 0))}`);
      if (n) log.info(`notify: ${n}`);
      phases.notify = Math.round(performance.now() - t);
    }
    appendJournal(env.layout.releases, { id, phases: { ...phases } });
    log.ok(`rollout ${id} done: ${env.appUrl} runs ${appTag}`);
    return { id, exitCode: 0, result: 'ok', appTag, phases, swap, smoke };
  } finally {
    lock.release();
  }
}

function roundSwap(s: SwapTiming) {
  return { stopMs: Math.round(s.stopMs), startMs: Math.round(s.startMs), startToHealthyMs: Math.round(s.startToHealthyMs), totalMs: Math.round(s.totalMs), ...(s.beganAt ? { beganAt: new Date(s.beganAt).toISOString(), endedAt: new Date(s.endedAt ?? s.beganAt).toISOString() } : {}) };
}

/** Remove release images beyond the newest N (only tags the journal knows; never the live one). */
export async function pruneImages(env: OpsEnv, keep: number, protect: string[]): Promise<string[]> {
  const out = await docker(['images', env.appImage, '--format', '{{.Tag}}']);
  const localTags = out.stdout.split('\n').map((s) => s.trim()).filter((t) => t && t !== '<none>');
  const live = await liveApp(env);
  const tags = imagesToPrune({ localTags, releases: readJournal(env.layout.releases).releases, keep, protect: [...protect, live?.tag ?? ''].filter(Boolean) });
  const removed: string[] = [];
  for (const t of tags) {
    const r = await docker(['image', 'rm', `${env.appImage}:${t}`], { nothrow: true });
    if (r.exitCode === 0) removed.push(t);
  }
  return removed;
}

/** Optional message to ADMIN_CHAT_ID; never fails the operation. */
export async function notify(env: OpsEnv, text: string, apiRoot?: string): Promise<string> {
  const v = env.values;
  if (!v.BOT_TOKEN || !v.ADMIN_CHAT_ID) return '';
  try {
    await sendMessage(hostApiRoot(v, apiRoot), v.BOT_TOKEN, v.ADMIN_CHAT_ID, text);
    return `sent to chat ${v.ADMIN_CHAT_ID}`;
  } catch (e) {
    return `not sent (${redactToken(errorMessage(e), v.BOT_TOKEN)})`;
  }
}

export type { Release };
