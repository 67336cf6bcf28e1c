// The safety net: recovery (scripts/recover.mts) at boot and every minute, from the first rollout on.
// An operation killed in its critical section (kill -9, OOM, power loss, a reboot) is finished or
// undone only by a recovery run; without one the site stays down until someone runs it by hand.
// So the rollout installs the recovery schedule itself, before its swap, through the same units or
// cron lines as schedules.mts (jobs.mts), next to whatever schedules are installed; rollback and
// restore say when it is missing and what that costs; preflight, smoke and status show it.
// Why the host's timer and not a container Docker keeps alive: RUNBOOK "The safety net".
//
// judgeNet is pure (table-tested in test/unit/safety-net.test.ts); the rest reads and writes.
import fs from 'node:fs';
import path from 'node:path';
import type { OpsEnv } from '../config/env.mts';
import type { Logger } from '../cli/log.mts';
import { errorMessage } from '../cli/errors.mts';
import { cronFile, cronFileName, jobs, serviceUnit, timerUnit, type JobId, type ScheduleContext } from './jobs.mts';
import { ownedReader, type Mode, type SchedulePaths } from './plan.mts';
import { DEFAULT_PATHS, install, readOrNull, resolveMode, scheduleContext, status, SYSTEMD_DIRS, systemdRunning } from './install.mts';

/** env file key: `off` for an operator who runs recovery with a supervisor of their own */
export const NET_KEY = 'LAZYFLOW_SAFETY_NET';
export const NET_SETTINGS = ['auto', 'off'] as const;
export type NetSetting = (typeof NET_SETTINGS)[number];
/** env file keys for where the schedules go (default /etc/systemd/system and /etc/cron.d; the e2e tests use a temp dir) */
export const UNIT_DIR_KEY = 'LAZYFLOW_UNIT_DIR';
export const CRON_DIR_KEY = 'LAZYFLOW_CRON_DIR';
/** the directory cron reads (a cron file elsewhere is run by whatever the operator points at it) */
export const CRON_DIR = '/etc/cron.d';

/** what a missing net costs, in one sentence (every warning says it) */
export const NET_COST =
  'an operation interrupted in its critical section (kill -9, OOM, power loss, a reboot mid-swap, mid-revert or mid-restore) leaves the site down or half-done until someone runs node scripts/recover.mts by hand';

export type NetEnv = Pick<OpsEnv, 'project' | 'file' | 'projectDir' | 'values' | 'layout'>;

export function netSetting(values: Record<string, string>): NetSetting {
  const v = (values[NET_KEY] ?? '').trim();
  return v === 'off' ? 'off' : 'auto';
}

/** a value of LAZYFLOW_SAFETY_NET that is neither empty, auto nor off (preflight names it) */
export function badNetSetting(values: Record<string, string>): string | null {
  const v = (values[NET_KEY] ?? '').trim();
  return v && !(NET_SETTINGS as readonly string[]).includes(v) ? v : null;
}

/** where this env file's schedules live: LAZYFLOW_UNIT_DIR / LAZYFLOW_CRON_DIR, else /etc */
export function schedulePaths(values: Record<string, string>): SchedulePaths {
  return {
    unitDir: values[UNIT_DIR_KEY]?.trim() ? path.resolve(values[UNIT_DIR_KEY].trim()) : DEFAULT_PATHS.unitDir,
    cronDir: values[CRON_DIR_KEY]?.trim() ? path.resolve(values[CRON_DIR_KEY].trim()) : DEFAULT_PATHS.cronDir,
  };
}

export interface NetObservation {
  setting: NetSetting;
  /** where recovery is installed: systemd units, lines of the cron file, or nowhere */
  mode: Mode | 'none';
  /** its files, as installed */
  files: string[];
  /** they equal what this checkout, env file and node would write */
  current: boolean;
  /** the directory is one that systemd (or cron) reads; elsewhere the operator runs them */
  live: boolean;
  systemdRunning: boolean;
  /** systemd: the recovery timer's ActiveState (null: not known) */
  timerState: string | null;
  /** cron, in /etc/cron.d: a cron daemon runs (null: not looked) */
  cronRunning: boolean | null;
  /** the recovery timer's unit name, or the cron file */
  name: string;
}

export interface NetVerdict {
  /** recovery will run at boot and every minute */
  inPlace: boolean;
  state: 'in-place' | 'missing' | 'stale' | 'inactive' | 'off';
  /** one line: what is there (and, when not in place, what it costs) */
  detail: string;
  /** the command that puts it in place, when one does */
  next: string | null;
}

/** pure: the smoke check's verdict: never a failure (the site works; what is at stake is the next interruption) */
export function evalNet(v: NetVerdict): { status: 'pass' | 'warn' | 'skip'; detail: string } {
  if (v.state === 'off') return { status: 'skip', detail: v.detail };
  if (v.inPlace) return { status: 'pass', detail: v.detail };
  return { status: 'warn', detail: `${v.detail}${v.next ? `; install it: ${v.next}` : ''}` };
}

/** the command that installs the net (with the other schedules) for this env file */
export const installCommand = (envFile: string) => `node scripts/schedules.mts --config ${envFile} --install`;

/** pure: is the net in place, and if not, what it costs and the command that fixes it */
export function judgeNet(o: NetObservation, envFile: string): NetVerdict {
  const install = installCommand(envFile);
  if (o.setting === 'off') {
    return { inPlace: false, state: 'off', detail: `${NET_KEY}=off: the toolkit neither installs nor checks recovery; what you run instead must run node scripts/recover.mts --config ${envFile} at boot and every minute`, next: null };
  }
  const missing = (what: string, next: string | null = install): NetVerdict => ({ inPlace: false, state: 'missing', detail: `${what}: ${NET_COST}`, next });
  if (o.mode === 'none') return missing('recovery is not installed (no timer, no cron line)');
  if (!o.current) return { inPlace: false, state: 'stale', detail: `the installed recovery (${o.name}) differs from this checkout, env file or node and may run a script that is not there: ${NET_COST}`, next: install };
  if (o.mode === 'systemd' && o.live && !o.systemdRunning) return missing(`the recovery units are written (${o.files[0] ?? o.name}) but systemd does not run here`);
  if (o.mode === 'systemd' && o.live && o.timerState !== null && o.timerState !== 'active') {
    return { inPlace: false, state: 'inactive', detail: `the recovery timer ${o.name} is ${o.timerState || 'not loaded'}: ${NET_COST}`, next: `systemctl daemon-reload && systemctl enable --now ${o.name}` };
  }
  if (o.mode === 'cron' && o.live && o.cronRunning === false) return missing(`the cron file ${o.name} has the recovery lines but no cron daemon runs`, 'apt-get install -y cron && systemctl enable --now cron   # or start crond');
  const where = o.mode === 'systemd' ? `systemd timer ${o.name}${o.live ? ' (active)' : ` (in ${path.dirname(o.files[0] ?? '')}, which systemd does not read: your own supervisor runs it)`}` : `cron file ${o.name}${o.live ? '' : ' (not in /etc/cron.d: your own supervisor runs it)'}`;
  return { inPlace: true, state: 'in-place', detail: `recovery at boot and every minute: ${where}`, next: null };
}

// ---- observing ------------------------------------------------------------------------------------

/** the lines of one job in a cron file written by cronFile(): its comment line up to the next comment */
export function cronJobBlock(text: string | null, id: JobId): string | null {
  if (text === null) return null;
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`# ${id}: `));
  if (start < 0) return null;
  const end = lines.findIndex((l, i) => i > start && (l.startsWith('#') || l === ''));
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}

/** a cron daemon runs on this host (Debian's cron, cronie's crond, busybox crond) */
function cronRunning(): boolean {
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if (comm === 'cron' || comm === 'crond') return true;
    } catch {
      /* gone meanwhile */
    }
  }
  return false;
}

const recoverJob = (c: ScheduleContext) => jobs({ ...c, only: ['recover'] })[0];

export async function observeNet(env: NetEnv): Promise<{ observation: NetObservation; installed: JobId[]; context: ScheduleContext; paths: SchedulePaths }> {
  const context = scheduleContext(env);
  const paths = schedulePaths(env.values);
  const s = await status(context, paths, `node scripts/schedules.mts --config ${env.file}`);
  const job = recoverJob(context);
  const rec = s.jobs.find((j) => j.id === 'recover');
  const installed = s.jobs.filter((j) => j.installed).map((j) => j.id);
  const read = ownedReader(context.project, paths, readOrNull);
  const base = { setting: netSetting(env.values), systemdRunning: systemdRunning(), timerState: null, cronRunning: null };
  let observation: NetObservation;
  if (!rec?.installed || s.mode === 'none') {
    observation = { ...base, mode: 'none', files: [], current: false, live: false, name: `${job.name}.timer` };
  } else if (s.mode === 'systemd') {
    const files = [`${job.name}.service`, `${job.name}.timer`].map((f) => path.join(paths.unitDir, f));
    const current = read(files[0]) === serviceUnit(context, job).text && read(files[1]) === timerUnit(context, job).text;
    const live = SYSTEMD_DIRS.includes(path.resolve(paths.unitDir));
    observation = { ...base, mode: 'systemd', files, current, live, timerState: rec.timer ? rec.timer.activeState : live && base.systemdRunning ? '' : null, name: `${job.name}.timer` };
  } else {
    const file = path.join(paths.cronDir, cronFileName(context.project));
    const current = cronJobBlock(read(file), 'recover') === cronJobBlock(cronFile(context), 'recover');
    const live = path.resolve(paths.cronDir) === CRON_DIR;
    observation = { ...base, mode: 'cron', files: [file], current, live, cronRunning: live ? cronRunning() : null, name: file };
  }
  return { observation, installed, context, paths };
}

/** the net as preflight, smoke and status show it */
export async function netVerdict(env: NetEnv): Promise<NetVerdict> {
  return judgeNet((await observeNet(env)).observation, env.file);
}

// ---- acting ---------------------------------------------------------------------------------------

/**
 * The rollout's step, before anything live changes: install recovery when it is not in place (next to
 * the schedules already installed, in their mode; else systemd timers where systemd runs, else the
 * cron file), then say what is in place. Never fails the rollout: what it could not do is a warning
 * that names the cost and the command.
 */
export async function ensureNet(env: NetEnv, log: Logger): Promise<NetVerdict> {
  let seen: Awaited<ReturnType<typeof observeNet>>;
  try {
    seen = await observeNet(env);
  } catch (e) {
    log.warn(`safety net: cannot read the schedules: ${errorMessage(e)}; ${NET_COST}; install it: ${installCommand(env.file)}`);
    return { inPlace: false, state: 'missing', detail: errorMessage(e), next: installCommand(env.file) };
  }
  const before = judgeNet(seen.observation, env.file);
  if (before.inPlace || before.state === 'off') {
    log.info(`safety net: ${before.detail}`);
    return before;
  }
  // the mode of what is installed; units that no systemd runs give way to what this host runs (cron)
  const o = seen.observation;
  const mode: Mode = o.mode === 'none' || (o.mode === 'systemd' && o.live && !o.systemdRunning) ? resolveMode('auto') : o.mode;
  try {
    await install({ ...seen.context, only: [...new Set<JobId>([...seen.installed, 'recover'])] }, mode, seen.paths, log);
  } catch (e) {
    log.warn(`safety net: NOT installed: ${errorMessage(e)}; ${NET_COST}; install it: ${installCommand(env.file)}`);
    return before;
  }
  const after = await netVerdict(env);
  if (after.inPlace) log.ok(`safety net: ${after.detail} (installed by this rollout)`);
  else log.warn(`safety net: NOT in place: ${after.detail}${after.next ? `; next: ${after.next}` : ''}`);
  return after;
}

/** rollback and restore: one warning when the net is not in place (they do not install it) */
export async function warnWithoutNet(env: NetEnv, log: Logger, operation: string): Promise<NetVerdict | null> {
  try {
    const v = await netVerdict(env);
    if (v.state === 'off') log.info(`safety net: ${v.detail}`);
    else if (!v.inPlace) log.warn(`safety net: NOT in place for this ${operation}: ${v.detail}${v.next ? `; install it: ${v.next}` : ''}`);
    return v;
  } catch (e) {
    log.warn(`safety net: cannot read the schedules: ${errorMessage(e)}`);
    return null;
  }
}
