#!/usr/bin/env node
// Finish or undo what an interrupted operation (rollout, rollback, restore) left: observe -> decide
// -> act under the operation lock. Run at boot and every minute by the installed timer; every
// operation also runs it first. --install / --status / --remove manage that timer.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { $ } from 'zx';
import { runMain } from './lib/cli/main.mts';
import { ENV_FILE_OPTION, type CommandSpec } from './lib/cli/args.mts';
import { loadOpsEnv } from './lib/config/env.mts';
import { UsageError } from './lib/cli/errors.mts';
import { acquireLock, describeHolder, LockBusyError } from './lib/host/lock.mts';
import { runRecovery } from './lib/recovery/run.mts';
import { recoverAndNotify } from './lib/release/recovery.mts';
import { describeAction } from './lib/recovery/decide.mts';
import { cronFile, systemdUnits, unitName, type InstallContext } from './lib/recovery/install.mts';

export const spec: CommandSpec = {
  name: 'recover.mts',
  summary: 'finish or undo an interrupted rollout, rollback or restore (run at boot and every minute by the timer)',
  usage: [
    'node scripts/recover.mts --config .env.prod',
    'node scripts/recover.mts --config .env.prod --dry-run      # what it would do',
    'node scripts/recover.mts --config .env.prod --install      # boot + every-minute timer (systemd, else cron)',
    'node scripts/recover.mts --config .env.prod --status',
    'node scripts/recover.mts --config .env.prod --remove',
  ],
  options: [
    ENV_FILE_OPTION,
    { name: 'dry-run', type: 'boolean', alias: 'n', describe: 'print the actions (or, with --install, the unit files) and change nothing' },
    { name: 'install', type: 'boolean', describe: 'install the recovery timer (idempotent)' },
    { name: 'status', type: 'boolean', describe: 'show whether the timer is installed and active, and its last runs' },
    { name: 'remove', type: 'boolean', describe: 'remove the recovery timer' },
    { name: 'unit-dir', type: 'string', arg: '<dir>', default: '/etc/systemd/system', describe: 'where --install writes the systemd units' },
    { name: 'cron-dir', type: 'string', arg: '<dir>', default: '/etc/cron.d', describe: 'where --install writes the cron file when systemd is not running' },
    { name: 'health-timeout', type: 'number', arg: '<s>', default: 90, describe: 'how long a restarted app may take to become healthy' },
    { name: 'json', type: 'boolean', describe: 'print the actions and the result as JSON' },
    { name: 'quiet', type: 'boolean', alias: 'q', describe: 'errors only' },
  ],
  details: [
    'Recovery is a pure decision from STATE_DIR/releases.jsonl, STATE_DIR/restore-journal.json and what Docker',
    'and the database show; running it twice is running it once. If another operation holds the lock, it does',
    'nothing and exits 0 ("operation in progress"): that operation recovers first itself.',
  ].join('\n'),
  exitCodes: [
    'Exit status:',
    '  0  nothing to do, recovered, an operation is in progress, or the timer command succeeded',
    '  1  recovery failed or stopped to ask (the exact next command is printed)',
    '  2  usage or config error',
  ].join('\n'),
};

const systemdRunning = () => fs.existsSync('/run/systemd/system');

function writeIfChanged(file: string, text: string, mode = 0o644): boolean {
  try {
    if (fs.readFileSync(file, 'utf8') === text) return false;
  } catch {
    /* absent */
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text, { mode });
  fs.renameSync(tmp, file);
  return true;
}

runMain(spec, async ({ values: v }, log) => {
  const modes = ['install', 'status', 'remove'].filter((m) => v[m]);
  if (modes.length > 1) throw new UsageError(`--${modes.join(' and --')} exclude each other`);
  const envFile = path.resolve(String(v['config']));
  const env = loadOpsEnv(envFile);
  log.setOpsLog(env.layout.opsLog);
  const ctx: InstallContext = {
    project: env.project, nodeBin: process.execPath, recoverScript: fileURLToPath(import.meta.url), envFile,
    projectDir: env.projectDir, logFile: path.join(env.layout.logs, 'recover.log'),
  };
  const name = unitName(env.project);
  const unitDir = String(v['unit-dir']);
  const cronPath = path.join(String(v['cron-dir']), name);
  const units = systemdUnits(ctx);
  const files = { service: path.join(unitDir, `${name}.service`), timer: path.join(unitDir, `${name}.timer`) };

  if (v.install) {
    const useSystemd = systemdRunning() || unitDir !== '/etc/systemd/system';
    if (v['dry-run']) {
      if (useSystemd) log.out(`# ${files.service}\n${units.service}\n# ${files.timer}\n${units.timer}`);
      log.out(`# ${cronPath} (used only when systemd is not running)\n${cronFile(ctx)}`);
      return 0;
    }
    if (useSystemd) {
      const changed = [writeIfChanged(files.service, units.service), writeIfChanged(files.timer, units.timer)].some(Boolean);
      log.ok(`${changed ? 'wrote' : 'unchanged:'} ${files.service}, ${files.timer}`);
      if (systemdRunning()) {
        await $({ quiet: true })`systemctl daemon-reload`;
        await $({ quiet: true })`systemctl enable --now ${`${name}.timer`}`;
        log.ok(`enabled ${name}.timer (at boot and every minute); inspect: systemctl list-timers ${name}.timer`);
      } else log.warn(`systemd is not running here: run "systemctl daemon-reload && systemctl enable --now ${name}.timer" where it is`);
    } else {
      const changed = writeIfChanged(cronPath, cronFile(ctx));
      log.ok(`${changed ? 'wrote' : 'unchanged:'} ${cronPath} (systemd is not running: cron runs recovery at boot and every minute; its output goes to ${ctx.logFile})`);
    }
    return 0;
  }
  if (v.remove) {
    if (systemdRunning() && fs.existsSync(files.timer)) await $({ quiet: true, nothrow: true })`systemctl disable --now ${`${name}.timer`}`;
    const gone = [files.service, files.timer, cronPath].filter((f) => fs.existsSync(f));
    for (const f of gone) fs.rmSync(f, { force: true });
    if (systemdRunning()) await $({ quiet: true, nothrow: true })`systemctl daemon-reload`;
    log.ok(gone.length ? `removed ${gone.join(', ')}` : 'the recovery timer was not installed');
    return 0;
  }
  if (v.status) {
    const st = {
      systemdRunning: systemdRunning(),
      service: fs.existsSync(files.service) ? files.service : null,
      timer: fs.existsSync(files.timer) ? files.timer : null,
      cron: fs.existsSync(cronPath) ? cronPath : null,
      upToDate: (fs.existsSync(files.timer) && fs.readFileSync(files.service, 'utf8') === units.service) || (fs.existsSync(cronPath) && fs.readFileSync(cronPath, 'utf8') === cronFile(ctx)),
      active: '',
    };
    if (st.systemdRunning && st.timer) st.active = (await $({ quiet: true, nothrow: true })`systemctl is-active ${`${name}.timer`}`).stdout.trim();
    if (v.json) log.out(JSON.stringify(st, null, 2));
    else {
      log.out(`recovery timer of ${env.project}: ${st.timer ? `systemd ${st.timer}${st.active ? ` (${st.active})` : ''}` : st.cron ? `cron ${st.cron}` : 'NOT installed (node scripts/recover.mts --install)'}${st.upToDate ? '' : st.timer || st.cron ? ' (differs from this checkout: run --install again)' : ''}`);
      if (st.systemdRunning && st.timer) log.out((await $({ quiet: true, nothrow: true })`systemctl list-timers --all ${`${name}.timer`}`).stdout.trim());
      log.out(`last runs: ${st.timer ? `journalctl -u ${name}.service -n 50` : `tail -n 50 ${ctx.logFile}`}`);
    }
    return st.timer || st.cron ? 0 : 1;
  }

  if (v['dry-run']) {
    const r = await runRecovery(env, log, { dryRun: true });
    if (v.json) log.out(JSON.stringify({ dryRun: true, actions: r.actions }, null, 2));
    else log.out(r.actions.length ? r.actions.map((a, i) => `${i + 1}. ${describeAction(a)}`).join('\n') : 'nothing to recover');
    return 0;
  }
  let lock;
  try {
    lock = await acquireLock(env.layout, { operation: 'recover', log });
  } catch (e) {
    if (e instanceof LockBusyError) {
      const msg = `operation in progress: ${describeHolder(e.holder)}; it recovers on its own, nothing to do`;
      if (v.json) log.out(JSON.stringify({ inProgress: true, holder: e.holder }));
      else log.info(msg);
      return 0;
    }
    throw e;
  }
  try {
    // notified (recovery) only when it acted or failed: the every-minute run with nothing to do is silent
    const r = await recoverAndNotify(env, log, { healthTimeoutS: Number(v['health-timeout']) });
    if (v.json) log.out(JSON.stringify(r, null, 2));
    else if (!r.actions.length) log.info('nothing to recover');
    else if (r.exitCode === 0) log.ok(`recovered (${r.actions.length} action(s))`);
    if (r.next && !v.json) log.error(`next: ${r.next}`);
    return r.exitCode;
  } finally {
    lock.release();
  }
});
