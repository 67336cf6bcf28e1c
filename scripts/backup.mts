#!/usr/bin/env node
// Take a verified backup of STATE_DIR (database + uploads), list backups, apply retention.
//   npx zx scripts/backup.mts --config .env.prod [--reason cron] [--gzip] [--keep-daily 7 ...]
import { runMain } from './lib/cli/main.mts';
import { loadOpsEnv } from './lib/config/env.mts';
import { UsageError } from './lib/cli/errors.mts';
import { acquireLock } from './lib/host/lock.mts';
import { runBackup, pruneBackups, backupRows, pruneBuildCache } from './lib/backup/backup.mts';
import { listBackups, BACKUP_REASONS, type BackupReason } from './lib/backup/manifest.mts';
import { SNAPSHOT_METHODS, DEFAULT_SNAPSHOT_METHOD, type SnapshotMethod } from './lib/backup/sqlite-snapshot.mts';
import { describePolicy, policyIsEmpty, type RetentionPolicy } from './lib/backup/retention.mts';
import { type CommandSpec } from './lib/cli/args.mts';
import { sharedOption, sharedValues } from './lib/cli/shared.mts';
// offsite (issue 9)
import { loadOffsiteConfig } from './lib/offsite/config.mts';
import { pushMissing, type PushResult } from './lib/offsite/offsite.mts';
import { currentReleaseLabel, withNotice } from './lib/notify/operation.mts';

export const spec: CommandSpec = {
  name: 'backup.mts',
  summary: 'take a verified, consistent backup of the live database and uploads (online: the app keeps running)',
  usage: [
    'npx zx scripts/backup.mts --config .env.prod [--reason cron] [--gzip] [--keep-daily N --keep-weekly N --keep-monthly N]',
    'npx zx scripts/backup.mts --config .env.prod --list [--json]',
    'npx zx scripts/backup.mts --config .env.prod --forget --keep-daily N [--keep-weekly N] [--keep-monthly N] [--dry-run]',
  ],
  options: [
    sharedOption('config'),
    { name: 'reason', type: 'string', arg: '<reason>', choices: [...BACKUP_REASONS], default: 'manual', describe: 'recorded in the manifest' },
    { name: 'gzip', type: 'boolean', describe: 'store the database gzip-compressed (checksums cover the stored file)' },
    { name: 'keep-daily', type: 'number', describe: 'retention: keep the newest backup of each of the last N days' },
    { name: 'keep-weekly', type: 'number', describe: 'retention: keep the newest backup of each of the last N ISO weeks' },
    { name: 'keep-monthly', type: 'number', describe: 'retention: keep the newest backup of each of the last N months' },
    { name: 'keep-last', type: 'number', describe: 'retention: keep the N newest backups' },
    { name: 'keep-images', type: 'number', default: 5, describe: 'retention: the rollout --keep-images value; only backups a rollback to those images can use are pinned' },
    { name: 'keep-kept', type: 'number', default: 3, describe: 'retention: keep the N newest kept-aside states (STATE_DIR/kept/, what restores replaced)' },
    { name: 'keep-kept-days', type: 'number', default: 30, describe: 'retention: and none older than N days' },
    { name: 'forget', type: 'boolean', describe: 'apply the retention policy only, take no new backup' },
    { name: 'prune-build-cache', type: 'boolean', describe: 'also bound Docker\'s build cache: docker builder prune of every entry unused for 7 days (the daily job does)' },
    sharedOption('dryRun', 'with retention flags: which backups would be deleted'),
    { name: 'list', type: 'boolean', describe: 'list backups: id, age, reason, size, verified' },
    sharedOption('json', 'with --list, or after a backup'),
    sharedOption('quiet'),
    { name: 'wait-lock', type: 'number', arg: '<seconds>', default: 0, describe: 'wait this long for a running restore/rollout to finish instead of refusing' },
    { name: 'method', type: 'string', arg: '<method>', choices: SNAPSHOT_METHODS, default: DEFAULT_SNAPSHOT_METHOD, describe: 'how the database snapshot is copied (see bench/backup)' },
    { name: 'app-tag', type: 'string', arg: '<tag>', describe: 'app release recorded in the manifest (default: the running app image tag)' },
    { name: 'skip-offsite', type: 'boolean', describe: 'do not upload to OFFSITE_REPOSITORY after the backup (the next run catches up)' },
  ],
  details: [
    'Backups go to STATE_DIR/backups/<id>/ (manifest.json, lazyflow.db[.gz], uploads/). Retention never deletes',
    'the newest (and the newest verified) backup, nor one a rollback --with-db can still use: the data backup of',
    'each release whose image rollout still keeps (--keep-images, same value as rollout\'s). Other pre-deploy',
    'backups age out like any other. Retention also removes kept-aside states (STATE_DIR/kept/) beyond',
    '--keep-kept or older than --keep-kept-days. Days/weeks/months are UTC. Pre-deploy backups are also bounded',
    'when rollout takes one: the newest 10 stay, plus every one a rollback or recovery can use.',
    '--prune-build-cache (the daily job): docker builder prune --force --all --filter until=168h.',
    'Cron (daily 03:17, keeps 7 daily, 4 weekly, 6 monthly):',
    '  17 3 * * * cd /srv/lazyflow-deploy && npx zx scripts/backup.mts --config .env.prod --reason cron --quiet --wait-lock 900 --keep-daily 7 --keep-weekly 4 --keep-monthly 6 --keep-images 5',
    'With OFFSITE_REPOSITORY set, every verified local backup not offsite yet is then uploaded (restic); a failed upload',
    'leaves the local backup published and exits 1; the next run uploads what is missing (see offsite.mts).',
  ].join('\n'),
  exitCodes: [
    'Exit status:',
    '  0  ok (backup written and verified; retention applied)',
    '  1  a check or step failed: the lock is held by another operation, disk full, the snapshot failed',
    '     integrity_check, ... (no partial backup is left behind); or the offsite upload failed (the local',
    '     backup is published and intact)',
    '  2  usage or config error (bad flag, env file missing or invalid)',
  ].join('\n'),
};

function num(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} expects a whole number >= 0, got ${v}`, { hint: 'see: backup.mts --help' });
  return n;
}

await runMain(spec, async ({ values: v }, log) => {
  // every flag is validated before anything is touched
  const policy: RetentionPolicy = {
    daily: num(v['keep-daily'], '--keep-daily'),
    weekly: num(v['keep-weekly'], '--keep-weekly'),
    monthly: num(v['keep-monthly'], '--keep-monthly'),
    last: num(v['keep-last'], '--keep-last'),
  };
  const keepImages = num(v['keep-images'], '--keep-images') ?? 5;
  const keptPolicy = { keepLast: num(v['keep-kept'], '--keep-kept') ?? 3, maxAgeDays: num(v['keep-kept-days'], '--keep-kept-days') ?? 30 };
  const waitLockS = num(v['wait-lock'], '--wait-lock') ?? 0;
  if (v.forget && policyIsEmpty(policy)) throw new UsageError('--forget needs a policy: --keep-daily/--keep-weekly/--keep-monthly/--keep-last', { hint: 'e.g. --forget --keep-daily 7 --keep-weekly 4 --keep-monthly 6' });
  if (v.list && (v.forget || !policyIsEmpty(policy))) throw new UsageError('--list cannot be combined with retention flags');
  const ctx = loadOpsEnv(sharedValues(v).config);
  const layout = ctx.layout;
  log.setOpsLog(layout.opsLog);
  if (v.list) {
    const { backups, ignored } = listBackups(layout);
    for (const i of ignored) log.warn(`ignoring ${layout.backups}/${i.name}: ${i.why}`);
    if (v.json) {
      log.out(JSON.stringify(backups.map((b) => ({ id: b.id, createdAt: b.createdAt.toISOString(), reason: b.manifest.reason, sizeBytes: b.sizeBytes, verified: b.verified, problems: b.problems, app: b.manifest.app, database: { file: b.manifest.database.file, bytes: b.manifest.database.bytes, sha256: b.manifest.database.sha256, userVersion: b.manifest.database.userVersion, rowCounts: b.manifest.database.rowCounts }, uploads: { files: b.manifest.uploads.files, bytes: b.manifest.uploads.bytes }, dir: b.dir })), null, 2));
    } else if (backups.length === 0) {
      log.out(`no backups in ${layout.backups}`);
    } else {
      log.table(backupRows(backups), ['id', { key: 'age', align: 'right' }, 'reason', { key: 'size', align: 'right' }, 'verified', 'app', { key: 'schema', align: 'right' }]);
    }
    return 0;
  }

  if (v['dry-run']) {
    if (!v.forget) log.info(`would take a ${v.gzip ? 'gzip-compressed ' : ''}backup (${v.reason}) of ${layout.db} and ${layout.uploads} into ${layout.backups}`);
    if (v['prune-build-cache']) log.info('would prune the build cache: docker builder prune --force --all --filter until=168h');
    if (!policyIsEmpty(policy)) {
      // read-only: no lock needed
      const r = pruneBackups({ layout, policy, keepImages, keptPolicy, dryRun: true, log });
      log.table(r.decisions.map((d) => ({ id: d.id, action: d.keep ? 'keep' : 'DELETE', why: d.reasons.join(', ') })), ['id', 'action', 'why']);
      if (r.kept.length) log.table(r.kept.map((k) => ({ kept: k.name, action: k.keep ? 'keep' : 'DELETE', why: k.why })), ['kept', 'action', 'why']);
    }
    return 0;
  }

  // one notification per run: a backup (with its offsite upload) ok or failed; a --forget-only run
  // (retention) notifies only when it fails
  return withNotice({ env: ctx, log, operation: 'backup', release: currentReleaseLabel(ctx) }, async (n) => {
    // offsite (issue 9): a bad offsite key is a config error before anything is touched
    const offsite = v['skip-offsite'] ? null : loadOffsiteConfig(ctx);
    const lock = await acquireLock(layout, { operation: v.forget ? 'backup --forget' : `backup (${v.reason})`, waitMs: waitLockS * 1000, log });
    try {
      let result;
      if (!v.forget) {
        result = await runBackup({
          ctx,
          reason: v.reason as BackupReason,
          gzip: Boolean(v.gzip),
          log,
          lockHeld: true,
          method: v.method as SnapshotMethod,
          appTag: v['app-tag'] as string | undefined,
        });
        n.backup = result.id;
      }
      let removed: string[] = [];
      if (!policyIsEmpty(policy)) {
        log.debug(`retention: ${describePolicy(policy)}`);
        removed = pruneBackups({ layout, policy, keepImages, keptPolicy, log }).removed;
      }
      if (v['prune-build-cache']) await pruneBuildCache(log);
      // offsite (issue 9): upload what is missing, under the lock so retention cannot race restic
      let pushed: PushResult | null = null;
      if (offsite && !v.forget) pushed = await pushMissing(ctx, offsite, log);
      if (v.json) log.out(JSON.stringify({ backup: result ? { id: result.id, dir: result.dir, manifest: { ...result.manifest, uploads: { ...result.manifest.uploads, entries: undefined } } } : null, removed, ...(pushed ? { offsite: pushed } : {}) }, null, 2));
      return 0;
    } finally {
      lock.release();
    }
  }, () => (v.forget ? null : { outcome: 'ok' }));
});
