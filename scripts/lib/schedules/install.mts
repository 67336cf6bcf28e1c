// Install, remove and inspect the schedules: reads and writes the files plan.mts decided on, and
// runs the systemctl argv that commands/systemctl.mts builds. scripts/schedules.mts is the CLI.
import fs from 'node:fs';
import path from 'node:path';
import { $ } from 'zx';
import type { Logger } from '../cli/log.mts';
import type { OptionSpec } from '../cli/args.mts';
import { StepError } from '../cli/errors.mts';
import { daemonReloadArgs, disableNowArgs, enableNowArgs, parseShow, restartArgs, showArgs } from '../commands/systemctl.mts';
import { REPO_ROOT, type OpsEnv } from '../config/env.mts';
import { backendOf, offsiteEnabled } from '../offsite/config.mts';
import { jobs, type ScheduleContext } from './jobs.mts';
import { desiredFiles, ownedFiles, ownedReader, planInstall, scheduleStatus, type InstallPlan, type Mode, type SchedulePaths, type ScheduleStatus } from './plan.mts';

/** the schedules of this checkout and env file, run by the node running now */
export function scheduleContext(env: Pick<OpsEnv, 'project' | 'file' | 'projectDir' | 'values' | 'layout'>): ScheduleContext {
  return {
    project: env.project,
    nodeBin: process.execPath,
    scriptsDir: path.join(REPO_ROOT, 'scripts'),
    envFile: env.file,
    projectDir: env.projectDir,
    logDir: env.layout.logs,
    stateDir: env.layout.root,
    localRepository: localRepositoryOf(env),
    offsite: offsiteEnabled(env.values),
  };
}

/** OFFSITE_REPOSITORY when it is a path on this host (the units must be allowed to write it) */
function localRepositoryOf(env: Pick<OpsEnv, 'values' | 'projectDir'>): string | null {
  const repo = (env.values.OFFSITE_REPOSITORY ?? '').trim();
  if (!offsiteEnabled(env.values) || backendOf(repo) !== 'local') return null;
  return path.resolve(env.projectDir, repo.replace(/^local:/, ''));
}

export const DEFAULT_PATHS: SchedulePaths = { unitDir: '/etc/systemd/system', cronDir: '/etc/cron.d' };

/** --unit-dir and --cron-dir, as schedules.mts and setup.mts take them */
export const SCHEDULE_PATH_OPTIONS: OptionSpec[] = [
  // no default here: the env file's LAZYFLOW_UNIT_DIR / LAZYFLOW_CRON_DIR come next, as the rollout's safety net reads them
  { name: 'unit-dir', type: 'string', arg: '<dir>', describe: `where the systemd units go (default: LAZYFLOW_UNIT_DIR of the env file, else ${DEFAULT_PATHS.unitDir})` },
  { name: 'cron-dir', type: 'string', arg: '<dir>', describe: `where the cron file goes (default: LAZYFLOW_CRON_DIR of the env file, else ${DEFAULT_PATHS.cronDir})` },
];

/** systemd is PID 1 here (sd_booted): /run/systemd/system exists */
export const systemdRunning = () => fs.existsSync('/run/systemd/system');

/** the system unit directories systemd loads from: only units there are enabled with systemctl */
export const SYSTEMD_DIRS = ['/etc/systemd/system', '/run/systemd/system', '/usr/local/lib/systemd/system', '/usr/lib/systemd/system', '/lib/systemd/system'];
/** systemctl runs only when systemd runs and reads the unit directory (a --unit-dir elsewhere only gets files) */
export const systemdManages = (unitDir: string) => systemdRunning() && SYSTEMD_DIRS.includes(path.resolve(unitDir));

export function readOrNull(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw e;
  }
}

const mtimeOrNull = (file: string) => {
  try {
    return fs.statSync(file).mtime.toISOString();
  } catch {
    return null;
  }
};

/** permission errors say what and the next command; anything else is unexpected */
function fsStep<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      throw new StepError(`cannot ${what}: ${code}`, { step: 'schedules', hint: 'run it as root: sudo node scripts/schedules.mts --config <env file> ...', cause: e });
    }
    throw e;
  }
}

/** atomic: a half-written unit or cron file is never read by systemd or cron */
function writeFileAtomic(file: string, text: string) {
  fsStep(`write ${file}`, () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
    fs.writeFileSync(tmp, text, { mode: 0o644 });
    fs.chmodSync(tmp, 0o644);
    fs.renameSync(tmp, file);
  });
}

const removeFile = (file: string) => fsStep(`remove ${file}`, () => fs.rmSync(file, { force: true }));

async function systemctl(args: string[], o: { nothrow?: boolean } = {}) {
  const r = await $({ quiet: true, nothrow: true })`systemctl ${args}`;
  if (r.exitCode !== 0 && !o.nothrow) {
    throw new StepError(`systemctl ${args.join(' ')} failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n')[0] ?? ''}`, {
      step: 'schedules',
      hint: `see: journalctl -xe; then run the same --install again`,
    });
  }
  return r;
}

export function resolveMode(requested: string): Mode {
  if (requested === 'systemd' || requested === 'cron') return requested;
  return systemdRunning() ? 'systemd' : 'cron';
}

export function planFor(c: ScheduleContext, mode: Mode, p: SchedulePaths): InstallPlan {
  return planInstall(mode, desiredFiles(c, mode, p), ownedFiles(c.project, p), ownedReader(c.project, p, readOrNull));
}

export interface InstallResult {
  plan: InstallPlan;
  /** systemctl ran (systemd mode with systemd running) */
  activated: boolean;
  /** the command to run where systemd runs (systemd mode without systemd) */
  pending: string | null;
}

export async function install(c: ScheduleContext, mode: Mode, p: SchedulePaths, log: Logger): Promise<InstallResult> {
  const plan = planFor(c, mode, p);
  const live = mode === 'systemd' && systemdManages(p.unitDir);
  if (plan.disable.length && systemdManages(p.unitDir)) await systemctl(disableNowArgs(plan.disable), { nothrow: true });
  for (const f of plan.remove) removeFile(f);
  for (const w of plan.write) writeFileAtomic(w.path, w.text);
  if (mode === 'cron') fsStep(`create ${c.logDir}`, () => fs.mkdirSync(c.logDir, { recursive: true }));
  let pending: string | null = null;
  if (live) {
    if (plan.write.length || plan.remove.length) await systemctl(daemonReloadArgs());
    await systemctl(enableNowArgs(plan.enable));
    if (plan.restart.length) await systemctl(restartArgs(plan.restart));
  } else if (mode === 'systemd') {
    pending = `systemctl daemon-reload && systemctl enable --now ${plan.enable.join(' ')}`;
  }
  for (const f of plan.remove) log.ok(`removed ${f}`);
  for (const w of plan.write) log.ok(`wrote ${w.path}`);
  for (const f of plan.unchanged) log.info(`unchanged: ${f}`);
  return { plan, activated: live, pending };
}

export interface RemoveResult {
  removed: string[];
  disabled: string[];
}

export async function remove(c: ScheduleContext, p: SchedulePaths, log: Logger): Promise<RemoveResult> {
  const read = ownedReader(c.project, p, readOrNull);
  const present = ownedFiles(c.project, p).filter((f) => read(f) !== null);
  const timers = present.filter((f) => f.endsWith('.timer')).map((f) => path.basename(f));
  const live = systemdManages(p.unitDir);
  if (timers.length && live) await systemctl(disableNowArgs(timers), { nothrow: true });
  for (const f of present) removeFile(f);
  if (timers.length && live) await systemctl(daemonReloadArgs(), { nothrow: true });
  for (const f of present) log.ok(`removed ${f}`);
  return { removed: present, disabled: live ? timers : [] };
}

export async function status(c: ScheduleContext, p: SchedulePaths, command: string): Promise<ScheduleStatus> {
  const running = systemdManages(p.unitDir);
  let show: ReturnType<typeof parseShow> = [];
  if (running) {
    const units = jobs(c).flatMap((j) => [`${j.name}.timer`, `${j.name}.service`]);
    const r = await systemctl(showArgs(units), { nothrow: true });
    if (r.exitCode === 0) show = parseShow(r.stdout);
  }
  return scheduleStatus({ context: c, paths: p, systemdRunning: running, existing: ownedReader(c.project, p, readOrNull), mtime: mtimeOrNull, show, command });
}
