// The schedules as installed by schedules.mts: every generated unit passes `systemd-analyze verify`;
// --install / --status / --remove with the unit and cron directories in a temp dir (no systemd here)
// are idempotent; and every command the units and the cron file run, run exactly as systemd and cron
// would run it (the unit's WorkingDirectory and Environment and nothing else; cron's sh with the
// file's variables), exits 0 against a real stack with an offsite repository: backup, offsite
// retention and check, drill, watch and recovery.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describeDocker, requireDocker } from '../support/docker.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { run, runScript, repoRoot, type RunResult } from '../support/run.ts';
import { RESTIC_BIN } from '../support/offsite-backends.ts';
import { backupDirs } from '../support/backup.ts';

const both = (r: RunResult) => `${r.stdout}\n${r.stderr}`;
const explain = (r: RunResult) => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
const JOBS_OFFSITE = ['backup', 'offsite-forget', 'offsite-check', 'drill', 'watch', 'recover'];

function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}
const systemdAnalyze = which('systemd-analyze');

/** an env file for schedules.mts only (it reads COMPOSE_PROJECT_NAME, STATE_DIR and OFFSITE_REPOSITORY) */
function envFile(dir: string, project: string, offsite: boolean): string {
  const f = join(dir, `${project}.env`);
  const lines = [`COMPOSE_PROJECT_NAME=${project}`, `STATE_DIR=${join(dir, `state-${project}`)}`, ...(offsite ? [`OFFSITE_REPOSITORY=${join(dir, 'repo')}`, `OFFSITE_PASSWORD_FILE=${join(dir, 'pw')}`] : [])];
  writeFileSync(f, lines.join('\n') + '\n', { mode: 0o600 });
  chmodSync(f, 0o600);
  return f;
}

const schedules = (args: string[]) => runScript('schedules.mts', args, { timeoutMs: 60_000 });

/** a unit file as systemd reads it: [Service] keys (Environment= may repeat) */
function readUnit(text: string): { exec: string[]; cwd: string; env: Record<string, string> } {
  const lines = text.split('\n');
  const val = (k: string) => lines.filter((l) => l.startsWith(`${k}=`)).map((l) => l.slice(k.length + 1));
  const env: Record<string, string> = {};
  for (const e of val('Environment').flatMap(systemdSplit)) {
    const i = e.indexOf('=');
    env[e.slice(0, i)] = e.slice(i + 1);
  }
  const [exec] = val('ExecStart');
  const [cwd] = val('WorkingDirectory');
  return { exec: systemdSplit(exec), cwd: cwd.replace(/%%/g, '%'), env };
}

/** systemd's word splitting of ExecStart=/Environment= (quotes, C escapes), then %% and $$ */
function systemdSplit(s: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < s.length) {
    while (s[i] === ' ') i++;
    if (i >= s.length) break;
    let w = '';
    if (s[i] === '"' || s[i] === "'") {
      const q = s[i++];
      while (i < s.length && s[i] !== q) {
        if (s[i] === '\\' && q === '"') i++;
        w += s[i++];
      }
      i++;
    } else while (i < s.length && s[i] !== ' ') w += s[i++];
    words.push(w.replace(/%%/g, '%').replace(/\$\$/g, '$'));
  }
  return words;
}

describe('schedule units: systemd-analyze verify', () => {
  if (!systemdAnalyze) {
    if (requireDocker) {
      it('needs systemd-analyze (REQUIRE_DOCKER=1)', () => {
        throw new Error('REQUIRE_DOCKER=1 but systemd-analyze is missing. Run: bash test/prepare-machine.sh (installs Debian\'s systemd package for it)');
      });
    } else {
      console.warn('\n!!! SKIPPING systemd-analyze verify of the schedule units: systemd-analyze is missing (bash test/prepare-machine.sh installs it).\n');
      it.skip('systemd-analyze verify', () => {});
    }
    return;
  }
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'lzf-schedules-verify-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const offsite of [false, true]) {
    it(`every unit ${offsite ? 'with' : 'without'} an offsite repository verifies without a warning`, async () => {
      const unitDir = join(dir, `units-${offsite}`);
      const cfg = envFile(dir, offsite ? 'odd_name-2' : 'lazyflow', offsite);
      const r = await schedules(['--config', cfg, '--install', '--mode', 'systemd', '--unit-dir', unitDir, '--cron-dir', join(dir, 'cron')]);
      expect(r.code, explain(r)).toBe(0);
      const files = readdirSync(unitDir).sort();
      expect(files).toHaveLength(offsite ? 12 : 8);
      const v = await run(systemdAnalyze, ['verify', '--man=no', ...files.map((f) => join(unitDir, f))], { cwd: unitDir });
      // verify exits 0 on a key it ignores: a clean run prints nothing at all
      expect(v.code, explain(v)).toBe(0);
      expect(`${v.stdout}${v.stderr}`.trim(), explain(v)).toBe('');
      // and verify does fail on a unit whose ExecStart binary is missing: the check has teeth
      const broken = join(dir, 'lazyflow-broken-x.service');
      writeFileSync(broken, readFileSync(join(unitDir, files.find((f) => f.endsWith('.service'))!), 'utf8').replace(/^ExecStart=\S+/m, 'ExecStart=/nonexistent/node'));
      const b = await run(systemdAnalyze, ['verify', '--man=no', broken], { cwd: dir });
      expect(b.code, explain(b)).not.toBe(0);
    });
  }
});

describe('schedules.mts --install / --status / --remove into temp dirs (no systemd)', () => {
  let dir = '';
  let unitDir = '';
  let cronDir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'lzf-schedules-install-'));
    unitDir = join(dir, 'systemd');
    cronDir = join(dir, 'cron.d');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const at = () => ['--unit-dir', unitDir, '--cron-dir', cronDir];

  it('cron: not installed -> written once -> a second --install changes nothing -> --remove deletes it', async () => {
    const cfg = envFile(dir, 'cronstack', false);
    const cronPath = join(cronDir, 'lazyflow-schedules-cronstack');
    const before = await schedules(['--config', cfg, '--status', '--json', ...at()]);
    expect(before.code, explain(before)).toBe(1);
    expect(JSON.parse(before.stdout)).toMatchObject({ mode: 'none', next: expect.stringMatching(/--install/) });
    const human = await schedules(['--config', cfg, '--status', ...at()]);
    expect(human.stdout).toMatch(/NOT installed\nnext: node .*schedules\.mts --config .* --install/);

    const dry = await schedules(['--config', cfg, '--install', '--dry-run', '--mode', 'cron', ...at()]);
    expect(dry.code, explain(dry)).toBe(0);
    expect(dry.stdout).toContain(`# ${cronPath}\n`);
    expect(existsSync(cronDir)).toBe(false); // --dry-run changes nothing

    const first = await schedules(['--config', cfg, '--install', '--mode', 'cron', ...at()]);
    expect(first.code, explain(first)).toBe(0);
    expect(both(first)).toContain(`wrote ${cronPath}`);
    const text = readFileSync(cronPath, 'utf8');
    expect(dry.stdout).toContain(text); // what --dry-run printed is what --install wrote
    expect(statSync(cronPath).mode & 0o777).toBe(0o644);
    expect(text).toMatch(/^17 3 \* \* \* root umask 077; cd /m);
    expect(text).not.toMatch(/offsite/);
    const st = statSync(cronPath);

    const second = await schedules(['--config', cfg, '--install', '--mode', 'cron', ...at()]);
    expect(second.code, explain(second)).toBe(0);
    expect(both(second)).toContain('already installed, nothing changed');
    expect(both(second)).not.toContain('wrote');
    const st2 = statSync(cronPath);
    expect([st2.ino, st2.mtimeMs]).toEqual([st.ino, st.mtimeMs]);

    const status = await schedules(['--config', cfg, '--status', '--json', ...at()]);
    expect(status.code, explain(status)).toBe(0);
    const s = JSON.parse(status.stdout);
    expect(s).toMatchObject({ mode: 'cron', upToDate: true, next: null, files: [{ path: cronPath, upToDate: true }] });
    expect(s.jobs.map((j: { id: string; installed: boolean }) => `${j.id}:${j.installed}`)).toEqual(['backup:true', 'drill:true', 'watch:true', 'recover:true']);
    expect(s.logs).toContain(join(dir, 'state-cronstack', 'logs'));

    // offsite configured afterwards: status says the file differs; --install rewrites it
    const cfgOff = envFile(dir, 'cronstack', true);
    const differs = await schedules(['--config', cfgOff, '--status', ...at()]);
    expect(differs.code, explain(differs)).toBe(1);
    expect(differs.stdout).toMatch(/differ/);
    const again = await schedules(['--config', cfgOff, '--install', '--mode', 'cron', ...at()]);
    expect(both(again)).toContain(`wrote ${cronPath}`);
    expect(readFileSync(cronPath, 'utf8')).toMatch(/^10 5 \* \* 0 root .*--check --read-data-subset 5\\% /m);

    const removed = await schedules(['--config', cfgOff, '--remove', ...at()]);
    expect(removed.code, explain(removed)).toBe(0);
    expect(both(removed)).toContain(`removed ${cronPath}`);
    expect(existsSync(cronPath)).toBe(false);
    const none = await schedules(['--config', cfgOff, '--remove', ...at()]);
    expect(none.code).toBe(0);
    expect(both(none)).toContain('nothing installed');
  });

  it('systemd files without systemd: written once, unchanged the second time; switching to cron removes them; two projects never collide', async () => {
    const a = envFile(dir, 'stack-a', false);
    const b = envFile(dir, 'stack-b', true);
    for (const cfg of [a, b]) {
      const r = await schedules(['--config', cfg, '--install', '--mode', 'systemd', ...at()]);
      expect(r.code, explain(r)).toBe(0);
      expect(both(r)).toMatch(/systemd (is not running here|does not load units from)/);
    }
    expect(readdirSync(unitDir).filter((f) => f.endsWith('-stack-a.timer'))).toHaveLength(4);
    expect(readdirSync(unitDir).filter((f) => f.endsWith('-stack-b.timer'))).toHaveLength(6);
    const again = await schedules(['--config', a, '--install', '--mode', 'systemd', ...at()]);
    expect(both(again)).toContain('already installed, nothing changed');
    const status = await schedules(['--config', a, '--status', '--json', ...at()]);
    expect(JSON.parse(status.stdout)).toMatchObject({ mode: 'systemd', upToDate: true });

    // the legacy recovery cron file of stack-a (recover.mts --install wrote it) is replaced
    mkdirSync(cronDir, { recursive: true });
    writeFileSync(join(cronDir, 'lazyflow-recover-stack-a'), '# lazyflow recovery of stack-a: finish or undo an interrupted operation\n* * * * * root true\n');
    const toCron = await schedules(['--config', a, '--install', '--mode', 'cron', ...at()]);
    expect(toCron.code, explain(toCron)).toBe(0);
    expect(readdirSync(unitDir).filter((f) => f.endsWith('-stack-a.timer') || f.endsWith('-stack-a.service'))).toEqual([]);
    expect(readdirSync(cronDir).sort()).toEqual(['lazyflow-schedules-stack-a']);
    // stack-b untouched
    expect(readdirSync(unitDir).filter((f) => f.endsWith('-stack-b.service'))).toHaveLength(6);
    for (const cfg of [a, b]) expect((await schedules(['--config', cfg, '--remove', ...at()])).code).toBe(0);
    expect(readdirSync(unitDir)).toEqual([]);
    expect(readdirSync(cronDir)).toEqual([]);
  });

  it('usage: exactly one of --install, --status, --remove', async () => {
    const cfg = envFile(dir, 'usage', false);
    expect((await schedules(['--config', cfg])).code).toBe(2);
    expect((await schedules(['--config', cfg, '--install', '--remove'])).code).toBe(2);
    expect((await schedules(['--config', cfg, '--status', '--mode', 'launchd'])).code).toBe(2);
  });
});

describeDocker('the scheduled commands, run as systemd and cron would run them, against a real stack', () => {
  let stack: Stack;
  let dir = '';
  let unitDir = '';
  let cronDir = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lzf-schedules-run-'));
    const pw = join(dir, 'restic-password');
    writeFileSync(pw, randomBytes(24).toString('hex'), { mode: 0o600 });
    // a local restic repository; restic by absolute path, as RUNBOOK says when it is not on the units' PATH
    const restic = RESTIC_BIN.includes('/') ? RESTIC_BIN : (which(RESTIC_BIN) ?? RESTIC_BIN);
    stack = await startStack({
      name: 'schedules',
      pebble: false,
      env: { OFFSITE_REPOSITORY: join(dir, 'restic-repo'), OFFSITE_PASSWORD_FILE: pw, OFFSITE_RESTIC: restic },
    });
    const init = await runScript('offsite.mts', ['--config', stack.envFile, '--init'], { timeoutMs: 120_000 });
    expect(init.code, explain(init)).toBe(0);
    unitDir = join(dir, 'systemd');
    cronDir = join(dir, 'cron.d');
    // two installs side by side (a cron install removes this project's units from its --unit-dir)
    for (const [mode, units] of [['systemd', unitDir], ['cron', join(dir, 'no-systemd')]]) {
      const r = await schedules(['--config', stack.envFile, '--install', '--mode', mode, '--unit-dir', units, '--cron-dir', cronDir]);
      expect(r.code, explain(r)).toBe(0);
    }
  }, 300_000);

  afterAll(async () => {
    await stack?.down();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('each unit: its ExecStart in its WorkingDirectory with its Environment only, in schedule order, exits 0', async () => {
    const services = JOBS_OFFSITE.map((id) => join(unitDir, `lazyflow-${id}-${stack.project}.service`));
    for (const f of services) expect(existsSync(f), f).toBe(true);
    for (const f of services) {
      const u = readUnit(readFileSync(f, 'utf8'));
      expect(u.cwd).toBe(repoRoot);
      expect(u.env).toEqual({ PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', NO_COLOR: '1', LAZYFLOW_TRUST_CHECK: '1' });
      expect(u.exec).toContain('--config');
      expect(u.exec[u.exec.indexOf('--config') + 1]).toBe(stack.envFile);
      const [bin, ...args] = u.exec;
      const r = await run(bin, args, { cwd: u.cwd, env: cleanEnv(u.env), timeoutMs: 400_000 });
      expect(r.code, `${f}\n${u.exec.join(' ')}\n${explain(r)}`).toBe(0);
      if (f.includes('-backup-')) {
        // a real backup, and (OFFSITE_REPOSITORY set) uploaded: the offsite jobs that follow have a snapshot to keep and check
        expect(backupDirs(stack.stateDir)).toHaveLength(1);
        const l = await runScript('offsite.mts', ['--config', stack.envFile, '--list', '--json'], { timeoutMs: 120_000 });
        expect(l.code, explain(l)).toBe(0);
        expect(JSON.parse(l.stdout).backups.filter((b: { offsite: unknown }) => b.offsite)).toHaveLength(1);
      }
    }
  }, 1_200_000);

  it('each cron line: through /bin/sh as cron runs it (its % unescaped, the file\'s variables), exits 0 and logs to STATE_DIR/logs', async () => {
    const file = readFileSync(join(cronDir, `lazyflow-schedules-${stack.project}`), 'utf8');
    const vars: Record<string, string> = {};
    const commands: { when: string; user: string; cmd: string }[] = [];
    for (const l of file.split('\n')) {
      if (!l || l.startsWith('#')) continue;
      const v = /^([A-Z_]+)=(.*)$/.exec(l);
      if (v) {
        vars[v[1]] = v[2];
        continue;
      }
      const m = /^(@reboot|(?:\S+ ){4}\S+) (\S+) (.*)$/.exec(l);
      expect(m, l).not.toBeNull();
      commands.push({ when: m![1], user: m![2], cmd: m![3] });
    }
    expect(vars).toEqual({ SHELL: '/bin/sh', PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', CRON_TZ: 'UTC' });
    expect(commands.map((c) => c.when)).toEqual(['17 3 * * *', '40 3 * * *', '10 5 * * 0', '30 4 * * 0', '* * * * *', '@reboot', '* * * * *']);
    expect(new Set(commands.map((c) => c.user))).toEqual(new Set(['root']));
    // the @reboot line sleeps 20 s first: run the every-minute line of the same job instead
    const distinct = commands.filter((c) => c.when !== '@reboot');
    for (const c of distinct) {
      // cron: an unescaped % ends the command, \% is a literal %; then the line goes to $SHELL -c
      expect(c.cmd.replace(/\\%/g, ''), c.cmd).not.toContain('%');
      const cmd = c.cmd.replace(/\\%/g, '%');
      const r = await run(vars.SHELL, ['-c', cmd], { cwd: '/root', env: cleanEnv({ ...vars, HOME: '/root', LOGNAME: 'root' }), timeoutMs: 400_000 });
      const log = /\s>>(\S+) 2>&1$/.exec(cmd)![1];
      expect(r.code, `${cmd}\n${explain(r)}\n--- ${log} ---\n${existsSync(log) ? readFileSync(log, 'utf8') : '(none)'}`).toBe(0);
      expect(existsSync(log), log).toBe(true);
    }
    expect(readdirSync(join(stack.stateDir, 'logs')).filter((f) => f.endsWith('.log') && f !== 'ops.log').sort()).toEqual(
      ['backup.log', 'drill.log', 'offsite-check.log', 'offsite-forget.log', 'recover.log', 'watch.log'],
    );
    const st = await schedules(['--config', stack.envFile, '--status', '--json', '--unit-dir', join(dir, 'no-systemd'), '--cron-dir', cronDir]);
    const s = JSON.parse(st.stdout);
    expect(s.mode).toBe('cron');
    for (const j of s.jobs) expect(j.log.modifiedAt, j.id).not.toBeNull();
  }, 1_200_000);

  it('status.mts shows the schedules as schedules.mts reads them (here: none in /etc, and the command to install them)', async () => {
    const r = await runScript('status.mts', ['--config', stack.envFile, '--json'], { timeoutMs: 60_000 });
    const s = JSON.parse(r.stdout);
    if (existsSync(`/etc/cron.d/lazyflow-schedules-${stack.project}`) || existsSync(`/etc/systemd/system/lazyflow-watch-${stack.project}.timer`)) throw new Error('this test project has schedules in /etc: a leftover of another run?');
    expect(s.timers).toEqual({ installed: false, units: [], note: `not installed: node scripts/schedules.mts --config ${stack.envFile} --install` });
  });
});

/** the process environment systemd or cron gives: only these variables (the test runner's are not inherited) */
function cleanEnv(vars: Record<string, string>): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const k of Object.keys(process.env)) env[k] = undefined;
  return { ...env, ...vars };
}
