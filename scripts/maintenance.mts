#!/usr/bin/env node
// Maintenance mode: the site and the API answer a maintenance page (503, Retry-After), Telegram's
// webhook deliveries are answered 503 so that Telegram sends them again later, the watch stays quiet;
// rollout and restore still work (their checks pass with the toolkit's key). No reload, no restart.
//   node scripts/maintenance.mts --config .env.prod --on --for 30m --message "Upgrading the database"
//   node scripts/maintenance.mts --config .env.prod --off
import { runMain } from './lib/cli/main.mts';
import type { CommandSpec } from './lib/cli/args.mts';
import { sharedOption } from './lib/cli/shared.mts';
import { UsageError } from './lib/cli/errors.mts';
import { loadOpsEnv } from './lib/config/env.mts';
import { parseDuration } from './lib/watch/settings.mts';
import { formatDuration } from './lib/cli/log.mts';
import { httpsGet } from './lib/checks/http.mts';
import { StepError } from './lib/cli/errors.mts';
import type { OpsEnv } from './lib/config/env.mts';
import { MAX_FOR_MS, maintenanceFiles, maintenanceStatus, planOn, readMaintenance, turnOff, turnOn, type MaintenanceStatus } from './lib/maintenance/maintenance.mts';

export const spec: CommandSpec = {
  name: 'maintenance.mts',
  summary: 'put the site in maintenance (503 page, Telegram updates held and delivered after), end it, or show it',
  usage: [
    'node scripts/maintenance.mts --config .env.prod --on [--for 30m] [--message TEXT]',
    'node scripts/maintenance.mts --config .env.prod --off',
    'node scripts/maintenance.mts --config .env.prod --status [--json]',
  ],
  options: [
    sharedOption('config'),
    { name: 'on', type: 'boolean', describe: 'start maintenance (again: change its message or end time, same key)' },
    { name: 'off', type: 'boolean', describe: 'end maintenance now' },
    { name: 'status', type: 'boolean', describe: 'show whether it is on, since when, until when (the default)' },
    { name: 'for', type: 'string', arg: '<duration>', describe: `with --on: end by itself after this long (90s, 30m, 2h; at most ${MAX_FOR_MS / 3_600_000}h); Caddy checks the end at every request, no timer needed` },
    { name: 'message', type: 'string', arg: '<text>', describe: 'with --on: the sentence on the maintenance page' },
    { name: 'connect', type: 'string', arg: '<addr>', default: '127.0.0.1', describe: "with --on: address to dial for DOMAIN to see that Caddy answers 503 (Caddy's published ports)" },
    sharedOption('json', 'the state'),
    sharedOption('dryRun', 'what --on/--off would do'),
    sharedOption('quiet'),
  ],
  details: [
    'While on, Caddy answers every request 503 with Retry-After: the Mini App and its API get a page with',
    'the message, Telegram webhook deliveries a bare 503 with Retry-After: 10, so Telegram sends each',
    'update again and they are processed once each after the end (Telegram drops an update it could not',
    'deliver for 24 h: keep maintenance shorter). The watch announces nothing while it lasts. Rollout,',
    'rollback and restore work during it and leave it on; their checks reach the app with the key in',
    'STATE_DIR/proxy/maintenance.key. Files: STATE_DIR/proxy/maintenance-until, .key, .html, .json.',
  ].join('\n'),
  exitCodes: ['Exit status:', '  0  done (or --status shown, on or off)', '  1  the files could not be written, or Caddy does not answer 503 after --on (its Caddyfile predates maintenance mode)', '  2  usage or config error'].join('\n'),
};

/**
 * What the public gets now: a request without the key, through Caddy's published HTTPS port. A Caddy
 * whose Caddyfile predates maintenance mode (before the first rollout of this toolkit) ignores the file.
 */
async function publicAnswer(env: OpsEnv, connect: string): Promise<{ status: number; error?: string }> {
  const r = await httpsGet({ domain: env.domain, httpsPort: Number(env.values.HTTPS_PORT || 443), httpPort: Number(env.values.HTTP_PORT || 80), connect }, '/', { timeoutMs: 10_000 });
  return { status: r.status, ...(r.error ? { error: r.error } : {}) };
}

function describe(s: MaintenanceStatus, now: Date): string {
  if (!s.on) return s.endedAt ? `maintenance is off (the last one ended ${s.endedAt})` : 'maintenance is off';
  const left = s.until ? `until ${s.until} (${formatDuration(Date.parse(s.until) - now.getTime())} left)` : 'until --off';
  return `maintenance is ON since ${s.since ?? '?'}, ${left}: "${s.message ?? ''}"`;
}

runMain(spec, async ({ values: v }, log) => {
  const modes = ['on', 'off', 'status'].filter((m) => v[m]);
  if (modes.length > 1) throw new UsageError(`--${modes.join(' and --')} exclude each other`, { hint: 'node scripts/maintenance.mts --help' });
  const mode = modes[0] ?? 'status';
  if (mode !== 'on' && (v.for !== undefined || v.message !== undefined)) throw new UsageError('--for and --message go with --on');
  let forMs: number | undefined;
  if (v.for !== undefined) {
    const ms = parseDuration(String(v.for));
    if (ms === null || ms <= 0) throw new UsageError(`--for "${String(v.for)}" is not a duration (90s, 30m, 2h)`);
    if (ms > MAX_FOR_MS) throw new UsageError(`--for ${String(v.for)} is longer than ${MAX_FOR_MS / 3_600_000}h: Telegram drops an update it could not deliver for 24 h`, { hint: 'use a shorter window, or --on without --for and --off when done' });
    forMs = ms;
  }
  const env = loadOpsEnv(String(v.config));
  if (mode !== 'status' && !v['dry-run']) log.setOpsLog(env.layout.opsLog);
  const now = new Date();
  const obs = readMaintenance(env.layout);
  const before = maintenanceStatus(obs, now);
  const print = (s: MaintenanceStatus, extra: Record<string, unknown> = {}) => {
    const { window: _w, ...shown } = s;
    if (v.json) log.out(JSON.stringify({ ...shown, ...extra, files: maintenanceFiles(env.layout) }));
    else log.ok(describe(s, now));
  };
  if (mode === 'status') {
    print(before);
    return 0;
  }
  if (mode === 'on') {
    const plan = planOn({ now, forMs, message: v.message as string | undefined, current: before });
    const after = maintenanceStatus({ untilText: String(plan.untilUnix), record: plan.record, key: 'x' }, now);
    if (v['dry-run']) {
      log.info(`dry run: would write ${maintenanceFiles(env.layout).until} and turn on: ${describe(after, now)}`);
      print(after, { dryRun: true });
      return 0;
    }
    turnOn(env.layout, plan, obs, now);
    // the files alone prove nothing: Caddy must answer 503 to the public now
    const seen = await publicAnswer(env, String(v.connect));
    if (seen.status !== 503 && !seen.error) {
      turnOff(env.layout, readMaintenance(env.layout), new Date());
      throw new StepError(`Caddy still answers ${seen.status} to https://${env.domain}/: its Caddyfile predates maintenance mode; maintenance is NOT on (files removed)`, { step: 'maintenance', hint: `roll out once to update Caddy (node scripts/rollout.mts --config ${env.file}), then --on again` });
    }
    if (seen.error) log.warn(`could not see Caddy's answer (${seen.error}): the files are written; check with curl -sI https://${env.domain}/`);
    log.info(`maintenance on${before.on ? ' (already on: message and end updated)' : ''}: Caddy answers 503 from the next request; Telegram updates wait and arrive after --off`);
    print(maintenanceStatus(readMaintenance(env.layout), now));
    return 0;
  }
  if (!before.on && v['dry-run']) {
    log.info('dry run: maintenance is not on: nothing to do');
    print(before, { dryRun: true });
    return 0;
  }
  if (v['dry-run']) {
    log.info(`dry run: would remove ${maintenanceFiles(env.layout).until}: the site serves again from the next request`);
    print(before, { dryRun: true });
    return 0;
  }
  turnOff(env.layout, obs, now);
  log.info(before.on ? 'maintenance off: the site serves again; Telegram sends the held updates within Retry-After (10 s)' : 'maintenance was not on; its files are cleared');
  print(maintenanceStatus(readMaintenance(env.layout), now));
  return 0;
});
