// The root toolkit beside an app it must not trust (issue 17): the app image runs a hostile
// entrypoint (test/fixtures/hostile-app) that keeps planting links and swapping files in data/ and
// uploads/, toward files outside STATE_DIR: a restic password, a root-owned canary, /etc/shadow,
// /root/.ssh. While it does, backup (with an offsite copy), a drill, smoke, the watch's
// observation, recover and a restore run as the schedules run them (root). Nothing outside
// STATE_DIR may change owner, mode or content, and nothing from outside data/ and uploads/ may reach
// a backup, the offsite repository or, through a restore, the app.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chownSync, closeSync, constants, existsSync, openSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeDocker } from '../support/docker.ts';
import { e2eImages, startStack, type Stack } from '../support/stack.ts';
import { mustRun, repoRoot, run, runScript, type RunResult } from '../support/run.ts';
import { manifestOf, upload } from '../support/backup.ts';

/** the fixture's targets (test/fixtures/hostile-app/hostile.sh names this directory) */
const T = '/var/tmp/lazyflow-hostile';
const SECRET = `restic password ${randomBytes(16).toString('hex')}`;
const CANARY = `root-owned canary ${randomBytes(8).toString('hex')}\n`.repeat(200);

/** owner, mode and content of a file or directory (a directory: its names), never through a link */
function fingerprint(p: string): string {
  try {
    const st = lstatSync(p);
    const what = st.isDirectory() ? readdirSync(p).sort().join(',') : st.isFile() ? readFileSync(p).toString('base64') : 'other';
    return `${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)} ${st.mtimeMs} ${what}`;
  } catch (e) {
    return `absent (${(e as NodeJS.ErrnoException).code})`;
  }
}

/** every file under dir (links reported as such, never followed) */
function filesUnder(dir: string): { path: string; link: boolean }[] {
  const out: { path: string; link: boolean }[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isSymbolicLink()) out.push({ path: p, link: true });
      else if (e.isDirectory()) walk(p);
      else out.push({ path: p, link: false });
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

/** the regular files under dir that carry the secret or the canary (read through O_NOFOLLOW: the live uploads keep flipping) */
const leaked = (dir: string) => filesUnder(dir).filter((f) => {
  if (f.link) return false;
  let fd: number;
  try {
    fd = openSync(f.path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return false; // a link by now: the app's own, never read
  }
  try {
    const text = readFileSync(fd, 'latin1');
    return text.includes(SECRET) || text.includes(CANARY.split('\n')[0]);
  } finally {
    closeSync(fd);
  }
}).map((f) => f.path);

describeDocker('a hostile app: links and swaps in data/ and uploads/ while the toolkit runs as root', () => {
  let stack: Stack;
  let work = '';
  let hostileImage = '';
  const watched: string[] = [];
  const before = new Map<string, string>();
  const script = (name: string, args: string[]): Promise<RunResult> => runScript(name, ['--config', stack.envFile, ...args], { timeoutMs: 240_000 });
  const unchanged = () => {
    const now = watched.filter((p) => fingerprint(p) !== before.get(p)).map((p) => `${p}: ${before.get(p)?.slice(0, 60)} -> ${fingerprint(p).slice(0, 60)}`);
    expect(now).toEqual([]);
  };

  beforeAll(async () => {
    rmSync(T, { recursive: true, force: true });
    mkdirSync(T, { mode: 0o700 });
    writeFileSync(join(T, 'restic-password'), SECRET, { mode: 0o600 });
    writeFileSync(join(T, 'canary'), CANARY, { mode: 0o644 });
    work = mkdtempSync(join(tmpdir(), 'lzf-e2e-hostile-'));
    const { appImage, appTag, proxyImage, proxyTag } = e2eImages();
    hostileImage = `lzf-e2e-hostile-app-${randomBytes(3).toString('hex')}`;
    await mustRun('docker', ['build', '-q', '-t', `${hostileImage}:${appTag}`, '--build-arg', `BASE=${appImage}:${appTag}`, join(repoRoot, 'test/fixtures/hostile-app')], { timeoutMs: 120_000 });
    stack = await startStack({
      name: 'hostile',
      images: { appImage: hostileImage, appTag, proxyImage, proxyTag },
      env: { OFFSITE_REPOSITORY: join(work, 'restic-repo'), OFFSITE_PASSWORD_FILE: join(T, 'restic-password') },
    });
    // everything outside STATE_DIR that the app points at, or that holds the deployment's secrets
    watched.push(T, join(T, 'restic-password'), join(T, 'canary'), '/etc/shadow', '/etc/passwd', stack.envFile);
    if (existsSync('/root/.ssh')) watched.push('/root/.ssh', ...readdirSync('/root/.ssh').map((n) => join('/root/.ssh', n)));
    for (const p of watched) before.set(p, fingerprint(p));
    const init = await script('offsite.mts', ['--init']);
    expect(init.code, init.stderr).toBe(0);
  }, 300_000);

  afterAll(async () => {
    await stack?.down();
    if (hostileImage) await run('docker', ['image', 'rm', '-f', `${hostileImage}:${e2eImages().appTag}`]);
    if (work) rmSync(work, { recursive: true, force: true });
    rmSync(T, { recursive: true, force: true });
  });

  it('backup, offsite, drill, smoke, watch, recover and restore while the app plants links: nothing outside STATE_DIR reached, nothing of it stored', async () => {
    const content = randomBytes(40_000);
    const media = await upload(stack, content, 'real.bin');
    const uploads = join(stack.stateDir, 'uploads');
    // the fixture is at work: its links are there (seen from the host)
    await expectEventually(() => ['password.bin', 'shadow.bin', 'ssh', 'outside'].every((n) => lstatSync(join(uploads, n)).isSymbolicLink()));

    const b = await script('backup.mts', ['--json', '--quiet']);
    expect(b.code, b.stderr).toBe(0);
    const id = JSON.parse(b.stdout).backup.id as string;
    expect(leaked(join(stack.stateDir, 'backups', id))).toEqual([]);
    const m = manifestOf(stack.stateDir, id);
    const paths = m.uploads.entries.map((e: { path: string }) => e.path) as string[];
    // the real upload is in; no name that was a link when opened is
    expect(paths.some((p) => readFileSync(join(stack.stateDir, 'backups', id, 'uploads', p)).equals(content))).toBe(true);
    for (const p of ['password.bin', 'shadow.bin']) expect(paths).not.toContain(p);
    expect(paths.filter((p) => p.startsWith('ssh/') || p.startsWith('outside/'))).toEqual([]);
    const backupDir = join(stack.stateDir, 'backups', id);
    expect(leaked(backupDir)).toEqual([]);
    expect(filesUnder(backupDir).filter((f) => f.link)).toEqual([]);
    // the offsite copy of it, restored by restic elsewhere
    const off = join(work, 'offsite-restore');
    await mustRun(process.env.LAZYFLOW_RESTIC_BIN || 'restic', ['-r', join(work, 'restic-repo'), '--password-file', join(T, 'restic-password'), 'restore', 'latest', '--target', off, '--no-lock', '--no-cache'], { timeoutMs: 120_000 });
    expect(filesUnder(off).length).toBeGreaterThan(2);
    expect(filesUnder(off).filter((f) => f.link)).toEqual([]);
    expect(leaked(off)).toEqual([]);

    // the drill runs the backup's image: the hostile app again, on its own copy
    const drill = await script('restore.mts', ['--drill', '--from', id, '--json', '--quiet']);
    expect(drill.code, drill.stdout + drill.stderr).toBe(0);
    const smoke = await script('smoke.mts', ['--json', '--only', 'database,uploads', '--ca', stack.caPem]);
    expect(JSON.parse(smoke.stdout).results.filter((r: { status: string }) => r.status === 'fail'), smoke.stdout).toEqual([]);
    const watch = await script('watch.mts', ['--ca', stack.caPem, '--once', '--json', '--timeout', '5']);
    expect([0, 1], watch.stderr).toContain(watch.code);
    const rec = await script('recover.mts', ['--json']);
    expect(rec.code, rec.stderr).toBe(0);

    const r = await script('restore.mts', ['--from', id, '--yes', '--quiet', '--ca', stack.caPem]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // what the restore put back is what the backup held: the app gets no file from outside
    expect(filesUnder(uploads).filter((f) => !f.link && readFileSync(f.path).equals(content))).toHaveLength(1);
    expect(leaked(uploads)).toEqual([]);
    expect(leaked(join(stack.stateDir, 'data'))).toEqual([]);
    expect(media.id).toBeTruthy();
    unchanged();
  }, 900_000);

  it('the database\'s -wal, -shm and -journal swapped for links to the canary: every reader refuses or reads as the app, the canary keeps owner, mode and content', async () => {
    const data = join(stack.stateDir, 'data');
    const flag = join(data, '.hostile-sidecars');
    writeFileSync(flag, '');
    chownSync(flag, 1000, 1000);
    await expectEventually(() => ['-shm', '-journal'].every((s) => lstatSync(join(data, `lazyflow.db${s}`)).isSymbolicLink()));

    const b = await script('backup.mts', ['--json', '--quiet']);
    const smoke = await script('smoke.mts', ['--json', '--only', 'database', '--ca', stack.caPem]);
    await script('watch.mts', ['--ca', stack.caPem, '--once', '--json', '--timeout', '5']);
    await script('recover.mts', ['--json']);
    unchanged();
    // and each says why it would not read the database
    expect(b.code).toBe(1);
    expect(b.stdout + b.stderr).toMatch(/lazyflow\.db-(wal|shm|journal) is a symbolic link/);
    expect(JSON.parse(smoke.stdout).results.find((x: { name: string }) => x.name === 'database').detail).toMatch(/is a symbolic link/);
    // no snapshot directory of the app's uid left behind
    expect(readdirSync(stack.stateDir).filter((n) => n.startsWith('.backup-snapshot-'))).toEqual([]);
  }, 600_000);
});

async function expectEventually(probe: () => boolean, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (probe()) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error('the hostile fixture never planted its links');
    await new Promise((r) => setTimeout(r, 100));
  }
}
