// The recovery timer as data: systemd units (a oneshot service, run at boot and every minute by a
// timer) or, without systemd, a cron file with the same two triggers. Pure builders; recover.mts
// writes them (idempotently: only when the content differs) and runs systemctl.
import path from 'node:path';

export interface InstallContext {
  /** compose project: one timer per stack on the host */
  project: string;
  nodeBin: string;
  recoverScript: string;
  envFile: string;
  projectDir: string;
  logFile: string;
}

export const unitName = (project: string) => `lazyflow-recover-${project.replace(/[^A-Za-z0-9_.-]/g, '-')}`;

/** the command the service and cron run: exactly what an operator would type */
export function recoverCommand(c: InstallContext): string[] {
  return [c.nodeBin, c.recoverScript, '--config', c.envFile];
}

const q = (s: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export function systemdUnits(c: InstallContext): { service: string; timer: string } {
  const name = unitName(c.project);
  const service = [
    '[Unit]',
    `Description=lazyflow: finish or undo an interrupted deploy, rollback or restore of ${c.project}`,
    'Documentation=file://' + path.join(c.projectDir, 'RUNBOOK.md'),
    'Wants=docker.service',
    'After=docker.service network-online.target',
    '',
    '[Service]',
    'Type=oneshot',
    `WorkingDirectory=${c.projectDir}`,
    'Environment=NO_COLOR=1',
    `ExecStart=${recoverCommand(c).map(q).join(' ')}`,
    // a recovery may restore a backup and wait for the app's healthcheck: bounded, never stuck
    'TimeoutStartSec=15min',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
  const timer = [
    '[Unit]',
    `Description=lazyflow: recovery check of ${c.project} at boot and every minute`,
    '',
    '[Timer]',
    'OnBootSec=20s',
    'OnUnitActiveSec=1min',
    'AccuracySec=5s',
    `Unit=${name}.service`,
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ].join('\n');
  return { service, timer };
}

/** cron fallback (no systemd): at boot and every minute; flock keeps runs from piling up */
export function cronFile(c: InstallContext, user = 'root'): string {
  const cmd = `cd ${q(c.projectDir)} && NO_COLOR=1 ${recoverCommand(c).map(q).join(' ')} >>${q(c.logFile)} 2>&1`;
  return [
    `# lazyflow recovery of ${c.project}: finish or undo an interrupted operation (RUNBOOK: After an interruption)`,
    `@reboot ${user} sleep 20; ${cmd}`,
    `* * * * * ${user} ${cmd}`,
    '',
  ].join('\n');
}
