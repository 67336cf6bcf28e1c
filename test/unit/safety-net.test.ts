// The safety net (scripts/lib/schedules/net.mts): the verdict for every state the recovery schedule
// can be in, as a table; what smoke and preflight make of it; and the rollout's step against real
// files in a temp directory (no systemd here: the cron file, as on a VPS without systemd): installed
// once, then left alone, next to the other schedules, and re-written when the checkout moved.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cronJobBlock, ensureNet, evalNet, judgeNet, netVerdict, NET_COST, schedulePaths, warnWithoutNet, type NetEnv, type NetObservation } from '../../scripts/lib/schedules/net.mts';
import { cronFile, type ScheduleContext } from '../../scripts/lib/schedules/jobs.mts';
import { checkNet } from '../../scripts/lib/checks/preflight.mts';
import { rolloutPlan } from '../../scripts/lib/release/plan.mts';
import { stateLayout } from '../../scripts/lib/config/state.mts';
import { createLogger } from '../../scripts/lib/cli/log.mts';

const F = '/srv/lazyflow-deploy/.env.prod';
const INSTALL = `node scripts/schedules.mts --config ${F} --install`;
const obs = (o: Partial<NetObservation>): NetObservation => ({
  setting: 'auto', mode: 'cron', files: ['/etc/cron.d/lazyflow-schedules-lazyflow'], current: true, live: true, systemdRunning: false,
  timerState: null, cronRunning: true, name: '/etc/cron.d/lazyflow-schedules-lazyflow', ...o,
});
const unit = '/etc/systemd/system/lazyflow-recover-lazyflow';
const sd = (o: Partial<NetObservation>) => obs({ mode: 'systemd', files: [`${unit}.service`, `${unit}.timer`], systemdRunning: true, timerState: 'active', cronRunning: null, name: 'lazyflow-recover-lazyflow.timer', ...o });

describe('judgeNet: is recovery going to run at boot and every minute?', () => {
  const rows: [string, NetObservation, { inPlace: boolean; state: string; detail: RegExp; next: string | null }][] = [
    ['systemd timer active', sd({}), { inPlace: true, state: 'in-place', detail: /^recovery at boot and every minute: systemd timer lazyflow-recover-lazyflow\.timer \(active\)$/, next: null }],
    ['cron file, cron runs', obs({}), { inPlace: true, state: 'in-place', detail: /cron file \/etc\/cron\.d\/lazyflow-schedules-lazyflow$/, next: null }],
    ['cron file outside /etc/cron.d (the operator runs it)', obs({ live: false, cronRunning: null, name: '/tmp/x/cron.d/f' }), { inPlace: true, state: 'in-place', detail: /not in \/etc\/cron\.d: your own supervisor runs it/, next: null }],
    ['nothing installed', obs({ mode: 'none', files: [], current: false, live: false }), { inPlace: false, state: 'missing', detail: /^recovery is not installed \(no timer, no cron line\): an operation interrupted/, next: INSTALL }],
    ['units of another checkout', sd({ current: false }), { inPlace: false, state: 'stale', detail: /differs from this checkout/, next: INSTALL }],
    ['units written, systemd not running', sd({ systemdRunning: false, timerState: null }), { inPlace: false, state: 'missing', detail: /systemd does not run here/, next: INSTALL }],
    ['timer disabled', sd({ timerState: 'inactive' }), { inPlace: false, state: 'inactive', detail: /timer lazyflow-recover-lazyflow\.timer is inactive/, next: 'systemctl daemon-reload && systemctl enable --now lazyflow-recover-lazyflow.timer' }],
    ['timer not loaded', sd({ timerState: '' }), { inPlace: false, state: 'inactive', detail: /is not loaded/, next: 'systemctl daemon-reload && systemctl enable --now lazyflow-recover-lazyflow.timer' }],
    ['cron file, no cron daemon', obs({ cronRunning: false }), { inPlace: false, state: 'missing', detail: /no cron daemon runs/, next: 'apt-get install -y cron && systemctl enable --now cron   # or start crond' }],
    ['LAZYFLOW_SAFETY_NET=off, nothing installed', obs({ setting: 'off', mode: 'none' }), { inPlace: false, state: 'off', detail: /^LAZYFLOW_SAFETY_NET=off: .* must run node scripts\/recover\.mts --config \/srv\/lazyflow-deploy\/\.env\.prod at boot and every minute$/, next: null }],
  ];
  it.each(rows)('%s', (_name, o, want) => {
    const v = judgeNet(o, F);
    expect({ ...v, detail: undefined }).toEqual({ inPlace: want.inPlace, state: want.state, detail: undefined, next: want.next });
    expect(v.detail).toMatch(want.detail);
    // every "not in place" names what it costs
    if (!v.inPlace && v.state !== 'off') expect(v.detail).toContain(NET_COST);
  });
});

describe('what smoke, preflight and the dry-run plan make of it', () => {
  it('smoke: pass in place, warn with the command when not, skip when off; never a failure', () => {
    expect(evalNet(judgeNet(sd({}), F)).status).toBe('pass');
    expect(evalNet(judgeNet(obs({ mode: 'none' }), F))).toEqual({ status: 'warn', detail: expect.stringMatching(new RegExp(`; install it: ${INSTALL.replace(/[.]/g, '\\.')}$`)) });
    expect(evalNet(judgeNet(obs({ setting: 'off' }), F)).status).toBe('skip');
  });
  it('preflight: a warning with the fix when missing (the rollout installs it), an error only for a bad LAZYFLOW_SAFETY_NET', () => {
    expect(checkNet(judgeNet(obs({ mode: 'none' }), F), null, F)).toEqual([{ name: 'safety net', ok: true, level: 'warn', message: expect.stringContaining('the next rollout installs it before its swap, or now: ' + INSTALL), fix: INSTALL }]);
    expect(checkNet(judgeNet(sd({}), F), null, F)).toMatchObject([{ ok: true, level: 'ok' }]);
    expect(checkNet(judgeNet(obs({ setting: 'off' }), F), null, F)).toMatchObject([{ ok: true, level: 'ok', message: expect.stringMatching(/^LAZYFLOW_SAFETY_NET=off/) }]);
    expect(checkNet({ error: '' }, 'no', F)).toMatchObject([{ ok: false, level: 'error', key: 'LAZYFLOW_SAFETY_NET', message: 'LAZYFLOW_SAFETY_NET=no is neither auto nor off' }]);
  });
  it('the dry-run plan has the step only when it is given', () => {
    const base = { appTag: 't', image: 'i', dirty: false, previous: undefined, build: { ref: 'i:t', argv: [] } as never, composeUp: [], keepImages: 5, telegram: false, notify: false };
    expect(rolloutPlan(base).map((s) => s.phase)).not.toContain('safety net');
    const steps = rolloutPlan({ ...base, safetyNet: judgeNet(obs({ mode: 'none' }), F) });
    expect(steps.map((s) => s.phase).slice(0, 3)).toEqual(['preflight', 'lock', 'safety net']);
    expect(steps[2].what).toMatch(/^install recovery \(scripts\/recover\.mts at boot and every minute/);
  });
  it('cronJobBlock: one job\'s lines of the cron file', () => {
    const c: ScheduleContext = { project: 'p', nodeBin: '/n', scriptsDir: '/s', envFile: '/e', projectDir: '/d', logDir: '/l', stateDir: '/st', localRepository: null, offsite: false };
    const all = cronFile(c);
    const block = cronJobBlock(all, 'recover')!;
    expect(block.split('\n').map((l) => l.split(' ')[0])).toEqual(['#', '@reboot', '*']);
    expect(cronJobBlock(cronFile({ ...c, only: ['recover'] }), 'recover')).toBe(block);
    expect(cronJobBlock(cronFile({ ...c, only: ['backup'] }), 'recover')).toBeNull();
    expect(cronJobBlock(all, 'watch')).toMatch(/^# watch: .*\n\* \* \* \* \* root /);
  });
});

describe('ensureNet: the rollout\'s step, on files in a temp dir (cron: no systemd here)', () => {
  let dir = '';
  let env: NetEnv;
  const lines: string[] = [];
  const log = createLogger({ stdout: { write: (s: string) => lines.push(s) } as never, stderr: { write: (s: string) => lines.push(s) } as never });
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'lzf-net-'));
    const values = { COMPOSE_PROJECT_NAME: 'netp', LAZYFLOW_UNIT_DIR: join(dir, 'systemd'), LAZYFLOW_CRON_DIR: join(dir, 'cron.d') };
    env = { project: 'netp', file: join(dir, 'env.prod'), projectDir: dir, values, layout: stateLayout(join(dir, 'state')) };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const cronPath = () => join(dir, 'cron.d', 'lazyflow-schedules-netp');

  it('paths: the env file\'s keys, else /etc', () => {
    expect(schedulePaths({})).toEqual({ unitDir: '/etc/systemd/system', cronDir: '/etc/cron.d' });
    expect(schedulePaths(env.values)).toEqual({ unitDir: join(dir, 'systemd'), cronDir: join(dir, 'cron.d') });
  });

  it('missing -> installed (recovery only) -> left alone; rollback and restore warn only while it is missing', async () => {
    lines.length = 0;
    expect(await warnWithoutNet(env, log, 'restore')).toMatchObject({ inPlace: false, state: 'missing' });
    expect(lines.join('')).toMatch(/safety net: NOT in place for this restore: recovery is not installed .*; install it: node scripts\/schedules\.mts --config \S+env\.prod --install/);

    lines.length = 0;
    const v = await ensureNet(env, log);
    expect(v).toMatchObject({ inPlace: true, state: 'in-place' });
    expect(lines.join('')).toContain(`wrote ${cronPath()}`);
    expect(lines.join('')).toMatch(/safety net: recovery at boot and every minute: cron file .* \(installed by this rollout\)/);
    const text = readFileSync(cronPath(), 'utf8');
    expect(text.split('\n').filter((l) => l && !l.startsWith('#') && !/^[A-Z_]+=/.test(l)).map((l) => l.split(' root ')[0])).toEqual(['@reboot', '* * * * *']);
    expect(text).toMatch(/recover\.mts --config \S+ --quiet/);
    const st = statSync(cronPath());

    lines.length = 0;
    expect(await ensureNet(env, log)).toMatchObject({ inPlace: true });
    expect(lines.join('')).not.toContain('wrote');
    expect(statSync(cronPath()).mtimeMs).toBe(st.mtimeMs);
    lines.length = 0;
    await warnWithoutNet(env, log, 'rollback');
    expect(lines.join('')).not.toMatch(/NOT in place/);
  });

  it('next to the schedules already installed: they stay; a moved checkout is re-written', async () => {
    // the operator's full install (what schedules.mts --install writes), then a checkout that moved
    const c: ScheduleContext = { project: 'netp', nodeBin: process.execPath, scriptsDir: '/old/checkout/scripts', envFile: env.file, projectDir: '/old/checkout', logDir: env.layout.logs, stateDir: env.layout.root, localRepository: null, offsite: false };
    mkdirSync(join(dir, 'cron.d'), { recursive: true });
    writeFileSync(cronPath(), cronFile(c));
    expect(await netVerdict(env)).toMatchObject({ inPlace: false, state: 'stale' });
    lines.length = 0;
    expect(await ensureNet(env, log)).toMatchObject({ inPlace: true });
    const text = readFileSync(cronPath(), 'utf8');
    for (const id of ['backup', 'drill', 'watch', 'recover']) expect(text).toContain(`# ${id}: `);
    expect(text).not.toContain('/old/checkout');
  });

  it('LAZYFLOW_SAFETY_NET=off: nothing written, one line that says who runs recovery', async () => {
    const off: NetEnv = { ...env, values: { ...env.values, LAZYFLOW_SAFETY_NET: 'off', LAZYFLOW_CRON_DIR: join(dir, 'cron-off') } };
    lines.length = 0;
    expect(await ensureNet(off, log)).toMatchObject({ inPlace: false, state: 'off' });
    expect(lines.join('')).toMatch(/safety net: LAZYFLOW_SAFETY_NET=off: the toolkit neither installs nor checks recovery/);
    expect(() => statSync(join(dir, 'cron-off'))).toThrow();
  });
});
