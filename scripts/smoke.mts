#!/usr/bin/env node
// Smoke checks of the running stack: run after every restart, or any time.
//   node scripts/smoke.mts --config .env.prod [--json] [--only a,b] [--skip c] [--ca root.pem]
import { runMain } from './lib/cli/main.mts';
import { type CommandSpec } from './lib/cli/args.mts';
import { sharedOption, sharedValues } from './lib/cli/shared.mts';
import { loadOpsEnv } from './lib/config/env.mts';
import { UsageError } from './lib/cli/errors.mts';
import { CHECKS, CHECK_NAMES, runSmoke } from './lib/checks/smoke.mts';
import { smokeExitCode } from './lib/checks/evaluate.mts';

const list = (v: unknown) => (typeof v === 'string' && v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined);

export const spec: CommandSpec = {
  name: 'smoke.mts',
  summary: 'check that the running stack is healthy, secure and serving (seconds; read-only except a canary file)',
  usage: [
    'node scripts/smoke.mts --config .env.prod',
    'node scripts/smoke.mts --config .env.prod --json',
    'node scripts/smoke.mts --config .env.prod --only health,tls --ca /path/root.pem',
  ],
  options: [
    sharedOption('config'),
    sharedOption('json'),
    { name: 'only', type: 'string', arg: '<a,b>', describe: `run only these checks (${CHECK_NAMES.join(', ')})` },
    { name: 'skip', type: 'string', arg: '<a,b>', describe: 'skip these checks' },
    { name: 'ca', type: 'string', arg: '<pem>', describe: 'trust this root for the site certificate (private CA); default: system trust, or Caddy\'s local root when DOMAIN=localhost' },
    { name: 'connect', type: 'string', arg: '<addr>', default: '127.0.0.1', describe: 'address to dial for DOMAIN (Caddy\'s published ports)' },
    { name: 'expect-version', type: 'string', arg: '<tag>', describe: 'version /health must report (default: the current release in the journal)' },
    { name: 'jobs-max-age', type: 'number', arg: '<s>', describe: 'fail when the last job tick is older (default max(30, 3 x JOB_HEARTBEAT_MS))' },
    { name: 'pending-max', type: 'number', arg: '<n>', default: 100, describe: 'fail when Telegram holds this many undelivered updates' },
    { name: 'min-free-mb', type: 'number', arg: '<MiB>', default: 1024, describe: 'fail when STATE_DIR has less free disk (warn under twice this)' },
    { name: 'telegram-api-root', type: 'string', arg: '<url>', describe: 'Bot API root as reachable from this host (default TELEGRAM_API_ROOT)' },
    { name: 'timeout', type: 'number', arg: '<s>', default: 10, describe: 'per-request timeout' },
    { name: 'list', type: 'boolean', describe: 'list the checks and exit' },
    sharedOption('quiet', 'here: only the checks that fail'),
  ],
  details: [
    'Checks:',
    ...CHECKS.map((c) => `  ${c.name.padEnd(11)} ${c.describe}`),
    '',
    'A warning never fails the run (e.g. backup older than 26 h, certificate expiring within 14 days).',
  ].join('\n'),
  exitCodes: ['Exit status:', '  0  no check failed (warnings allowed)', '  1  at least one check failed (named in the output)', '  2  usage or config error'].join('\n'),
};

runMain(spec, async ({ values: v }, log) => {
  if (v.list) {
    log.table(CHECKS.map((c) => ({ check: c.name, what: c.describe })), ['check', 'what']);
    return 0;
  }
  const only = list(v.only);
  const skip = list(v.skip);
  const unknown = [...(only ?? []), ...(skip ?? [])].filter((n) => !CHECK_NAMES.includes(n));
  if (unknown.length) throw new UsageError(`unknown check ${unknown.join(', ')}`, { hint: `checks: ${CHECK_NAMES.join(', ')}` });
  const env = loadOpsEnv(sharedValues(v).config);
  log.setOpsLog(env.layout.opsLog);
  const report = await runSmoke(env, {
    only,
    skip,
    log,
    ca: v.ca as string | undefined,
    connect: v.connect as string,
    expectVersion: v['expect-version'] as string | undefined,
    jobsMaxAgeMs: v['jobs-max-age'] !== undefined ? Number(v['jobs-max-age']) * 1000 : undefined,
    pendingMax: Number(v['pending-max']),
    minFreeBytes: Number(v['min-free-mb']) * 2 ** 20,
    telegramApiRoot: v['telegram-api-root'] as string | undefined,
    timeoutMs: Number(v.timeout) * 1000,
  });
  const code = smokeExitCode(report.results);
  if (v.json) {
    log.out(JSON.stringify({ ok: code === 0, failed: report.failed, ms: report.ms, domain: env.domain, results: report.results }, null, 2));
  } else {
    const rows = report.results.filter((r) => !v.quiet || r.status === 'fail').map((r) => ({ check: r.name, status: r.status.toUpperCase(), ms: r.ms, detail: r.detail }));
    if (rows.length) log.table(rows, ['check', 'status', { key: 'ms', align: 'right' }, 'detail']);
    const n = (s: string) => report.results.filter((r) => r.status === s).length;
    const summary = `${report.results.length} checks in ${(report.ms / 1000).toFixed(1)} s: ${n('pass')} pass, ${n('warn')} warn, ${n('fail')} fail, ${n('skip')} skip`;
    if (code === 0) log.ok(`smoke passed: ${summary}`);
    else log.error(`smoke FAILED (${report.results.filter((r) => r.status === 'fail').map((r) => r.name).join(', ')}): ${summary}`);
  }
  // human-readable failures also go to the ops log
  for (const r of report.results) if (r.status === 'fail') log.debug(`smoke fail ${r.name}: ${r.detail}`);
  return code;
});
