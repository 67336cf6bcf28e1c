// The recovery decision as a table: one row per interruption point of rollout, rollback,
// rollback --with-db, the automatic revert, restore, and recovery itself. Each row gives the
// journals and what Docker and the database show after the interruption; the test applies the
// decided actions to that state (each action's effect as the runner has it, nothing of Docker or
// SQLite is imitated beyond the observed facts), deciding again after each, and checks where the
// site ends up. Then: deciding again yields nothing (run twice = once), and recovery interrupted
// after any number of its actions ends in the same place.
import { describe, expect, it } from 'vitest';
import { parseJournal, type Release, type ReleaseLine } from '../../scripts/lib/release/journal.mts';
import { closeAfterFailure, closesOnFailure, decideRecovery, type RecoveryAction } from '../../scripts/lib/recovery/decide.mts';
import type { ObservedApp, ObservedState } from '../../scripts/lib/recovery/observed.mts';
import type { RestoreJournal } from '../../scripts/lib/restore/restore.mts';

interface World {
  lines: ReleaseLine[];
  restoreJournal: RestoreJournal | null;
  observed: ObservedState;
  /** user_version each backup holds */
  backupSchemas: Record<string, number>;
  /** what the gates say when recovery judges an unfinished release (judge-release) */
  gates: 'pass' | 'fail';
}

const releases = (w: World): Release[] => parseJournal(w.lines.map((l) => JSON.stringify(l)).join('\n')).releases;
const decide = (w: World) => decideRecovery({ releases: releases(w), restoreJournal: w.restoreJournal, observed: w.observed, configFile: '.env.prod' });
let nextId = 0;

/** What each action does to the world, as the runner (recovery/run.mts) performs it. */
function apply(w: World, a: RecoveryAction): World {
  const o = structuredClone(w.observed);
  const lines = [...w.lines];
  let restoreJournal = w.restoreJournal;
  switch (a.kind) {
    case 'mark-failed':
      lines.push({ id: a.releaseId, result: 'failed', reason: a.reason });
      break;
    case 'stop-app':
      for (const x of o.apps) if (x.state === 'running' || x.state === 'restarting' || x.state === 'paused') Object.assign(x, { state: 'exited', health: undefined });
      break;
    case 'remove-app-containers':
      o.apps = o.apps.filter((x) => !a.ids.includes(x.id));
      break;
    case 'stage-backup':
      o.staged = [...(o.staged ?? []).filter((x) => x.backupId !== a.backupId), { backupId: a.backupId, complete: true }];
      break;
    case 'discard-staged':
      o.staged = (o.staged ?? []).filter((x) => !a.backupIds.includes(x.backupId));
      break;
    case 'restore-backup':
      // a staged copy of it is renamed in (restoreBackup: prestaged)
      o.staged = (o.staged ?? []).filter((x) => x.backupId !== a.backupId);
      o.userVersion = { kind: 'read', value: w.backupSchemas[a.backupId] };
      lines.push({ id: a.releaseId, dbRestored: true });
      break;
    case 'revert-data':
      // the pre-rollback state (v2's, schema 4) is renamed live again
      o.userVersion = { kind: 'read', value: 4 };
      lines.push({ id: a.releaseId, phase: 'revert-start', dbRestored: false, keptFailed: a.to });
      break;
    case 'start-proxy':
      o.proxyRunning = true;
      break;
    case 'start-app':
      o.apps = [{ id: `c${++nextId}`, tag: a.appTag, state: 'running', health: 'healthy' }];
      break;
    case 'undrain':
      o.drain = null;
      break;
    case 'release-webhook':
      o.webhookHeld = false;
      break;
    case 'activate-frontend':
      o.frontend = { ...o.frontend!, live: a.appTag };
      break;
    case 'finish':
      o.webhookHeld = false;
      lines.push({ id: a.releaseId, result: a.result, dbRestored: a.dbRestored });
      if (a.failedReleaseId) lines.push({ id: a.failedReleaseId, result: a.result === 'ok' ? 'rolled-back' : 'failed' });
      break;
    case 'judge-release':
      // the runner releases the hold before the Telegram gate, whatever the gates then say
      o.webhookHeld = false;
      lines.push(w.gates === 'pass' ? { id: a.releaseId, result: 'ok' } : { id: a.releaseId, judgedFailed: 'smoke: failed' });
      break;
    case 'hold':
      o.webhookHeld = false;
      lines.push({ id: a.releaseId, held: { servedS: a.servedS }, next: a.next });
      break;
    case 'restore-recover':
      if (a.how === 'roll-forward') o.userVersion = { kind: 'read', value: w.backupSchemas[a.backupId] };
      restoreJournal = null;
      break;
  }
  return { ...w, lines, observed: o, restoreJournal };
}

/** Decide, apply the first action, decide again... until nothing is left. */
function converge(w: World): { world: World; trace: RecoveryAction[] } {
  const trace: RecoveryAction[] = [];
  for (let i = 0; i < 20; i++) {
    const actions = decide(w);
    if (!actions.length) return { world: w, trace };
    trace.push(actions[0]);
    w = apply(w, actions[0]);
  }
  throw new Error(`no fixpoint after 20 actions: ${trace.map((t) => t.kind).join(', ')}`);
}

const app = (tag: string, state: ObservedApp['state'] = 'running', health: ObservedApp['health'] = 'healthy', id = `${tag}-${state}`): ObservedApp => ({ id, tag, state, health });
function world(lines: ReleaseLine[], o: Partial<ObservedState> = {}, restoreJournal: RestoreJournal | null = null): World {
  return {
    lines,
    restoreJournal,
    backupSchemas: { 'b-r2': 3, 'b-safety': 4 },
    gates: 'fail',
    observed: {
      apps: [], proxyRunning: true, userVersion: { kind: 'read', value: 3 }, backupIds: ['b-r2'], imageTags: ['v1', 'v2'],
      stateEntries: ['data', 'uploads', 'backups', 'releases.jsonl'], alivePids: [], ...o,
    },
  };
}

// r1 is live (v1, schema 3); r2 rolls out v2 (pre-deploy backup b-r2, user_version 3 before).
const R1: ReleaseLine = { id: 'r1', kind: 'rollout', appTag: 'v1', result: 'ok', userVersionAfter: 3, backupId: null };
// it began serving at T0 (servingSince); a row's `served` sets the clock recovery observes
const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const r2 = (phase: string, extra: Partial<ReleaseLine> = {}): ReleaseLine => ({
  id: 'r2', kind: 'rollout', appTag: 'v2', result: 'in-progress', phase, previousRelease: 'r1', previousAppTag: 'v1', backupId: 'b-r2', userVersionBefore: 3, pid: 900,
  ...(phase === 'swap' ? {} : { servingSince: new Date(T0).toISOString() }), ...extra,
});
const WEEKS3 = 21 * 86400;
const passing = (w: World): World => ({ ...w, gates: 'pass' });
const held = (extra: Partial<ReleaseLine> = {}): ReleaseLine => ({ id: 'r2', held: { servedS: WEEKS3 }, next: 'node scripts/recover.mts --keep r2 ...', ...extra });
// the automatic revert of r2, as the fixed engine journals it: its target is v1, the failed tag is not "previous"
const revert = (phase: string, extra: Partial<ReleaseLine> = {}): ReleaseLine => ({
  id: 'rb', kind: 'rollback', appTag: 'v1', result: 'in-progress', phase, revertOf: 'r2', failedAppTag: 'v2', previousRelease: 'r2', target: 'r1', pid: 900, ...extra,
});
// a manual rollback from v2 (r2 ok) to v1; with --with-db it restores b-r2 (v1's data)
const R2ok: ReleaseLine = { id: 'r2', kind: 'rollout', appTag: 'v2', result: 'ok', previousRelease: 'r1', previousAppTag: 'v1', backupId: 'b-r2', userVersionBefore: 3, userVersionAfter: 4 };
const manual = (phase: string, extra: Partial<ReleaseLine> = {}): ReleaseLine => ({
  id: 'm1', kind: 'rollback', appTag: 'v1', result: 'in-progress', phase, previousRelease: 'r2', previousAppTag: 'v2', target: 'r1', backupId: null, pid: 901, ...extra,
});
// where a failed rollback --with-db moves the data: the pre-rollback state back live, the failed attempt's aside
const withDbBack = { from: '/state/kept/op1-pre-rollback', to: '/state/kept/m1-failed-rollback' };
const restoreJ = (phase: RestoreJournal['phase'], extra: Partial<RestoreJournal> = {}): RestoreJournal => ({
  op: 'op1', backupId: 'b-r2', staging: '/state/.restore-op1', phase, startedAt: '', updatedAt: '', pid: 902, appWasRunning: true, appImage: 'lazyflow-app:v1',
  startApp: false, safetyBackupId: 'b-safety', keepOld: false, ...extra,
});

interface Row {
  name: string;
  world: World;
  /** kinds of the actions recovery takes, in order */
  kinds: string[];
  /** the one running app container at the end (null: none) */
  runs: string | null;
  results: Record<string, string>;
  userVersion?: number;
  /** the finish action asks the operator (exit 1 with this next command) */
  asks?: RegExp;
  /** the front end served at the end */
  frontend?: string | null;
  /** how long the unfinished release has served (s) when recovery runs; 0 unless given (its gate window is 300 s) */
  served?: number;
}

// per-release front ends: v1 and v2 are staged; `live` is what Caddy serves at the interruption
const fe = (live: string | null, staged = ['v1', 'v2']) => ({ frontend: { live, staged } });
// STATE_DIR/proxy/draining, written by the process that stops the app (alive or not)
const drain = (ownerAlive: boolean) => ({ drain: { what: 'swap to v2', since: '2026-12-01T10:00:00.000Z', ownerAlive } });

const rows: Row[] = [
  // rollout
  { name: 'rollout killed in build: nothing live changed', world: world([R1, r2('build')], { apps: [app('v1')] }), kinds: ['mark-failed'], runs: 'v1', results: { r2: 'failed' } },
  { name: 'rollout killed in its pre-deploy backup', world: world([R1, r2('backup')], { apps: [app('v1')] }), kinds: ['mark-failed'], runs: 'v1', results: { r2: 'failed' } },
  // bot shape polling: the old poller stops before the pre-deploy backup (journal phase stop-poller)
  { name: 'polling rollout killed in its backup after it stopped the old poller: the old poller starts again (never just marked failed with the bot stopped)', world: world([R1, r2('stop-poller', { backupId: null, userVersionBefore: undefined, servingSince: undefined })], { apps: [app('v1', 'exited', undefined)] }), kinds: ['remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back' }, userVersion: 3 },
  { name: 'polling rollout killed before its stop of the old poller acted: it still polls, only the final line', world: world([R1, r2('stop-poller', { backupId: null, userVersionBefore: undefined, servingSince: undefined })], { apps: [app('v1')] }), kinds: ['finish'], runs: 'v1', results: { r2: 'rolled-back' } },
  { name: 'rollout killed mid swap, the old app still reported running: restarted, not trusted (Docker may be finishing a stop compose asked for)', world: world([R1, r2('swap', { startedAt: '2026-12-01T10:00:00.000Z' })], { apps: [{ ...app('v1'), startedAt: '2000-01-01T00:00:00.000Z' }] }), kinds: ['stop-app', 'remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back' } },
  { name: 'rollout killed before compose up acted (old still runs)', world: world([R1, r2('swap')], { apps: [app('v1')] }), kinds: ['finish'], runs: 'v1', results: { r2: 'rolled-back' } },
  { name: 'rollout killed mid compose up: new Created, old stopped (the site was down)', world: world([R1, r2('swap')], { apps: [app('v1', 'exited', undefined), app('v2', 'created', undefined)] }), kinds: ['remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back' } },
  { name: 'rollout killed with the old one removed and the new one Created', world: world([R1, r2('swap')], { apps: [app('v2', 'created', undefined)] }), kinds: ['remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back' } },
  { name: 'rollout killed while the new one starts (not yet healthy), schema unchanged', world: world([R1, r2('swap')], { apps: [app('v2', 'running', 'starting')] }), kinds: ['stop-app', 'remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back' }, userVersion: 3 },
  { name: 'rollout killed in the health gate, new release migrated (user_version 3 -> 4): judged after the stop, backup restored (healthy, judged by its gates: they fail, within its gate window)', world: world([R1, r2('health')], { apps: [app('v2')], userVersion: { kind: 'read', value: 4 } }), kinds: ['judge-release', 'stage-backup', 'stop-app', 'restore-backup', 'remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back' }, userVersion: 3 },
  { name: 'rollout killed in the smoke gate, user_version unreadable: stops and asks, never restores (healthy, judged by its gates: they fail, within its gate window)', world: world([R1, r2('smoke')], { apps: [app('v2')], userVersion: { kind: 'unreadable', error: 'SQLITE_BUSY' } }), kinds: ['judge-release', 'stop-app', 'finish'], runs: null, results: { r2: 'failed' }, asks: /rollback\.mts --config \.env\.prod --to r1 --force/ },
  { name: 'rollout killed in the telegram gate, no container at all and the proxy down (reboot)', world: world([R1, r2('telegram')], { apps: [], proxyRunning: false }), kinds: ['start-proxy', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back' } },
  { name: 'first deploy killed in the health gate: nothing to go back to, the app stops (healthy, judged by its gates: they fail, within its gate window)', world: world([r2('health', { previousRelease: null, previousAppTag: null, backupId: null, userVersionBefore: null })], { apps: [app('v2')] }), kinds: ['judge-release', 'stop-app', 'finish'], runs: null, results: { r2: 'failed' }, asks: /rollout\.mts --config \.env\.prod/ },
  { name: 'rollout killed mid swap, the previous image was pruned: asks to rebuild', world: world([R1, r2('swap')], { apps: [app('v2', 'created', undefined)], imageTags: ['v2'] }), kinds: ['remove-app-containers', 'finish'], runs: null, results: { r2: 'failed' }, asks: /rebuild it/ },
  { name: 'rollout still running (its worker pid is alive): left alone', world: world([R1, r2('health')], { apps: [app('v2')], alivePids: [900] }), kinds: [], runs: 'v2', results: { r2: 'in-progress' } },
  // front ends: the one served follows the app the goal runs
  { name: "rollout killed in the health gate after its front end went live: v1's front end, then v1's app (healthy, judged by its gates: they fail, within its gate window)", world: world([R1, r2('health')], { apps: [app('v2')], ...fe('v2') }), kinds: ['judge-release', 'stop-app', 'remove-app-containers', 'activate-frontend', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back' }, frontend: 'v1' },
  { name: "rollout killed mid compose up after its front end went live: v1's front end, then v1's app", world: world([R1, r2('swap')], { apps: [app('v1', 'exited', undefined), app('v2', 'created', undefined)], ...fe('v2') }), kinds: ['remove-app-containers', 'activate-frontend', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back' }, frontend: 'v1' },
  { name: 'rollout killed mid swap before its front end went live: the front end is already right', world: world([R1, r2('swap')], { apps: [app('v2', 'created', undefined)], ...fe('v1') }), kinds: ['remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back' }, frontend: 'v1' },
  { name: 'revert killed after v1 is healthy again but before it switched the front end back', world: world([R1, r2('health'), revert('health')], { apps: [app('v1')], ...fe('v2') }), kinds: ['activate-frontend', 'finish'], runs: 'v1', results: { r2: 'rolled-back', rb: 'ok' }, frontend: 'v1' },
  { name: 'rollback killed after its front end switched to v1: back to v2, app and front end', world: world([R1, R2ok, manual('smoke')], { apps: [app('v1')], userVersion: { kind: 'read', value: 4 }, ...fe('v1') }), kinds: ['stop-app', 'remove-app-containers', 'activate-frontend', 'start-app', 'finish'], runs: 'v2', results: { m1: 'failed' }, frontend: 'v2' },
  { name: 'the goal release predates per-release front ends: what is served stays (healthy, judged by its gates: they fail, within its gate window)', world: world([R1, r2('health')], { apps: [app('v2')], ...fe('v2', ['v2']) }), kinds: ['judge-release', 'stop-app', 'remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back' }, frontend: 'v2' },
  { name: 'first deploy killed after its front end went live: the app stops, the front end stays (nothing to go back to) (healthy, judged by its gates: they fail, within its gate window)', world: world([r2('smoke', { previousRelease: null, previousAppTag: null, backupId: null, userVersionBefore: null })], { apps: [app('v2')], ...fe('v2', ['v2']) }), kinds: ['judge-release', 'stop-app', 'finish'], runs: null, results: { r2: 'failed' }, asks: /rollout\.mts --config \.env\.prod/, frontend: 'v2' },
  // the automatic revert (r2 failed its health gate; the revert rb goes back to v1)
  { name: 'revert killed after it stopped the failed app: finishes to v1, never the failed v2', world: world([R1, r2('health'), revert('swap')], { apps: [app('v2', 'exited', undefined)] }), kinds: ['remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back', rb: 'ok' } },
  { name: 'revert killed before its stop, the failed release migrated: stop, restore, start v1', world: world([R1, r2('health'), revert('swap')], { apps: [app('v2')], userVersion: { kind: 'read', value: 4 } }), kinds: ['stage-backup', 'stop-app', 'restore-backup', 'remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back', rb: 'ok' }, userVersion: 3 },
  { name: 'revert killed after its restore, v1 Created', world: world([R1, r2('health'), revert('start', { dbRestored: true })], { apps: [app('v1', 'created', undefined)] }), kinds: ['remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back', rb: 'ok' } },
  { name: 'revert killed during its health gate on v1 (healthy): only the final lines', world: world([R1, r2('health'), revert('health')], { apps: [app('v1')] }), kinds: ['finish'], runs: 'v1', results: { r2: 'rolled-back', rb: 'ok' } },
  { name: 'revert killed during its restore (restore journal mid swap): restore half first, then v1', world: world([R1, r2('health'), revert('restore')], { apps: [], userVersion: { kind: 'read', value: 4 } }, restoreJ('swapping')), kinds: ['restore-recover', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back', rb: 'ok' }, userVersion: 3 },
  { name: 'revert killed before its stop, user_version unreadable: stops the failed app, then stops and asks (never restores, never starts v1 on a schema it cannot judge)', world: world([R1, r2('health'), revert('swap')], { apps: [app('v2')], userVersion: { kind: 'unreadable', error: 'database disk image is malformed' } }), kinds: ['stop-app', 'finish'], runs: null, results: { r2: 'failed', rb: 'failed' }, asks: /rollback\.mts --config \.env\.prod --to r1 --force .*--with-db to restore the backup taken before r2/ },
  { name: 'revert whose pid is alive: left alone', world: world([R1, r2('health'), revert('swap', { pid: 903 })], { apps: [], alivePids: [903] }), kinds: [], runs: null, results: { rb: 'in-progress', r2: 'in-progress' } },
  // manual rollback (v2 -> v1, data kept)
  { name: 'rollback killed before its swap acted: v2 still runs', world: world([R1, R2ok, manual('swap')], { apps: [app('v2')], userVersion: { kind: 'read', value: 4 } }), kinds: ['finish'], runs: 'v2', results: { m1: 'failed' } },
  { name: 'rollback killed mid compose up: back to v2', world: world([R1, R2ok, manual('swap')], { apps: [app('v2', 'exited', undefined), app('v1', 'created', undefined)], userVersion: { kind: 'read', value: 4 } }), kinds: ['remove-app-containers', 'start-app', 'finish'], runs: 'v2', results: { m1: 'failed' } },
  { name: 'rollback killed in its health gate on v1: back to v2', world: world([R1, R2ok, manual('health')], { apps: [app('v1')], userVersion: { kind: 'read', value: 4 } }), kinds: ['stop-app', 'remove-app-containers', 'start-app', 'finish'], runs: 'v2', results: { m1: 'failed' } },
  // rollback --with-db (v2 -> v1 with b-r2): from its restore on, it is finished as chosen
  { name: 'rollback --with-db killed before its stop: stop, restore b-r2, start v1', world: world([R1, R2ok, manual('restore', { withDb: true, backupId: 'b-r2' })], { apps: [app('v2')], userVersion: { kind: 'read', value: 4 } }), kinds: ['stage-backup', 'stop-app', 'restore-backup', 'remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { m1: 'ok' }, userVersion: 3 },
  { name: 'rollback --with-db killed mid restore (journal: swapped): restore half completes, then v1', world: world([R1, R2ok, manual('restore', { withDb: true, backupId: 'b-r2' })], { apps: [app('v2', 'exited', undefined)], userVersion: { kind: 'read', value: 4 } }, restoreJ('swapped')), kinds: ['restore-recover', 'restore-backup', 'remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { m1: 'ok' }, userVersion: 3 },
  { name: 'rollback --with-db killed after its restore, in the swap', world: world([R1, R2ok, manual('swap', { withDb: true, backupId: 'b-r2', dbRestored: true })], { apps: [app('v1', 'created', undefined)] }), kinds: ['remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { m1: 'ok' }, userVersion: 3 },
  // rollback --with-db whose gate failed, going back (release/revert-with-db.mts): finished back to v2 on v2's data, never forward onto b-r2 again
  { name: 'rollback --with-db failed its gate, killed going back before its stop: stop, data renamed back, v2 again', world: world([R1, R2ok, manual('revert-data', { withDb: true, backupId: 'b-r2', dbRestored: true, revertData: withDbBack })], { apps: [app('v1')], userVersion: { kind: 'read', value: 3 } }), kinds: ['stop-app', 'revert-data', 'remove-app-containers', 'start-app', 'finish'], runs: 'v2', results: { m1: 'rolled-back' }, userVersion: 4 },
  { name: 'rollback --with-db failed its gate, killed going back after its stop (a reboot): data renamed back, v2 again', world: world([R1, R2ok, manual('revert-data', { withDb: true, backupId: 'b-r2', dbRestored: true, revertData: withDbBack })], { apps: [app('v1', 'exited', undefined)], proxyRunning: false, userVersion: { kind: 'read', value: 3 } }), kinds: ['revert-data', 'remove-app-containers', 'start-proxy', 'start-app', 'finish'], runs: 'v2', results: { m1: 'rolled-back' }, userVersion: 4 },
  { name: 'rollback --with-db failed its gate, killed going back after the renames: v2 started, the renames not repeated', world: world([R1, R2ok, manual('revert-start', { withDb: true, backupId: 'b-r2', dbRestored: false, revertData: withDbBack })], { apps: [app('v1', 'exited', undefined)], userVersion: { kind: 'read', value: 4 } }), kinds: ['remove-app-containers', 'start-app', 'finish'], runs: 'v2', results: { m1: 'rolled-back' }, userVersion: 4 },
  // a schema revert stages the backup while the failing app still serves (restore/prestage.mts): the site is down for the renames, not the copy
  { name: 'schema revert, the backup already staged (an earlier run): no copy again, stop, restore by rename, v1', world: world([R1, r2('health'), revert('swap')], { apps: [app('v2')], userVersion: { kind: 'read', value: 4 }, staged: [{ backupId: 'b-r2', complete: true }] }), kinds: ['stop-app', 'restore-backup', 'remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back', rb: 'ok' }, userVersion: 3 },
  { name: 'schema revert, a stage left half done (the timer stopped that run at 15 min): staged again (it resumes), then the stop', world: world([R1, r2('health'), revert('swap')], { apps: [app('v2')], userVersion: { kind: 'read', value: 4 }, staged: [{ backupId: 'b-r2', complete: false }] }), kinds: ['stage-backup', 'stop-app', 'restore-backup', 'remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back', rb: 'ok' }, userVersion: 3 },
  { name: 'revert, schema unchanged while the failed app serves: nothing staged, data kept', world: world([R1, r2('health'), revert('swap')], { apps: [app('v2')] }), kinds: ['stop-app', 'remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back', rb: 'ok' }, userVersion: 3 },
  { name: 'revert, the failed app already down and the schema moved: no staging first (nothing serves), the restore stages', world: world([R1, r2('health'), revert('swap')], { apps: [app('v2', 'exited', undefined)], userVersion: { kind: 'read', value: 4 } }), kinds: ['restore-backup', 'remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back', rb: 'ok' }, userVersion: 3 },
  { name: 'staged, then judged again after the stop: the schema had not moved (re-checked): no restore, the staged copy removed at the end', world: world([R1, r2('health'), revert('swap')], { apps: [app('v2', 'exited', undefined)], staged: [{ backupId: 'b-r2', complete: true }] }), kinds: ['remove-app-containers', 'start-app', 'finish', 'discard-staged'], runs: 'v1', results: { r2: 'rolled-back', rb: 'ok' }, userVersion: 3 },
  { name: "a staged copy of another backup (an earlier release's): this release's backup is staged, the other removed at the end", world: world([R1, r2('health'), revert('swap')], { apps: [app('v2')], userVersion: { kind: 'read', value: 4 }, staged: [{ backupId: 'b-old', complete: true }] }), kinds: ['stage-backup', 'stop-app', 'restore-backup', 'remove-app-containers', 'start-app', 'finish', 'discard-staged'], runs: 'v1', results: { r2: 'rolled-back', rb: 'ok' }, userVersion: 3 },
  { name: 'rollback --with-db killed before its stop: b-r2 staged while v2 serves, then stop, restore, v1', world: world([R1, R2ok, manual('restore', { withDb: true, backupId: 'b-r2' })], { apps: [app('v2')], userVersion: { kind: 'read', value: 4 }, staged: [{ backupId: 'b-r2', complete: false }] }), kinds: ['stage-backup', 'stop-app', 'restore-backup', 'remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { m1: 'ok' }, userVersion: 3 },
  { name: 'nothing open, a staged copy left: removed (bounded)', world: world([R1], { apps: [app('v1')], staged: [{ backupId: 'b-r2', complete: false }] }), kinds: ['discard-staged'], runs: 'v1', results: { r1: 'ok' } },
  // restore on its own
  { name: 'restore killed in its safety backup: rolled back, live untouched', world: world([R1], { apps: [app('v1')] }, restoreJ('safety-backup')), kinds: ['restore-recover'], runs: 'v1', results: { r1: 'ok' } },
  { name: 'restore killed mid swap: rolled forward', world: world([R1], { apps: [app('v1', 'exited', undefined)], userVersion: { kind: 'read', value: 4 } }, restoreJ('swapping')), kinds: ['restore-recover'], runs: null, results: { r1: 'ok' }, userVersion: 3 },
  { name: 'restore still running (pid alive): nothing, also no release action', world: world([R1, r2('swap')], { apps: [], alivePids: [902] }, restoreJ('swapping')), kinds: [], runs: null, results: { r2: 'in-progress' } },
  // the toolkit's drain (an app without readiness): a flag whose owner died makes Caddy hold every request
  { name: 'rollout killed in its drain, before compose up: the flag goes, v1 serves again', world: world([R1, r2('swap')], { apps: [app('v1')], ...drain(false) }), kinds: ['undrain', 'finish'], runs: 'v1', results: { r2: 'rolled-back' } },
  { name: 'rollout killed mid compose up with its drain flag left: the flag goes first, then v1', world: world([R1, r2('swap')], { apps: [app('v1', 'exited', undefined), app('v2', 'created', undefined)], ...drain(false) }), kinds: ['undrain', 'remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back' } },
  { name: 'restore killed in its drain, before the stop: the flag goes, the restore is rolled back', world: world([R1], { apps: [app('v1')], ...drain(false) }, restoreJ('stopping')), kinds: ['undrain', 'restore-recover'], runs: 'v1', results: { r1: 'ok' } },
  { name: 'a reboot with nothing open but a drain flag: only the flag goes', world: world([R1], { apps: [app('v1')], ...drain(false) }), kinds: ['undrain'], runs: 'v1', results: { r1: 'ok' } },
  { name: 'the drain of a swap still running (its worker alive): left alone', world: world([R1, r2('swap')], { apps: [app('v1')], alivePids: [900], ...drain(true) }), kinds: [], runs: 'v1', results: { r2: 'in-progress' } },
  // the webhook hold (release/webhook-hold.mts): released by whatever finishes the release; a stray one goes
  { name: 'rollout killed in its pre-deploy backup with the webhook held (held from before the backup): marked failed, the hold released', world: world([R1, r2('backup')], { apps: [app('v1')], webhookHeld: true }), kinds: ['mark-failed', 'release-webhook'], runs: 'v1', results: { r2: 'failed' } },
  { name: 'a webhook hold left with nothing open (its revert died after the finish): released', world: world([R1], { apps: [app('v1')], webhookHeld: true }), kinds: ['release-webhook'], runs: 'v1', results: { r1: 'ok' } },
  { name: 'a webhook hold while the release it holds for is judged: the judgement releases it, not the stray rule', world: passing(world([R1, r2('health')], { apps: [app('v2')], webhookHeld: true })), kinds: ['judge-release'], runs: 'v2', results: { r2: 'ok' } },
  { name: 'a webhook hold left by a rollout killed mid swap: going back releases it with the finish', world: world([R1, r2('swap')], { apps: [app('v2', 'created', undefined)], webhookHeld: true }), kinds: ['remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back' } },
  { name: 'a webhook hold while a restore runs (its pid alive): left alone', world: world([R1], { apps: [], webhookHeld: true, alivePids: [902] }, restoreJ('swapping')), kinds: [], runs: null, results: { r1: 'ok' } },
  // recovery itself: a recovery that died left its claim (pid dead) on the release
  { name: 'recovery killed after it stopped the failed app (its pid is dead): the next one finishes', world: world([R1, r2('health'), { id: 'r2', pid: 904, recoveryStartedAt: 'x' }], { apps: [app('v2', 'exited', undefined)] }), kinds: ['remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back' } },
  { name: 'recovery still running (its pid alive): left alone', world: world([R1, r2('health'), { id: 'r2', pid: 904 }], { apps: [], alivePids: [904] }), kinds: [], runs: null, results: { r2: 'in-progress' } },
  // finish forward: an unfinished rollout whose container runs healthy is judged by its gates; a restore
  // that would move what it acknowledged aside is automatic only within its gate window (300 s)
  { name: 'killed in its health gate, healthy, gates pass: kept as it is, the migrated data stays', served: 40, world: passing(world([R1, r2('health')], { apps: [app('v2')], userVersion: { kind: 'read', value: 4 } })), kinds: ['judge-release'], runs: 'v2', results: { r2: 'ok' }, userVersion: 4 },
  { name: 'killed mid swap after the new app became healthy (stop-first), gates pass: kept', served: 5, world: passing(world([R1, r2('swap')], { apps: [app('v2')] })), kinds: ['judge-release'], runs: 'v2', results: { r2: 'ok' } },
  { name: 'killed in its health gate, then served 3 weeks, gates pass: kept, weeks of writes stay', served: WEEKS3, world: passing(world([R1, r2('health')], { apps: [app('v2')], userVersion: { kind: 'read', value: 4 } })), kinds: ['judge-release'], runs: 'v2', results: { r2: 'ok' }, userVersion: 4 },
  { name: 'served 3 weeks, its gates fail, schema moved: held, it keeps serving, the operator chooses', served: WEEKS3, world: world([R1, r2('health')], { apps: [app('v2')], userVersion: { kind: 'read', value: 4 } }), kinds: ['judge-release', 'hold'], runs: 'v2', results: { r2: 'in-progress' }, userVersion: 4, asks: /--keep r2[\s\S]*--roll-back r2 .*pre-deploy backup b-r2/ },
  { name: 'served 3 weeks, its gates fail, schema unchanged: back to v1 with the data (nothing is lost)', served: WEEKS3, world: world([R1, r2('smoke')], { apps: [app('v2')] }), kinds: ['judge-release', 'stop-app', 'remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back' }, userVersion: 3 },
  { name: 'served an hour, then a reboot: no container, proxy down, schema moved: held and started again on its own data', served: 3600, world: world([R1, r2('telegram')], { apps: [], proxyRunning: false, userVersion: { kind: 'read', value: 4 } }), kinds: ['hold', 'start-proxy', 'start-app'], runs: 'v2', results: { r2: 'in-progress' }, userVersion: 4, asks: /--keep r2/ },
  { name: 'served an hour, its container unhealthy, schema moved: held, restarted, never restored', served: 3600, world: world([R1, r2('health')], { apps: [app('v2', 'running', 'unhealthy')], userVersion: { kind: 'read', value: 4 } }), kinds: ['hold', 'stop-app', 'remove-app-containers', 'start-app'], runs: 'v2', results: { r2: 'in-progress' }, userVersion: 4, asks: /--roll-back r2/ },
  { name: 'a held release the operator has not answered, serving: nothing (every run says it waits)', served: WEEKS3, world: world([R1, r2('health'), held()], { apps: [app('v2')], userVersion: { kind: 'read', value: 4 } }), kinds: [], runs: 'v2', results: { r2: 'in-progress' }, userVersion: 4 },
  { name: 'a held release after a reboot: started again on its own data, no restore, no judgement', served: WEEKS3, world: world([R1, r2('health'), held()], { apps: [], proxyRunning: false, userVersion: { kind: 'read', value: 4 } }), kinds: ['start-proxy', 'start-app'], runs: 'v2', results: { r2: 'in-progress' }, userVersion: 4 },
  { name: 'the operator chose --roll-back for a held release: stop, restore its pre-deploy backup (by choice), v1', served: WEEKS3, world: world([R1, r2('health'), held({ operatorChoice: 'roll-back' })], { apps: [app('v2')], userVersion: { kind: 'read', value: 4 } }), kinds: ['stage-backup', 'stop-app', 'restore-backup', 'remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back' }, userVersion: 3 },
  { name: 'the operator chose --keep: closed as ok, nothing else', served: WEEKS3, world: world([R1, r2('health'), held({ result: 'ok', operatorChoice: 'keep' })], { apps: [app('v2')], userVersion: { kind: 'read', value: 4 } }), kinds: [], runs: 'v2', results: { r2: 'ok' }, userVersion: 4 },
  { name: 'an interrupted first deploy, healthy: judged and kept, never torn down by the first recovery run', served: 120, world: passing(world([r2('health', { previousRelease: null, previousAppTag: null, backupId: null, userVersionBefore: null })], { apps: [app('v2')] })), kinds: ['judge-release'], runs: 'v2', results: { r2: 'ok' } },
  { name: 'an interrupted first deploy that served a day, gates fail: held serving (going back would only stop the site)', served: 86400, world: world([r2('health', { previousRelease: null, previousAppTag: null, backupId: null, userVersionBefore: null })], { apps: [app('v2')] }), kinds: ['judge-release', 'hold'], runs: 'v2', results: { r2: 'in-progress' }, asks: /--roll-back r2 .*first deploy/ },
  { name: "its journal's own gate window (600 s) counts: served 400 s, gates fail, schema moved: still reverted with the restore", served: 400, world: world([R1, r2('health', { gateWindowS: 600 })], { apps: [app('v2')], userVersion: { kind: 'read', value: 4 } }), kinds: ['judge-release', 'stage-backup', 'stop-app', 'restore-backup', 'remove-app-containers', 'start-app', 'finish'], runs: 'v1', results: { r2: 'rolled-back' }, userVersion: 3 },
  { name: 'a manual rollback is not judged forward (it restores nothing): back to v2 as before', served: WEEKS3, world: world([R1, R2ok, manual('health')], { apps: [app('v1')], userVersion: { kind: 'read', value: 4 } }), kinds: ['stop-app', 'remove-app-containers', 'start-app', 'finish'], runs: 'v2', results: { m1: 'failed' } },
];

// the served column: the clock recovery observes is T0 + served
for (const row of rows) row.world.observed.now = new Date(T0 + (row.served ?? 0) * 1000).toISOString();

const runningApps = (w: World) => w.observed.apps.filter((a) => a.state === 'running');
const resultsOf = (w: World, ids: string[]) => Object.fromEntries(ids.map((id) => [id, releases(w).find((r) => r.id === id)?.result]));

describe('recovery decision: every interruption point', () => {
  for (const row of rows) {
    it(row.name, () => {
      const { world: end, trace } = converge(row.world);
      expect(trace.map((a) => a.kind)).toEqual(row.kinds);
      const running = runningApps(end);
      expect(running.length).toBeLessThanOrEqual(1);
      expect(running[0]?.tag ?? null).toBe(row.runs);
      expect(resultsOf(end, Object.keys(row.results))).toEqual(row.results);
      if (row.userVersion !== undefined) expect(end.observed.userVersion).toEqual({ kind: 'read', value: row.userVersion });
      if (row.frontend !== undefined) expect(end.observed.frontend?.live).toBe(row.frontend);
      // no flag of a dead process is left to hold requests, and no webhook hold once nothing is open
      expect(end.observed.drain?.ownerAlive ?? true).toBe(true);
      if (!releases(end).some((r) => r.result === 'in-progress') && !end.restoreJournal) expect(end.observed.webhookHeld ?? false).toBe(false);
      const fin = trace.find((a) => a.kind === 'finish' || a.kind === 'hold');
      if (row.asks) expect(fin && 'next' in fin ? fin.next : '').toMatch(row.asks);
      else if (fin && fin.kind === 'finish') expect(fin.next).toBeUndefined();
      else expect(fin).toBeUndefined();
      // past the gate window nothing automatic restores (only the operator's --roll-back does)
      const choseRollBack = releases(row.world).some((r) => r.operatorChoice === 'roll-back');
      if ((row.served ?? 0) > 300 && !row.world.lines.some((l) => l.gateWindowS) && !choseRollBack) expect(trace.some((a) => a.kind === 'restore-backup' || a.kind === 'restore-recover')).toBe(false);
      // the failed image of an automatic revert is never started again
      if (row.world.lines.some((l) => l.revertOf)) expect(trace.some((a) => a.kind === 'start-app' && a.appTag === 'v2')).toBe(false);
    });
  }
});

describe('recovery decision: idempotent', () => {
  for (const row of rows) {
    it(`run twice = once: ${row.name}`, () => {
      const once = converge(row.world).world;
      expect(decide(once)).toEqual([]);
      const twice = converge(once);
      expect(twice.trace).toEqual([]);
    });
    it(`recovery interrupted after each of its actions ends in the same place: ${row.name}`, () => {
      const { world: end, trace } = converge(row.world);
      let w = row.world;
      for (let k = 0; k < trace.length; k++) {
        // k actions done, then the recovery dies (its own pid is dead, so nothing waits for it)
        const resumed = converge(w).world;
        expect(runningApps(resumed).map((a) => a.tag)).toEqual(runningApps(end).map((a) => a.tag));
        expect(resultsOf(resumed, Object.keys(row.results))).toEqual(row.results);
        w = apply(w, decide(w)[0]);
      }
    });
  }

  it('a release with an unreadable user_version is never treated as "schema moved"', () => {
    const w = world([R1, r2('health')], { apps: [], userVersion: { kind: 'unreadable', error: 'disk I/O error' } });
    expect(decide(w).some((a) => a.kind === 'restore-backup')).toBe(false);
  });
});

// recovery/run.mts: when an action throws (a restore that fails, an app that never becomes healthy),
// the goal cannot be reached; these are the lines it appends to the journal then.
describe('recovery runner: which failures close the open releases', () => {
  // staging and the restore fail for reasons that are no verdict on the release (a full disk, the
  // timer's 15-minute limit): the release stays open and the next run tries again (a stage resumes)
  it.each<{ a: RecoveryAction; closes: boolean }>([
    { a: { kind: 'stage-backup', releaseId: 'rb', backupId: 'b-r2', reason: '' }, closes: false },
    { a: { kind: 'restore-backup', releaseId: 'rb', backupId: 'b-r2', reason: '' }, closes: false },
    { a: { kind: 'start-app', appTag: 'v1', reason: '' }, closes: true },
    { a: { kind: 'stop-app', reason: '' }, closes: true },
    { a: { kind: 'revert-data', releaseId: 'm1', from: '/a', to: '/b', reason: '' }, closes: true },
  ])('$a.kind: closes = $closes', ({ a, closes }) => {
    expect(closesOnFailure(a)).toBe(closes);
  });
});

describe('recovery runner: an action that throws closes every open release as failed, never rolled-back', () => {
  const at = '2026-12-06T12:00:00.000Z';
  const err = 'start-app failed: the new app container is unhealthy';
  it.each<{ name: string; lines: ReleaseLine[]; want: ReleaseLine[] }>([
    {
      name: 'the automatic revert of r2 and r2 itself',
      lines: [R1, r2('health'), revert('start')],
      want: [
        { id: 'r2', result: 'failed', endedAt: at, reason: `its rollback failed: ${err}` },
        { id: 'rb', result: 'failed', endedAt: at, reason: `automatic rollback of r2 failed: ${err}` },
      ],
    },
    { name: 'an interrupted rollout recovery was taking back', lines: [R1, r2('swap')], want: [{ id: 'r2', result: 'failed', endedAt: at, reason: `recovery failed: ${err}` }] },
    { name: 'rollback --with-db', lines: [R1, R2ok, manual('swap', { withDb: true, backupId: 'b-r2', dbRestored: true })], want: [{ id: 'm1', result: 'failed', endedAt: at, reason: `recovery failed: ${err}` }] },
    {
      name: 'a revert that already finished is not reopened; only what is still open is closed',
      lines: [R1, r2('health'), revert('health'), { id: 'rb', result: 'ok' }, { id: 'r2', result: 'rolled-back' }, { id: 'r3', kind: 'rollout', appTag: 'v3', result: 'in-progress', phase: 'swap', previousRelease: 'r1', previousAppTag: 'v1' }],
      want: [{ id: 'r3', result: 'failed', endedAt: at, reason: `recovery failed: ${err}` }],
    },
    { name: 'nothing open: nothing written', lines: [R1, R2ok], want: [] },
  ])('$name', ({ lines, want }) => {
    const closed = closeAfterFailure(releases(world(lines)), err, at);
    expect(closed).toEqual(want);
    expect(closed.some((l) => l.result === 'rolled-back')).toBe(false);
  });
});
