// The schedules as data: which commands run when (daily backup with retention, offsite retention and
// weekly verification when OFFSITE_REPOSITORY is set, the weekly drill, the watch every minute, and
// recovery at boot and every minute), and the pure builders that turn them into systemd units or,
// without systemd, one cron file. Nothing here touches the file system or runs anything:
// schedules/install.mts and scripts/schedules.mts do.
//
// Every unit and cron line runs exactly the command an operator would type (RUNBOOK "Backups,
// restore, drill and cron", "Offsite backups (restic)", "The watch", "After an interruption"), with
// the absolute node binary, script and env file; the env file is passed as --config and no value of
// it (no secret) is ever written into a unit or the cron file.
import path from 'node:path';
import { TRUST_CHECK_ENV } from './trust.mts';

export type JobId = 'backup' | 'offsite-forget' | 'offsite-check' | 'drill' | 'watch' | 'recover';
/** every job this module may install, in install order; a name not in the desired set is stale */
export const ALL_JOBS: readonly JobId[] = ['backup', 'offsite-forget', 'offsite-check', 'drill', 'watch', 'recover'];

/** the documented retention (RUNBOOK "Retention"): the same keep flags locally and offsite */
export const RETENTION = { daily: 7, weekly: 4, monthly: 6, images: 5 } as const;
/** how long a scheduled backup, drill or offsite retention waits for a rollout or restore that holds the lock */
export const WAIT_LOCK_S = 900;
/** the PATH units and cron lines run with: systemd's default for services, fixed so both agree */
export const SCHEDULE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ScheduleContext {
  /** compose project: unit and cron file names carry it, so two stacks on one host do not collide */
  project: string;
  /** absolute node binary (the one running the installer: >= 22.18 by construction) */
  nodeBin: string;
  /** absolute scripts/ directory of this checkout */
  scriptsDir: string;
  /** absolute env file, passed as --config */
  envFile: string;
  /** the checkout: WorkingDirectory of every unit, cd of every cron line */
  projectDir: string;
  /** STATE_DIR/logs: where the cron fallback appends each job's output */
  logDir: string;
  /** STATE_DIR: the one tree the units may write (ReadWritePaths=) */
  stateDir: string;
  /** a local offsite repository (OFFSITE_REPOSITORY=/path or local:/path), written by the backup and offsite jobs; null otherwise */
  localRepository: string | null;
  /** OFFSITE_REPOSITORY is set: offsite retention and the weekly check are scheduled too */
  offsite: boolean;
  /** only these jobs (the rollout's safety net writes recovery next to what is installed: schedules/net.mts); default every job */
  only?: readonly JobId[];
}

export interface Job {
  id: JobId;
  /** unit base name (without .service/.timer), also the name in status */
  name: string;
  description: string;
  /** one line for people: when it runs */
  when: string;
  /** the command, exactly as an operator types it (absolute paths) */
  argv: string[];
  /** systemd OnCalendar= values (UTC) */
  onCalendar: string[];
  /** systemd OnBootSec=, for the jobs that also run at boot */
  onBootSec?: string;
  /** catch up a run missed while the machine was off (daily and weekly jobs) */
  persistent: boolean;
  randomizedDelaySec?: string;
  accuracySec?: string;
  /** bounded: a stuck run is killed, the next one starts on time */
  timeoutStartSec: string;
  nice?: number;
  /** cron schedules (UTC); '@reboot' runs once at boot after a short sleep */
  cron: string[];
  /** what the exit status 1 of this job means, for status */
  failureMeans: string;
}

/** unit-safe and cron.d-safe (cron ignores file names with dots): letters, digits, _ and - */
export const safeName = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, '-');

/** `lazyflow-<job>-<project>`: job first, and no job id is another's prefix followed by '-', so names never collide */
export const unitName = (project: string, job: JobId) => `lazyflow-${job}-${safeName(project)}`;
/** never `lazyflow-recover-*` (the legacy name below), so one project's file is never another's legacy file */
export const cronFileName = (project: string) => `lazyflow-schedules-${safeName(project)}`;
/** the cron file recover.mts --install wrote before schedules.mts existed: --install replaces it */
export const legacyCronFileName = (project: string) => `lazyflow-recover-${safeName(project)}`;
/** its first line: only a file that starts so is the legacy file of this project (not a file of project "recover-<x>") */
export const legacyCronHeader = (project: string) => `# lazyflow recovery of ${project}: `;

export function jobs(c: ScheduleContext): Job[] {
  for (const [k, v] of Object.entries({ nodeBin: c.nodeBin, scriptsDir: c.scriptsDir, envFile: c.envFile, projectDir: c.projectDir, logDir: c.logDir, stateDir: c.stateDir, ...(c.localRepository ? { localRepository: c.localRepository } : {}) })) {
    if (!path.isAbsolute(v)) throw new Error(`schedules: ${k} must be an absolute path, got ${v}`);
    // a newline would end the unit line or the cron line early: refuse rather than write a broken unit
    if (/[\0-\x1f\x7f]/.test(v)) throw new Error(`schedules: ${k} contains a control character: ${JSON.stringify(v)}`);
  }
  const script = (name: string, ...args: string[]) => [c.nodeBin, path.join(c.scriptsDir, name), '--config', c.envFile, ...args];
  const keep = ['--keep-daily', String(RETENTION.daily), '--keep-weekly', String(RETENTION.weekly), '--keep-monthly', String(RETENTION.monthly)];
  const n = (id: JobId) => unitName(c.project, id);
  const all: Job[] = [
    {
      id: 'backup',
      name: n('backup'),
      description: `lazyflow: daily verified backup of ${c.project} with retention`,
      when: 'daily 03:17 UTC',
      argv: script('backup.mts', '--reason', 'cron', '--quiet', '--wait-lock', String(WAIT_LOCK_S), ...keep, '--keep-images', String(RETENTION.images), '--prune-build-cache'),
      onCalendar: ['*-*-* 03:17:00 UTC'],
      persistent: true,
      randomizedDelaySec: '5min',
      // waits up to 15 min for the lock, then the backup and (with offsite) the upload, which restic bounds by OFFSITE_TIMEOUT (1 h)
      timeoutStartSec: '2h',
      nice: 10,
      cron: ['17 3 * * *'],
      failureMeans: 'the backup or its offsite upload failed',
    },
    {
      id: 'offsite-forget',
      name: n('offsite-forget'),
      description: `lazyflow: offsite retention of ${c.project} (restic forget + prune)`,
      when: 'daily 03:40 UTC',
      argv: script('offsite.mts', '--forget', ...keep, '--quiet', '--wait-lock', String(WAIT_LOCK_S)),
      onCalendar: ['*-*-* 03:40:00 UTC'],
      persistent: true,
      randomizedDelaySec: '5min',
      timeoutStartSec: '2h',
      nice: 10,
      cron: ['40 3 * * *'],
      failureMeans: 'offsite retention failed (the backend did not answer or refused)',
    },
    {
      id: 'offsite-check',
      name: n('offsite-check'),
      description: `lazyflow: weekly verification of the offsite repository of ${c.project}`,
      when: 'Sundays 05:10 UTC',
      argv: script('offsite.mts', '--check', '--read-data-subset', '5%', '--quiet'),
      onCalendar: ['Sun *-*-* 05:10:00 UTC'],
      persistent: true,
      randomizedDelaySec: '5min',
      timeoutStartSec: '3h',
      nice: 10,
      cron: ['10 5 * * 0'],
      failureMeans: 'the offsite repository is damaged or unreachable (RUNBOOK: Offsite backups, "When --check fails")',
    },
    {
      id: 'drill',
      name: n('drill'),
      description: `lazyflow: weekly restore drill of ${c.project} (the newest backup boots; production untouched)`,
      when: 'Sundays 04:30 UTC',
      argv: script('restore.mts', '--drill', '--quiet', '--wait-lock', String(WAIT_LOCK_S)),
      onCalendar: ['Sun *-*-* 04:30:00 UTC'],
      persistent: true,
      randomizedDelaySec: '5min',
      timeoutStartSec: '1h',
      nice: 10,
      cron: ['30 4 * * 0'],
      failureMeans: 'the newest backup did not boot',
    },
    {
      id: 'watch',
      name: n('watch'),
      description: `lazyflow: watch of ${c.project} (alerts on changes of state, heartbeat)`,
      when: 'every minute',
      argv: script('watch.mts', '--once', '--quiet'),
      // calendar, not OnUnitActiveSec: a run that failed (exit 1 = a problem seen) must not stop the next one
      onCalendar: ['*-*-* *:*:00'],
      persistent: false,
      accuracySec: '5s',
      timeoutStartSec: '5min',
      cron: ['* * * * *'],
      failureMeans: 'the watch saw a problem (its alert says which)',
    },
    {
      id: 'recover',
      name: n('recover'),
      description: `lazyflow: finish or undo an interrupted deploy, rollback or restore of ${c.project}`,
      when: 'at boot and every minute',
      argv: script('recover.mts', '--quiet'),
      onCalendar: ['*-*-* *:*:00'],
      onBootSec: '20s',
      persistent: false,
      accuracySec: '5s',
      // a recovery may restore a backup and wait for the app's healthcheck: bounded, never stuck
      timeoutStartSec: '15min',
      cron: ['@reboot', '* * * * *'],
      failureMeans: 'recovery failed or stopped to ask: run node scripts/recover.mts --config <env file> --dry-run',
    },
  ];
  return all.filter((j) => (c.offsite || !j.id.startsWith('offsite-')) && (!c.only || c.only.includes(j.id)));
}

// ---- systemd ---------------------------------------------------------------------------------

/**
 * One ExecStart= word. systemd splits on whitespace and honours "..." with C escapes; `%` starts a
 * specifier and `$` a variable, in quoted words too, so both are doubled.
 */
export function systemdWord(s: string): string {
  const body = /^[A-Za-z0-9_@+=:,./-]+$/.test(s) ? s : `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  return body.replace(/%/g, '%%').replace(/\$/g, '$$$$');
}

/** a value taken to the end of the line (WorkingDirectory=, Description=): only specifiers need escaping */
const systemdValue = (s: string) => s.replace(/%/g, '%%');

export interface UnitFile {
  /** file name, e.g. lazyflow-backup-lazyflow.service */
  file: string;
  text: string;
}

/**
 * What a job may write: STATE_DIR, a local offsite repository for the jobs that write one, and the
 * Docker CLI's config directory (compose may keep its build state there; `-`: fine if absent).
 */
export function writePaths(c: ScheduleContext, j: Job): string[] {
  const repo = c.localRepository && (j.id === 'backup' || j.id.startsWith('offsite-')) ? [c.localRepository] : [];
  return [c.stateDir, ...repo, '-/root/.docker'];
}

/**
 * The sandbox of every job, as far as its work allows (RUNBOOK "Security", with each unit's score).
 * The jobs drive Docker through its socket, which is root's power over the host whatever the unit
 * says; what the unit takes away is everything else: writing outside STATE_DIR, the kernel's
 * tunables, modules and logs, new privileges (setuid binaries), namespaces, raw and netlink sockets,
 * devices, and the capabilities root does not need to read and restore the app's files.
 * Not set, on purpose: MemoryDenyWriteExecute (V8 compiles to W+X memory), PrivateNetwork and
 * IPAddressDeny (alerts, offsite and the Docker socket), PrivateUsers and User= (the Docker socket
 * is root's), ProcSubset=pid (docker and node read /proc/meminfo and /proc/cpuinfo).
 */
export function hardening(c: ScheduleContext, j: Job): string[] {
  return [
    'UMask=0077',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    `ReadWritePaths=${writePaths(c, j).map(systemdWord).join(' ')}`,
    'PrivateTmp=yes',
    // the restic password, SFTP key and Docker config may live under /root: read, never written
    'ProtectHome=read-only',
    'PrivateDevices=yes',
    'DevicePolicy=closed',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectControlGroups=yes',
    'ProtectClock=yes',
    'ProtectHostname=yes',
    'ProtectProc=invisible',
    'PrivateMounts=yes',
    // the Docker socket, and HTTP(S) for alerts, heartbeats and offsite backends
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6',
    'RestrictNamespaces=yes',
    'RestrictRealtime=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'RemoveIPC=yes',
    'KeyringMode=private',
    'SystemCallArchitectures=native',
    'SystemCallFilter=@system-service',
    'SystemCallErrorNumber=EPERM',
    // chown/chmod/read the app's files (uid 1000) while backing up and restoring them; kill(0) on recorded pids
    'CapabilityBoundingSet=CAP_CHOWN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_KILL CAP_SETUID CAP_SETGID',
  ];
}

export function serviceUnit(c: ScheduleContext, j: Job): UnitFile {
  const lines = [
    '[Unit]',
    `Description=${systemdValue(j.description)}`,
    `Documentation=${systemdValue('file://' + path.join(c.projectDir, 'RUNBOOK.md'))}`,
    'Wants=docker.service',
    'After=docker.service network-online.target',
    '',
    '[Service]',
    'Type=oneshot',
    `WorkingDirectory=${systemdValue(c.projectDir)}`,
    `Environment=${systemdWord(`PATH=${SCHEDULE_PATH}`)}`,
    'Environment=NO_COLOR=1',
    `Environment=${TRUST_CHECK_ENV}=1`,
    `ExecStart=${j.argv.map(systemdWord).join(' ')}`,
    `TimeoutStartSec=${j.timeoutStartSec}`,
    ...(j.nice !== undefined ? [`Nice=${j.nice}`] : []),
    ...hardening(c, j),
    '',
  ];
  return { file: `${j.name}.service`, text: lines.join('\n') };
}

export function timerUnit(c: ScheduleContext, j: Job): UnitFile {
  const lines = [
    '[Unit]',
    `Description=${systemdValue(`${j.description}: ${j.when}`)}`,
    '',
    '[Timer]',
    ...j.onCalendar.map((x) => `OnCalendar=${x}`),
    ...(j.onBootSec ? [`OnBootSec=${j.onBootSec}`] : []),
    ...(j.persistent ? ['Persistent=true'] : []),
    ...(j.randomizedDelaySec ? [`RandomizedDelaySec=${j.randomizedDelaySec}`] : []),
    ...(j.accuracySec ? [`AccuracySec=${j.accuracySec}`] : []),
    `Unit=${j.name}.service`,
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ];
  return { file: `${j.name}.timer`, text: lines.join('\n') };
}

/** every unit file, service then timer for each job */
export function systemdUnits(c: ScheduleContext): UnitFile[] {
  return jobs(c).flatMap((j) => [serviceUnit(c, j), timerUnit(c, j)]);
}

/** every unit file name this project may have (stale ones included): what --remove deletes */
export function allUnitFiles(project: string): string[] {
  return ALL_JOBS.flatMap((id) => [`${unitName(project, id)}.service`, `${unitName(project, id)}.timer`]);
}

// ---- cron --------------------------------------------------------------------------------------

/** POSIX sh single-quoting where needed */
export const shWord = (s: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
/** cron turns an unescaped % into a newline: escape it (cron removes the backslash) */
const cronEscape = (s: string) => s.replace(/%/g, '\\%');

export const cronLogFile = (c: ScheduleContext, j: Job) => path.join(c.logDir, `${j.id}.log`);

/** the shell command of one cron line, before cron's % escaping: cd, environment, no overlap (flock), output to the job's log */
export function cronCommand(c: ScheduleContext, j: Job): string {
  const lock = path.join(c.logDir, `.${j.id}.cron.lock`);
  return `umask 077; cd ${shWord(c.projectDir)} && NO_COLOR=1 ${TRUST_CHECK_ENV}=1 flock -n ${shWord(lock)} ${j.argv.map(shWord).join(' ')} >>${shWord(cronLogFile(c, j))} 2>&1`;
}

/** the cron fallback: one file in /etc/cron.d with the user field, every job of this project */
export function cronFile(c: ScheduleContext, user = 'root'): string {
  const out = [
    `# lazyflow schedules of ${c.project}: written by node scripts/schedules.mts --install; do not edit`,
    '# (run --install again after moving the checkout or the env file; --remove deletes this file).',
    '# Times are UTC: CRON_TZ=UTC where cron supports it; Debian cron uses the system time zone, keep the VPS on UTC (timedatectl).',
    `# Output of each job: ${path.join(c.logDir, '<job>.log')} (rotated by the job at 1 MiB, <job>.log.1-3 kept)`,
    'SHELL=/bin/sh',
    `PATH=${SCHEDULE_PATH}`,
    'CRON_TZ=UTC',
  ];
  for (const j of jobs(c)) {
    out.push(`# ${j.id}: ${j.when}: ${j.description}`);
    const cmd = cronEscape(cronCommand(c, j));
    for (const when of j.cron) out.push(when === '@reboot' ? `@reboot ${user} sleep 20; ${cmd}` : `${when} ${user} ${cmd}`);
  }
  out.push('');
  return out.join('\n');
}
