#!/usr/bin/env node
// The deployment's logs as one time-ordered stream: the app, Caddy, ops.log and the critical-section
// logs; filtered by time, text, level, or one Telegram update's whole path. Secrets redacted.
//   node scripts/logs.mts --config .env.prod [--since 1h] [--level warn] [--grep TEXT] [-f]
//   node scripts/logs.mts --config .env.prod --update 123456789
import { Chalk } from 'chalk';
import { runMain } from './lib/cli/main.mts';
import { UsageError } from './lib/cli/errors.mts';
import { type CommandSpec } from './lib/cli/args.mts';
import { sharedOption, sharedValues } from './lib/cli/shared.mts';
import { entryJson, filterEntries, formatEntry, LOG_LEVELS, parseGrep, parseSince, type LogEntry, type LogFilter, type LogLevel } from './lib/logs/stream.mts';

export const spec: CommandSpec = {
  name: 'logs.mts',
  summary: "the app's, Caddy's and the toolkit's logs as one time-ordered stream (secrets redacted)",
  usage: [
    'node scripts/logs.mts --config .env.prod [--since 1h] [--level warn] [--grep TEXT] [--json]',
    'node scripts/logs.mts --config .env.prod -f [--level warn] [--grep TEXT]',
    'node scripts/logs.mts --config .env.prod --update <update_id> [--since 24h]',
  ],
  options: [
    sharedOption('config'),
    { name: 'since', type: 'string', arg: '<time>', describe: 'from this long ago (90s, 30m, 2h, 7d) or this ISO time (default: 1h; 24h with --update)' },
    { name: 'follow', type: 'boolean', alias: 'f', describe: 'after the history, print new lines as they come (Ctrl-C ends it, exit 130)' },
    { name: 'grep', type: 'string', arg: '<regex>', describe: 'only lines matching this case-insensitive regular expression' },
    { name: 'level', type: 'string', arg: '<level>', choices: [...LOG_LEVELS], describe: 'only this level and above (a plain-text line that reads like an error counts as one)' },
    { name: 'update', type: 'string', arg: '<update_id>', describe: "one Telegram update's path: the webhook requests that carried it (Caddy, app), the handler's attempts, the dead letter, a retry" },
    sharedOption('json', 'one object per line: ts, source, level, fields (JSON lines) or text'),
  ],
  details: [
    'Sources: app and caddy (docker compose logs of the running containers; a container removed by a rollout',
    'takes its lines with it), STATE_DIR/logs/ops.log (+ rotated ops.log.N) and STATE_DIR/logs/critical-<id>.log.',
    'Lines that are not JSON (stack traces, start-up text) are kept as text. Every secret value of the env file',
    '(bot token, webhook secret, passwords, keys) is replaced with <redacted> before filtering and printing.',
    "Caddy's access log and the app's request log carry no update_id: with --update, a webhook request is shown",
    'when the app handled the update while that request was open.',
  ].join('\n'),
  exitCodes: [
    'Exit status:',
    '  0  ok (lines printed; none matching is ok, except with --update)',
    '  1  the logs could not be read (docker compose failed), or --update found no line about that update',
    '  2  usage or config error (bad flag, --since, --grep or --update value; env file missing or invalid)',
  ].join('\n'),
};

await runMain(spec, async ({ values: v }, log) => {
  const o = sharedValues(v);
  // every flag is validated before anything is read
  const now = Date.now();
  const updateText = v.update as string | undefined;
  if (updateText !== undefined && !/^\d{1,19}$/.test(updateText)) throw new UsageError(`--update expects a Telegram update_id (digits), got "${updateText}"`, { hint: 'see: logs.mts --help' });
  const update = updateText === undefined ? undefined : Number(updateText);
  if (update !== undefined && v.follow) throw new UsageError('--update reads the history only; -f cannot follow one update', { hint: `node scripts/logs.mts --config ${o.config} --update ${update}` });
  const sinceText = (v.since as string | undefined) ?? (update !== undefined ? '24h' : '1h');
  const since = parseSince(sinceText, now);
  if (since === null) throw new UsageError(`--since expects a duration (90s, 30m, 2h, 7d) or an ISO time, got "${sinceText}"`, { hint: 'see: logs.mts --help' });
  const grepText = v.grep as string | undefined;
  const grep = grepText === undefined ? undefined : parseGrep(grepText);
  if (grep === null) throw new UsageError(`--grep "${grepText}" is not a valid regular expression`, { hint: 'escape special characters, e.g. --grep "update_dead_letter"' });
  const filter: LogFilter = { since, grep, level: v.level as LogLevel | undefined, update };

  // loaded only now: --help and a usage error answer at once
  const { loadOpsEnv } = await import('./lib/config/env.mts');
  const { follow, readAll } = await import('./lib/logs/read.mts');
  const env = loadOpsEnv(o.config);
  const c = new Chalk({ level: process.stdout.isTTY && !process.env.NO_COLOR ? 1 : 0 });
  const paint = (e: LogEntry, line: string) => (e.level === 'error' ? c.red(line) : e.level === 'warn' ? c.yellow(line) : e.level === 'debug' ? c.dim(line) : line);
  const print = (e: LogEntry) => log.out(o.json ? JSON.stringify(entryJson(e)) : paint(e, formatEntry(e)));

  let entries: LogEntry[];
  try {
    entries = await readAll(env, since);
  } catch (err) {
    log.error(`cannot read the container logs: ${(err as Error).message}`);
    log.error(`next: docker compose --env-file ${o.config} ps   (is the stack up?)`);
    return 1;
  }
  const shown = filterEntries(entries, filter);
  for (const e of shown) print(e);
  if (update !== undefined && shown.length === 0) {
    log.error(`no line about update ${update} since ${new Date(since).toISOString()}`);
    log.error(`next: a longer window, e.g. node scripts/logs.mts --config ${o.config} --update ${update} --since 7d`);
    return 1;
  }
  if (!v.follow) return 0;

  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  const { since: _s, ...live } = filter;
  await follow(env, Date.now(), (e) => {
    for (const x of filterEntries([e], live)) print(x);
  }, stop.signal);
  return 0;
});
