// The units' sandbox and the trust check every scheduled run makes first: what each job may write,
// every unit's `systemd-analyze security --offline=true` score (<= 5.0; computed when systemd-analyze
// is installed, as test/prepare-machine.sh does), and who may write what root runs.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { jobs, systemdUnits, writePaths, type ScheduleContext } from '../../scripts/lib/schedules/jobs.mts';
import { checkPath, untrusted, type Owned } from '../../scripts/lib/schedules/trust.mts';
import { baseScheduleContext } from '../support/schedule-context.ts';

const base: ScheduleContext = { ...baseScheduleContext, offsite: true };

describe('what each unit may write', () => {
  it('STATE_DIR and the Docker config for every job; a local offsite repository only for the jobs that write it', () => {
    const c = { ...base, localRepository: '/mnt/usb/lazyflow' };
    const byJob = Object.fromEntries(jobs(c).map((j) => [j.id, writePaths(c, j)]));
    expect(byJob).toEqual({
      backup: ['/srv/lazyflow', '/mnt/usb/lazyflow', '-/root/.docker'],
      'offsite-forget': ['/srv/lazyflow', '/mnt/usb/lazyflow', '-/root/.docker'],
      'offsite-check': ['/srv/lazyflow', '/mnt/usb/lazyflow', '-/root/.docker'],
      drill: ['/srv/lazyflow', '-/root/.docker'],
      watch: ['/srv/lazyflow', '-/root/.docker'],
      recover: ['/srv/lazyflow', '-/root/.docker'],
    });
  });

  it('a STATE_DIR with a space is one quoted word of ReadWritePaths=', () => {
    const c = { ...base, stateDir: '/srv/my state', logDir: '/srv/my state/logs' };
    const s = systemdUnits(c).find((u) => u.file === 'lazyflow-backup-lazyflow.service')!.text;
    expect(s).toContain('\nReadWritePaths="/srv/my state" -/root/.docker\n');
  });
});

const analyze = (() => {
  for (const p of ['/usr/bin/systemd-analyze', '/bin/systemd-analyze']) {
    try {
      execFileSync(p, ['--version'], { stdio: 'ignore' });
      return p;
    } catch {
      /* next */
    }
  }
  return null;
})();

describe.skipIf(!analyze)('systemd-analyze security --offline=true: every unit <= 5.0', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lzf-units-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  for (const u of systemdUnits(base).filter((x) => x.file.endsWith('.service'))) {
    it(u.file, () => {
      writeFileSync(join(dir, u.file), u.text);
      const out = execFileSync(analyze!, ['security', '--offline=true', '--no-pager', join(dir, u.file)], { encoding: 'utf8', env: { ...process.env, SYSTEMD_COLORS: '0' } });
      const m = /Overall exposure level for \S+: (\d+\.\d)/.exec(out);
      expect(m, out).not.toBeNull();
      console.log(`${u.file}: ${m![1]}`);
      expect(Number(m![1])).toBeLessThanOrEqual(5.0);
    });
  }
  it('the same job without the sandbox scores UNSAFE: the measure has teeth', () => {
    const u = systemdUnits(base)[0]!;
    const bare = u.text.split('\n').filter((l) => !/^(UMask|NoNew|Protect|ReadWrite|Private|Device|Restrict|Lock|Remove|Keyring|SystemCall|Capability)/.test(l)).join('\n');
    writeFileSync(join(dir, 'bare.service'), bare);
    const out = execFileSync(analyze!, ['security', '--offline=true', '--no-pager', join(dir, 'bare.service')], { encoding: 'utf8' });
    expect(Number(/Overall exposure level for \S+: (\d+\.\d)/.exec(out)![1])).toBeGreaterThan(9);
  });
});

describe('who may write what a schedule runs as root', () => {
  const root = (mode: number, o: Partial<Owned> = {}): Owned => ({ uid: 0, mode, isDirectory: false, isSymbolicLink: false, ...o });
  const table: [string, Owned, { ancestor: boolean; childOwnedByRoot?: boolean }, RegExp | null][] = [
    ['root 644 file', root(0o100644), { ancestor: false }, null],
    ['root 755 directory', root(0o40755, { isDirectory: true }), { ancestor: true, childOwnedByRoot: true }, null],
    ['file of uid 1000', { ...root(0o100644), uid: 1000 }, { ancestor: false }, /uid 1000/],
    ['group-writable file', root(0o100664), { ancestor: false }, /its group/],
    ['world-writable env file', root(0o100666), { ancestor: false }, /everyone/],
    ['world-writable directory above', root(0o40777, { isDirectory: true }), { ancestor: true, childOwnedByRoot: true }, /everyone/],
    ['sticky /tmp above a root-owned file', root(0o41777, { isDirectory: true }), { ancestor: true, childOwnedByRoot: true }, null],
    ['sticky /tmp above a file of another user', root(0o41777, { isDirectory: true }), { ancestor: true, childOwnedByRoot: false }, /everyone/],
    ['a symlink (its target is checked)', root(0o120777, { isSymbolicLink: true }), { ancestor: false }, null],
  ];
  for (const [name, st, o, want] of table) {
    it(name, () => {
      const r = untrusted(st, o);
      if (want) expect(r).toMatch(want);
      else expect(r).toBeNull();
    });
  }

  it('on disk: a group-writable env file, a world-writable directory above a script, a link to a writable node', () => {
    const d = mkdtempSync(join(tmpdir(), 'lzf-trust-'));
    try {
      chmodSync(d, 0o755);
      writeFileSync(join(d, 'env'), 'X=1\n');
      chmodSync(join(d, 'env'), 0o600);
      expect(checkPath(join(d, 'env'))).toEqual([]);
      chmodSync(join(d, 'env'), 0o660);
      expect(checkPath(join(d, 'env'))).toEqual([{ path: join(d, 'env'), why: 'writable by its group (mode 660)' }]);
      mkdirSync(join(d, 'open'));
      chmodSync(join(d, 'open'), 0o777);
      writeFileSync(join(d, 'open', 'backup.mts'), '');
      expect(checkPath(join(d, 'open', 'backup.mts')).map((p) => p.path)).toEqual([join(d, 'open')]);
      writeFileSync(join(d, 'node'), '');
      chmodSync(join(d, 'node'), 0o757);
      symlinkSync(join(d, 'node'), join(d, 'node-link'));
      expect(checkPath(join(d, 'node-link')).map((p) => p.path)).toEqual([join(d, 'node')]);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('a scheduled run refuses (exit 2, naming the path) an env file others can write, before it does anything', () => {
    const d = mkdtempSync(join(tmpdir(), 'lzf-trust-run-'));
    try {
      chmodSync(d, 0o755);
      const env = join(d, '.env.prod');
      writeFileSync(env, `STATE_DIR=${join(d, 'state')}\n`);
      chmodSync(env, 0o666);
      const script = join(import.meta.dirname, '..', '..', 'scripts', 'status.mts');
      const run = () => spawnSync(process.execPath, [script, '--config', env], { encoding: 'utf8', env: { ...process.env, LAZYFLOW_TRUST_CHECK: '1', NO_COLOR: '1' } });
      const bad = run();
      expect(bad.status).toBe(2);
      expect(bad.stderr).toContain(`refusing to run as a schedule: ${env} is writable by everyone (mode 666)`);
      chmodSync(env, 0o600);
      expect(run().stderr).not.toContain('refusing');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
