#!/usr/bin/env node
// The live database: a sqlite3 shell or one query, as the app's uid (never root: root leaves root-owned
// -wal/-shm files the app cannot open), read-only unless --write (then only after a verified backup),
// waiting for the app's write lock; and the dead letters: list, retry (by the app), clear.
//   node scripts/db.mts --config .env.prod ["SELECT ..."]
//   node scripts/db.mts --config .env.prod --dead-letters | --retry <update_id> | --clear <update_id|all>
import { runMain } from './lib/cli/main.mts';
import { StepError, UsageError } from './lib/cli/errors.mts';
import { type CommandSpec } from './lib/cli/args.mts';
import { sharedOption, sharedValues } from './lib/cli/shared.mts';
import type { OpsEnv } from './lib/config/env.mts';
import type { Logger } from './lib/cli/log.mts';
import { sqliteArgs } from './lib/commands/sqlite.mts';

export const spec: CommandSpec = {
  name: 'db.mts',
  summary: "the live SQLite database: a sqlite3 shell or one query as the app's uid, and the dead letters",
  usage: [
    'node scripts/db.mts --config .env.prod                        # sqlite3 shell, read-only',
    'node scripts/db.mts --config .env.prod "SELECT count(*) FROM tasks" [--json]',
    'node scripts/db.mts --config .env.prod --write ["UPDATE ..."] [--dry-run]   # after a verified backup',
    'node scripts/db.mts --config .env.prod --dead-letters [--json]',
    'node scripts/db.mts --config .env.prod --retry <update_id> [--dry-run]',
    'node scripts/db.mts --config .env.prod --clear <update_id|all> [--dry-run]',
  ],
  options: [
    sharedOption('config'),
    { name: 'write', type: 'boolean', describe: 'open the database writable; a verified backup (backup.mts) is taken first, under the operation lock' },
    { name: 'busy-timeout', type: 'number', arg: '<ms>', default: 5000, describe: "wait this long for the app's write lock instead of failing with \"database is locked\"" },
    { name: 'dead-letters', type: 'boolean', describe: 'list the dead letters (Telegram updates the app gave up on), newest first' },
    { name: 'retry', type: 'string', arg: '<update_id>', describe: 'have the running app process this dead letter again (exactly once: its own commit decides)' },
    { name: 'clear', type: 'string', arg: '<update_id|all>', describe: 'delete this dead letter (or all), after a verified backup' },
    sharedOption('json', 'a query\'s rows, the dead letters, or the result of --retry/--clear'),
    sharedOption('dryRun', 'with --write/--retry/--clear: say what would be done'),
    sharedOption('quiet'),
  ],
  maxPositionals: 1,
  details: [
    "sqlite3 runs on the host as the database file's owner (the app's uid), so a -wal/-shm file it creates",
    'is the app\'s. Read-only (-readonly) unless --write. A retry runs the command the app image declares',
    '(label lazyflow.dead-letter-retry, e.g. "bun src/retry-dead-letter.ts") in the running app container:',
    "the app handles the update with its own handlers and records it once; Telegram calls it makes are at",
    'least once, as for any update. The host needs the sqlite3 package (RUNBOOK, VPS preparation).',
  ].join('\n'),
  exitCodes: [
    'Exit status:',
    '  0  ok (the query ran; the dead letter was processed by the app; cleared)',
    '  1  a step failed: the query failed, the backup before a write failed (nothing written), the retry',
    '     failed again (still a dead letter, one more attempt), no such dead letter, no running app',
    '  2  usage or config error (bad flag, update id or combination; env file missing or invalid)',
  ].join('\n'),
};

const ID = /^\d{1,19}$/;

function updateIdArg(flag: string, v: string): number {
  if (!ID.test(v) || !Number.isSafeInteger(Number(v))) throw new UsageError(`${flag} expects a Telegram update_id (digits), got "${v}"`, { hint: 'see: node scripts/db.mts --dead-letters' });
  return Number(v);
}

/** the verified backup before anything is written, under the operation lock (held until the write is done) */
async function withBackup<T>(env: OpsEnv, log: Logger, what: string, f: () => Promise<T>): Promise<T> {
  const { acquireLock } = await import('./lib/host/lock.mts');
  const { runBackup } = await import('./lib/backup/backup.mts');
  const lock = await acquireLock(env.layout, { operation: `db ${what}`, waitMs: 0, log });
  try {
    const b = await runBackup({ ctx: env, reason: 'manual', log, lockHeld: true });
    log.ok(`backup ${b.id} verified; now: ${what}`);
    return await f();
  } finally {
    lock.release();
  }
}

await runMain(spec, async ({ values: v, positionals }, log) => {
  const o = sharedValues(v);
  // every flag is validated before anything is touched
  const sql = positionals[0];
  const retry = v.retry === undefined ? undefined : updateIdArg('--retry', String(v.retry));
  const clearText = v.clear as string | undefined;
  const clear = clearText === undefined ? undefined : clearText === 'all' ? 'all' : updateIdArg('--clear', clearText);
  const busyTimeoutMs = Number(v['busy-timeout']);
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) throw new UsageError(`--busy-timeout expects whole milliseconds >= 0, got ${v['busy-timeout']}`);
  const modes = [v['dead-letters'] && '--dead-letters', retry !== undefined && '--retry', clear !== undefined && '--clear'].filter(Boolean);
  if (modes.length > 1) throw new UsageError(`${modes.join(' and ')} cannot be combined`, { hint: 'one at a time; see: db.mts --help' });
  if (modes.length && (sql !== undefined || v.write)) throw new UsageError(`${modes[0]} takes no SQL and no --write`, { hint: 'see: db.mts --help' });
  if (o.dryRun && !modes.length && !v.write) throw new UsageError('--dry-run goes with --write, --retry or --clear (a read-only query changes nothing)');

  // loaded only now: --help and a usage error answer at once
  const { loadOpsEnv } = await import('./lib/config/env.mts');
  const { reachableOwner, runSqlite, runSqliteInteractive } = await import('./lib/host/sqlite-cli.mts');
  const { clearDeadLetters, listDeadLetters, retryDeadLetter } = await import('./lib/db/dead-letters.mts');
  const { redactEnvSecrets } = await import('./lib/notify/message.mts');
  const env = loadOpsEnv(o.config);
  log.setOpsLog(env.layout.opsLog);
  const redact = (s: string) => redactEnvSecrets(s, env.values);

  if (v['dead-letters']) {
    const rows = await listDeadLetters(env, busyTimeoutMs);
    if (o.json) log.out(JSON.stringify(rows, null, 2));
    else if (!rows.length) log.out('no dead letters');
    else log.table(rows.map((r) => ({ ...r, update_json: undefined, last_error: r.last_error === undefined ? undefined : String(r.last_error).slice(0, 80) })), Object.keys(rows[0]).filter((k) => k !== 'update_json'));
    return 0;
  }

  if (retry !== undefined) {
    const [row] = await listDeadLetters(env, busyTimeoutMs, [retry]);
    if (!row) throw new StepError(`update ${retry} is not a dead letter`, { step: 'db', hint: `node scripts/db.mts --config ${o.config} --dead-letters` });
    if (o.dryRun) {
      log.info(`would have the running app process update ${retry} again (dead letter since ${String(row.failed_at ?? '?')}: ${String(row.last_error ?? '')})`);
      return 0;
    }
    const r = await retryDeadLetter(env, retry);
    for (const l of redact(r.appLog).split('\n').filter(Boolean)) log.debug(`app: ${l}`);
    const summary = `dead letter: update ${retry} retried by the app: ${r.result}${r.error ? ` (${redact(r.error)})` : ''}`;
    if (o.json) log.out(JSON.stringify({ update_id: retry, result: r.result, ...(r.error ? { error: redact(r.error) } : {}) }));
    if (r.result === 'processed') {
      log.ok(summary);
      return 0;
    }
    log.error(summary);
    if (r.result === 'failed') log.error(`next: it stays a dead letter (one more attempt); fix the cause and retry, or: node scripts/db.mts --config ${o.config} --clear ${retry}`);
    return 1;
  }

  if (clear !== undefined) {
    const ids = clear === 'all' ? null : [clear];
    const rows = await listDeadLetters(env, busyTimeoutMs, ids);
    if (!rows.length) {
      if (clear === 'all') {
        log.ok('no dead letters: nothing to clear');
        if (o.json) log.out(JSON.stringify({ cleared: 0 }));
        return 0;
      }
      throw new StepError(`update ${clear} is not a dead letter`, { step: 'db', hint: `node scripts/db.mts --config ${o.config} --dead-letters` });
    }
    if (o.dryRun) {
      log.info(`would take a verified backup, then delete ${rows.length} dead letter(s): ${rows.map((r) => r.update_id).join(', ')}`);
      return 0;
    }
    const n = await withBackup(env, log, `clear ${rows.length} dead letter(s)`, () => clearDeadLetters(env, ids, busyTimeoutMs));
    log.ok(`dead letters cleared: ${n} (${rows.map((r) => `update ${r.update_id}`).join(', ')}); Telegram will not send them again`);
    if (o.json) log.out(JSON.stringify({ cleared: n, update_ids: rows.map((r) => r.update_id) }));
    return 0;
  }

  // a shell or one query
  const db = env.layout.db;
  const owner = reachableOwner(db);
  const mode = o.json ? 'json' : process.stdout.isTTY ? 'box' : 'list';
  const argv = sqliteArgs({ db, readonly: !v.write, busyTimeoutMs, mode, sql });
  if (o.dryRun) {
    log.info(`would take a verified backup, then run as uid ${owner.uid}: ${argv.join(' ')}`);
    return 0;
  }
  const run = async () => {
    if (sql === undefined) return runSqliteInteractive(argv, owner);
    const r = await runSqlite(argv, owner);
    if (r.stdout) log.out(r.stdout.trimEnd());
    if (r.code !== 0) log.error(`sqlite3: ${r.stderr.trim() || `exit ${r.code}`}`);
    return r.code;
  };
  const code = v.write ? await withBackup(env, log, sql === undefined ? 'write (sqlite3 shell)' : 'write (one statement)', run) : await run();
  return code === 0 ? 0 : 1;
});
