// What --install, --remove and --status decide, as pure functions of the desired files (jobs.mts),
// what is on disk, and what `systemctl show` says. install.mts reads and writes; this decides.
import path from 'node:path';
import { allUnitFiles, cronFile, cronFileName, cronLogFile, jobs, legacyCronFileName, legacyCronHeader, systemdUnits, type JobId, type ScheduleContext } from './jobs.mts';
import { parseTimestamp, type ShowBlock } from '../commands/systemctl.mts';

export type Mode = 'systemd' | 'cron';

export interface SchedulePaths {
  /** where systemd units go (/etc/systemd/system) */
  unitDir: string;
  /** where the cron fallback goes (/etc/cron.d) */
  cronDir: string;
}

export interface DesiredFile {
  path: string;
  text: string;
}

/** the files a mode installs: every unit (systemd) or the one cron file */
export function desiredFiles(c: ScheduleContext, mode: Mode, p: SchedulePaths): DesiredFile[] {
  if (mode === 'cron') return [{ path: path.join(p.cronDir, cronFileName(c.project)), text: cronFile(c) }];
  return systemdUnits(c).map((u) => ({ path: path.join(p.unitDir, u.file), text: u.text }));
}

/** every file of this project that schedules.mts may have written, in either mode, and the legacy recovery cron file */
export function ownedFiles(project: string, p: SchedulePaths): string[] {
  return [
    ...allUnitFiles(project).map((f) => path.join(p.unitDir, f)),
    path.join(p.cronDir, cronFileName(project)),
    path.join(p.cronDir, legacyCronFileName(project)),
  ];
}

/**
 * Reads a file of ours: the content, or null when absent or not ours (a file at the legacy cron path
 * that recover.mts --install did not write for this project is left alone).
 */
export function ownedReader(project: string, p: SchedulePaths, read: (file: string) => string | null): (file: string) => string | null {
  const legacy = path.join(p.cronDir, legacyCronFileName(project));
  return (file) => {
    const text = read(file);
    if (file === legacy && text !== null && !text.startsWith(legacyCronHeader(project))) return null;
    return text;
  };
}

export interface InstallPlan {
  mode: Mode;
  /** content differs or the file is absent */
  write: DesiredFile[];
  /** content equal: not touched */
  unchanged: string[];
  /** files of ours not wanted any more: the other mode's, a job no longer scheduled (offsite turned off), the legacy cron file */
  remove: string[];
  /** systemd only: every desired timer (enable --now is idempotent) */
  enable: string[];
  /** systemd only: desired timers whose unit files changed (restart applies the new schedule) */
  restart: string[];
  /** systemd only: timers being removed (disable --now before the file goes) */
  disable: string[];
}

const timerOf = (file: string) => (file.endsWith('.timer') ? path.basename(file) : null);

/** the idempotence decision: a file is written only when its content differs; `existing` is null for an absent file */
export function planInstall(mode: Mode, desired: DesiredFile[], owned: string[], existing: (file: string) => string | null): InstallPlan {
  const write = desired.filter((d) => existing(d.path) !== d.text);
  const unchanged = desired.filter((d) => existing(d.path) === d.text).map((d) => d.path);
  const want = new Set(desired.map((d) => d.path));
  const remove = owned.filter((f) => !want.has(f) && existing(f) !== null);
  const written = new Set(write.map((w) => w.path));
  // a service whose unit changed is picked up by daemon-reload; its timer restarts only if the timer changed
  const enable = mode === 'systemd' ? desired.map((d) => timerOf(d.path)).filter((t): t is string => t !== null) : [];
  const restart = mode === 'systemd' ? desired.filter((d) => written.has(d.path)).map((d) => timerOf(d.path)).filter((t): t is string => t !== null) : [];
  const disable = remove.map(timerOf).filter((t): t is string => t !== null);
  return { mode, write, unchanged, remove, enable, restart, disable };
}

export const planChanges = (p: InstallPlan) => p.write.length + p.remove.length > 0;

// ---- status --------------------------------------------------------------------------------------

export interface LastRun {
  /** the service's Result= (success, exit-code, timeout, signal, ...) */
  result: string;
  exitStatus: number | null;
  finishedAt: string | null;
  ok: boolean;
  /** the service is running right now */
  running: boolean;
}

export interface JobStatus {
  id: JobId;
  name: string;
  when: string;
  /** systemd: the timer and service files exist; cron: the cron file has this job's line */
  installed: boolean;
  timer?: { activeState: string; unitFileState: string; lastTrigger: string | null; nextElapse: string | null };
  lastRun?: LastRun | null;
  /** cron: where this job's output goes, and when it last wrote there */
  log?: { file: string; modifiedAt: string | null };
  failureMeans: string;
}

export interface ScheduleStatus {
  project: string;
  /** what is installed: systemd units, the cron file, or nothing */
  mode: Mode | 'none';
  systemdRunning: boolean;
  /** the installed files and whether each equals what --install would write now */
  files: { path: string; upToDate: boolean }[];
  /** every installed file equals this checkout's (else: run --install again) */
  upToDate: boolean;
  jobs: JobStatus[];
  /** where the output of the runs is */
  logs: string;
  /** the next command to run, when something is off */
  next: string | null;
}

/** the service's block of `systemctl show` as a last run; null when it never ran */
export function lastRunOf(service: ShowBlock | undefined): LastRun | null {
  if (!service) return null;
  const running = service.ActiveState === 'activating' || service.SubState === 'start';
  const finishedAt = parseTimestamp(service.ExecMainExitTimestamp);
  if (!finishedAt && !running) return null;
  const status = /^\d+$/.test(service.ExecMainStatus ?? '') ? Number(service.ExecMainStatus) : null;
  const result = service.Result || 'unknown';
  return { result, exitStatus: status, finishedAt, ok: result === 'success' && (status === null || status === 0), running };
}

export interface StatusInput {
  context: ScheduleContext;
  paths: SchedulePaths;
  systemdRunning: boolean;
  /** the content of a file, or null when absent */
  existing: (file: string) => string | null;
  /** file modification time (ISO), or null when absent */
  mtime: (file: string) => string | null;
  /** `systemctl show` blocks of the units (empty when systemd is not running) */
  show: ShowBlock[];
  /** how the operator ran this (for the next command) */
  command: string;
}

export function scheduleStatus(i: StatusInput): ScheduleStatus {
  const c = i.context;
  const wanted = jobs(c);
  const systemdFiles = desiredFiles(c, 'systemd', i.paths);
  const cronWanted = desiredFiles(c, 'cron', i.paths)[0];
  const presentUnits = ownedFiles(c.project, i.paths).filter((f) => f.startsWith(i.paths.unitDir + path.sep) && i.existing(f) !== null);
  const cronText = i.existing(cronWanted.path);
  const legacy = path.join(i.paths.cronDir, legacyCronFileName(c.project));
  const mode: ScheduleStatus['mode'] = presentUnits.length ? 'systemd' : cronText !== null ? 'cron' : 'none';
  const byId = new Map(i.show.filter((b) => b.Id).map((b) => [b.Id, b]));

  const files: ScheduleStatus['files'] = [];
  if (mode === 'systemd') {
    const want = new Map(systemdFiles.map((d) => [d.path, d.text]));
    for (const f of presentUnits) files.push({ path: f, upToDate: want.get(f) === i.existing(f) });
    for (const d of systemdFiles) if (!presentUnits.includes(d.path)) files.push({ path: d.path, upToDate: false });
  } else if (mode === 'cron') files.push({ path: cronWanted.path, upToDate: cronText === cronWanted.text });
  if (i.existing(legacy) !== null) files.push({ path: legacy, upToDate: false });

  const jobsOut: JobStatus[] = wanted.map((j) => {
    const base = { id: j.id, name: j.name, when: j.when, failureMeans: j.failureMeans };
    if (mode === 'systemd') {
      const installed = i.existing(path.join(i.paths.unitDir, `${j.name}.timer`)) !== null && i.existing(path.join(i.paths.unitDir, `${j.name}.service`)) !== null;
      const t = byId.get(`${j.name}.timer`);
      return {
        ...base,
        installed,
        ...(t ? { timer: { activeState: t.ActiveState ?? '', unitFileState: t.UnitFileState ?? '', lastTrigger: parseTimestamp(t.LastTriggerUSec), nextElapse: parseTimestamp(t.NextElapseUSecRealtime) } } : {}),
        ...(i.systemdRunning ? { lastRun: lastRunOf(byId.get(`${j.name}.service`)) } : {}),
      };
    }
    const file = cronLogFile(c, j);
    return { ...base, installed: mode === 'cron' && (cronText ?? '').split('\n').some((l) => l.startsWith(`# ${j.id}: `)), log: { file, modifiedAt: i.mtime(file) } };
  });

  const upToDate = files.length > 0 && files.every((f) => f.upToDate);
  const logs =
    mode === 'cron' ? `${path.join(c.logDir, '<job>.log')} (cron appends each run's output; errors only, the jobs run with --quiet; each job rotates its own at 1 MiB, keeping <job>.log.1-3)`
    : `journalctl -u 'lazyflow-*-${c.project}.service' -n 50`;
  const install = `${i.command} --install`;
  let next: string | null = null;
  if (mode === 'none') next = `${install}   # not installed: ${i.systemdRunning ? 'systemd timers' : 'cron file'} for ${wanted.map((j) => j.id).join(', ')}`;
  else if (jobsOut.every((j) => j.installed === (j.id === 'recover'))) next = `${install}   # only recovery is installed (the rollout's safety net): this adds ${wanted.filter((j) => j.id !== 'recover').map((j) => j.id).join(', ')}`;
  else if (!upToDate || jobsOut.some((j) => !j.installed)) next = `${install}   # the installed schedules differ from this checkout`;
  else if (mode === 'systemd' && !i.systemdRunning) next = `systemctl daemon-reload && systemctl enable --now ${wanted.map((j) => `${j.name}.timer`).join(' ')}   # where systemd runs`;
  else if (mode === 'systemd' && jobsOut.some((j) => j.timer && j.timer.activeState !== 'active')) next = `${install}   # a timer is not active`;
  return { project: c.project, mode, systemdRunning: i.systemdRunning, files, upToDate, jobs: jobsOut, logs, next };
}

/** status exit code: 0 when installed, current and no last run failed */
export function statusOk(s: ScheduleStatus): boolean {
  return s.mode !== 'none' && s.next === null && !s.jobs.some((j) => j.lastRun && !j.lastRun.ok && !j.lastRun.running);
}
