#!/usr/bin/env node
// Disaster recovery from nothing: on a fresh machine with only this checkout, the env file and the
// restic password file, bring the service back from the offsite repository:
//   state directory -> fetch the snapshot -> verify and put it in place (the restore path) ->
//   build the release the backup names from git -> start the stack (rollout: gates, smoke).
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { runMain } from './lib/cli/main.mts';
import { type CommandSpec } from './lib/cli/args.mts';
import { sharedOption, sharedValues } from './lib/cli/shared.mts';
import { loadOpsEnv, REPO_ROOT } from './lib/config/env.mts';
import { ConfigError, StepError } from './lib/cli/errors.mts';
import { createPhaseTimer, formatDuration } from './lib/cli/log.mts';
import { APP_GID, APP_UID, isRoot } from './lib/host/fsutil.mts';
import { loadOffsiteConfig } from './lib/offsite/config.mts';
import { fetchSnapshot, offsiteSource } from './lib/offsite/offsite.mts';
import { runRestore } from './lib/restore/restore.mts';
import { releaseLayout, runRollout } from './lib/release/rollout.mts';
import { GATE_OPTIONS } from './lib/release/plan.mts';
import { liveApp } from './lib/docker/app-container.mts';
import { releaseLabel, withNotice, type OperationNotice } from './lib/notify/operation.mts';
import type { OpsEnv } from './lib/config/env.mts';
import type { OffsiteConfig } from './lib/offsite/config.mts';
import type { Logger } from './lib/cli/log.mts';

export const spec: CommandSpec = {
  name: 'recover-vps.mts',
  summary: 'disaster recovery on an empty machine: restore the newest offsite backup, build its release, start the stack, smoke',
  usage: ['npx zx scripts/recover-vps.mts --config .env.prod [--from offsite:latest|offsite:<id>]'],
  options: [
    sharedOption('config'),
    { name: 'from', type: 'string', arg: '<offsite:latest|offsite:id>', default: 'offsite:latest', describe: 'the offsite backup to bring back' },
    { name: 'source', type: 'string', arg: '<dir>', describe: 'git checkout holding the release (default: this repository)' },
    ...GATE_OPTIONS,
    sharedOption('json', 'the result: backup, release, phases'),
    sharedOption('quiet'),
  ],
  details: [
    'Refuses to run where a live database or an app container exists (use restore.mts --from offsite:latest there).',
    'The release is the app tag the backup recorded (a git sha); when that commit is not in the checkout, the',
    "checkout's HEAD is built instead, with a warning. Phases and their times are printed at the end.",
    'One notification (recover-vps) to the alert channels the env file names: ok, or failed with the line that',
    'explains it wherever it failed (fetch, verify, build, gates); the rollout inside sends none of its own.',
  ].join('\n'),
  exitCodes: [
    'Exit status:',
    '  0  the service is back: data and uploads restored and verified, stack healthy, smoke green',
    '  1  a step failed (backend unreachable, damaged backup, build, gates); what was done is printed',
    '  2  usage or config error (env file, offsite keys, wrong restic password), or this machine is not empty',
  ].join('\n'),
};

function git(dir: string, ...args: string[]): string | null {
  try {
    return execFileSync('git', ['-C', dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim();
  } catch {
    return null;
  }
}

runMain(spec, async ({ values: v }, log) => {
  const what = offsiteSource(String(v.from)) ?? 'latest';
  const ctx = loadOpsEnv(sharedValues(v).config);
  const cfg = loadOffsiteConfig(ctx);
  if (!cfg) throw new ConfigError(`OFFSITE_REPOSITORY is empty in ${ctx.file}: there is nothing to recover from`, { file: ctx.file, key: 'OFFSITE_REPOSITORY', hint: 'restore the env file from your password manager (RUNBOOK: The VPS is gone)' });
  const layout = ctx.layout;
  if (existsSync(layout.db)) throw new ConfigError(`${layout.db} exists: this machine has live state, it is not an empty machine`, { file: layout.db, hint: `restore over it instead: npx zx scripts/restore.mts --config ${ctx.file} --from offsite:${what}` });
  if (await liveApp(ctx)) throw new ConfigError(`an app container of project ${ctx.project} exists on this machine`, { hint: `restore over it instead: npx zx scripts/restore.mts --config ${ctx.file} --from offsite:${what}` });

  // one notification for the whole recovery, from here on (the refusals above changed nothing): a
  // failure at fetch or verify is the one an operator most needs to hear of
  const r = await withNotice({ env: ctx, log, operation: 'recover-vps', enabled: v.notify !== false, apiRoot: v['telegram-api-root'] as string | undefined },
    (n) => recoverSteps({ ctx, cfg, what, v, log }, n),
    (x) => (x.code === 0 ? { outcome: 'ok' } : { outcome: 'failed', reason: x.failure ?? 'failed (see the ops log)' }));
  return r.code;
});

async function recoverSteps(o: { ctx: OpsEnv; cfg: OffsiteConfig; what: string; v: Record<string, unknown>; log: Logger }, n: OperationNotice): Promise<{ code: number; failure?: string }> {
  const { ctx, cfg, what, v, log } = o;
  const layout = ctx.layout;
  const t0 = performance.now();
  const phases: Record<string, number> = {};
  const { timed } = createPhaseTimer(phases);

  // 1. the state directory
  await timed('state', async () => {
    for (const d of [layout.root, layout.backups, layout.logs]) mkdirSync(d, { recursive: true, mode: 0o750 });
    for (const d of [layout.data, layout.uploads]) {
      mkdirSync(d, { recursive: true, mode: 0o750 });
      if (isRoot()) chownSync(d, APP_UID, APP_GID);
    }
  });
  log.setOpsLog(layout.opsLog);
  log.info(`recovering ${ctx.project} into ${layout.root} from ${cfg.target.repository}`);

  // 2. fetch, 3. verify and put in place: the restore path, with the app not started yet
  const fetched = await timed('fetch', () => fetchSnapshot(ctx, cfg, what, log));
  const m = fetched.backup.manifest;
  n.backup = fetched.backup.id;
  try {
    const r = await timed('verify', () => runRestore({ ctx, backup: fetched.backup, from: fetched.backup.id, log, yes: true, startApp: false, smoke: false }));
    log.ok(`backup ${r.backupId} verified and in place (${Object.entries(m.database.rowCounts).map(([t, n]) => `${t} ${n}`).join(', ')}, ${m.uploads.files} uploads)`);
  } finally {
    fetched.remove();
  }

  // 4. the release the backup names, from git
  const source = String(v.source ?? (await releaseLayout(REPO_ROOT)).root);
  const tag = m.app.tag ?? '';
  const sha = tag ? git(source, 'rev-parse', '--verify', '--quiet', `${tag.replace(/-dirty-.*$/, '')}^{commit}`) : null;
  let buildFrom = source;
  let worktree: string | null = null;
  if (!sha) {
    log.warn(`the backup names release "${tag || 'unknown'}", which is no commit in ${source}: building the checkout's HEAD (${git(source, 'rev-parse', '--short=12', 'HEAD') ?? '?'}) instead`);
  } else if (sha !== git(source, 'rev-parse', 'HEAD')) {
    worktree = mkdtempSync(join(tmpdir(), 'lazyflow-release-'));
    if (git(source, 'worktree', 'add', '--detach', worktree, sha) === null) throw new StepError(`git worktree add ${sha} failed in ${source}`, { step: 'build', hint: `check out ${sha} by hand and pass --source <dir>` });
    buildFrom = worktree;
    log.info(`building release ${sha.slice(0, 12)} (named by the backup) from ${worktree}`);
  }

  // 5. build, start, gates and smoke: a first rollout on this machine
  try {
    const res = await timed('rollout', () => runRollout({
      env: ctx,
      log,
      source: buildFrom,
      skipBackup: true, // the database was restored from a verified backup a moment ago
      healthTimeoutS: Number(v['health-timeout']),
      telegramTimeoutS: Number(v['telegram-timeout']),
      pendingMax: Number(v['pending-max']),
      lockWaitS: Number(v['wait-lock']),
      skipSmoke: Boolean(v['skip-smoke']),
      notify: false, // a part of this recovery: its one notification is recover-vps's
      smoke: { ca: v.ca as string | undefined, telegramApiRoot: v['telegram-api-root'] as string | undefined },
    }));
    for (const [k, ms] of Object.entries(res.phases)) phases[`rollout.${k}`] = ms;
    phases.total = Math.round(performance.now() - t0);
    const result = { backupId: fetched.backup.id, backupCreatedAt: m.createdAt, release: res.appTag, releaseNamedByBackup: tag || null, result: res.result, phases };
    if (v.json) log.out(JSON.stringify(result, null, 2));
    else if (!log.quiet) log.table(Object.entries(phases).map(([phase, ms]) => ({ phase, time: formatDuration(ms) })), ['phase', { key: 'time', align: 'right' }]);
    n.release = releaseLabel(res.appTag, res.id || undefined);
    if (res.exitCode !== 0) {
      const failure = `the data is restored in ${layout.root}, but the rollout failed: ${res.reason ?? res.result}`;
      log.error(failure);
      log.error(`next: fix the cause above, then: npx zx scripts/rollout.mts --config ${ctx.file}`);
      return { code: res.exitCode, failure };
    }
    log.ok(`the service is back: backup ${fetched.backup.id} (taken ${m.createdAt}) on release ${res.appTag}, smoke green, in ${formatDuration(phases.total)}`);
    return { code: 0 };
  } finally {
    if (worktree) {
      git(source, 'worktree', 'remove', '--force', worktree);
      rmSync(worktree, { recursive: true, force: true });
    }
  }
}
