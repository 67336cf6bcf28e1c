#!/usr/bin/env node
// The watch: smoke checks plus watch-only observations, alerting on changes of state only.
//   node scripts/watch.mts --config .env.prod --once     (what the every-minute timer runs)
import { setTimeout as sleep } from 'node:timers/promises';
import { runMain } from './lib/cli/main.mts';
import type { CommandSpec } from './lib/cli/args.mts';
import { sharedOption } from './lib/cli/shared.mts';
import { ConfigError } from './lib/cli/errors.mts';
import { loadOpsEnv, type OpsEnv } from './lib/config/env.mts';
import type { Logger } from './lib/cli/log.mts';
import { watchSettings, WatchSettingsError, type WatchSettings } from './lib/watch/settings.mts';
import { afterSend, alertsToSend, decide, delivered, healthy, openAlerts, type PendingAlert } from './lib/watch/decide.mts';
import { observe } from './lib/watch/observe.mts';
import { readWatchState, watchStateFile, writeWatchState } from './lib/watch/store.mts';
import { notifyOperation, summarize } from './lib/notify/notify.mts';
import { redactUrl } from './lib/notify/channels.mts';
import { currentReleaseLabel } from './lib/notify/operation.mts';
import { redactEnvSecrets } from './lib/notify/message.mts';
import { acquireLock } from './lib/host/lock.mts';
import { join } from 'node:path';
import { watchDir } from './lib/watch/store.mts';
import { DEFAULT_RETRY } from './lib/notify/retry.mts';

/** a run sends (and retries) for at most this long, so it ends before the next timer tick (60 s) */
const SEND_BUDGET_MS = 30_000;

export const spec: CommandSpec = {
  name: 'watch.mts',
  summary: 'watch the running stack and alert on changes of state (problem starts, reminder, ends); ping HEARTBEAT_URL when healthy',
  usage: ['node scripts/watch.mts --config .env.prod --once', 'node scripts/watch.mts --config .env.prod --once --dry-run --json', 'node scripts/watch.mts --config .env.prod'],
  options: [
    sharedOption('config'),
    { name: 'once', type: 'boolean', describe: 'one run, then exit (the systemd timer runs this every minute); without it: loop every WATCH_INTERVAL' },
    sharedOption('json', 'each run: problems, alerts, channels'),
    sharedOption('dryRun', 'observe and decide, print the alerts; send nothing, ping nothing, keep the state'),
    { name: 'ca', type: 'string', arg: '<pem>', describe: 'trust this root for the site certificate (private CA), as smoke.mts --ca' },
    { name: 'connect', type: 'string', arg: '<addr>', default: '127.0.0.1', describe: "address to dial for DOMAIN (Caddy's published ports)" },
    { name: 'telegram-api-root', type: 'string', arg: '<url>', describe: 'Bot API root as reachable from this host (default TELEGRAM_API_ROOT)' },
    { name: 'timeout', type: 'number', arg: '<s>', default: 10, describe: 'per-request timeout' },
    { name: 'test-alert', type: 'boolean', describe: 'send one test notification to every configured channel and report each (exit 1 if one failed); observes nothing' },
    sharedOption('quiet', 'and the alerts'),
  ],
  details: [
    'Problems: app-down, cert-expiry (< WATCH_CERT_DAYS, 14), disk-low (< WATCH_MIN_FREE_MB, 1024), backup-stale',
    '(> WATCH_BACKUP_MAX_AGE, 26h), offsite-stale (OFFSITE_REPOSITORY set and the newest upload, from',
    'STATE_DIR/offsite/last-upload.json, missing or > WATCH_OFFSITE_MAX_AGE, 26h; restic is not called),',
    'dead-letters, container-restarts (restart or OOM kill), telegram-delivery',
    '(pending_update_count growing, fresh last_error), smoke (any other failing smoke check).',
    'A problem is announced after WATCH_CONFIRM_RUNS (2) runs in a row, reminded every WATCH_REMIND_AFTER (6h),',
    'and announced once more when it ends. Channels: ADMIN_CHAT_ID (BOT_TOKEN or ALERT_BOT_TOKEN), ALERT_WEBHOOK_URL.',
    'A channel that fails is logged and never changes the exit status. A channel answering 429 is tried again',
    'after its retry_after, a 5xx or no answer with backoff, within 30 s per run; an alert no channel took is',
    'sent again at the next run (state saved after sending). While maintenance is on (scripts/maintenance.mts)',
    'nothing is judged or announced and the heartbeat is fed. State: STATE_DIR/watch/state.json.',
  ].join('\n'),
  exitCodes: ['Exit status:', '  0  healthy: no problem seen this run', '  1  at least one problem seen (alerts sent or not: channels never change this)', '  2  usage or config error'].join('\n'),
};

async function ping(url: string, timeoutMs: number): Promise<string> {
  try {
    // redirect: 'manual': a 3xx is a failed ping (res.ok is false), never followed elsewhere
    const res = await fetch(url, { method: 'GET', signal: AbortSignal.timeout(timeoutMs), headers: { 'user-agent': 'lazyflow-watch/1' }, redirect: 'manual' });
    await res.arrayBuffer().catch(() => undefined);
    return res.ok ? '' : `HTTP ${res.status}`;
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause;
    return `unreachable: ${cause?.code ?? (e as Error).name}`;
  }
}

async function runOnce(env: OpsEnv, s: WatchSettings, v: Record<string, unknown>, log: Logger): Promise<number> {
  // two runs at once (a slow run overlapping the next timer tick, a manual run) would both announce
  // the same change: the watch's own lock, never the operations' ops.lock (a rollout must not stop it)
  const lock = v['dry-run'] ? undefined : await acquireLock({ lockFile: join(watchDir(env.stateDir), 'watch.lock') }, { operation: 'watch', waitMs: 30_000, log });
  try {
    return await runOnceLocked(env, s, v, log);
  } finally {
    lock?.release();
  }
}

async function runOnceLocked(env: OpsEnv, s: WatchSettings, v: Record<string, unknown>, log: Logger): Promise<number> {
  const now = new Date();
  const file = watchStateFile(env.stateDir);
  const { state: prev, note } = readWatchState(file);
  if (note) log.warn(note);
  const timeoutMs = Number(v.timeout) * 1000;
  const { obs } = await observe(env, s, { log, ca: v.ca as string | undefined, connect: v.connect as string, telegramApiRoot: v['telegram-api-root'] as string | undefined, timeoutMs, now });
  const { state: decided, alerts } = decide(prev, obs, now, s);
  const maintenance = obs.maintenance?.on ?? false;
  const dry = Boolean(v['dry-run']);
  const release = currentReleaseLabel(env);
  const sendBy = Date.now() + SEND_BUDGET_MS;
  const sent: { alert: PendingAlert; channels: string; delivered: boolean }[] = [];
  // the alerts no channel took at earlier runs go first, then this run's; the state is saved only once
  // they are sent, so one that no channel delivered is sent again at the next run
  for (const a of alertsToSend(decided, alerts, now, maintenance)) {
    const late = a.tries > 0 ? ` (again: no channel took it at ${a.at})` : '';
    // the unit's output (journal) and ops.log get the same redaction as the alert itself
    const line = redactEnvSecrets(`${a.state} ${a.problem}: ${a.detail}${late}`, env.values);
    if (a.state === 'resolved') log.ok(`alert ${line}`);
    else log.error(`alert ${line}`);
    if (dry) {
      sent.push({ alert: a, channels: 'dry run: not sent', delivered: false });
      continue;
    }
    const left = sendBy - Date.now();
    if (left <= 0) {
      sent.push({ alert: a, channels: 'not tried: this run is out of time; the next run sends it', delivered: false });
      continue;
    }
    const results = await notifyOperation(
      env,
      { operation: 'watch', outcome: a.state === 'resolved' ? 'ok' : 'failed', release, reason: a.detail, at: a.at, alert: { problem: a.problem, state: a.state, since: a.since } },
      { log, apiRoot: v['telegram-api-root'] as string | undefined, timeoutMs: Math.min(timeoutMs, left), retry: { ...DEFAULT_RETRY, budgetMs: left } },
    );
    const ok = delivered(results);
    sent.push({ alert: a, channels: (summarize(results) || 'no channel configured (ADMIN_CHAT_ID, ALERT_WEBHOOK_URL)') + (ok ? '' : '; sent again at the next run'), delivered: ok });
  }
  const state = afterSend(decided, sent, maintenance);
  if (!dry) writeWatchState(file, state);
  // maintenance: the operator took the site down on purpose; nothing is judged, the heartbeat is fed
  const ok = maintenance || healthy(state);
  let heartbeat = s.heartbeatUrl ? (ok ? 'pinged' : 'not pinged: unhealthy') : 'not configured';
  if (s.heartbeatUrl && ok && !dry) {
    const err = await ping(s.heartbeatUrl, timeoutMs);
    if (err) {
      heartbeat = `ping failed: ${err}`;
      log.warn(`heartbeat ${redactUrl(s.heartbeatUrl)}: ${err}`);
    }
  } else if (dry && s.heartbeatUrl && ok) heartbeat = 'dry run: not pinged';
  const problems = Object.entries(state.problems).map(([problem, p]) => ({ problem, since: p.since, runs: p.runs, announced: Boolean(p.alertedAt), detail: p.detail }));
  if (v.json) log.out(JSON.stringify({ ok, at: now.toISOString(), maintenance, problems, alerts: sent.map((x) => ({ ...x.alert, channels: x.channels, delivered: x.delivered })), undelivered: state.undelivered?.length ?? 0, open: openAlerts(state), heartbeat }));
  else if (maintenance) log.ok(`watch: maintenance on (node scripts/maintenance.mts --status): nothing judged or announced; heartbeat ${heartbeat}`);
  else if (ok) log.ok(`watch: healthy${alerts.length ? `, ${alerts.length} alert(s) sent` : ''}; heartbeat ${heartbeat}`);
  else log.warn(`watch: ${problems.map((p) => `${p.problem}${p.announced ? '' : ` (seen ${p.runs}x, not announced yet)`}`).join(', ')}`);
  return ok ? 0 : 1;
}

runMain(spec, async ({ values: v }, log) => {
  const env = loadOpsEnv(String(v.config));
  let s: WatchSettings;
  try {
    s = watchSettings(env.values);
  } catch (e) {
    if (e instanceof WatchSettingsError) throw new ConfigError(e.message, { file: env.file, key: e.key, hint: `fix ${e.key} in ${env.file} (see .env.prod.example)` });
    throw e;
  }
  log.setOpsLog(env.layout.opsLog);
  if (v['test-alert']) {
    const results = await notifyOperation(env, { operation: 'test', outcome: 'ok', text: 'lazyflow test alert: this channel works' }, { log, apiRoot: v['telegram-api-root'] as string | undefined, timeoutMs: Number(v.timeout) * 1000 });
    if (v.json) log.out(JSON.stringify({ ok: results.length > 0 && results.every((r) => r.ok), channels: results }));
    else if (!results.length) log.error('no alert channel configured: set ADMIN_CHAT_ID (with BOT_TOKEN or ALERT_BOT_TOKEN) or ALERT_WEBHOOK_URL');
    else for (const r of results) (r.ok ? log.ok : log.error)(`${r.channel}: ${r.detail}`);
    return results.length > 0 && results.every((r) => r.ok) ? 0 : 1;
  }
  if (v.once) return runOnce(env, s, v, log);
  for (;;) {
    const started = Date.now();
    await runOnce(env, s, v, log);
    await sleep(Math.max(1000, s.intervalMs - (Date.now() - started)));
  }
});
