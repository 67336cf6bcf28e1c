#!/usr/bin/env node
// Offsite copies of the local backups (restic): create the repository, upload what is missing,
// list local and offsite side by side, apply retention offsite, verify the repository.
import { runMain } from './lib/cli/main.mts';
import { loadOpsEnv } from './lib/config/env.mts';
import { ConfigError, UsageError } from './lib/cli/errors.mts';
import { acquireLock } from './lib/host/lock.mts';
import { formatAge, formatBytes } from './lib/cli/log.mts';
import { listBackups } from './lib/backup/manifest.mts';
import { policyIsEmpty, type RetentionPolicy } from './lib/backup/retention.mts';
import { loadOffsiteConfig } from './lib/offsite/config.mts';
import { checkRepository, forgetOffsite, initRepository, listSnapshots, pushMissing, readLastCheck, sideBySide, unlockRepository } from './lib/offsite/offsite.mts';
import { type CommandSpec } from './lib/cli/args.mts';
import { sharedOption, sharedValues } from './lib/cli/shared.mts';
import { currentReleaseLabel, withNotice } from './lib/notify/operation.mts';

export const spec: CommandSpec = {
  name: 'offsite.mts',
  summary: 'encrypted offsite copies of the local backups with restic: init, push, list, forget, check',
  usage: [
    'npx zx scripts/offsite.mts --config .env.prod --init',
    'npx zx scripts/offsite.mts --config .env.prod --push [--dry-run]',
    'npx zx scripts/offsite.mts --config .env.prod --list [--json]',
    'npx zx scripts/offsite.mts --config .env.prod --forget --keep-daily N [--keep-weekly N] [--keep-monthly N] [--dry-run]',
    'npx zx scripts/offsite.mts --config .env.prod --check [--read-data-subset 5%]',
  ],
  options: [
    sharedOption('config'),
    { name: 'init', type: 'boolean', describe: 'create the restic repository at OFFSITE_REPOSITORY (once; a no-op when it exists)' },
    { name: 'push', type: 'boolean', describe: 'upload every verified local backup that is not offsite yet (backup.mts does this after each backup)' },
    { name: 'list', type: 'boolean', describe: 'local and offsite backups side by side: id, age, size, verified' },
    { name: 'forget', type: 'boolean', describe: 'apply retention offsite (restic forget + prune); never drops the newest snapshot' },
    { name: 'check', type: 'boolean', describe: 'restic check, re-reading a subset of the data (--read-data-subset)' },
    { name: 'unlock', type: 'boolean', describe: 'remove stale restic locks (after a killed run; only when no restic runs)' },
    { name: 'read-data-subset', type: 'string', arg: '<n%|n/t>', default: '5%', describe: 'with --check: how much data to download and verify' },
    { name: 'keep-daily', type: 'number', describe: 'retention: newest backup of each of the last N days' },
    { name: 'keep-weekly', type: 'number', describe: 'retention: newest backup of each of the last N ISO weeks' },
    { name: 'keep-monthly', type: 'number', describe: 'retention: newest backup of each of the last N months' },
    { name: 'keep-last', type: 'number', describe: 'retention: the N newest backups' },
    sharedOption('dryRun', 'with --push/--forget'),
    sharedOption('json'),
    sharedOption('quiet'),
    { name: 'wait-lock', type: 'number', arg: '<seconds>', default: 0, describe: 'wait this long for a running backup/restore/rollout' },
  ],
  details: [
    'Configuration (env file): OFFSITE_REPOSITORY, OFFSITE_PASSWORD_FILE (mode 600, outside STATE_DIR) and the',
    "backend's credentials (AWS_*, OFFSITE_SFTP_KEY, OFFSITE_REST_USERNAME + OFFSITE_REST_PASSWORD_FILE); see",
    '.env.prod.example. Secrets reach restic through its environment only, never its command line.',
    'Cron (weekly check, Sundays 05:10; retention after the daily backup):',
    '  10 5 * * 0 cd /srv/lazyflow-deploy && npx zx scripts/offsite.mts --config .env.prod --check --quiet',
    '  40 3 * * * cd /srv/lazyflow-deploy && npx zx scripts/offsite.mts --config .env.prod --forget --keep-daily 7 --keep-weekly 4 --keep-monthly 6 --quiet --wait-lock 900',
  ].join('\n'),
  exitCodes: [
    'Exit status:',
    '  0  ok',
    '  1  a step failed: the backend did not answer or refused, the upload is incomplete, check found errors,',
    '     the lock is held (local backups are never touched by this command)',
    '  2  usage or config error: bad flag, offsite not configured, a bad key, the password does not open the repository',
  ].join('\n'),
};

function num(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} expects a whole number >= 0, got ${v}`);
  return n;
}

await runMain(spec, async ({ values: v }, log) => {
  const modes = ['init', 'push', 'list', 'forget', 'check', 'unlock'].filter((k) => v[k]);
  if (modes.length !== 1) throw new UsageError(modes.length ? `--${modes.join(' and --')} cannot be combined` : 'say what to do: --init, --push, --list, --forget, --check or --unlock', { hint: 'see: offsite.mts --help' });
  const policy: RetentionPolicy = { daily: num(v['keep-daily'], '--keep-daily'), weekly: num(v['keep-weekly'], '--keep-weekly'), monthly: num(v['keep-monthly'], '--keep-monthly'), last: num(v['keep-last'], '--keep-last') };
  if (v.forget && policyIsEmpty(policy)) throw new UsageError('--forget needs a policy: --keep-daily/--keep-weekly/--keep-monthly/--keep-last', { hint: 'e.g. --forget --keep-daily 7 --keep-weekly 4 --keep-monthly 6' });
  if (!v.forget && !policyIsEmpty(policy)) throw new UsageError('keep flags only apply to --forget');
  const subset = String(v['read-data-subset']);
  if (!/^(\d+(\.\d+)?%|\d+\/\d+|\d+[KMGT]?)$/.test(subset)) throw new UsageError(`--read-data-subset expects n% or n/t, got "${subset}"`);
  const waitLockMs = (num(v['wait-lock'], '--wait-lock') ?? 0) * 1000;
  const ctx = loadOpsEnv(sharedValues(v).config);
  log.setOpsLog(ctx.layout.opsLog);
  const cfg = loadOffsiteConfig(ctx);
  if (!cfg) throw new ConfigError(`offsite backups are not configured: OFFSITE_REPOSITORY is empty in ${ctx.file}`, { file: ctx.file, key: 'OFFSITE_REPOSITORY', hint: 'see .env.prod.example (Offsite backups) and RUNBOOK.md (Offsite backups)' });

  if (v.init) {
    const r = await initRepository(ctx, cfg, log);
    if (v.json) log.out(JSON.stringify({ repository: r }));
    return 0;
  }
  if (v.list) {
    const local = listBackups(ctx.layout).backups;
    const rows = sideBySide(local, await listSnapshots(ctx, cfg));
    const check = readLastCheck(ctx);
    if (v.json) {
      log.out(JSON.stringify({ repository: cfg.target.repository, lastCheck: check, backups: rows }, null, 2));
      return 0;
    }
    const now = Date.now();
    log.table(rows.map((r) => ({
      id: r.id,
      age: formatAge(now - Date.parse(r.createdAt)),
      reason: r.reason ?? '-',
      local: r.local ? formatBytes(r.local.sizeBytes) : '-',
      'local verified': r.local ? (r.local.verified ? 'yes' : `NO: ${r.local.problems.join('; ')}`) : '-',
      offsite: r.offsite ? `${r.offsite.snapshotId.slice(0, 8)}${r.offsite.bytes !== null ? ` ${formatBytes(r.offsite.bytes)}` : ''}` : 'MISSING',
      'offsite verified': r.offsite ? (check ? `${check.ok ? 'check ok' : 'CHECK FAILED'} ${formatAge(now - Date.parse(check.at))} ago` : 'never checked') : '-',
    })), ['id', { key: 'age', align: 'right' }, 'reason', { key: 'local', align: 'right' }, 'local verified', 'offsite', 'offsite verified']);
    const missing = rows.filter((r) => r.local?.verified && !r.offsite).length;
    if (missing) log.warn(`${missing} local backup(s) are not offsite yet: npx zx scripts/offsite.mts --config ${ctx.file} --push`);
    return 0;
  }
  if (v.check) {
    // notified (offsite-check): the scheduled proof that the offsite copies are readable
    const rec = await withNotice({ env: ctx, log, operation: 'offsite-check', release: currentReleaseLabel(ctx) },
      () => checkRepository(ctx, cfg, log, { readDataSubset: subset }),
      (r) => (r.ok ? { outcome: 'ok' } : { outcome: 'failed', reason: r.detail }));
    if (v.json) log.out(JSON.stringify(rec, null, 2));
    return rec.ok ? 0 : 1;
  }
  if (v.forget && v['dry-run']) {
    const r = await forgetOffsite(ctx, cfg, policy, log, { dryRun: true });
    if (v.json) log.out(JSON.stringify(r, null, 2));
    else log.table(r.decisions.map((d) => ({ id: d.id, action: d.keep ? 'keep' : 'FORGET', why: d.reasons.join(', ') })), ['id', 'action', 'why']);
    return 0;
  }
  if (v.push && v['dry-run']) {
    const r = await pushMissing(ctx, cfg, log, { dryRun: true });
    if (v.json) log.out(JSON.stringify(r, null, 2));
    return 0;
  }
  if (v.push) {
    // one notification (offsite) per upload run, the lock included: a busy lock is a failed upload
    const r = await withNotice({ env: ctx, log, operation: 'offsite', release: currentReleaseLabel(ctx) },
      async (n) => {
        const lock = await acquireLock(ctx.layout, { operation: 'offsite push', waitMs: waitLockMs, log });
        try {
          const p = await pushMissing(ctx, cfg, log);
          n.backup = p.uploaded[0]?.backupId;
          return p;
        } finally {
          lock.release();
        }
      },
      (p) => ({ outcome: 'ok', reason: p.uploaded.length ? undefined : `nothing to upload: ${p.alreadyOffsite} backup(s) already offsite` }));
    if (v.json) log.out(JSON.stringify(r, null, 2));
    return 0;
  }
  const lock = await acquireLock(ctx.layout, { operation: `offsite ${modes[0]}`, waitMs: waitLockMs, log });
  try {
    if (v.unlock) {
      await unlockRepository(ctx, cfg, log);
      return 0;
    }
    const r = await forgetOffsite(ctx, cfg, policy, log);
    if (v.json) log.out(JSON.stringify(r, null, 2));
    return 0;
  } finally {
    lock.release();
  }
});
