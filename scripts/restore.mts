#!/usr/bin/env node
// Restore a backup over the live state (crash-safe), list backups, or run a restore drill.
//   npx zx scripts/restore.mts --config .env.prod --list
//   npx zx scripts/restore.mts --config .env.prod --from latest [--dry-run] [--yes]
//   npx zx scripts/restore.mts --config .env.prod --drill [--from <id>]
import { runMain } from './lib/cli/main.mts';
import { loadOpsEnv } from './lib/config/env.mts';
import { UsageError } from './lib/cli/errors.mts';
import { acquireLock } from './lib/host/lock.mts';
import { warnWithoutNet } from './lib/schedules/net.mts';
import { listBackups } from './lib/backup/manifest.mts';
import { backupRows } from './lib/backup/backup.mts';
import { recoverRestore, runRestore } from './lib/restore/restore.mts';
import { keptRoot, listKept } from './lib/restore/kept.mts';
import { formatAge } from './lib/cli/log.mts';
import { drillRecord, recordDrill, runDrill } from './lib/restore/drill.mts';
import { type CommandSpec } from './lib/cli/args.mts';
import { sharedOption, sharedValues } from './lib/cli/shared.mts';
// offsite (issue 9)
import { ConfigError } from './lib/cli/errors.mts';
import { loadOffsiteConfig } from './lib/offsite/config.mts';
import { fetchSnapshot, offsiteSource, type FetchedBackup } from './lib/offsite/offsite.mts';
import { currentReleaseLabel, OperationNotice, withNotice } from './lib/notify/operation.mts';
import { drillReport } from './lib/notify/reports.mts';

export const spec: CommandSpec = {
  name: 'restore.mts',
  summary: 'restore a verified backup over the live state, or prove one boots (--drill)',
  usage: [
    'npx zx scripts/restore.mts --config .env.prod --list [--json]',
    'npx zx scripts/restore.mts --config .env.prod --from <id|latest> [--dry-run] [--yes]',
    'npx zx scripts/restore.mts --config .env.prod --recover',
    'npx zx scripts/restore.mts --config .env.prod --drill [--from <id|latest>]',
    'npx zx scripts/restore.mts --config .env.prod --from offsite:<latest|id> [--drill]',
  ],
  options: [
    sharedOption('config'),
    { name: 'list', type: 'boolean', describe: 'list backups: id, age, reason, size, verified' },
    sharedOption('json', 'with --list / --drill'),
    { name: 'from', type: 'string', arg: '<id|latest>', describe: 'the backup to restore (see --list); offsite:latest or offsite:<id> fetches it from OFFSITE_REPOSITORY first' },
    sharedOption('dryRun', 'here: the restore plan'),
    { name: 'yes', type: 'boolean', alias: 'y', describe: 'do not ask for confirmation' },
    { name: 'recover', type: 'boolean', describe: 'only finish or roll back an interrupted restore' },
    { name: 'drill', type: 'boolean', describe: 'boot a throwaway app on the backup (private network, no ports, local mode); production untouched' },
    { name: 'image', type: 'string', arg: '<image>', describe: 'with --drill: app image (default: the running app\'s image)' },
    { name: 'ca', type: 'string', arg: '<root.pem>', describe: 'root certificate for the smoke checks\' TLS check (private CA)' },
    { name: 'skip-smoke', type: 'boolean', describe: 'do not run the smoke checks after the restore' },
    { name: 'wait-lock', type: 'number', arg: '<seconds>', default: 0, describe: 'wait this long for a running backup/rollout instead of refusing' },
    { name: 'health-timeout', type: 'number', arg: '<seconds>', default: 120, describe: 'how long the app may take to become healthy' },
    sharedOption('quiet'),
  ],
  details: [
    'A restore resolves the backup once (latest included) and records it in STATE_DIR/restore-journal.json, verifies',
    'it (sha256 of every file, integrity_check, row counts) before touching anything, stops the app (Caddy holds',
    'requests), moves the live data/ and uploads/ aside by rename into STATE_DIR/kept/<op>-pre-restore/ (every write',
    'the app accepted is there; removed only by backup.mts retention), renames the verified copies live, starts the',
    'app, waits until healthy and runs the smoke checks. From the stop on it runs in a worker of its own session',
    '(log: STATE_DIR/logs/critical-restore-<op>.log): SIGHUP, Ctrl-C or SIGTERM here do not stop it halfway; this',
    'terminal says where it continues. If it is killed anyway, run it again (any --from) or --recover:',
    'it continues the same restore: rolls back when the live state was not touched yet, completes it otherwise.',
    '--list shows the backups and the kept-aside states.',
    'From offsite (--from offsite:latest): the snapshot is fetched into STATE_DIR/.offsite-fetch-*, then verified',
    'and swapped exactly like a local backup; the fetched copy is removed afterwards.',
    'Weekly drill (cron, Sundays 04:30):',
    '  30 4 * * 0 cd /srv/lazyflow-deploy && npx zx scripts/restore.mts --config .env.prod --drill --quiet --wait-lock 900',
  ].join('\n'),
  exitCodes: [
    'Exit status:',
    '  0  ok (restored and healthy; drill passed; recovered)',
    '  1  a check or step failed: the backup is damaged (live data untouched), the STATE_DIR layout is refused',
    '     (nothing stopped), the lock is held, the app did not',
    '     become healthy (the old state was put back), smoke failed, the drill failed, not confirmed',
    '  2  usage or config error (bad flag, unknown backup id format, env file missing or invalid)',
  ].join('\n'),
};

await runMain(spec, async ({ values: v }, log) => {
  const modes = ['list', 'drill', 'recover'].filter((k) => v[k]);
  if (modes.length > 1) throw new UsageError(`--${modes.join(' and --')} cannot be combined`);
  if (!modes.length && !v.from) throw new UsageError('say what to restore: --from <id|latest> (or --list, --drill, --recover)', { hint: 'see the backups: restore.mts --list' });
  if (v.list && v.from) throw new UsageError('--list takes no --from');
  if (v.image && !v.drill) throw new UsageError('--image only applies to --drill');
  const waitLockMs = Number(v['wait-lock']) * 1000;
  const healthTimeoutMs = Number(v['health-timeout']) * 1000;
  if (!(waitLockMs >= 0) || !(healthTimeoutMs > 0)) throw new UsageError('--wait-lock and --health-timeout must be positive');
  const ctx = loadOpsEnv(sharedValues(v).config);
  log.setOpsLog(ctx.layout.opsLog);

  // offsite (issue 9): fetch the snapshot first, then take exactly the local path with it
  const offsiteWhat = offsiteSource(v.from as string | undefined);
  let fetched: FetchedBackup | undefined;
  if (offsiteWhat) {
    const cfg = loadOffsiteConfig(ctx);
    if (!cfg) throw new ConfigError(`--from ${v.from}: OFFSITE_REPOSITORY is empty in ${ctx.file}`, { file: ctx.file, key: 'OFFSITE_REPOSITORY', hint: 'set the offsite keys (see .env.prod.example), or restore a local backup: restore.mts --list' });
    const t0 = performance.now();
    try {
      fetched = await fetchSnapshot(ctx, cfg, offsiteWhat, log);
    } catch (err) {
      // a drill whose offsite copy cannot be fetched is a failed drill: status shows it as the last one
      if (v.drill) recordDrill(ctx, drillRecord({ backupId: offsiteWhat, from: 'offsite', ms: performance.now() - t0, error: (err as Error).message }), log);
      // and a failed restore or drill: its one notification (the operation's own notice starts after the fetch)
      if (!v.list && !v.recover) {
        await new OperationNotice({ env: ctx, log, operation: v.drill ? 'drill' : 'restore', enabled: Boolean(v.drill) || !v['dry-run'], release: currentReleaseLabel(ctx), backup: offsiteWhat === 'latest' ? undefined : offsiteWhat, elapsedBeforeMs: performance.now() - t0 }).fail(err);
      }
      throw err;
    }
  }
  try {

  if (v.list) {
    const { backups, ignored } = listBackups(ctx.layout);
    for (const i of ignored) log.warn(`ignoring ${ctx.layout.backups}/${i.name}: ${i.why}`);
    const kept = listKept(ctx.layout);
    if (v.json) {
      log.out(JSON.stringify({
        backups: backups.map((b) => ({ id: b.id, createdAt: b.createdAt.toISOString(), reason: b.manifest.reason, sizeBytes: b.sizeBytes, verified: b.verified, problems: b.problems })),
        kept: kept.map((k) => ({ name: k.name, dir: k.dir, createdAt: k.createdAt.toISOString(), label: k.meta?.label ?? null, replacedBy: k.meta?.replacedBy ?? null, items: k.items })),
      }, null, 2));
      return 0;
    }
    if (!backups.length) log.out(`no backups in ${ctx.layout.backups}`);
    else log.table(backupRows(backups), ['id', { key: 'age', align: 'right' }, 'reason', { key: 'size', align: 'right' }, 'verified', 'app', { key: 'schema', align: 'right' }]);
    if (kept.length) {
      log.out('');
      log.out(`kept-aside states (what restores replaced; removed only by backup.mts retention) in ${keptRoot(ctx.layout)}:`);
      log.table(kept.map((k) => ({ dir: k.dir, age: formatAge(Date.now() - k.createdAt.getTime()), why: k.meta?.label ?? '?', 'replaced by': k.meta?.replacedBy ?? '?', holds: k.items.join(' ') })), ['dir', { key: 'age', align: 'right' }, 'why', 'replaced by', 'holds']);
    }
    return 0;
  }

  if (v.drill) {
    const r = await withNotice({ env: ctx, log, operation: 'drill', release: currentReleaseLabel(ctx), backup: fetched?.backup.id ?? (v.from && v.from !== 'latest' ? String(v.from) : undefined) },
      () => runDrill({ ctx, backup: fetched?.backup, from: String(v.from ?? 'latest'), log, image: v.image as string | undefined, healthTimeoutMs, waitLockMs }),
      drillReport);
    if (v.json) log.out(JSON.stringify(r, null, 2));
    else if (!log.quiet) log.table(r.checks.map((c) => ({ ...c })), ['name', 'status', 'detail']);
    if (r.failed) {
      log.error(`drill of ${r.backupId} FAILED`);
      return 1;
    }
    log.ok(`drill of ${r.backupId} passed in ${(r.ms / 1000).toFixed(1)} s`);
    return 0;
  }

  if (v.recover) {
    // notified as a recovery, only when there was an interrupted restore to finish or undo
    const lock = await acquireLock(ctx.layout, { operation: 'restore --recover', waitMs: waitLockMs, log });
    try {
      const r = await withNotice({ env: ctx, log, operation: 'recovery' },
        async (n) => {
          const x = await recoverRestore(ctx, log, { healthTimeoutMs });
          n.release = currentReleaseLabel(ctx);
          return x;
        },
        (x) => (!x ? null : { outcome: x.outcome === 'left' ? 'failed' : 'ok', backup: x.journal.backupId, reason: `interrupted restore ${x.outcome}: ${x.what}` }));
      if (!r) log.ok('no interrupted restore to recover');
      else if (r.outcome === 'left') return 1;
      return 0;
    } finally {
      lock.release();
    }
  }

  // its critical section (app stopped, data swapped) is finished or undone only by recovery: say when none runs
  if (!v['dry-run']) await warnWithoutNet(ctx, log, 'restore');
  // one notification (restore) per restore: the data it brought back, or why not
  const r = await withNotice({ env: ctx, log, operation: 'restore', enabled: !v['dry-run'], release: currentReleaseLabel(ctx), backup: fetched?.backup.id ?? (v.from === 'latest' ? undefined : String(v.from)) }, async (n) => {
    const x = await runRestore({
      backup: fetched?.backup,
      ctx,
      from: fetched ? fetched.backup.id : String(v.from),
      log,
      yes: Boolean(v.yes),
      dryRun: Boolean(v['dry-run']),
      waitLockMs,
      healthTimeoutMs,
      startApp: true,
      smoke: !v['skip-smoke'],
      ca: v.ca as string | undefined,
      notice: n,
    });
    n.release = currentReleaseLabel(ctx);
    return x;
  }, (x) => (v['dry-run'] ? null : { outcome: 'ok', backup: x.backupId }));
  if (r.keptDir) log.out(`kept aside: ${r.keptDir}`);
  if (r.phases.hold !== undefined) log.info(`requests were held ${(r.phases.hold / 1000).toFixed(1)} s (app stopped until healthy; Caddy holds up to 30 s)`);
  return 0;
  } finally {
    fetched?.remove();
  }
});
