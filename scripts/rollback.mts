#!/usr/bin/env node
// Roll back to the previous successful release (or --to one), with the same gates as a rollout.
import { createInterface } from 'node:readline/promises';
import { runMain } from './lib/cli/main.mts';
import { type CommandSpec } from './lib/cli/args.mts';
import { sharedOption, sharedValues } from './lib/cli/shared.mts';
import { loadOpsEnv } from './lib/config/env.mts';
import { UsageError } from './lib/cli/errors.mts';
import { currentRelease, readJournal, releaseRows } from './lib/release/journal.mts';
import { runRollback } from './lib/release/rollback.mts';
import { formatDuration } from './lib/cli/log.mts';
import { GATE_OPTIONS } from './lib/release/plan.mts';

export const spec: CommandSpec = {
  name: 'rollback.mts',
  summary: 'go back to an earlier release (default: the previous successful one), gated like a rollout',
  usage: [
    'node scripts/rollback.mts --config .env.prod --list',
    'node scripts/rollback.mts --config .env.prod                 # previous successful release',
    'node scripts/rollback.mts --config .env.prod --to <release-id|git-sha|tag>',
    'node scripts/rollback.mts --config .env.prod --to <id> --with-db   # also restore its data',
    'APP_TAG=$(node scripts/rollback.mts --config .env.prod --current) docker compose --env-file .env.prod up -d',
  ],
  options: [
    sharedOption('config'),
    { name: 'list', type: 'boolean', alias: 'l', describe: 'list the releases (newest first; * = current) and exit' },
    { name: 'current', type: 'boolean', describe: 'print the app tag of the current release and exit (for manual compose commands)' },
    { name: 'to', type: 'string', arg: '<release|sha|tag>', describe: 'the release to go back to: release id (or prefix), git sha prefix, or image tag' },
    { name: 'with-db', type: 'boolean', describe: 'also restore the backup holding that release\'s data (taken right before it was replaced); asks first' },
    { name: 'yes', type: 'boolean', alias: 'y', describe: 'do not ask for confirmation (--with-db)' },
    { name: 'force', type: 'boolean', describe: 'roll back although the database schema is newer than the target ran with' },
    sharedOption('dryRun'),
    ...GATE_OPTIONS,
    sharedOption('json', '--list, --current and the result'),
    sharedOption('quiet'),
  ],
  details: [
    'Without --with-db the data is kept. A rollback to a release whose schema (user_version) is older than',
    'the database is refused unless --with-db or --force. If a gate fails, the app goes back to what ran before.',
  ].join('\n'),
  exitCodes: [
    'Exit status:',
    '  0  rolled back (or --list / --current / --dry-run)',
    '  1  a step or gate failed (details printed and in the journal), or the lock is held',
    '  2  usage or config error (unknown release, nothing to roll back to, --with-db not confirmed)',
  ].join('\n'),
};

async function ask(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw new UsageError('--with-db needs a confirmation and stdin is not a terminal', { hint: 'pass --yes' });
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

runMain(spec, async ({ values: v }, log) => {
  const env = loadOpsEnv(sharedValues(v).config);
  log.setOpsLog(env.layout.opsLog);
  const journal = readJournal(env.layout.releases);
  if (journal.skipped.length) log.warn(`releases journal: skipped ${journal.skipped.length} unreadable line(s) (${journal.skipped.map((s) => s.line).join(', ')}); a torn last line follows a crash`);
  if (v.current) {
    const cur = currentRelease(journal.releases);
    if (!cur) throw new UsageError('no successful release recorded yet', { hint: 'deploy first: node scripts/rollout.mts' });
    log.out(v.json ? JSON.stringify(cur) : cur.appTag!);
    return 0;
  }
  if (v.list) {
    const rows = releaseRows(journal.releases);
    if (v.json) log.out(JSON.stringify(journal.releases, null, 2));
    else if (!rows.length) log.info(`no releases recorded yet in ${env.layout.releases}`);
    else log.table(rows, ['current', 'id', 'kind', 'result', 'appTag', 'age', 'duration', 'backupId', 'operator', 'reason']);
    return 0;
  }
  const res = await runRollback({
    env, log,
    to: v.to as string | undefined,
    withDb: Boolean(v['with-db']),
    force: Boolean(v.force),
    dryRun: Boolean(v['dry-run']),
    confirm: v.yes ? async () => true : ask,
    healthTimeoutS: Number(v['health-timeout']),
    telegramTimeoutS: Number(v['telegram-timeout']),
    pendingMax: Number(v['pending-max']),
    lockWaitS: Number(v['wait-lock']),
    skipSmoke: Boolean(v['skip-smoke']),
    notify: Boolean(v.notify),
    smoke: { ca: v.ca as string | undefined, telegramApiRoot: v['telegram-api-root'] as string | undefined },
  });
  if (v.json) log.out(JSON.stringify(res, null, 2));
  else if (!log.quiet && res.result !== 'dry-run' && Object.keys(res.phases).length) {
    log.table(Object.entries(res.phases).map(([phase, ms]) => ({ phase, time: formatDuration(ms) })), ['phase', { key: 'time', align: 'right' }]);
  }
  return res.exitCode;
});
