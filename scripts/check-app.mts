#!/usr/bin/env node
// Check a candidate app image against the app contract, in a sandbox (nothing of production is touched).
//   node scripts/check-app.mts --image lazyflow-app:abc1234 [--config .env.prod] [--json]
import { runMain } from './lib/cli/main.mts';
import type { CommandSpec } from './lib/cli/args.mts';
import { sharedOption } from './lib/cli/shared.mts';
import { UsageError, errorMessage } from './lib/cli/errors.mts';
import { loadOpsEnv, type OpsEnv } from './lib/config/env.mts';
import { runContractCheck } from './lib/contract/check.mts';
import { ITEMS, recommendedNotice } from './lib/contract/items.mts';
import { decideShape, shapeSummary } from './lib/config/shape.mts';
import { releaseLayout, releaseShape } from './lib/release/rollout.mts';
import { currentRelease, readJournal } from './lib/release/journal.mts';

export const spec: CommandSpec = {
  name: 'check-app.mts',
  summary: 'run an app image in a sandbox and check it against the app contract (required and recommended items)',
  usage: [
    'node scripts/check-app.mts --image lazyflow-app:abc1234',
    'node scripts/check-app.mts --image lazyflow-app:abc1234 --config .env.prod --json',
  ],
  options: [
    { name: 'image', type: 'string', arg: '<image[:tag]>', describe: 'the candidate app image (required)' },
    sharedOption('config', undefined, { default: null, describe: "operator env file: the app's own keys (e.g. MINI_APP_URL) are passed to the sandbox, exactly as to production; READY_PATH, HEALTHCHECK_PATH and COMPOSE_FILE say what the stack probes" }),
    { name: 'tier', type: 'string', arg: '<tier>', choices: ['required', 'all'], default: 'all', describe: 'which items to check (required: the rollout gate, faster)' },
    { name: 'probe-image', type: 'string', arg: '<image>', describe: 'image with bun on PATH that runs the probe (default BUN_IMAGE, else oven/bun:1.4.5-slim)' },
    { name: 'boot-timeout', type: 'number', arg: '<s>', default: 20, describe: 'how long the app may take to answer HTTP' },
    sharedOption('json'),
    sharedOption('quiet', 'here: only the items that are not passing'),
  ],
  details: [
    'Sandbox: a private internal network with no route out (Telegram unreachable), no published port, a throwaway',
    "STATE_DIR; production's env: the app's own keys from --config, secrets replaced by placeholders of the same shape",
    '(BOT_TOKEN a well-formed token that is no bot\'s: the real one never enters the sandbox, so a candidate cannot move',
    'the live webhook); --user 1000:1000 --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges,',
    'STATE_DIR/data and /uploads bind-mounted; a probe container from the Bun base image does the HTTP requests and',
    "reads the database as uid 1000. The app is also sent SIGTERM and started once with a corrupt database.",
    'Everything it creates is removed at the end (about 10 s).',
    '',
    'READY_PATH and HEALTHCHECK_PATH: set in --config, they are what is checked; unset, the check asks /ready and',
    '/health/write and reports the paths the stack will probe (the rollout records them with the release).',
    '',
    'Items:',
    ...ITEMS.map((i) => `  ${i.id.padEnd(15)} ${i.tier.padEnd(12)} ${i.title}`),
    '',
    'Each item is pass, missing, wrong or unchecked (could not be observed because the app never answered);',
    'every one that is missing or wrong comes with its fix. RUNBOOK.md, "The app contract", explains them.',
  ].join('\n'),
  exitCodes: ['Exit status:', '  0  every required item passes (recommended ones may be missing)', '  1  a required item is missing, wrong or unchecked (named in the output)', '  2  usage or config error (no --image, no such image, bad env file)'].join('\n'),
};

/** without --config: the env file's rule alone (nothing set: the default) */
async function shapeFor(env: OpsEnv | undefined): Promise<{ shape: string; why: string; does: string } | { error: string }> {
  if (!env) {
    const d = decideShape({ values: {} });
    return d.ok ? { shape: d.shape, why: d.why, does: shapeSummary(d.shape) } : { error: d.error };
  }
  try {
    const releases = readJournal(env.layout.releases).releases;
    const d = releaseShape(env, (await releaseLayout(env.projectDir)).root, releases, currentRelease(releases)?.appTag);
    return { ...d, does: shapeSummary(d.shape) };
  } catch (err) {
    return { error: errorMessage(err) };
  }
}

runMain(spec, async ({ values: v }, log) => {
  if (!v.image) throw new UsageError('check-app.mts: --image is required', { hint: 'node scripts/check-app.mts --image lazyflow-app:<tag>' });
  const opsEnv = v.config ? loadOpsEnv(String(v.config)) : undefined;
  const appValues = opsEnv?.values;
  const report = await runContractCheck({
    image: String(v.image),
    appValues,
    tier: v.tier === 'required' ? 'required' : undefined,
    probeImage: v['probe-image'] as string | undefined,
    bootTimeoutMs: Number(v['boot-timeout']) * 1000,
    log: v.json ? undefined : log,
  });
  // the bot's shape as the rollout will decide it (the env file, the checkout, the live release), RUNBOOK "Bot shapes"
  const shape = await shapeFor(opsEnv);
  if (v.json) {
    const probes = Object.fromEntries(Object.entries(report.probes).map(([k, c]) => [k, c.value]));
    log.out(JSON.stringify({ ok: report.exitCode === 0, image: report.image, ms: report.ms, shape, results: report.results, missingKeys: report.missingKeys, ...(report.telegramError ? { telegramError: report.telegramError } : {}), probes }, null, 2));
    return report.exitCode;
  }
  if ('error' in shape) log.error(`bot shape: ${shape.error}`);
  else log.info(`bot shape ${shape.shape} (${shape.why}): ${shape.does}`);
  const rows = report.results
    .filter((r) => !v.quiet || r.status !== 'pass')
    .map((r) => ({ item: r.id, tier: r.tier, status: r.status.toUpperCase(), detail: r.detail }));
  if (rows.length) log.table(rows, ['item', 'tier', 'status', 'detail']);
  for (const r of report.results) {
    if (!r.fix) continue;
    const say = r.tier === 'required' ? log.error : log.warn;
    say(r.tier === 'required' ? `${r.id} (required) ${r.status}: ${r.detail} (${r.runbook})` : recommendedNotice(r));
    for (const line of `fix: ${r.fix}`.split('\n')) say(`    ${line}`);
  }
  if (report.missingKeys.length) {
    log.error(`the app exited at start-up naming ${report.missingKeys.join(', ')}, which ${v.config ? String(v.config) : 'the sandbox (no --config)'} does not set: add ${report.missingKeys.length > 1 ? 'them' : 'it'} to the env file and pass it with --config (RUNBOOK "The app's own settings")`);
  }
  const observed = Object.entries(report.probes).filter(([, c]) => c.source === 'observed');
  if (observed.length) log.info(`the stack will probe ${observed.map(([k, c]) => `${k}=${c.value}`).join(', ')} (what the app answers; a value set in the env file wins)`);
  const failed = report.results.filter((r) => r.tier === 'required' && r.status !== 'pass').map((r) => r.id);
  if (report.exitCode === 0) log.ok(`${report.image} meets the required contract (${(report.ms / 1000).toFixed(1)} s)`);
  else log.error(`${report.image} does not meet the required contract: ${failed.join(', ')}`);
  return report.exitCode;
});
