#!/usr/bin/env node
// Deploy the current git checkout: preflight, lock, build, pre-deploy backup, swap the one app
// container while Caddy holds requests, health/Telegram/smoke gates, record, notify. Any failed gate
// rolls back automatically (restoring the pre-deploy backup only if the schema moved).
import { runMain } from './lib/cli/main.mts';
import { type CommandSpec } from './lib/cli/args.mts';
import { sharedOption, sharedValues } from './lib/cli/shared.mts';
import { loadOpsEnv } from './lib/config/env.mts';
import { GATE_OPTIONS, ROLLOUT_PHASES } from './lib/release/plan.mts';
import { formatDuration } from './lib/cli/log.mts';
import { enableCompileCache } from './lib/cli/compile-cache.mts';

// the rollout's modules load below, through the compile cache (lib/cli/compile-cache.mts)
enableCompileCache();

export const spec: CommandSpec = {
  name: 'rollout.mts',
  summary: 'deploy the current git commit with no dropped request or Telegram update; roll back automatically on a failed gate',
  usage: [
    'node scripts/rollout.mts --config .env.prod',
    'node scripts/rollout.mts --config .env.prod --dry-run',
    'node scripts/rollout.mts --config .env.prod --check      # preflight only',
  ],
  options: [
    sharedOption('config'),
    sharedOption('dryRun', 'here: preflight runs, then the plan (commands included)'),
    { name: 'check', type: 'boolean', describe: 'run preflight only and exit' },
    { name: 'source', type: 'string', arg: '<dir>', describe: 'git working tree to build from (default: the git repository this toolkit sits in: its own, or the app repository that carries it in deploy/)' },
    { name: 'allow-dirty', type: 'boolean', describe: 'deploy uncommitted changes; the image tag gets a visible -dirty-<time> marker' },
    { name: 'keep-images', type: 'number', default: 5, describe: 'keep the images of the newest N releases, prune older ones' },
    { name: 'skip-backup', type: 'boolean', describe: 'no pre-deploy backup (a schema-changing failure could then not be undone)' },
    { name: 'skip-contract', type: 'boolean', describe: "do not check the new image against the app contract's required tier before touching production (RUNBOOK: The app contract)" },
    ...GATE_OPTIONS,
    sharedOption('json', 'the result: release id, phases, swap timings'),
    sharedOption('quiet'),
  ],
  details: [
    `Phases: ${ROLLOUT_PHASES.join(' -> ')} (each timed, recorded in STATE_DIR/releases.jsonl).`,
    'Contract gate: after the build, the image runs in the check-app.mts sandbox against the required tier of the',
    'app contract; a non-conforming image is refused (exit 1, each failed item and its fix named, nothing live',
    'changed). A pass is cached per image content and app env in STATE_DIR/contract-cache.json (newest 20).',
    'Beside the image build: preflight\'s stack checks (compose config, caddy validate, STATE_DIR) and the',
    'front end\'s proxy image; all are judged before the pre-deploy backup.',
    'Swap: `docker compose up -d --no-deps app` with APP_TAG=<git sha>: compose creates the new container,',
    'stops the old one gracefully (in-flight requests finish), removes it, then starts the new one. Never two',
    'app containers running; Caddy holds requests meanwhile (LAZYFLOW_SWAP=stop-first: explicit stop first).',
    'On a failed gate: diagnostics of the new container are printed, the previous image is started again,',
    'and the pre-deploy backup is restored only when PRAGMA user_version moved (read after the failed app stopped;',
    'unreadable: stop and ask). From the swap on, the work runs in a detached worker (own session, log in',
    'STATE_DIR/logs/critical-<id>.log): SIGHUP, Ctrl-C or SIGTERM here do not stop it.',
    'Safety net: before anything live changes, rollout makes sure scripts/recover.mts runs at boot and every',
    'minute (the recover job of schedules.mts: a systemd timer where systemd runs, else the cron file), and',
    'installs it when it is missing; so a rollout killed midway (kill -9, OOM, a reboot) is finished or undone',
    'within a minute with no other command. When it cannot install it, it says so and what that costs: then',
    'nothing finishes an interrupted swap until you run recover.mts. LAZYFLOW_SAFETY_NET=off in the env file',
    'if you run recovery with a supervisor of your own (RUNBOOK "The safety net").',
  ].join('\n'),
  exitCodes: [
    'Exit status:',
    '  0  deployed (or --dry-run / --check passed)',
    '  1  a step or gate failed (the release was rolled back, or nothing live changed), or the lock is held',
    '  2  usage or config error (bad flag, env file problem found by preflight, dirty tree without --allow-dirty)',
    '  129/130/143  SIGHUP/SIGINT/SIGTERM: before the swap nothing live changed; during it the swap continues in the printed pid',
    '               (a polling bot\'s old poller is stopped from before the pre-deploy backup: recover.mts starts it again)',
  ].join('\n'),
};

runMain(spec, async ({ values: v }, log) => {
  const env = loadOpsEnv(sharedValues(v).config);
  log.setOpsLog(env.layout.opsLog);
  if (v.check) {
    const { runPreflight, preflightExitCode } = await import('./lib/checks/preflight.mts');
    const results = await runPreflight(env, {});
    if (v.json) log.out(JSON.stringify({ ok: preflightExitCode(results) === 0, results }, null, 2));
    else log.table(results.map((r) => ({ check: r.name, status: r.ok ? (r.level === 'warn' ? 'WARN' : 'ok') : 'FAIL', message: r.message, fix: r.ok ? '' : r.fix ?? '' })), ['check', 'status', 'message', 'fix']);
    return preflightExitCode(results);
  }
  const { runRollout } = await import('./lib/release/rollout.mts');
  const res = await runRollout({
    env,
    log,
    source: v.source as string | undefined,
    allowDirty: Boolean(v['allow-dirty']),
    dryRun: Boolean(v['dry-run']),
    keepImages: Number(v['keep-images']),
    healthTimeoutS: Number(v['health-timeout']),
    telegramTimeoutS: Number(v['telegram-timeout']),
    pendingMax: Number(v['pending-max']),
    lockWaitS: Number(v['wait-lock']),
    skipBackup: Boolean(v['skip-backup']),
    skipContract: Boolean(v['skip-contract']),
    skipSmoke: Boolean(v['skip-smoke']),
    notify: Boolean(v.notify),
    smoke: { ca: v.ca as string | undefined, telegramApiRoot: v['telegram-api-root'] as string | undefined },
  });
  if (res.plan && !v.json) {
    log.out(`Plan for ${env.appImage}:${res.appTag} (dry run: nothing changed)`);
    res.plan.forEach((s, i) => log.out(`${String(i + 1).padStart(2)}. [${s.phase}] ${s.what}${s.argv ? `\n      $ ${s.argv.join(' ')}` : ''}`));
  }
  if (v.json) log.out(JSON.stringify(res, null, 2));
  else if (!log.quiet && res.result !== 'dry-run' && Object.keys(res.phases).length) {
    log.table(Object.entries(res.phases).map(([phase, ms]) => ({ phase, time: formatDuration(ms) })), ['phase', { key: 'time', align: 'right' }]);
  }
  return res.exitCode;
});
