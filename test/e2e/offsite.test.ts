// Offsite backups against a running stack and a real restic REST server (rclone serve restic):
// upload under writes, restore from offsite, the backend dying mid-upload, a wrong password,
// retention offsite, disaster recovery from an empty machine following RUNBOOK word for word, the
// records the watch (offsite-stale) and status read instead of restic, and
// a damaged pack file. One stack for the whole file; the cases build on each other in order.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync, chmodSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describeDocker } from '../support/docker.ts';
import { startStack, e2eImages, type Stack } from '../support/stack.ts';
import { appContainer, backupDirs, createTask, download, listTasks, manifestOf, readDb, sha256, startWriter, until, upload } from '../support/backup.ts';
import { offsiteMissingReason, startBackend, type OffsiteBackend } from '../support/offsite-backends.ts';
import { ReleaseSource } from '../support/release-source.mts';
import { mustRun, repoRoot, run, runScript, type RunResult } from '../support/run.ts';

/** repository:tag references of an image repository (removing these leaves other tags of the same image alone) */
async function imageRefs(repository: string): Promise<string[]> {
  const out = (await run('docker', ['images', repository, '--format', '{{.Repository}}:{{.Tag}}'])).stdout;
  return [...new Set(out.split('\n').map((l) => l.trim()).filter((l) => l && !l.endsWith(':<none>')))];
}

const missing = await offsiteMissingReason(['rest']);
if (missing && process.env.REQUIRE_DOCKER === '1') throw new Error(`offsite tools unavailable with REQUIRE_DOCKER=1: ${missing}`);

/** an env file like the stack's with some keys replaced */
function envVariant(stack: Stack, name: string, over: Record<string, string>): string {
  const lines = readFileSync(stack.envFile, 'utf8').split('\n').filter((l) => !Object.keys(over).some((k) => l.startsWith(`${k}=`)));
  const f = join(stack.runDir, name);
  writeFileSync(f, [...lines, ...Object.entries(over).map(([k, v]) => `${k}=${v}`)].join('\n') + '\n', { mode: 0o600 });
  chmodSync(f, 0o600);
  return f;
}

describeDocker('offsite backups with a running stack', () => {
  let stack: Stack;
  let be: OffsiteBackend;
  let src: ReleaseSource;
  let appImage = '';
  const script = (name: string, args: string[], config?: string, timeoutMs = 240_000): Promise<RunResult> => runScript(name, ['--config', config ?? stack.envFile, ...args], { timeoutMs });
  const offsiteIds = async () => {
    const l = await script('offsite.mts', ['--list', '--json']);
    expect(l.code, l.stderr).toBe(0);
    return JSON.parse(l.stdout).backups.filter((r: { offsite: unknown }) => r.offsite).map((r: { id: string }) => r.id) as string[];
  };
  const fingerprint = async () => ({ app: await appContainer(stack), tasks: (await listTasks(stack)).map((t) => t.title), backups: backupDirs(stack.stateDir) });

  beforeAll(async () => {
    if (missing) throw new Error(missing);
    be = await startBackend('rest');
    // a project-specific app image name, so "no app images" in the DR case touches nothing shared
    const images = e2eImages();
    appImage = `lzf-e2e-offsite-app-${randomBytes(3).toString('hex')}`;
    await mustRun('docker', ['tag', `${images.appImage}:${images.appTag}`, `${appImage}:${images.appTag}`]);
    stack = await startStack({ name: 'offsite', env: { ...be.env, APP_IMAGE: appImage, OFFSITE_TIMEOUT: '120' } });
    src = ReleaseSource.create(repoRoot, 'offsite');
    const init = await script('offsite.mts', ['--init']);
    expect(init.code, init.stderr).toBe(0);
  });

  afterAll(async () => {
    await stack?.down();
    await be?.destroy();
    src?.cleanup();
    if (appImage) {
      // by reference, never by image id: an id also untags the shared e2e image this one was tagged from
      const refs = await imageRefs(appImage);
      if (refs.length) await run('docker', ['rmi', ...refs]);
    }
  });

  let firstId = '';
  let firstUpload: { id: string; content: Buffer };

  it('a backup goes offsite while the app takes writes', async () => {
    for (let i = 0; i < 5; i++) await createTask(stack, `seed-${i}`);
    const content = randomBytes(120_000);
    firstUpload = { id: (await upload(stack, content, 'offsite.bin')).id, content };
    const w = startWriter(stack, 'during');
    await new Promise((r) => setTimeout(r, 500));
    const b = await script('backup.mts', ['--json', '--quiet']);
    await w.stop();
    expect(b.code, b.stderr).toBe(0);
    const out = JSON.parse(b.stdout);
    firstId = out.backup.id;
    expect(out.offsite.uploaded.map((u: { backupId: string }) => u.backupId)).toEqual([firstId]);
    expect(w.failures).toEqual([]);
    expect(w.acked.length).toBeGreaterThan(0);
    expect(await offsiteIds()).toEqual([firstId]);
    // the watch and status read the newest offsite copy from this record, never from restic
    const rec = join(stack.stateDir, 'offsite', 'last-upload.json');
    expect(JSON.parse(readFileSync(rec, 'utf8'))).toMatchObject({ backupId: firstId, source: 'upload', snapshotId: out.offsite.uploaded[0].snapshotId });
    expect(statSync(rec).mode & 0o777).toBe(0o600);
  });

  it('the watch judges offsite-stale from that record: fresh with the default 26h, stale over WATCH_OFFSITE_MAX_AGE', async () => {
    const watch = async (config?: string) => {
      const r = await script('watch.mts', ['--once', '--dry-run', '--json', '--ca', stack.caPem, '--timeout', '5'], config, 60_000);
      return (JSON.parse(r.stdout) as { problems: { problem: string; detail: string }[] }).problems.find((p) => p.problem === 'offsite-stale');
    };
    expect(await watch()).toBeUndefined();
    const strict = envVariant(stack, 'env.offsite-strict', { WATCH_OFFSITE_MAX_AGE: '1s' });
    expect((await watch(strict))?.detail).toMatch(new RegExp(`^newest offsite copy ${firstId} is \\d+\\.\\d h old \\(> 1s\\)`));
  });

  it('restore from offsite brings back exactly the rows and uploads the manifest lists', async () => {
    for (let i = 0; i < 3; i++) await createTask(stack, `after-${i}`);
    const later = await upload(stack, randomBytes(10_000), 'later.bin');
    const r = await script('restore.mts', ['--from', `offsite:${firstId}`, '--yes', '--ca', stack.caPem]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/fetch backup/);
    expect(r.stdout).toMatch(/integrity ok/);
    const m = manifestOf(stack.stateDir, firstId);
    const live = readDb(join(stack.stateDir, 'data', 'lazyflow.db'), (d) => Object.fromEntries(['users', 'tasks', 'media'].map((t) => [t, d.prepare(`SELECT count(*) FROM ${t}`).pluck().get()])));
    for (const t of ['users', 'tasks', 'media']) expect(live[t], t).toBe(m.database.rowCounts[t]);
    const titles = (await listTasks(stack)).map((t) => t.title);
    expect(titles).not.toContain('after-0');
    for (const e of m.uploads.entries) expect(sha256(readFileSync(join(stack.stateDir, 'uploads', e.path)))).toBe(e.sha256);
    expect((await download(stack, firstUpload.id)).body.equals(firstUpload.content)).toBe(true);
    expect((await download(stack, later.id)).status).toBe(404);
    // the fetched copy is gone; nothing of it is listed as a local backup
    expect(readdirSync(stack.stateDir).filter((n) => n.startsWith('.offsite-fetch-'))).toEqual([]);
  });

  it('a drill runs on an offsite snapshot; production untouched', async () => {
    const before = await fingerprint();
    const r = await script('restore.mts', ['--drill', '--from', `offsite:${firstId}`, '--json', '--quiet']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.backupId).toBe(firstId);
    expect(out.checks.every((c: { status: string }) => c.status === 'pass')).toBe(true);
    expect(await fingerprint()).toEqual(before);
    expect(readdirSync(stack.stateDir).filter((n) => n.startsWith('.offsite-fetch-') || n.startsWith('.drill-'))).toEqual([]);
    expect(JSON.parse(readFileSync(join(stack.stateDir, 'drill', 'last-drill.json'), 'utf8'))).toMatchObject({ backupId: firstId, ok: true, from: 'offsite' });
    // status shows offsite and the drill from the records (restic is not asked)
    const st = await script('status.mts', ['--json', '--ca', stack.caPem]);
    const s = JSON.parse(st.stdout);
    expect(s.backups.offsite, st.stderr).toMatchObject({ configured: true, newest: { backupId: firstId }, lastCheck: null, note: expect.stringMatching(/never checked/) });
    expect(s.drill).toMatchObject({ backupId: firstId, ok: true, from: 'offsite' });
  });

  it('the backend dies mid-upload: the local backup stays published, exit 1 with the error and the next command; the next run catches up', async () => {
    // restic gets real work to do (uploads above UPLOAD_MAX_BYTES cannot come through the API)
    writeFileSync(join(stack.stateDir, 'uploads', 'bulk.bin'), randomBytes(24 * 2 ** 20));
    const short = envVariant(stack, 'env.short-timeout', { OFFSITE_TIMEOUT: '15' });
    const before = new Set(backupDirs(stack.stateDir));
    const child = spawn(process.execPath, [join(repoRoot, 'scripts', 'backup.mts'), '--config', short], { cwd: repoRoot, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => (stderr += d));
    const done = new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    // the moment the local backup is published, the upload starts: stop the server then
    await until('the local backup is published', () => backupDirs(stack.stateDir).some((n) => !n.startsWith('.') && !before.has(n)), 120_000, 2);
    await be.stop();
    let code: number | null;
    try {
      code = await done;
    } finally {
      await be.start(); // also when an assertion below fails: later cases need the server
    }
    const newId = backupDirs(stack.stateDir).find((n) => !n.startsWith('.') && !before.has(n))!;
    expect(code, stderr).toBe(1);
    expect(stderr).toMatch(new RegExp(`upload of backup ${newId} failed`));
    expect(stderr).toMatch(new RegExp(`the local backup ${newId} is intact and published`));
    expect(stderr).toMatch(/next: npx zx scripts\/offsite\.mts --config .* --push/);
    const list = await script('backup.mts', ['--list', '--json']);
    expect(JSON.parse(list.stdout).find((b: { id: string }) => b.id === newId).verified).toBe(true);

    const next = await script('backup.mts', ['--json', '--quiet']);
    expect(next.code, next.stderr).toBe(0);
    const uploaded = JSON.parse(next.stdout).offsite.uploaded.map((u: { backupId: string }) => u.backupId);
    expect(uploaded).toContain(newId);
    const local = backupDirs(stack.stateDir).filter((n) => !n.startsWith('.'));
    expect((await offsiteIds()).sort()).toEqual(local.sort());
  });

  it('a wrong restic password: a clear error, exit 2, nothing changed', async () => {
    const wrongPw = join(stack.runDir, 'wrong-password');
    writeFileSync(wrongPw, 'not-the-password\n', { mode: 0o600 });
    const wrong = envVariant(stack, 'env.wrong-password', { OFFSITE_PASSWORD_FILE: wrongPw });
    const before = await fingerprint();
    const r = await script('restore.mts', ['--from', 'offsite:latest', '--yes', '--ca', stack.caPem], wrong);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(/the password in OFFSITE_PASSWORD_FILE .* does not open the rest repository/);
    expect(r.stderr).not.toContain(readFileSync(be.passwordFile, 'utf8'));
    expect(await fingerprint()).toEqual(before);
    expect(readdirSync(stack.stateDir).filter((n) => n.startsWith('.offsite-fetch-') || n.startsWith('.restore-'))).toEqual([]);
  });

  it('retention offsite keeps the newest snapshot', async () => {
    const ids = await offsiteIds();
    expect(ids.length).toBeGreaterThanOrEqual(3);
    const newest = [...ids].sort().at(-1)!;
    const dry = await script('offsite.mts', ['--forget', '--keep-last', '1', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    expect((await offsiteIds()).length).toBe(ids.length);
    const r = await script('offsite.mts', ['--forget', '--keep-last', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(await offsiteIds()).toEqual([newest]);
    // local backups are not touched by offsite retention
    expect(backupDirs(stack.stateDir).filter((n) => !n.startsWith('.')).length).toBe(ids.length);
  });

  it('the VPS is gone: RUNBOOK word for word from an empty STATE_DIR, no containers, no app image, to green smoke', async () => {
    // the backup names a release that is a real commit (as rollout's images are tagged by git sha)
    await createTask(stack, 'last-before-disaster');
    const release = src.head.slice(0, 12);
    const b = await script('backup.mts', ['--json', '--quiet', '--app-tag', release]);
    expect(b.code, b.stderr).toBe(0);
    const drId = JSON.parse(b.stdout).backup.id;

    // the disaster: app and proxy containers, their volumes, the app images and STATE_DIR are gone
    // (Pebble, the test's stand-in for Let's Encrypt, and the fake Bot API stay: they are "the internet")
    await stack.mustCompose('rm', '-s', '-f', '-v', 'app', 'caddy');
    for (const v of ['caddy_data', 'caddy_config']) await run('docker', ['volume', 'rm', '-f', `${stack.project}_${v}`]);
    const refs = await imageRefs(appImage);
    if (refs.length) await mustRun('docker', ['rmi', ...refs]);
    rmSync(stack.stateDir, { recursive: true, force: true });
    expect(existsSync(stack.stateDir)).toBe(false);
    expect(await stack.containers('app')).toEqual([]);

    // step 6 of "The VPS is gone", as written (the env file's path and the test's CA/notify flags added)
    const runbook = readFileSync(join(repoRoot, 'RUNBOOK.md'), 'utf8');
    const section = runbook.slice(runbook.indexOf('## The VPS is gone'), runbook.indexOf('\n## ', runbook.indexOf('## The VPS is gone') + 5));
    const commands = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1].split('\n').filter((l) => l.trim() && !l.startsWith('#')));
    expect(commands).toEqual(['node scripts/rollout.mts --config .env.prod --check', 'npx zx scripts/recover-vps.mts --config .env.prod']);
    const extra: Record<string, string[]> = { 'rollout.mts': [], 'recover-vps.mts': ['--source', src.dir, '--ca', stack.caPem, '--no-notify'] };
    let last: RunResult | null = null;
    for (const c of commands) {
      const argv = c.replace(/^(node|npx zx) scripts\//, '').split(' ');
      const name = argv[0];
      const args = argv.slice(1).map((a) => (a === '.env.prod' ? stack.envFile : a));
      last = await runScript(name, [...args, ...extra[name]], { timeoutMs: 300_000 });
      // preflight on the empty machine: only the disk check may look at a STATE_DIR that does not exist yet
      expect(last.code, `${c}\n${last.stdout}\n${last.stderr}`).toBe(0);
    }
    // the phase table, for BENCHMARKS.md (Offsite: RTO)
    if (process.env.LAZYFLOW_OFFSITE_DR_LOG) writeFileSync(process.env.LAZYFLOW_OFFSITE_DR_LOG, last!.stdout + last!.stderr);
    expect(last!.stdout + last!.stderr).toMatch(new RegExp(`the service is back: backup ${drId} .* on release ${release}, smoke green`));
    const titles = (await listTasks(stack)).map((t) => t.title);
    expect(titles).toContain('last-before-disaster');
    expect((await download(stack, firstUpload.id)).body.equals(firstUpload.content)).toBe(true);
    const app = await appContainer(stack);
    expect(app?.status).toBe('running');
    const image = (await mustRun('docker', ['inspect', '--format', '{{.Config.Image}}', app!.id])).trim();
    expect(image).toBe(`${appImage}:${release}`);
  });

  it('one flipped byte in a pack file: check and restore detect it, live data untouched', async () => {
    const packs: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else packs.push(p);
      }
    };
    walk(join(be.repoDir!, 'data'));
    const biggest = packs.sort((a, b) => statSync(b).size - statSync(a).size)[0];
    const fd = openSync(biggest, 'r+');
    const at = Math.floor(statSync(biggest).size / 2);
    const buf = Buffer.alloc(1);
    readSync(fd, buf, 0, 1, at);
    buf[0] ^= 0xff;
    writeSync(fd, buf, 0, 1, at);
    closeSync(fd);

    const before = await fingerprint();
    const c = await script('offsite.mts', ['--check', '--read-data-subset', '100%']);
    expect(c.code, c.stdout + c.stderr).toBe(1);
    expect(c.stderr).toMatch(/offsite check failed/);
    const l = await script('offsite.mts', ['--list']);
    expect(l.stdout).toMatch(/CHECK FAILED/);
    const r = await script('restore.mts', ['--from', 'offsite:latest', '--yes', '--ca', stack.caPem]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(await fingerprint()).toEqual(before);
    expect(readdirSync(stack.stateDir).filter((n) => n.startsWith('.offsite-fetch-') || n.startsWith('.restore-'))).toEqual([]);
  });
});
