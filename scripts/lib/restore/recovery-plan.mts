// Recovery of an interrupted restore as a pure decision: the restore journal and the observed live
// state in, the actions out. Before the swap began the live state was never touched: roll back
// (discard the staged copy, start the app again if we stopped it). Once the swap began: roll
// forward (the staged copy was fully verified before it), and if the restored state does not come
// up healthy, roll back to the kept-aside state. Every action is idempotent, and after the actions
// run the journal is gone, so deciding again yields nothing: running recovery twice is running it once.
// recovery/decide.mts (the engine) imports decideRestoreRecovery from here.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { errorMessage } from '../cli/errors.mts';
import type { Logger } from '../cli/log.mts';
import type { OpsEnv } from '../config/env.mts';
import { fsyncDir } from '../host/fsutil.mts';
import type { ObservedState } from '../recovery/observed.mts';
import { STAGING_PREFIX, readRestoreJournal, setPhase, type RestoreJournal, type RestorePhase } from './journal.mts';
import { keptDirFor, keptRoot } from './kept.mts';
import { KEPT_META, swapBack, swapIn } from './swap.mts';
import { startApp, stopApp } from './app.mts';
import { observeApps } from '../docker/app-container.mts';
import { GateError } from '../cli/errors.mts';

export type RestoreRecoveryAction =
  /** the restore's own process still runs (it holds the lock): leave everything to it */
  | { kind: 'leave'; why: string }
  /** a staging dir without a journal: a restore died before it touched anything */
  | { kind: 'remove-stray-staging'; dir: string }
  | { kind: 'stop-app'; why: string }
  /** complete the renames: live -> kept, staged -> live (idempotent) */
  | { kind: 'swap-in' }
  /** put the kept-aside state back live (idempotent) */
  | { kind: 'swap-back' }
  | { kind: 'set-phase'; phase: RestorePhase }
  /** on 'restored': if it does not become healthy, set rolling-back and decide again */
  | { kind: 'start-app'; on: 'old' | 'restored' }
  /** remove the journal's staging dir (the copy of a backup; never live or kept state) */
  | { kind: 'discard-staging' }
  | { kind: 'finish'; outcome: 'completed' | 'rolled-back'; what: string };

const UNTOUCHED = new Set(['staging', 'safety-backup', 'stopping']);
const FORWARD = new Set(['swapping', 'swapped', 'starting']);

/** the kept-aside dir of a journal (journals from before it existed never reach a forward phase here) */
export function keptOf(j: RestoreJournal): string {
  return j.kept ?? `${j.staging}.kept`;
}

export function decideRestoreRecovery(j: RestoreJournal | null, o: ObservedState): RestoreRecoveryAction[] {
  if (!j) {
    return o.stateEntries.filter((n) => n.startsWith(STAGING_PREFIX)).map((n) => ({ kind: 'remove-stray-staging', dir: n }));
  }
  if (o.alivePids.includes(j.pid)) {
    return [{ kind: 'leave', why: `restore process ${j.pid} is still running` }];
  }
  const running = o.apps.some((a) => a.state === 'running' || a.state === 'restarting');
  // only a healthcheck that said healthy counts: a container still starting is waited for (start-app)
  const healthy = o.apps.some((a) => a.state === 'running' && a.health === 'healthy');
  const strays = o.stateEntries
    .filter((n) => n.startsWith(STAGING_PREFIX) && n !== basename(j.staging))
    .map((n): RestoreRecoveryAction => ({ kind: 'remove-stray-staging', dir: n }));

  if (UNTOUCHED.has(j.phase)) {
    const acts: RestoreRecoveryAction[] = [{ kind: 'discard-staging' }, ...strays];
    // we stopped it (or were about to): bring it back on the untouched live state
    const restart = j.phase === 'stopping' && j.appWasRunning && !running;
    if (restart) acts.push({ kind: 'start-app', on: 'old' });
    acts.push({ kind: 'finish', outcome: 'rolled-back', what: `rolled back: the live data was never touched${restart ? '; the app was started again on it' : ''}` });
    return acts;
  }
  if (FORWARD.has(j.phase)) {
    const acts: RestoreRecoveryAction[] = [];
    // renames under a running app would tear its files away (a restart policy after a reboot)
    if (j.phase !== 'starting' && running) acts.push({ kind: 'stop-app', why: 'the swap is unfinished' });
    acts.push({ kind: 'swap-in' }, { kind: 'set-phase', phase: 'swapped' });
    const wanted = j.startApp || j.appWasRunning;
    if (wanted && !(j.phase === 'starting' && healthy)) acts.push({ kind: 'set-phase', phase: 'starting' }, { kind: 'start-app', on: 'restored' });
    acts.push({ kind: 'discard-staging' }, ...strays, { kind: 'finish', outcome: 'completed', what: `completed: the live state is backup ${j.backupId}` });
    return acts;
  }
  if (j.phase === 'rolling-back') {
    const acts: RestoreRecoveryAction[] = [];
    if (running) acts.push({ kind: 'stop-app', why: 'it runs on the restored state that failed' });
    acts.push({ kind: 'swap-back', }, { kind: 'discard-staging' }, ...strays);
    if (j.appWasRunning) acts.push({ kind: 'start-app', on: 'old' });
    acts.push({ kind: 'finish', outcome: 'rolled-back', what: `rolled back to the old state: the restored state of ${j.backupId} did not become healthy` });
    return acts;
  }
  // started, cleanup: the restore itself is done
  return [{ kind: 'discard-staging' }, ...strays, { kind: 'finish', outcome: 'completed', what: `completed: the live state is backup ${j.backupId}` }];
}

// ---------------------------------------------------------------------------------------------
// the runner

export interface RestoreRecoveryResult {
  outcome: 'completed' | 'rolled-back' | 'left';
  what: string;
  journal: RestoreJournal;
}

/** what a restore's recovery observes: only the parts of ObservedState it reads */
export async function observeForRestore(ctx: OpsEnv): Promise<ObservedState> {
  const { recordedPidAlive } = await import('../host/lock.mts');
  const j = readRestoreJournal(ctx.layout);
  return {
    apps: await observeApps(ctx),
    proxyRunning: true,
    userVersion: { kind: 'absent' },
    backupIds: [],
    imageTags: [],
    stateEntries: existsSync(ctx.layout.root) ? readdirSync(ctx.layout.root) : [],
    // our own pid is not "another restore still running": a restore recovering its own journal (rolling back)
    alivePids: j && j.pid !== process.pid && recordedPidAlive(j.pid, j.pidStart) ? [j.pid] : [],
  };
}

function removeStaging(ctx: OpsEnv, dir: string, log: Logger) {
  // a legacy staging dir may hold a replaced live state (old-data, old-uploads): keep it, never delete
  const old = ['old-data', 'old-uploads'].filter((n) => existsSync(join(dir, n)));
  if (old.length) {
    const to = keptDirFor(ctx.layout, basename(dir).slice(STAGING_PREFIX.length), 'legacy');
    rmSync(join(dir, 'data'), { recursive: true, force: true });
    rmSync(join(dir, 'uploads'), { recursive: true, force: true });
    mkdirSync(keptRoot(ctx.layout), { recursive: true, mode: 0o700 });
    renameSync(dir, to);
    log.warn(`kept ${to} (${old.join(', ')}): a replaced live state from an older restore`);
    return;
  }
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Finish or roll back an interrupted restore. Null when there was nothing to recover. Caller holds the lock.
 * Runs decideRestoreRecovery and executes its actions; a restored state that does not become healthy
 * sets rolling-back and decides again.
 */
export async function recoverRestore(ctx: OpsEnv, log: Logger, opts: { healthTimeoutMs?: number; appTag?: string; observe?: (ctx: OpsEnv) => Promise<ObservedState> } = {}): Promise<RestoreRecoveryResult | null> {
  const layout = ctx.layout;
  const timeout = opts.healthTimeoutMs ?? 120_000;
  const observe = opts.observe ?? observeForRestore;
  let j = readRestoreJournal(layout);
  if (j) log.warn(`found an interrupted restore of ${j.backupId} (phase ${j.phase}, pid ${j.pid}, started ${j.startedAt}): recovering`);
  for (let round = 0; round < 3; round++) {
    const actions = decideRestoreRecovery(j, await observe(ctx));
    let again = false;
    for (const a of actions) {
      log.debug(`restore recovery: ${JSON.stringify(a)}`);
      switch (a.kind) {
        case 'leave':
          log.warn(`not recovering: ${a.why}`);
          return { outcome: 'left', what: a.why, journal: j! };
        case 'remove-stray-staging':
          removeStaging(ctx, join(layout.root, a.dir), log);
          log.warn(`removed ${a.dir}: left by a restore that was interrupted before it touched anything`);
          break;
        case 'stop-app':
          log.warn(`stopping the app: ${a.why}`);
          await stopApp(ctx, log);
          break;
        case 'swap-in':
          if (existsSync(j!.staging)) swapIn(layout, j!.staging, keptOf(j!));
          break;
        case 'swap-back':
          if (existsSync(keptOf(j!))) swapBack(layout, j!.staging, keptOf(j!));
          break;
        case 'set-phase':
          setPhase(layout, j!, a.phase, {});
          break;
        case 'start-app':
          try {
            await startApp(ctx, log, j!, opts.appTag, timeout, a.on);
          } catch (err) {
            if (a.on === 'old') throw err;
            log.error(`the restored state did not come up: ${errorMessage(err)}; putting the kept-aside state back`);
            if (err instanceof GateError && err.diagnostics) log.error(`diagnostics:\n${err.diagnostics}`);
            setPhase(layout, j!, 'rolling-back', {});
            again = true;
          }
          break;
        case 'discard-staging':
          // staging only ever holds a copy of a backup (the replaced state goes to kept/)
          removeStaging(ctx, j!.staging, log);
          break;
        case 'finish': {
          const done = j!;
          // a kept dir holding nothing but its kept.json (killed before the renames, or no live state existed)
          const k = keptOf(done);
          if (existsSync(k) && readdirSync(k).every((n) => n === KEPT_META)) rmSync(k, { recursive: true, force: true });
          rmSync(layout.restoreJournal, { force: true });
          fsyncDir(layout.root);
          log.ok(`interrupted restore ${a.what}`);
          // every write the app accepted before the stop is in the replaced state: say where it is
          if (a.outcome === 'completed' && existsSync(k)) log.warn(`the live state it replaced (writes up to the app's stop) is kept in ${k}`);
          return { outcome: a.outcome, what: a.what, journal: done };
        }
      }
      if (again) break;
    }
    if (!again) return null; // no journal: only stray staging dirs, if any, were removed
    j = readRestoreJournal(layout);
  }
  return null;
}
