// Rollout: build by git sha, back up, swap the one app container behind Caddy, gate, record, and go
// back automatically when a gate fails. Plans and decisions are pure (plan.mts); this file runs them.
import fs from 'node:fs';
import path from 'node:path';
import { $ } from 'zx';
import { composeEnv, composeEnvFor, swapCommands } from '../commands/compose.mts';
import { docker, dockerProcess } from '../docker/run.mts';
import { imageRmArgs, imageTagsArgs } from '../commands/docker.mts';
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import { createPhaseTimer, formatDuration } from '../cli/log.mts';
import { GateError, StepError, ConfigError, errorMessage } from '../cli/errors.mts';
import { acquireLock, currentOperator, processStartTime, type LockHandle } from '../host/lock.mts';
import { JOURNAL_KEEP_RELEASES, appendJournal, compactJournal, currentRelease, newReleaseId, readJournal, type Release, type ReleaseLine } from './journal.mts';
import { appTagFor, buildArgs, imagesToPrune, isDirtyPorcelain, rolloutPlan, type RollbackDecision } from './plan.mts';
import { preflightExitCode, preflightHost, preflightStack, type CheckResult } from '../checks/preflight.mts';
import { readHandledUpdateMax, readUserVersion, smokeTarget, type SmokeOptions } from '../checks/smoke.mts';
import type { Target } from '../checks/http.mts';
import { heldNext } from '../recovery/decide.mts';
import type { SmokeResult } from '../checks/evaluate.mts';
import { appDiagnostics, imageExists, liveApp, runningContainerCount, waitHealthy } from '../docker/app-container.mts';
import { roundSwap, swapWindowOf, swapApp, type SwapTiming } from './swap.mts';
import { healthGate, healthGateMs, smokeGate, telegramGate, type GateOptions } from './gates.mts';
import { preDeployBackup, revert } from './revert.mts';
import { restartPoller, stopPoller } from './swap.mts';
import { holdAfterFailedGate } from './judge.mts';
import { recoverUnfinished } from './recovery.mts';
import { OperationNotice, releaseLabel, withNotice } from '../notify/operation.mts';
import { releaseReport } from '../notify/reports.mts';
import { selectChannels } from '../notify/channels.mts';
import { runDetached } from './critical.mts';
import { activateFrontend, buildProxyImage, keepServedFrontend, observeFrontend, proxyImageFor, pruneFrontends, stageFrontend } from './frontend.mts';
import { syncAppEnvFile } from '../config/app-env.mts';
import { contractGate } from './contract-gate.mts';
import { ensureNet, netVerdict } from '../schedules/net.mts';
import { buildProgressReader } from './build-progress.mts';
import { holdWebhook, releaseWebhook } from './webhook-hold.mts';
import { DEFAULT_FRONTEND_DIR, decideShape, hasMiniApp, hasProxy, pollingBot, shapeOfRelease, type BotShape } from '../config/shape.mts';

/** From when a release serves until its gates must have ended: health, smoke, Telegram, and room for a slow smoke. */
export const gateWindowS = (o: GateOptions) => Math.max(30, o.healthTimeoutS ?? 30) + (o.telegramTimeoutS ?? 60) + 120;

export type { GateOptions };

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
  /** run the critical section in a detached worker (default true; false: in this process, for tests) */
  detach?: boolean;
  /** do not run the contract gate (the image is not checked against the app contract's required tier) */
  skipContract?: boolean;
}

export interface OpResult {
  id: string;
  exitCode: number;
  result: 'ok' | 'failed' | 'rolled-back' | 'dry-run';
  appTag?: string;
  phases: Record<string, number>;
  swap?: SwapTiming;
  rollback?: { decision: RollbackDecision; ok: boolean };
  /** why the automatic revert failed (rollback.ok false) */
  revertError?: string;
  preflight?: CheckResult[];
  smoke?: SmokeResult[];
  plan?: { phase: string; what: string; argv?: string[] }[];
  reason?: string;
  /** the contract gate: ran (not-cached / env-changed), cached pass, skipped, or refused the image */
  contract?: { decision: 'not-cached' | 'env-changed' | 'cached' | 'skipped' | 'refused'; ms: number; imageId?: string };
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

/**
 * The git repository that holds the compose project directory (what a release is built from by
 * default), and where this toolkit sits in it: '' when the toolkit is the repository, e.g. 'deploy'
 * when an app's repository carries the toolkit in deploy/ (RUNBOOK "Adopting the toolkit").
 */
export async function releaseLayout(projectDir: string): Promise<{ root: string; toolkitDir: string }> {
  const r = await $({ quiet: true, nothrow: true, cwd: projectDir })`git rev-parse --show-toplevel --show-prefix`;
  if (r.exitCode !== 0) return { root: path.resolve(projectDir), toolkitDir: '' };
  const [root, prefix = ''] = r.stdout.split('\n');
  return { root: root.trim(), toolkitDir: prefix.trim().replace(/\/+$/, '') };
}

function buildArgValues(env: OpsEnv): Record<string, string | undefined> {
  return { BUN_IMAGE: env.values.BUN_IMAGE || process.env.BUN_IMAGE || undefined };
}

/**
 * The release's shape (config/shape.mts): the env file, the release's source (does it hold the default
 * front end?), and what the live release was deployed as. An unknown BOT_SHAPE is a config error.
 */
export function releaseShape(env: OpsEnv, source: string, releases: { appTag?: string; shape?: unknown }[], liveTag?: string | null): { shape: BotShape; why: string } {
  const d = decideShape({ values: env.values, defaultFrontendDir: fs.existsSync(path.join(source, DEFAULT_FRONTEND_DIR)), recorded: shapeOfRelease(releases, liveTag) });
  if (!d.ok) throw new ConfigError(`${d.error} in ${env.file}`, { file: env.file, key: 'BOT_SHAPE', hint: `${d.fix} in ${env.file}` });
  return d;
}

// ---------------------------------------------------------------------------------------------
// rollout

/** a promise's outcome as a value: steps that run side by side are all awaited before one's failure is acted on */
function settled<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; err: unknown }> {
  return p.then((value) => ({ ok: true as const, value }), (err: unknown) => ({ ok: false as const, err }));
}

function printPreflight(log: Logger, results: CheckResult[]) {
  for (const r of results) {
    if (!r.ok) {
      log.error(`preflight ${r.name}: ${r.message}`);
      if (r.fix) log.error(`  fix: ${r.fix}`);
    } else if (r.level === 'warn') log.warn(`preflight ${r.name}: ${r.message}`);
    else log.debug(`preflight ${r.name}: ${r.message}`);
  }
}

/**
 * The rollout, notified once: failures up to the pre-deploy backup are reported here; from the
 * critical section on, the critical section reports (inline or in the detached worker, which goes on
 * when this process is killed), so the notice is handed off.
 */
export async function runRollout(o: RolloutOptions): Promise<OpResult> {
  return withNotice(
    { env: o.env, log: o.log, operation: 'rollout', enabled: o.notify !== false, apiRoot: o.smoke?.telegramApiRoot },
    (n) => rolloutSteps(o, n),
    releaseReport,
  );
}

async function rolloutSteps(o: RolloutOptions, n: OperationNotice): Promise<OpResult> {
  const { env, log } = o;
  const now = o.now ?? (() => new Date());
  const operator = o.operator ?? currentOperator();
  const { phases, timed } = createPhaseTimer();
  const layout = await releaseLayout(env.projectDir);
  const source = path.resolve(o.source ?? layout.root);

  // 1. preflight (read-only, also in --dry-run): the env file, the engine and Compose now; what the
  // engine says of the stack (compose config, caddy validate, STATE_DIR's filesystems) runs beside the
  // build (3), which it does not depend on, and is judged before anything live changes
  let preflight: CheckResult[] = [];
  let stackChecks: (() => Promise<CheckResult[]>) | null = null;
  const preflightFailed = (results: CheckResult[]) => {
    const bad = results.filter((r) => !r.ok);
    return { exitCode: preflightExitCode(results), reason: `preflight failed: ${bad[0] ? `${bad[0].name}: ${bad[0].message}` : 'see above'}`, count: bad.length };
  };
  if (!o.skipPreflight) {
    const s = log.step('preflight');
    const host = await timed('preflight', () => preflightHost(env));
    // the safety net is this rollout's own step (ensureNet, below), not a preflight warning
    stackChecks = () => preflightStack(env, host.values, host.engine, { net: false });
    preflight = host.results;
    if (o.dryRun) preflight = [...preflight, ...(await stackChecks())];
    printPreflight(log, preflight);
    if (preflightExitCode(preflight) !== 0) {
      const f = preflightFailed(preflight);
      s.fail(`${f.count} check(s) failed`);
      return { id: '', exitCode: f.exitCode, result: 'failed', phases, preflight, reason: f.reason };
    }
    s.done(`${preflight.length} checks${o.dryRun ? '' : ', the stack\'s beside the build'}`);
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
  n.release = appTag;
  const image = env.appImage;
  const build = buildArgs({ contextDir: source, image, appTag, buildArgs: buildArgValues(env), labels: { 'org.lazyflow.git-sha': git.sha, 'org.lazyflow.dirty': String(git.dirty) } });
  const cmds = swapCommands(env, { stopTimeoutS: o.stopTimeoutS });
  const journal0 = readJournal(env.layout.releases);
  const current0 = currentRelease(journal0.releases);
  // the bot's shape (RUNBOOK "Bot shapes"): whether a Mini App is built and switched with the release
  const shape = releaseShape(env, source, journal0.releases, current0?.appTag);
  log.info(`bot shape: ${shape.shape} (${shape.why})`);

  if (o.dryRun) {
    const live0 = await liveApp(env);
    const previous0 = live0 && live0.status === 'running' ? { id: current0?.appTag === live0.tag ? current0.id : 'untracked', appTag: live0.tag } : current0;
    const plan = rolloutPlan({
      appTag, image, dirty: git.dirty, previous: previous0, build, composeUp: cmds.up,
      keepImages: o.keepImages ?? 5, telegram: Boolean(env.values.BOT_TOKEN), notify: o.notify !== false && selectChannels(env.values).length > 0,
      skipBackup: o.skipBackup, skipSmoke: o.skipSmoke, skipContract: o.skipContract,
      safetyNet: await netVerdict(env).catch(() => null), polling: !hasProxy(shape.shape),
    });
    return { id: '(dry run)', exitCode: 0, result: 'dry-run', appTag, phases, preflight, plan };
  }

  // 2. lock (a stale lock of a killed rollout is taken over), then recover what it left behind
  const lock: LockHandle = await timed('lock', () => acquireLock(env.layout, { operation: 'rollout', operator, waitMs: (o.lockWaitS ?? 0) * 1000, log }));
  try {
    // the app's own keys, as the env file says now, for every compose up from here on (recovery, swap, revert)
    syncAppEnvFile(env, log);
    // recovery at boot and every minute, before anything live changes (RUNBOOK "The safety net")
    await ensureNet(env, log);
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
      dirty: git.dirty, source, backupId: null, pid: process.pid, pidStart: processStartTime(process.pid), shape: shape.shape,
    };
    appendJournal(env.layout.releases, base);
    n.release = releaseLabel(appTag, id);
    log.info(`release ${id}: ${image}:${appTag}${git.dirty ? ' (DIRTY tree)' : ''}, now running: ${previous ? `${previous.appTag} (${previous.id})` : 'nothing'}`);

    let contract: OpResult['contract'];
    const fail = (phase: string, err: unknown): OpResult => {
      const reason = `${phase} failed: ${errorMessage(err)}`;
      appendJournal(env.layout.releases, { id, result: 'failed', endedAt: now().toISOString(), phases, reason });
      log.error(`rollout ${id} FAILED in ${phase}: ${errorMessage(err)}`);
      log.error('nothing live changed: the app still runs the previous release');
      return { id, exitCode: 1, result: 'failed', appTag, phases, reason };
    };

    // 3. build the app image, and beside it what does not need it: preflight's stack checks and the
    // front end (Mini App and Caddyfile: its own proxy image, copied out to STATE_DIR/frontend). None
    // of them touches anything live, so together they cost the slowest; the contract gate follows the
    // app image's build, beside whatever of the rest is left. All have ended before the backup.
    // A bot without a Mini App (shape webhook) builds the proxy stage alone and stages no front end: the
    // critical section then has nothing to switch, and Caddy answers `/` with 404.
    // A polling bot (shape polling) has no Caddy at all: no proxy image is built.
    const miniApp = hasMiniApp(shape.shape);
    const proxied = hasProxy(shape.shape);
    if (!proxied) log.info('bot shape polling: no proxy image (no Caddy, no ingress)');
    const fs0 = proxied ? log.step(miniApp ? `build front end ${proxyImageFor(env, appTag)}` : `build proxy ${proxyImageFor(env, appTag)} (no Mini App)`) : null;
    const frontendDone = settled(proxied ? timed('frontend', async () => {
      const proxyImage = await buildProxyImage(env, appTag, source, { 'org.lazyflow.git-sha': git.sha }, layout.toolkitDir, miniApp);
      if (miniApp) {
        await stageFrontend(env, appTag, { image: proxyImage }, { gitSha: git.sha, release: id });
        // what Caddy serves now stays available to a revert, also when it predates per-release front ends
        if (live) await keepServedFrontend(env, live.tag);
      }
      appendJournal(env.layout.releases, { id, proxyImage });
    }) : Promise.resolve());
    const stackDone = settled(stackChecks ? timed('preflight_stack', stackChecks) : Promise.resolve([]));
    const besideBuild = async () => {
      const [f, st] = await Promise.all([frontendDone, stackDone]);
      if (f.ok) fs0?.done();
      else fs0?.fail(f.err);
      return { frontendErr: f.ok ? null : f.err, stack: st.ok ? st.value : null, stackErr: st.ok ? null : st.err };
    };
    const bs = log.step(`build ${image}:${appTag}`);
    try {
      await timed('build', async () => {
        const p = dockerProcess(build.argv, { cwd: source });
        // progress: the Dockerfile step the build is at (classic builder on stdout, BuildKit on stderr)
        const read = buildProgressReader((d) => bs.progress(d));
        p.stdout.on('data', read);
        p.stderr.on('data', buildProgressReader((d) => bs.progress(d)));
        const r = await p;
        if (r.exitCode !== 0) throw new StepError(`docker build failed:\n${(r.stderr || r.stdout).trim().split('\n').slice(-20).join('\n')}`, { step: 'build' });
      });
      bs.done();
    } catch (err) {
      bs.fail(err);
      await besideBuild(); // nothing of this release is left writing when the lock goes
      return fail('build', err);
    }

    // 3b. contract gate: the new image, in the checker's sandbox, against the contract's required
    // tier; a refusal changes nothing live (no backup, no swap). A pass is cached per image content.
    const cs = log.step(`contract gate ${image}:${appTag}`);
    let refused: unknown = null;
    try {
      const g = await timed('contract', () => contractGate(env, `${image}:${appTag}`, log, { skip: o.skipContract }));
      contract = { decision: g.decision, ms: g.ms, ...(g.imageId ? { imageId: g.imageId } : {}) };
      cs.done(g.decision === 'skipped' ? 'skipped (--skip-contract)' : g.decision === 'cached' ? `passed before (cached), ${formatDuration(g.ms)}` : `required tier passes, ${formatDuration(g.ms)}`);
      appendJournal(env.layout.releases, { id, contract: { decision: g.decision, ...(g.imageId ? { imageId: g.imageId } : {}), ...(g.contentHash ? { contentHash: g.contentHash } : {}) } });
    } catch (err) {
      cs.fail(); // fail() says why, once
      refused = err;
    }
    const beside = await besideBuild();
    if (beside.stack) {
      preflight = [...preflight, ...beside.stack];
      printPreflight(log, beside.stack);
    }
    if (beside.stackErr || (beside.stack && preflightExitCode(beside.stack) !== 0)) {
      const f = beside.stack ? preflightFailed(beside.stack) : { exitCode: 1, reason: `preflight failed: ${errorMessage(beside.stackErr)}` };
      const r = fail('preflight', new Error(f.reason.replace(/^preflight failed: /, '')));
      return { ...r, exitCode: f.exitCode, preflight };
    }
    if (refused) {
      const r = fail('contract', refused);
      return { ...r, contract: { decision: 'refused', ms: phases.contract ?? 0 } };
    }
    if (beside.frontendErr) return fail('build', beside.frontendErr);

    // 4. pre-deploy backup (only when there is a database to protect)
    let backupId: string | null = null;
    const userVersionBefore = readUserVersion(env.layout.db);
    if (o.skipBackup) {
      log.warn('--skip-backup: no pre-deploy backup; a failed schema-changing release could not be undone');
    } else if (userVersionBefore === null && !fs.existsSync(env.layout.db)) {
      log.info('no database yet (first deploy): no pre-deploy backup needed');
    } else {
      // From the backup on, an update the running release acknowledges would not be in it: if this
      // release is reverted with that backup, the update would be gone. So Telegram waits (503, it
      // redelivers) from before the backup until the new release is judged (webhook-hold.mts).
      // A polling bot has no webhook to hold: its old poller stops instead (swap.mts stopPoller).
      if (env.values.BOT_TOKEN && proxied) holdWebhook(env.layout, id);
      const pollerStopped = !proxied && live?.status === 'running';
      if (pollerStopped) {
        const ps = log.step('stop the old poller (updates wait in Telegram\'s queue until the release is judged)');
        try {
          await timed('stop_poller', () => stopPoller(env, log, id, { stopTimeoutS: o.stopTimeoutS }));
          ps.done();
        } catch (err) {
          ps.fail(err);
          return fail('stop-poller', err);
        }
      }
      const s = log.step('pre-deploy backup');
      try {
        backupId = await timed('backup', () => preDeployBackup(env, log, previous?.appTag ?? null, o.keepImages));
        s.done(backupId);
      } catch (err) {
        s.fail(err);
        releaseWebhook(env.layout);
        if (pollerStopped && previous) await restartPoller(env, log, previous.appTag, { healthTimeoutS: o.healthTimeoutS });
        return fail('backup', err);
      }
    }
    appendJournal(env.layout.releases, { id, phase: 'swap', backupId, userVersionBefore, phases: { ...phases } });

    // 5-10. the critical section (swap, gates, automatic revert, record) runs in a process of its own
    // session: a dropped SSH session, Ctrl-C or SIGTERM to this terminal cannot stop it halfway
    const ctx: CriticalContext = { id, appTag, previous, backupId, userVersionBefore, operator, phases: { ...phases }, options: criticalOptions(o), elapsedMs: n.elapsedMs() };
    n.handOff(); // the critical section notifies, wherever it runs
    const res = o.detach === false ? await criticalSection(env, log, ctx) : await runDetached(env, log, lock, ctx);
    return contract ? { ...res, contract } : res;
  } finally {
    lock.release();
  }
}

/** Remove release images beyond the newest N (only tags the journal knows; never the live one). */
export async function pruneImages(env: OpsEnv, keep: number, protect: string[]): Promise<string[]> {
  const out = await docker(imageTagsArgs(env.appImage));
  const localTags = out.stdout.split('\n').map((s) => s.trim()).filter((t) => t && t !== '<none>');
  const live = await liveApp(env);
  const tags = imagesToPrune({ localTags, releases: readJournal(env.layout.releases).releases, keep, protect: [...protect, live?.tag ?? ''].filter(Boolean) });
  const removed: string[] = [];
  for (const t of tags) {
    const r = await docker(imageRmArgs(`${env.appImage}:${t}`), { nothrow: true });
    if (r.exitCode === 0) removed.push(t);
    // the release's front end goes with its app image: a rollback needs both or cannot use either
    if (r.exitCode === 0) await docker(imageRmArgs(proxyImageFor(env, t)), { nothrow: true });
  }
  pruneFrontends(env, localTags.filter((t) => !removed.includes(t)));
  return removed;
}

export type { Release };


/** What the critical section needs, as plain data (it crosses into the detached worker as JSON). */
export interface CriticalContext {
  id: string;
  appTag: string;
  previous: { id: string; appTag: string } | null;
  backupId: string | null;
  userVersionBefore: number | null;
  operator: string;
  phases: Record<string, number>;
  options: CriticalOptions;
  /** how long the rollout had run before the critical section (the parent's monotonic clock) */
  elapsedMs?: number;
}

export type CriticalOptions = Pick<RolloutOptions, 'healthTimeoutS' | 'telegramTimeoutS' | 'pendingMax' | 'smoke' | 'skipSmoke' | 'stopTimeoutS' | 'keepImages' | 'notify'>;

export function criticalOptions(o: RolloutOptions): CriticalOptions {
  const { healthTimeoutS, telegramTimeoutS, pendingMax, smoke, skipSmoke, stopTimeoutS, keepImages, notify } = o;
  return { healthTimeoutS, telegramTimeoutS, pendingMax, smoke: smoke ? { ca: smoke.ca, telegramApiRoot: smoke.telegramApiRoot, connect: smoke.connect } : undefined, skipSmoke, stopTimeoutS, keepImages, notify };
}

/**
 * Swap, gates, automatic revert on a failed gate, record, prune, notify. The caller holds the lock.
 * Its one notification is the rollout's: ok, or failed with what the automatic revert did.
 */
export async function criticalSection(env: OpsEnv, log: Logger, c: CriticalContext): Promise<OpResult> {
  return withNotice(
    { env, log, operation: 'rollout', release: releaseLabel(c.appTag, c.id), enabled: c.options.notify !== false, apiRoot: c.options.smoke?.telegramApiRoot, elapsedBeforeMs: c.elapsedMs },
    (n) => criticalSteps(env, log, c, n),
    releaseReport,
  );
}

async function criticalSteps(env: OpsEnv, log: Logger, c: CriticalContext, n: OperationNotice): Promise<OpResult> {
  const { id, appTag, previous, backupId, userVersionBefore, operator } = c;
  const o = c.options;
  const phases = c.phases;
  const { timed } = createPhaseTimer(phases);
  const now = () => new Date();
  const cmds = swapCommands(env, { stopTimeoutS: o.stopTimeoutS });
  const live = await liveApp(env);
  appendJournal(env.layout.releases, { id, pid: process.pid, pidStart: processStartTime(process.pid) });
    // 5-8. swap and gates; any failure -> automatic rollback
  let swap: SwapTiming | undefined;
  let smoke: SmokeResult[] | undefined;
  let phase = 'swap';
  let proxyReloadAt: number | undefined;
  // a release that could be reverted with a restore acknowledges no Telegram update until judged
  // (a polling bot has no webhook and no Caddy to answer 503: nothing is held)
  const proxied = !pollingBot(env.values);
  const held = Boolean(backupId && env.values.BOT_TOKEN && proxied);
  let handledAtRelease: number | null = null;
  // the window in which an automatic revert may restore the pre-deploy backup (recovery: decide.mts)
  appendJournal(env.layout.releases, { id, gateWindowS: gateWindowS(o) });
  if (held) holdWebhook(env.layout, id);
  // a poller confirms updates from its start on, judged or not: what it handled counts from the swap
  if (!proxied) handledAtRelease = readHandledUpdateMax(env.layout.db) ?? -1;
  try {
    // The release's front end goes live first (atomic switch, graceful Caddy reload): API calls of the
    // new Mini App are held by Caddy through the swap and answered by the new app. Reloading before the
    // new app starts also keeps the idle connections the reload closes out of "errors since the app
    // started". A revert (recovery) points it back.
    if (observeFrontend(env).staged.includes(appTag)) {
      const t = performance.now();
      proxyReloadAt = Date.now();
      await activateFrontend(env, appTag, log);
      phases.frontend_switch = Math.round(performance.now() - t);
    }
    if (!live || (proxied && (await runningContainerCount(env, 'caddy')) === 0)) {
      // first deploy (or the proxy is down): bring the whole stack up on the new tag
      const s = log.step(`start the stack on ${appTag}`);
      const t = performance.now();
      const r = await docker(cmds.upAll, { nothrow: true, env: composeEnvFor(env, appTag) });
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
    appendJournal(env.layout.releases, { id, phase: 'health', phases: { ...phases }, swap: roundSwap(swap), servingSince: swap.startedAt });

    phase = 'health';
    const hs = log.step('health gate');
    // the health gate and smoke reach Caddy the same way: how (in local mode with Caddy's own root, read
    // from its container) is found out once
    let target: Target | undefined;
    const hd = await timed('health', async () => healthGate(env, appTag, { smoke: o.smoke, timeoutMs: healthGateMs(o.healthTimeoutS), target: (target = await smokeTarget(env, o.smoke ?? {})) }));
    hs.done(hd);

    const swapWindow = swapWindowOf(swap, proxyReloadAt);
    phase = 'smoke';
    if (o.skipSmoke) log.warn('--skip-smoke: smoke checks skipped');
    else {
      const ss = log.step(proxied ? 'smoke' : 'smoke (bot shape polling: the checks that need Caddy are skipped)');
      // smoke's telegram check is left to the Telegram gate right after it: that gate registers the webhook
      // when the app does not (a first deploy of an app that never calls setWebhook has none yet), and it
      // judges the queue once the webhook hold is released (as recovery's judgement does, recovery/run.mts)
      smoke = await timed('smoke', () => smokeGate(env, appTag, { smoke: { ...o.smoke, target, swapWindow, skip: [...(o.smoke?.skip ?? []), 'telegram'] }, log }));
      ss.done(`${smoke.filter((r) => r.status === 'pass').length} pass, ${smoke.filter((r) => r.status === 'warn').length} warn, ${smoke.filter((r) => r.status === 'skip').length} skip`);
    }

    // judged by health and smoke: only now may it acknowledge Telegram updates (webhook-hold.mts);
    // the 503s Telegram got meanwhile belong to the swap window, not to the release
    phase = 'telegram';
    if (held && releaseWebhook(env.layout)) log.info('webhook released: Telegram delivers what it queued during the gates');
    handledAtRelease ??= readHandledUpdateMax(env.layout.db) ?? -1;
    const tgWindow = held ? { ...swapWindow, endedAt: Date.now() } : swapWindow;
    const ts = log.step('telegram gate');
    const td = await timed('telegram', () => telegramGate(env, swap!.startedAt, { timeoutMs: (o.telegramTimeoutS ?? 60) * 1000, pendingMax: o.pendingMax, apiRoot: o.smoke?.telegramApiRoot, swapWindow: tgWindow }));
    ts.done(td);
  } catch (err) {
    // a failed release acknowledges nothing more while it is reverted
    if (held) holdWebhook(env.layout, id);
    // It failed the Telegram gate (a poller: any gate) after it had answered updates, and going back would restore the
    // pre-deploy backup (its schema moved): those updates would leave the live database, and Telegram
    // never resends them. Not automatic: it keeps serving, held for the operator (recovery/decide.mts).
    const answered = handledAtRelease !== null && (readHandledUpdateMax(env.layout.db) ?? -1) > handledAtRelease;
    const uvNow = readUserVersion(env.layout.db);
    if (holdAfterFailedGate({ phase, polling: !proxied, answered, backupId, userVersionBefore, userVersionNow: uvNow })) {
      releaseWebhook(env.layout);
      const next = heldNext({ id, kind: 'rollout', appTag, previousRelease: previous?.id ?? null, previousAppTag: previous?.appTag ?? null, backupId, lines: 0 }, env.file);
      const reason = `${phase} gate failed after the release had answered Telegram updates, and its schema moved (user_version ${userVersionBefore} -> ${uvNow}): reverting would restore backup ${backupId} and drop those updates; held for your choice, it keeps serving`;
      appendJournal(env.layout.releases, { id, held: { since: now().toISOString(), reason }, next, phases: { ...phases } });
      log.error(`rollout ${id}: ${reason}`);
      log.error(`choose one:\n${next}`);
      return { id, exitCode: 1, result: 'failed', appTag, phases, swap, reason: `held: ${reason}` };
    }
    log.error(`${phase} gate FAILED: ${errorMessage(err)}`);
    if (err instanceof GateError && err.diagnostics) log.error(`diagnostics of the new container:\n${err.diagnostics}`);
    appendJournal(env.layout.releases, { id, phase, phases: { ...phases }, reason: `${phase} failed: ${errorMessage(err)}`, ...(swap ? { swap: roundSwap(swap) } : {}) });
    const rb = await revert({
      env, log, operator, gates: o, kind: 'rollback',
      failed: { id, appTag, backupId, userVersionBefore, phase },
      previous,
      reason: `${phase} gate failed: ${errorMessage(err).split('\n')[0]}`,
    });
    // whatever the revert reached, what serves now is not waiting to be judged: a hold left here would
    // keep Telegram's updates out for good (recovery releases a stray one too)
    if (held) releaseWebhook(env.layout);
    const what = rb.ok
      ? `rolled back to ${rb.decision.toAppTag ?? 'nothing (app stopped)'}${rb.decision.restoreDb ? ` and restored backup ${rb.decision.backupId}` : ', data kept'}`
      : `rollback FAILED: ${rb.error}`;
    (rb.ok ? log.warn : log.error)(`rollout ${id} failed in ${phase}; ${what}`);
    for (const w of rb.decision.why) log.info(`  why: ${w}`);
    if (rb.next) log.error(`next: ${rb.next}`);
    return { id, exitCode: 1, result: rb.ok ? 'rolled-back' : 'failed', appTag, phases, swap, smoke: (err as { results?: SmokeResult[] }).results, rollback: { decision: rb.decision, ok: rb.ok }, revertError: rb.ok ? undefined : rb.error, reason: `${phase} failed: ${errorMessage(err)}` };
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
  try {
    const aside = compactJournal(env.layout.releases);
    if (aside) log.info(`the releases journal was long: compacted to one line per release (the newest ${JOURNAL_KEEP_RELEASES}); the full one is kept as ${aside}`);
  } catch (err) {
    log.warn(`compacting the releases journal failed (the release is fine): ${errorMessage(err)}`);
  }
  phases.record = Math.round(performance.now() - rec);

  // 10. notify
  if (o.notify !== false) {
    const t = performance.now();
    await n.report({ outcome: 'ok' });
    phases.notify = Math.round(performance.now() - t);
  }
  appendJournal(env.layout.releases, { id, phases: { ...phases } });
  log.ok(`rollout ${id} done: ${pollingBot(env.values) ? 'the polling bot' : env.appUrl} runs ${appTag}`);
  return { id, exitCode: 0, result: 'ok', appTag, phases, swap, smoke };
}
