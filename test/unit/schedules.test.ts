// The schedules as data: unit files and the cron file for a context (with and without an offsite
// repository), unit names for odd project names, the idempotence decision, the systemctl argv, and
// the parsing of `systemctl show` into each timer's last run and result.
import { describe, expect, it } from 'vitest';
import {
  cronCommand,
  cronFile,
  jobs,
  safeName,
  serviceUnit,
  systemdUnits,
  systemdWord,
  timerUnit,
  unitName,
  ALL_JOBS,
  hardening,
  writePaths,
  type ScheduleContext,
} from '../../scripts/lib/schedules/jobs.mts';
import { desiredFiles, lastRunOf, ownedFiles, ownedReader, planInstall, scheduleStatus, statusOk, type SchedulePaths } from '../../scripts/lib/schedules/plan.mts';
import { baseScheduleContext } from '../support/schedule-context.ts';
import { daemonReloadArgs, disableNowArgs, enableNowArgs, parseShow, parseTimestamp, restartArgs, showArgs } from '../../scripts/lib/commands/systemctl.mts';

const base: ScheduleContext = baseScheduleContext;
const withOffsite = { ...base, offsite: true };
const paths: SchedulePaths = { unitDir: '/etc/systemd/system', cronDir: '/etc/cron.d' };
const KEEP = '--keep-daily 7 --keep-weekly 4 --keep-monthly 6';

describe('the jobs: the exact commands RUNBOOK documents', () => {
  const table: { id: string; cmd: string; calendar: string[]; persistent: boolean; cron: string[] }[] = [
    { id: 'backup', cmd: `/srv/lazyflow-deploy/scripts/backup.mts --config /srv/lazyflow-deploy/.env.prod --reason cron --quiet --wait-lock 900 ${KEEP} --keep-images 5 --prune-build-cache`, calendar: ['*-*-* 03:17:00 UTC'], persistent: true, cron: ['17 3 * * *'] },
    { id: 'offsite-forget', cmd: `/srv/lazyflow-deploy/scripts/offsite.mts --config /srv/lazyflow-deploy/.env.prod --forget ${KEEP} --quiet --wait-lock 900`, calendar: ['*-*-* 03:40:00 UTC'], persistent: true, cron: ['40 3 * * *'] },
    { id: 'offsite-check', cmd: '/srv/lazyflow-deploy/scripts/offsite.mts --config /srv/lazyflow-deploy/.env.prod --check --read-data-subset 5% --quiet', calendar: ['Sun *-*-* 05:10:00 UTC'], persistent: true, cron: ['10 5 * * 0'] },
    { id: 'drill', cmd: '/srv/lazyflow-deploy/scripts/restore.mts --config /srv/lazyflow-deploy/.env.prod --drill --quiet --wait-lock 900', calendar: ['Sun *-*-* 04:30:00 UTC'], persistent: true, cron: ['30 4 * * 0'] },
    { id: 'watch', cmd: '/srv/lazyflow-deploy/scripts/watch.mts --config /srv/lazyflow-deploy/.env.prod --once --quiet', calendar: ['*-*-* *:*:00'], persistent: false, cron: ['* * * * *'] },
    { id: 'recover', cmd: '/srv/lazyflow-deploy/scripts/recover.mts --config /srv/lazyflow-deploy/.env.prod --quiet', calendar: ['*-*-* *:*:00'], persistent: false, cron: ['@reboot', '* * * * *'] },
  ];
  for (const row of table) {
    it(`${row.id}: ${row.cmd.split(' ').slice(0, 1)[0].split('/').pop()} at ${row.cron.join(' and ')}`, () => {
      const j = jobs(withOffsite).find((x) => x.id === row.id)!;
      expect(j.argv.join(' ')).toBe(`/usr/bin/node ${row.cmd}`);
      expect(j.onCalendar).toEqual(row.calendar);
      expect(j.persistent).toBe(row.persistent);
      expect(j.cron).toEqual(row.cron);
    });
  }

  it('offsite jobs only with OFFSITE_REPOSITORY', () => {
    expect(jobs(base).map((j) => j.id)).toEqual(['backup', 'drill', 'watch', 'recover']);
    expect(jobs(withOffsite).map((j) => j.id)).toEqual([...ALL_JOBS]);
  });

  it('refuses relative paths and control characters (a newline would end the unit line early)', () => {
    expect(() => jobs({ ...base, envFile: '.env.prod' })).toThrow(/absolute/);
    expect(() => jobs({ ...base, projectDir: '/srv/x\nExecStart=/bin/evil' })).toThrow(/control character/);
  });
});

describe('unit names: one per job and compose project, never colliding', () => {
  const names: [string, string, string][] = [
    ['lazyflow', 'backup', 'lazyflow-backup-lazyflow'],
    ['my_stack-2', 'watch', 'lazyflow-watch-my_stack-2'],
    ['lzf-e2e-x-1a2b3c', 'offsite-check', 'lazyflow-offsite-check-lzf-e2e-x-1a2b3c'],
    ['a.b c/d', 'recover', 'lazyflow-recover-a-b-c-d'],
    ['ünï', 'drill', 'lazyflow-drill--n-'],
  ];
  for (const [project, job, want] of names) it(`${JSON.stringify(project)} / ${job} -> ${want}`, () => expect(unitName(project, job as never)).toBe(want));

  it('two projects and all jobs give distinct names (job first; no job id is another followed by "-")', () => {
    const projects = ['a', 'a-offsite', 'offsite', 'check', 'a-b', 'b'];
    const all = projects.flatMap((p) => ALL_JOBS.map((j) => unitName(p, j)));
    expect(new Set(all).size).toBe(all.length);
    for (const a of ALL_JOBS) for (const b of ALL_JOBS) if (a !== b) expect(b.startsWith(`${a}-`), `${a} / ${b}`).toBe(false);
  });

  it('cron file names: no dots (cron.d ignores them)', () => expect(safeName('x.y')).toBe('x-y'));
});

describe('systemd units', () => {
  it('a service: oneshot, working directory, NO_COLOR, fixed PATH, bounded timeout, the env file only as --config', () => {
    const j = jobs(base).find((x) => x.id === 'backup')!;
    expect(serviceUnit(base, j)).toEqual({
      file: 'lazyflow-backup-lazyflow.service',
      text: [
        '[Unit]',
        'Description=lazyflow: daily verified backup of lazyflow with retention',
        'Documentation=file:///srv/lazyflow-deploy/RUNBOOK.md',
        'Wants=docker.service',
        'After=docker.service network-online.target',
        '',
        '[Service]',
        'Type=oneshot',
        'WorkingDirectory=/srv/lazyflow-deploy',
        'Environment=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        'Environment=NO_COLOR=1',
        'Environment=LAZYFLOW_TRUST_CHECK=1',
        `ExecStart=/usr/bin/node /srv/lazyflow-deploy/scripts/backup.mts --config /srv/lazyflow-deploy/.env.prod --reason cron --quiet --wait-lock 900 ${KEEP} --keep-images 5 --prune-build-cache`,
        'TimeoutStartSec=2h',
        'Nice=10',
        ...hardening(base, j),
        '',
      ].join('\n'),
    });
  });

  it('timers: Persistent and a small random delay for daily/weekly, boot + minutely for recovery', () => {
    const t = (id: string) => timerUnit(base, jobs(base).find((x) => x.id === id)!).text;
    expect(t('backup')).toBe(
      [
        '[Unit]',
        'Description=lazyflow: daily verified backup of lazyflow with retention: daily 03:17 UTC',
        '',
        '[Timer]',
        'OnCalendar=*-*-* 03:17:00 UTC',
        'Persistent=true',
        'RandomizedDelaySec=5min',
        'Unit=lazyflow-backup-lazyflow.service',
        '',
        '[Install]',
        'WantedBy=timers.target',
        '',
      ].join('\n'),
    );
    expect(t('drill')).toContain('OnCalendar=Sun *-*-* 04:30:00 UTC\nPersistent=true\n');
    expect(t('recover')).toContain('OnCalendar=*-*-* *:*:00\nOnBootSec=20s\nAccuracySec=5s\nUnit=lazyflow-recover-lazyflow.service\n');
    expect(t('watch')).not.toContain('Persistent');
    expect(t('watch')).not.toContain('OnBootSec');
  });

  it('with offsite: 6 services and 6 timers; without: 4 and 4; each timer names its service', () => {
    for (const [c, n] of [[base, 4], [withOffsite, 6]] as const) {
      const u = systemdUnits(c);
      expect(u.filter((x) => x.file.endsWith('.service'))).toHaveLength(n);
      expect(u.filter((x) => x.file.endsWith('.timer'))).toHaveLength(n);
      for (const t of u.filter((x) => x.file.endsWith('.timer'))) expect(t.text).toContain(`Unit=${t.file.replace(/\.timer$/, '.service')}\n`);
    }
    expect(systemdUnits(withOffsite).find((u) => u.file === 'lazyflow-offsite-check-lazyflow.service')!.text).toContain(
      'ExecStart=/usr/bin/node /srv/lazyflow-deploy/scripts/offsite.mts --config /srv/lazyflow-deploy/.env.prod --check --read-data-subset "5%%" --quiet\n',
    );
  });

  const words: [string, string][] = [
    ['--quiet', '--quiet'],
    ['/srv/a b/.env', '"/srv/a b/.env"'],
    ['5%', '"5%%"'],
    ['$HOME', '"$$HOME"'],
    ['say "hi"', '"say \\"hi\\""'],
    ['back\\slash', '"back\\\\slash"'],
  ];
  for (const [w, want] of words) it(`ExecStart word ${JSON.stringify(w)} -> ${want}`, () => expect(systemdWord(w)).toBe(want));

  it('paths with spaces and % survive: WorkingDirectory and Description escape specifiers', () => {
    const c = { ...base, projectDir: '/srv/my 100% deploy', envFile: '/srv/my 100% deploy/.env.prod', scriptsDir: '/srv/my 100% deploy/scripts' };
    const s = serviceUnit(c, jobs(c)[0]).text;
    expect(s).toContain('WorkingDirectory=/srv/my 100%% deploy\n');
    expect(s).toContain('ExecStart=/usr/bin/node "/srv/my 100%% deploy/scripts/backup.mts" --config "/srv/my 100%% deploy/.env.prod" ');
  });

  it('no secret of the env file can reach a unit: the builders never see its values', () => {
    // the context has no field for env values; this pins that
    expect(Object.keys(base).sort()).toEqual(['envFile', 'localRepository', 'logDir', 'nodeBin', 'offsite', 'project', 'projectDir', 'scriptsDir', 'stateDir']);
  });
});

describe('cron fallback', () => {
  it('one file with the user field, UTC, and every job of the project (without offsite)', () => {
    const f = cronFile(base);
    const lines = f.split('\n');
    expect(lines.filter((l) => !l.startsWith('#') && l)).toEqual([
      'SHELL=/bin/sh',
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      'CRON_TZ=UTC',
      `17 3 * * * root umask 077; cd /srv/lazyflow-deploy && NO_COLOR=1 LAZYFLOW_TRUST_CHECK=1 flock -n /srv/lazyflow/logs/.backup.cron.lock /usr/bin/node /srv/lazyflow-deploy/scripts/backup.mts --config /srv/lazyflow-deploy/.env.prod --reason cron --quiet --wait-lock 900 ${KEEP} --keep-images 5 --prune-build-cache >>/srv/lazyflow/logs/backup.log 2>&1`,
      '30 4 * * 0 root umask 077; cd /srv/lazyflow-deploy && NO_COLOR=1 LAZYFLOW_TRUST_CHECK=1 flock -n /srv/lazyflow/logs/.drill.cron.lock /usr/bin/node /srv/lazyflow-deploy/scripts/restore.mts --config /srv/lazyflow-deploy/.env.prod --drill --quiet --wait-lock 900 >>/srv/lazyflow/logs/drill.log 2>&1',
      '* * * * * root umask 077; cd /srv/lazyflow-deploy && NO_COLOR=1 LAZYFLOW_TRUST_CHECK=1 flock -n /srv/lazyflow/logs/.watch.cron.lock /usr/bin/node /srv/lazyflow-deploy/scripts/watch.mts --config /srv/lazyflow-deploy/.env.prod --once --quiet >>/srv/lazyflow/logs/watch.log 2>&1',
      '@reboot root sleep 20; umask 077; cd /srv/lazyflow-deploy && NO_COLOR=1 LAZYFLOW_TRUST_CHECK=1 flock -n /srv/lazyflow/logs/.recover.cron.lock /usr/bin/node /srv/lazyflow-deploy/scripts/recover.mts --config /srv/lazyflow-deploy/.env.prod --quiet >>/srv/lazyflow/logs/recover.log 2>&1',
      '* * * * * root umask 077; cd /srv/lazyflow-deploy && NO_COLOR=1 LAZYFLOW_TRUST_CHECK=1 flock -n /srv/lazyflow/logs/.recover.cron.lock /usr/bin/node /srv/lazyflow-deploy/scripts/recover.mts --config /srv/lazyflow-deploy/.env.prod --quiet >>/srv/lazyflow/logs/recover.log 2>&1',
    ]);
    expect(f).toMatch(/^# Times are UTC/m);
    expect(f.endsWith('\n')).toBe(true);
  });

  it('with offsite: the retention and the weekly check, % escaped for cron', () => {
    const f = cronFile(withOffsite);
    expect(f).toContain(`\n40 3 * * * root umask 077; cd /srv/lazyflow-deploy && NO_COLOR=1 LAZYFLOW_TRUST_CHECK=1 flock -n /srv/lazyflow/logs/.offsite-forget.cron.lock /usr/bin/node /srv/lazyflow-deploy/scripts/offsite.mts --config /srv/lazyflow-deploy/.env.prod --forget ${KEEP} --quiet --wait-lock 900 >>/srv/lazyflow/logs/offsite-forget.log 2>&1\n`);
    expect(f).toContain(' --check --read-data-subset 5\\% --quiet >>/srv/lazyflow/logs/offsite-check.log 2>&1\n');
    expect(f).toContain('\n10 5 * * 0 root umask 077; cd /srv/lazyflow-deploy && ');
    expect(f.split('\n').filter((l) => /^[0-9*@]/.test(l))).toHaveLength(7);
    // every % in a command line is escaped (an unescaped one is a newline to cron)
    for (const l of f.split('\n').filter((x) => /^[0-9*@]/.test(x))) expect(l.replace(/\\%/g, '')).not.toContain('%');
  });

  it('quotes odd paths for sh and the user field is configurable', () => {
    const c = { ...base, projectDir: "/srv/it's here", logDir: '/srv/l o g' };
    expect(cronCommand(c, jobs(c)[0])).toMatch(/^umask 077; cd '\/srv\/it'\\''s here' && NO_COLOR=1 LAZYFLOW_TRUST_CHECK=1 flock -n '\/srv\/l o g\/\.backup\.cron\.lock' /);
    expect(cronFile(base, 'deploy')).toContain('\n17 3 * * * deploy umask 077; cd ');
  });
});

describe('install plan: idempotent (content equal -> no write)', () => {
  const desired = desiredFiles(withOffsite, 'systemd', paths);
  const owned = ownedFiles('lazyflow', paths);
  const disk = (files: Record<string, string>) => (f: string) => files[f] ?? null;
  const all = Object.fromEntries(desired.map((d) => [d.path, d.text]));
  const cronPath = '/etc/cron.d/lazyflow-schedules-lazyflow';

  const cases: { name: string; mode: 'systemd' | 'cron'; want: ReturnType<typeof desiredFiles>; disk: Record<string, string>; write: number; unchanged: number; remove: string[]; restart: number; disable: string[] }[] = [
    { name: 'fresh machine: everything written', mode: 'systemd', want: desired, disk: {}, write: 12, unchanged: 0, remove: [], restart: 6, disable: [] },
    { name: 'second install: nothing written', mode: 'systemd', want: desired, disk: all, write: 0, unchanged: 12, remove: [], restart: 0, disable: [] },
    {
      name: 'one service edited by hand: that one rewritten, its timer not restarted',
      mode: 'systemd', want: desired, disk: { ...all, '/etc/systemd/system/lazyflow-backup-lazyflow.service': 'edited' }, write: 1, unchanged: 11, remove: [], restart: 0, disable: [],
    },
    {
      name: 'a timer changed: rewritten and restarted',
      mode: 'systemd', want: desired, disk: { ...all, '/etc/systemd/system/lazyflow-drill-lazyflow.timer': 'old' }, write: 1, unchanged: 11, remove: [], restart: 1, disable: [],
    },
    {
      name: 'offsite turned off: its units removed, their timers disabled',
      mode: 'systemd', want: desiredFiles(base, 'systemd', paths), disk: all, write: 0, unchanged: 8,
      remove: ['/etc/systemd/system/lazyflow-offsite-forget-lazyflow.service', '/etc/systemd/system/lazyflow-offsite-forget-lazyflow.timer', '/etc/systemd/system/lazyflow-offsite-check-lazyflow.service', '/etc/systemd/system/lazyflow-offsite-check-lazyflow.timer'],
      restart: 0, disable: ['lazyflow-offsite-forget-lazyflow.timer', 'lazyflow-offsite-check-lazyflow.timer'],
    },
    {
      name: 'systemd now, a cron file and the legacy recovery cron file from before: both removed',
      mode: 'systemd', want: desired, disk: { ...all, [cronPath]: 'x', '/etc/cron.d/lazyflow-recover-lazyflow': '# lazyflow recovery of lazyflow: finish or undo\n' }, write: 0, unchanged: 12, remove: [cronPath, '/etc/cron.d/lazyflow-recover-lazyflow'], restart: 0, disable: [],
    },
    {
      name: 'a file at the legacy path that is not this project\'s legacy file (project "recover-lazyflow"\'s, say) is left alone',
      mode: 'cron', want: desiredFiles(base, 'cron', paths), disk: { '/etc/cron.d/lazyflow-recover-lazyflow': '# lazyflow schedules of recover-lazyflow: ...\n' }, write: 1, unchanged: 0, remove: [], restart: 0, disable: [],
    },
    { name: 'cron: written once', mode: 'cron', want: desiredFiles(base, 'cron', paths), disk: {}, write: 1, unchanged: 0, remove: [], restart: 0, disable: [] },
    { name: 'cron: second install changes nothing', mode: 'cron', want: desiredFiles(base, 'cron', paths), disk: { [cronPath]: cronFile(base) }, write: 0, unchanged: 1, remove: [], restart: 0, disable: [] },
    { name: 'cron: offsite turned on rewrites the file', mode: 'cron', want: desiredFiles(withOffsite, 'cron', paths), disk: { [cronPath]: cronFile(base) }, write: 1, unchanged: 0, remove: [], restart: 0, disable: [] },
    {
      name: 'another project on the host is never touched',
      mode: 'cron', want: desiredFiles(base, 'cron', paths), disk: { '/etc/cron.d/lazyflow-other': 'x', '/etc/systemd/system/lazyflow-backup-other.timer': 'x' }, write: 1, unchanged: 0, remove: [], restart: 0, disable: [],
    },
  ];
  for (const t of cases) {
    it(t.name, () => {
      const p = planInstall(t.mode, t.want, owned, ownedReader('lazyflow', paths, disk(t.disk)));
      expect(p.write).toHaveLength(t.write);
      expect(p.unchanged).toHaveLength(t.unchanged);
      expect(p.remove).toEqual(t.remove);
      expect(p.restart).toHaveLength(t.restart);
      expect(p.disable).toEqual(t.disable);
      expect(p.enable).toHaveLength(t.mode === 'systemd' ? t.want.length / 2 : 0);
    });
  }
});

describe('systemctl argv', () => {
  it('are data', () => {
    expect(daemonReloadArgs()).toEqual(['daemon-reload']);
    expect(enableNowArgs(['a.timer', 'b.timer'])).toEqual(['enable', '--now', 'a.timer', 'b.timer']);
    expect(restartArgs(['a.timer'])).toEqual(['restart', 'a.timer']);
    expect(disableNowArgs(['a.timer'])).toEqual(['disable', '--now', 'a.timer']);
    expect(showArgs(['a.timer', 'a.service'])).toEqual([
      'show', '--no-pager', '--timestamp=utc',
      '--property=Id,LoadState,ActiveState,SubState,UnitFileState,Result,LastTriggerUSec,NextElapseUSecRealtime,ExecMainStatus,ExecMainExitTimestamp',
      'a.timer', 'a.service',
    ]);
  });
});

describe('status from `systemctl show`', () => {
  const show = [
    'Id=lazyflow-backup-lazyflow.timer',
    'LoadState=loaded',
    'ActiveState=active',
    'SubState=waiting',
    'UnitFileState=enabled',
    'Result=success',
    'LastTriggerUSec=Wed 2026-12-02 03:19:12 UTC',
    'NextElapseUSecRealtime=Thu 2026-12-03 03:17:00 UTC',
    '',
    'Id=lazyflow-backup-lazyflow.service',
    'LoadState=loaded',
    'ActiveState=inactive',
    'SubState=dead',
    'Result=exit-code',
    'ExecMainStatus=1',
    'ExecMainExitTimestamp=Wed 2026-12-02 03:20:40 UTC',
    '',
    'Id=lazyflow-drill-lazyflow.timer',
    'ActiveState=active',
    'UnitFileState=enabled',
    'LastTriggerUSec=n/a',
    'NextElapseUSecRealtime=Sun 2026-12-06 04:30:00 UTC',
    '',
    'Id=lazyflow-drill-lazyflow.service',
    'ActiveState=inactive',
    'Result=success',
    'ExecMainStatus=0',
    'ExecMainExitTimestamp=',
    '',
    'Id=lazyflow-watch-lazyflow.timer',
    'ActiveState=active',
    'UnitFileState=enabled',
    'LastTriggerUSec=Wed 2026-12-02 16:00:00 UTC',
    'NextElapseUSecRealtime=Wed 2026-12-02 16:01:00 UTC',
    '',
    'Id=lazyflow-watch-lazyflow.service',
    'ActiveState=activating',
    'SubState=start',
    'Result=success',
    'ExecMainStatus=0',
    'ExecMainExitTimestamp=Wed 2026-12-02 15:59:03 UTC',
    '',
    'Id=lazyflow-recover-lazyflow.timer',
    'ActiveState=active',
    'UnitFileState=enabled',
    'LastTriggerUSec=Wed 2026-12-02 16:00:00 UTC',
    'NextElapseUSecRealtime=1764691260000000',
    '',
    'Id=lazyflow-recover-lazyflow.service',
    'ActiveState=inactive',
    'Result=success',
    'ExecMainStatus=0',
    'ExecMainExitTimestamp=Wed 2026-12-02 16:00:02 UTC',
    '',
  ].join('\n');

  it('parses blocks per unit', () => {
    const b = parseShow(show);
    expect(b).toHaveLength(8);
    expect(b[1]).toMatchObject({ Id: 'lazyflow-backup-lazyflow.service', Result: 'exit-code', ExecMainStatus: '1' });
    expect(b[3].ExecMainExitTimestamp).toBe('');
  });

  const stamps: [string | undefined, string | null][] = [
    ['Wed 2026-12-02 03:19:12 UTC', '2026-12-02T03:19:12.000Z'],
    ['2026-12-02 03:19:12.123456 UTC', '2026-12-02T03:19:12.123Z'],
    ['1764691260000000', '2025-12-02T16:01:00.000Z'],
    ['n/a', null],
    ['', null],
    ['0', null],
    [undefined, null],
    ['Wed 2026-12-02 04:19:12 CET', null],
  ];
  for (const [v, want] of stamps) it(`timestamp ${JSON.stringify(v)} -> ${want}`, () => expect(parseTimestamp(v)).toBe(want));

  const runs: [string, Record<string, string> | undefined, ReturnType<typeof lastRunOf>][] = [
    ['never ran', { ActiveState: 'inactive', Result: 'success', ExecMainStatus: '0', ExecMainExitTimestamp: '' }, null],
    ['no such unit', undefined, null],
    ['succeeded', { ActiveState: 'inactive', Result: 'success', ExecMainStatus: '0', ExecMainExitTimestamp: 'Wed 2026-12-02 03:20:40 UTC' }, { result: 'success', exitStatus: 0, finishedAt: '2026-12-02T03:20:40.000Z', ok: true, running: false }],
    ['exit 1', { ActiveState: 'failed', Result: 'exit-code', ExecMainStatus: '1', ExecMainExitTimestamp: 'Wed 2026-12-02 03:20:40 UTC' }, { result: 'exit-code', exitStatus: 1, finishedAt: '2026-12-02T03:20:40.000Z', ok: false, running: false }],
    ['killed by the timeout', { ActiveState: 'failed', Result: 'timeout', ExecMainStatus: '15', ExecMainExitTimestamp: 'Wed 2026-12-02 05:17:00 UTC' }, { result: 'timeout', exitStatus: 15, finishedAt: '2026-12-02T05:17:00.000Z', ok: false, running: false }],
    ['first run still running', { ActiveState: 'activating', SubState: 'start', Result: 'success', ExecMainStatus: '0', ExecMainExitTimestamp: '' }, { result: 'success', exitStatus: 0, finishedAt: null, ok: true, running: true }],
  ];
  for (const [name, block, want] of runs) it(`last run: ${name}`, () => expect(lastRunOf(block)).toEqual(want));

  const installed = (c: ScheduleContext) => Object.fromEntries(desiredFiles(c, 'systemd', paths).map((d) => [d.path, d.text]));
  const input = (over: Partial<Parameters<typeof scheduleStatus>[0]> = {}) => ({
    context: base,
    paths,
    systemdRunning: true,
    existing: (f: string) => installed(base)[f] ?? null,
    mtime: () => null,
    show: parseShow(show),
    command: 'node scripts/schedules.mts --config .env.prod',
    ...over,
  });

  it('systemd: each timer, its last run and result, its next run', () => {
    const s = scheduleStatus(input());
    expect(s).toMatchObject({ project: 'lazyflow', mode: 'systemd', upToDate: true, next: null });
    expect(s.jobs.map((j) => [j.id, j.installed, j.timer?.activeState, j.timer?.nextElapse, j.lastRun?.ok ?? null])).toEqual([
      ['backup', true, 'active', '2026-12-03T03:17:00.000Z', false],
      ['drill', true, 'active', '2026-12-06T04:30:00.000Z', null],
      ['watch', true, 'active', '2026-12-02T16:01:00.000Z', true],
      ['recover', true, 'active', '2025-12-02T16:01:00.000Z', true],
    ]);
    expect(s.jobs[0].lastRun).toEqual({ result: 'exit-code', exitStatus: 1, finishedAt: '2026-12-02T03:20:40.000Z', ok: false, running: false });
    expect(statusOk(s)).toBe(false); // the backup's last run failed
    expect(s.logs).toBe("journalctl -u 'lazyflow-*-lazyflow.service' -n 50");
  });

  it('systemd: all succeeded -> ok', () => {
    expect(statusOk(scheduleStatus(input({ show: parseShow(show.replace('Result=exit-code\nExecMainStatus=1', 'Result=success\nExecMainStatus=0')) })))).toBe(true);
  });

  it('systemd: a unit file differs from this checkout -> the next command is --install', () => {
    const files: Record<string, string> = { ...installed(base), '/etc/systemd/system/lazyflow-watch-lazyflow.service': 'old' };
    const s = scheduleStatus(input({ existing: (f) => files[f] ?? null }));
    expect(s.upToDate).toBe(false);
    expect(s.files.filter((f) => !f.upToDate).map((f) => f.path)).toEqual(['/etc/systemd/system/lazyflow-watch-lazyflow.service']);
    expect(s.next).toMatch(/^node scripts\/schedules\.mts --config \.env\.prod --install +# the installed schedules differ/);
  });

  it('systemd: offsite configured since the install -> its jobs are missing', () => {
    const s = scheduleStatus(input({ context: withOffsite }));
    expect(s.jobs.filter((j) => !j.installed).map((j) => j.id)).toEqual(['offsite-forget', 'offsite-check']);
    expect(s.next).toMatch(/--install/);
  });

  it('cron: which file, where the logs go, when each job last wrote there', () => {
    const files: Record<string, string> = { '/etc/cron.d/lazyflow-schedules-lazyflow': cronFile(base) };
    const s = scheduleStatus(input({ systemdRunning: false, show: [], existing: (f) => files[f] ?? null, mtime: (f) => (f.endsWith('/watch.log') ? '2026-12-02T16:00:03.000Z' : null) }));
    expect(s).toMatchObject({ mode: 'cron', upToDate: true, next: null, files: [{ path: '/etc/cron.d/lazyflow-schedules-lazyflow', upToDate: true }] });
    expect(s.logs).toMatch(/^\/srv\/lazyflow\/logs\/<job>\.log/);
    expect(s.jobs.map((j) => [j.id, j.installed, j.log?.file, j.log?.modifiedAt])).toEqual([
      ['backup', true, '/srv/lazyflow/logs/backup.log', null],
      ['drill', true, '/srv/lazyflow/logs/drill.log', null],
      ['watch', true, '/srv/lazyflow/logs/watch.log', '2026-12-02T16:00:03.000Z'],
      ['recover', true, '/srv/lazyflow/logs/recover.log', null],
    ]);
    expect(statusOk(s)).toBe(true);
  });

  it('nothing installed, no systemd: "not installed" and the command to run', () => {
    const s = scheduleStatus(input({ systemdRunning: false, show: [], existing: () => null }));
    expect(s.mode).toBe('none');
    expect(s.next).toBe('node scripts/schedules.mts --config .env.prod --install   # not installed: cron file for backup, drill, watch, recover');
    expect(statusOk(s)).toBe(false);
  });

  it('the legacy recovery cron file is reported as one to replace', () => {
    const files: Record<string, string> = { ...installed(base), '/etc/cron.d/lazyflow-recover-lazyflow': '# lazyflow recovery of lazyflow: finish\n' };
    const s = scheduleStatus(input({ existing: ownedReader('lazyflow', paths, (f) => files[f] ?? null) }));
    expect(s.files.find((f) => f.path === '/etc/cron.d/lazyflow-recover-lazyflow')).toEqual({ path: '/etc/cron.d/lazyflow-recover-lazyflow', upToDate: false });
    expect(s.next).toMatch(/--install/);
  });
});
