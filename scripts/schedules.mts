#!/usr/bin/env node
// The schedules, installed by one command: daily backup with retention, offsite retention and the
// weekly offsite check (when OFFSITE_REPOSITORY is set), the weekly drill, the watch every minute and
// recovery at boot and every minute, as systemd timers (or, without systemd, one cron file).
import fs from 'node:fs';
import path from 'node:path';
import { runMain } from './lib/cli/main.mts';
import { type CommandSpec } from './lib/cli/args.mts';
import { sharedOption, sharedValues } from './lib/cli/shared.mts';
import { UsageError } from './lib/cli/errors.mts';
import { formatAge, renderTable } from './lib/cli/log.mts';
import { loadOpsEnv } from './lib/config/env.mts';
import { jobs } from './lib/schedules/jobs.mts';
import { desiredFiles, ownedFiles, ownedReader, statusOk, type ScheduleStatus, type SchedulePaths } from './lib/schedules/plan.mts';
import { DEFAULT_PATHS, SCHEDULE_PATH_OPTIONS, install, planFor, readOrNull, remove, resolveMode, scheduleContext, status, systemdRunning } from './lib/schedules/install.mts';
import { schedulePaths } from './lib/schedules/net.mts';

export const spec: CommandSpec = {
  name: 'schedules.mts',
  summary: 'install, inspect or remove the schedules: backup, offsite retention and check, drill, watch, recovery (systemd timers, else cron)',
  usage: [
    'node scripts/schedules.mts --config .env.prod --install --dry-run   # print the unit files; change nothing',
    'node scripts/schedules.mts --config .env.prod --install',
    'node scripts/schedules.mts --config .env.prod --status [--json]',
    'node scripts/schedules.mts --config .env.prod --remove',
  ],
  options: [
    sharedOption('config'),
    { name: 'install', type: 'boolean', describe: 'write the units (or the cron file) and enable the timers; idempotent: a file is written only when its content differs' },
    { name: 'status', type: 'boolean', describe: 'each timer, its last run and its result, and its next run (cron: the file and where the output goes)' },
    { name: 'remove', type: 'boolean', describe: "disable and delete this project's timers and its cron file" },
    sharedOption('dryRun', 'with --install/--remove: the unit files (or cron file) and what would change'),
    sharedOption('json', 'with --status (or --dry-run)'),
    { name: 'mode', type: 'string', arg: '<mode>', default: 'auto', choices: ['auto', 'systemd', 'cron'], describe: 'auto: systemd timers when systemd runs (/run/systemd/system), else a cron file' },
    ...SCHEDULE_PATH_OPTIONS,
    sharedOption('quiet'),
  ],
  details: [
    'Schedules (UTC; per compose project: units lazyflow-<job>-<project>, cron file lazyflow-schedules-<project>):',
    '  backup          daily 03:17, then retention: --keep-daily 7 --keep-weekly 4 --keep-monthly 6 --keep-images 5',
    '  offsite-forget  daily 03:40, offsite retention with the same keep flags (only with OFFSITE_REPOSITORY)',
    '  offsite-check   Sundays 05:10, restic check re-reading 5% of the data (only with OFFSITE_REPOSITORY)',
    '  drill           Sundays 04:30, the newest backup boots in a throwaway container',
    '  watch           every minute (alerts on changes of state, heartbeat)',
    '  recover         at boot and every minute (finishes or undoes an interrupted operation)',
    'Daily and weekly timers are Persistent (a run missed while the machine was off runs at boot). Units run',
    'the commands exactly as RUNBOOK writes them, with this node, this checkout and --config <env file>; no value',
    'of the env file is written into a unit. Re-run --install after moving the checkout or the env file, or',
    'after setting OFFSITE_REPOSITORY (--status says when the installed files differ).',
  ].join('\n'),
  exitCodes: [
    'Exit status:',
    '  0  installed / removed / printed; --status: installed, current, and no last run failed',
    '  1  --status: not installed, differs from this checkout, a timer is not active, or a last run failed',
    '     (the next command is printed); a systemctl call failed',
    '  2  usage or config error',
  ].join('\n'),
};

/** files a hand-written setup from older RUNBOOK versions left: they would run the same jobs twice */
function handWritten(p: SchedulePaths): string[] {
  return [path.join(p.cronDir, 'lazyflow'), ...['lazyflow-backup', 'lazyflow-drill'].flatMap((n) => [`${n}.service`, `${n}.timer`].map((f) => path.join(p.unitDir, f)))].filter((f) => fs.existsSync(f));
}

function renderStatus(s: ScheduleStatus, now: number): string {
  const at = (iso: string | null | undefined, ago = true) => (iso ? `${iso.replace(/\.\d+Z$/, 'Z')}${ago ? ` (${formatAge(Math.abs(now - Date.parse(iso)))}${Date.parse(iso) > now ? ' from now' : ' ago'})` : ''}` : '');
  const out: string[] = [];
  const where = s.mode === 'systemd' ? `systemd timers${s.systemdRunning ? '' : ' (unit files only: systemd does not run them here)'}` : s.mode === 'cron' ? `cron file ${s.files[0]?.path}` : 'NOT installed';
  out.push(`schedules of ${s.project}: ${where}${s.mode !== 'none' && !s.upToDate ? ' (differ from this checkout)' : ''}`);
  if (s.mode === 'systemd') {
    out.push(
      renderTable(
        s.jobs.map((j) => ({
          timer: `${j.name}.timer`,
          when: j.when,
          state: !j.installed ? 'MISSING' : j.timer ? `${j.timer.activeState}${j.timer.unitFileState ? `/${j.timer.unitFileState}` : ''}` : 'installed',
          last: j.lastRun ? `${at(j.lastRun.finishedAt) || 'now'}: ${j.lastRun.running ? 'running' : j.lastRun.ok ? 'success' : `FAILED (${j.lastRun.result}${j.lastRun.exitStatus !== null ? `, exit ${j.lastRun.exitStatus}` : ''})`}` : j.timer ? 'never' : '',
          next: j.timer ? at(j.timer.nextElapse) : '',
        })),
        ['timer', 'when', 'state', 'last', 'next'],
      ).trimEnd(),
    );
    for (const j of s.jobs) if (j.lastRun && !j.lastRun.ok && !j.lastRun.running) out.push(`  ${j.id} failed: ${j.failureMeans}; its output: journalctl -u ${j.name}.service -n 50`);
  } else if (s.mode === 'cron') {
    out.push(renderTable(s.jobs.map((j) => ({ job: j.id, when: j.when, installed: j.installed ? 'yes' : 'MISSING', log: j.log?.file, 'last output': at(j.log?.modifiedAt) || 'none yet' })), ['job', 'when', 'installed', 'log', 'last output']).trimEnd());
  }
  for (const f of s.files.filter((x) => !x.upToDate)) out.push(`  differs or missing: ${f.path}`);
  if (s.mode !== 'none') out.push(`logs: ${s.logs}`);
  if (s.next) out.push(`next: ${s.next}`);
  return out.join('\n');
}

runMain(spec, async ({ values: v }, log) => {
  const modes = ['install', 'status', 'remove'].filter((m) => v[m]);
  if (modes.length !== 1) throw new UsageError(modes.length ? `--${modes.join(' and --')} exclude each other` : 'say what to do: --install, --status or --remove (--help for more)');
  const envFile = path.resolve(sharedValues(v).config);
  const env = loadOpsEnv(envFile);
  const ctx = scheduleContext(env);
  // the env file's LAZYFLOW_UNIT_DIR / LAZYFLOW_CRON_DIR, as the rollout's safety net uses them (schedules/net.mts)
  const envPaths = schedulePaths(env.values);
  const paths: SchedulePaths = { unitDir: v['unit-dir'] ? path.resolve(String(v['unit-dir'])) : envPaths.unitDir, cronDir: v['cron-dir'] ? path.resolve(String(v['cron-dir'])) : envPaths.cronDir };
  const mode = resolveMode(String(v.mode));
  const command = `node ${path.relative(process.cwd(), path.join(ctx.scriptsDir, 'schedules.mts')) || 'scripts/schedules.mts'} --config ${sharedValues(v).config}${v.mode !== 'auto' ? ` --mode ${v.mode}` : ''}${paths.unitDir !== envPaths.unitDir ? ` --unit-dir ${paths.unitDir}` : ''}${paths.cronDir !== envPaths.cronDir ? ` --cron-dir ${paths.cronDir}` : ''}`;

  if (v.status) {
    const s = await status(ctx, paths, command);
    if (v.json) log.out(JSON.stringify(s, null, 2));
    else log.out(renderStatus(s, Date.now()));
    return statusOk(s) ? 0 : 1;
  }

  if (v.remove) {
    if (v['dry-run']) {
      const read = ownedReader(ctx.project, paths, readOrNull);
      const present = ownedFiles(ctx.project, paths).filter((f) => read(f) !== null);
      if (v.json) log.out(JSON.stringify({ dryRun: true, remove: present }, null, 2));
      else log.out(present.length ? present.map((f) => `would remove ${f}`).join('\n') : `nothing installed for ${env.project}`);
      return 0;
    }
    const r = await remove(ctx, paths, log);
    if (!r.removed.length) log.info(`nothing installed for ${env.project} (${paths.unitDir}, ${paths.cronDir})`);
    return 0;
  }

  // --install
  const plan = planFor(ctx, mode, paths);
  if (v['dry-run']) {
    if (v.json) log.out(JSON.stringify({ dryRun: true, mode, files: desiredFiles(ctx, mode, paths), write: plan.write.map((w) => w.path), unchanged: plan.unchanged, remove: plan.remove, enable: plan.enable }, null, 2));
    else {
      const files = desiredFiles(ctx, mode, paths);
      log.out(files.map((f) => `# ${f.path}${plan.unchanged.includes(f.path) ? ' (unchanged)' : ''}\n${f.text}`).join('\n'));
      for (const f of plan.remove) log.out(`# would remove ${f}`);
      log.out(mode === 'systemd' ? `# then: systemctl daemon-reload && systemctl enable --now ${plan.enable.join(' ')}` : `# (systemd is not running${v.mode === 'cron' ? ', or --mode cron' : ''}: a cron file)`);
    }
    return 0;
  }
  const r = await install(ctx, mode, paths, log);
  const names = jobs(ctx).map((j) => `${j.id} (${j.when})`).join(', ');
  if (r.activated) log.ok(`timers enabled: ${names}; see: node scripts/schedules.mts --config ${sharedValues(v).config} --status`);
  else if (r.pending) log.warn(`${systemdRunning() ? `systemd does not load units from ${paths.unitDir}` : 'systemd is not running here'}: the units are written; where it runs: ${r.pending}`);
  else log.ok(`cron runs: ${names}; output: ${path.join(ctx.logDir, '<job>.log')}${systemdRunning() ? '' : ' (systemd is not running: cron file)'}`);
  if (!r.plan.write.length && !r.plan.remove.length) log.ok('already installed, nothing changed');
  for (const f of handWritten(paths)) log.warn(`${f} is hand-written from an older RUNBOOK and runs the same jobs again: delete it (rm ${f}${f.endsWith('.timer') ? `; systemctl disable --now ${path.basename(f)}` : ''})`);
  return 0;
});
