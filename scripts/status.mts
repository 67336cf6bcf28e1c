#!/usr/bin/env node
// The whole state of the deployment in one screen (read-only).
//   node scripts/status.mts --config .env.prod [--json]
import { Chalk } from 'chalk';
import { runMain } from './lib/cli/main.mts';
import { type CommandSpec } from './lib/cli/args.mts';
import { sharedOption, sharedValues } from './lib/cli/shared.mts';
import { loadOpsEnv } from './lib/config/env.mts';
import { formatAge, formatBytes, renderTable } from './lib/cli/log.mts';
import { drillLine, gatherStatus, offsiteLines, type StatusReport } from './lib/watch/status.mts';

export const spec: CommandSpec = {
  name: 'status.mts',
  summary: 'what runs, the last operations, backups (local and offsite, with ages), the last drill, timers, open alerts, disk and certificate, at a glance (read-only)',
  usage: ['node scripts/status.mts --config .env.prod', 'node scripts/status.mts --config .env.prod --json'],
  options: [
    sharedOption('config'),
    sharedOption('json'),
    { name: 'ca', type: 'string', arg: '<pem>', describe: 'trust this root for the site certificate (private CA), as smoke.mts --ca' },
    { name: 'connect', type: 'string', arg: '<addr>', default: '127.0.0.1', describe: "address to dial for DOMAIN (Caddy's published ports)" },
    { name: 'timeout', type: 'number', arg: '<s>', default: 5, describe: 'per-request timeout' },
  ],
  exitCodes: ['Exit status:', '  0  the app runs healthy and the watch has no open alert', '  1  the app is not running healthy, or an alert is open (shown)', '  2  usage or config error'].join('\n'),
};

function appHealthy(s: StatusReport): boolean {
  return !('error' in s.running) && s.running.status === 'running' && (s.running.health === null || s.running.health === 'healthy');
}

/** `--config <file>` as the operator gave it, for the next commands status suggests */
function render(s: StatusReport, tty: boolean, config: string): string {
  const c = new Chalk({ level: tty && !process.env.NO_COLOR ? 1 : 0 });
  const now = Date.parse(s.at);
  const age = (iso: string | null | undefined) => (iso ? formatAge(now - Date.parse(iso)) : '');
  const out: string[] = [];
  // the hints name the env file status was given (lib/watch/status.mts writes the default one)
  const cfg = (line: string) => line.replaceAll('--config .env.prod', `--config ${config}`);
  const h = (t: string) => out.push('', c.bold(t));
  out.push(c.bold(`lazyflow status for ${s.domain} at ${s.at.replace(/\.\d+Z$/, 'Z')}`));
  h('Running');
  if ('error' in s.running) out.push(`  ${c.red('unknown')}: ${s.running.error}`);
  else {
    const r = s.running;
    const state = appHealthy(s) ? c.green(`${r.status}${r.health ? `, ${r.health}` : ''}`) : c.red(`${r.status}${r.health ? `, ${r.health}` : ''}`);
    out.push(`  app ${r.appTag ?? '?'}  ${state}${r.since ? `  since ${r.since.replace(/\.\d+Z$/, 'Z')} (${age(r.since)})` : ''}`);
    out.push(`  image ${r.image ?? '-'}  release ${r.release ?? '(not in the journal)'}`);
  }
  out.push('error' in s.shape ? `  bot shape: ${c.red(s.shape.error)}` : `  bot shape ${s.shape.shape} (${s.shape.why}): ${s.shape.does}`);
  h('Last operations');
  if (s.operations.length) out.push(renderTable(s.operations.slice(0, 5), ['id', 'kind', 'result', 'appTag', 'age', 'duration', 'reason']).trimEnd().replace(/^/gm, '  '));
  else out.push('  none recorded (STATE_DIR/releases.jsonl)');
  if (s.restore.inProgress) out.push(c.yellow(`  restore of ${s.restore.backupId ?? '?'} unfinished (phase ${s.restore.phase}): node scripts/restore.mts --config ${config} --help`));
  h('Backups');
  if (s.backups.local.length) out.push(renderTable(s.backups.local.slice(0, 5).map((b) => ({ ...b, size: formatBytes(b.sizeBytes), verified: b.verified ? 'yes' : c.red('NO') })), ['id', 'age', 'size', 'verified']).trimEnd().replace(/^/gm, '  '));
  else out.push(c.yellow(`  no local backup: node scripts/backup.mts --config ${config}`));
  if (s.backups.local.length > 5) out.push(`  ... ${s.backups.local.length - 5} more`);
  const o = s.backups.offsite;
  const offsiteBad = (o.configured && (!o.newest || (o.lastCheck && !o.lastCheck.ok))) || /unreadable/.test(o.note);
  for (const line of offsiteLines(o).map(cfg)) out.push(offsiteBad ? c.yellow(`  ${line}`) : `  ${line}`);
  const d = s.drill;
  const drillBad = !d || 'error' in d || !d.ok;
  out.push(drillBad ? c.yellow(`  ${cfg(drillLine(d))}`) : `  ${cfg(drillLine(d))}`);
  h('Timers');
  if (s.timers.installed) {
    out.push(renderTable(s.timers.units.map((u) => ({ unit: u.unit, last: u.last ? `${age(u.last)} ago` : 'never', result: u.result.startsWith('FAILED') || u.result === 'not installed' ? c.red(u.result) : u.result, next: u.next })), ['unit', 'last', 'result', 'next']).trimEnd().replace(/^/gm, '  '));
    if (s.timers.note) out.push(c.yellow(`  next: ${s.timers.note}`));
  } else out.push(`  ${s.timers.note}`);
  const net = s.safetyNet;
  if ('error' in net) out.push(c.yellow(`  safety net: cannot read the schedules: ${net.error}`));
  else if (net.inPlace || net.state === 'off') out.push(`  safety net: ${net.detail}`);
  else out.push(c.yellow(`  safety net: NOT in place: ${net.detail}${net.next ? `; install it: ${net.next}` : ''}`));
  h('Alerts');
  if (s.alerts.length) for (const a of s.alerts) out.push(c.red(`  ${a.problem} since ${a.since.replace(/\.\d+Z$/, 'Z')} (${age(a.since)}): ${a.detail}`));
  else out.push(`  none open${s.watchLastRun ? ` (watch last ran ${age(s.watchLastRun)} ago)` : c.yellow(` (the watch has never run: node scripts/watch.mts --config ${config} --once)`)}`);
  h('Disk and certificate');
  out.push('error' in s.disk ? `  disk: ${s.disk.error}` : `  disk: ${formatBytes(s.disk.freeBytes)} free of ${formatBytes(s.disk.totalBytes)} at ${s.disk.path}`);
  out.push('error' in s.certificate ? `  certificate: ${c.red(s.certificate.error)}` : `  certificate: ${s.certificate.daysLeft} days left (until ${s.certificate.validTo.slice(0, 10)})${s.certificate.issuer ? `, ${s.certificate.issuer}` : ''}`);
  return out.join('\n') + '\n';
}

runMain(spec, async ({ values: v }, log) => {
  const env = loadOpsEnv(sharedValues(v).config);
  const s = await gatherStatus(env, { ca: v.ca as string | undefined, connect: v.connect as string, timeoutMs: Number(v.timeout) * 1000 });
  if (v.json) log.out(JSON.stringify(s, null, 2));
  else log.out(render(s, Boolean(process.stdout.isTTY), sharedValues(v).config));
  return appHealthy(s) && s.alerts.length === 0 ? 0 : 1;
});
