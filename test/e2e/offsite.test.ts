// Offsite backups against a running stack and a real restic REST server (rclone serve restic):
// upload under writes, restore from offsite, the backend dying mid-upload, a wrong password,
// retention offsite, disaster recovery from an empty machine following RUNBOOK's "The VPS is gone"
// word for word (a fresh clone, npm ci, the env and secret files put back, recover-vps, smoke, the
// schedules, a fresh backup), the records the watch (offsite-stale) and status read instead of
// restic, and a damaged pack file. A local HTTP receiver is the alert webhook: each operation sends
// exactly one message (backup, offsite push, offsite check, restore, recover-vps; ok and failed).
// While restic uploads, no process's command line holds a secret. One stack for the whole file; the
// cases build on each other in order.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync, chmodSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { describeDocker } from '../support/docker.ts';
import { startStack, e2eImages, type Stack } from '../support/stack.ts';
import { appContainer, backupDirs, createTask, download, listTasks, manifestOf, readDb, sha256, startWriter, until, upload } from '../support/backup.ts';
import { offsiteMissingReason, startBackend, type OffsiteBackend } from '../support/offsite-backends.ts';
import { mustRun, repoRoot, run, runScript, type RunResult } from '../support/run.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts';
import { sampleCmdlines, secretsIn } from '../support/proc.ts';

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

const HOOK_SECRET = 'offs1te-hook-secret';
/** restic's words for a backend that is gone (its own error line, which our one line must carry) */
const BACKEND_DOWN = /connection refused/;
/** restic's words for a pack whose content no longer matches its hash */
const PACK_DAMAGE = /ciphertext verification failed/;
/** a value for a POSIX shell line, single-quoted */
const shq = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;

describeDocker('offsite backups with a running stack', () => {
  let stack: Stack;
  let be: OffsiteBackend;
  let hook: WebhookReceiver;
  let appImage = '';
  let proxyImage = '';
  let toolkitDir = ''; // the fresh clone the disaster recovery makes
  const hooks = () => hook.received.filter((x) => x.method === 'POST').map((x) => x.json);
  /** what the alert webhook received while fn ran */
  async function during<T>(fn: () => Promise<T>): Promise<{ r: T; sent: any[] }> {
    const h0 = hooks().length;
    const r = await fn();
    return { r, sent: hooks().slice(h0) };
  }
  /** every secret of this deployment, by name: none may show in a command line, an output or the ops log */
  const secrets = (): Record<string, string> => ({
    'restic password': readFileSync(be.passwordFile, 'utf8'),
    'REST password': readFileSync(be.env.OFFSITE_REST_PASSWORD_FILE, 'utf8'),
    WEBHOOK_SECRET: stack.webhookSecret,
    BOT_TOKEN: stack.botToken,
    'alert webhook path': HOOK_SECRET,
  });
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
    hook = await startWebhookReceiver();
    // project-specific app and proxy image names, so "no images" in the DR case touches nothing shared
    const images = e2eImages();
    const id = randomBytes(3).toString('hex');
    appImage = `lzf-e2e-offsite-app-${id}`;
    proxyImage = `lzf-e2e-offsite-proxy-${id}`;
    await mustRun('docker', ['tag', `${images.appImage}:${images.appTag}`, `${appImage}:${images.appTag}`]);
    await mustRun('docker', ['tag', `${images.proxyImage}:${images.proxyTag}`, `${proxyImage}:${images.proxyTag}`]);
    stack = await startStack({ name: 'offsite', env: { ...be.env, APP_IMAGE: appImage, PROXY_IMAGE: proxyImage, OFFSITE_TIMEOUT: '120', ALERT_WEBHOOK_URL: `${hook.url}/hook/${HOOK_SECRET}` } });
    const init = await script('offsite.mts', ['--init']);
    expect(init.code, init.stderr).toBe(0);
  });

  afterAll(async () => {
    if (toolkitDir && existsSync(join(toolkitDir, '.env.prod'))) {
      // the schedules the RUNBOOK's last step installed (a cron file on this machine, which runs no cron)
      await runScript('schedules.mts', ['--config', join(toolkitDir, '.env.prod'), '--remove']);
    }
    await stack?.down();
    await be?.destroy();
    await hook?.stop().catch(() => {});
    if (toolkitDir) rmSync(toolkitDir, { recursive: true, force: true });
    for (const image of [appImage, proxyImage].filter(Boolean)) {
      // by reference, never by image id: an id also untags the shared e2e image this one was tagged from
      const refs = await imageRefs(image);
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
    // what `ps` shows meanwhile: every process's command line, sampled from /proc
    const ps = sampleCmdlines();
    const { r: b, sent } = await during(() => script('backup.mts', ['--json', '--quiet']));
    const cmdlines = ps.stop();
    await w.stop();
    expect(b.code, b.stderr).toBe(0);
    const out = JSON.parse(b.stdout);
    firstId = out.backup.id;
    // the sampler saw the upload itself (so it could have seen a secret), and no secret in any argv
    expect(cmdlines.filter((c) => /restic.* backup .*--tag id=/.test(c)), 'no restic backup process was sampled').not.toEqual([]);
    expect(secretsIn(cmdlines, secrets())).toEqual([]);
    // one message for the backup with its upload
    expect(sent).toEqual([expect.objectContaining({ operation: 'backup', outcome: 'ok', backup: firstId, reason: null })]);
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
    const h0 = hooks().length;
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
    // the one error line: what failed, the backend's own error, what it means for the local backup
    const errLine = stderr.split('\n').find((l) => l.includes(`upload of backup ${newId} failed`)) ?? '';
    expect(errLine, stderr).toMatch(new RegExp(`upload of backup ${newId} failed: .*${BACKEND_DOWN.source}.*; the local backup ${newId} is intact and published`));
    const nextLine = /next: (npx zx scripts\/offsite\.mts --config (\S+) --push)$/m.exec(stderr);
    expect(nextLine?.[2], stderr).toBe(short);
    const list = await script('backup.mts', ['--list', '--json']);
    expect(JSON.parse(list.stdout).find((b: { id: string }) => b.id === newId).verified).toBe(true);
    // its one message: the backup failed, with that line
    expect(hooks().slice(h0)).toEqual([expect.objectContaining({ operation: 'backup', outcome: 'failed', backup: newId, reason: expect.stringMatching(new RegExp(`^offsite: upload of backup ${newId} failed: .*${BACKEND_DOWN.source}.*; the local backup ${newId} is intact and published`)) })]);

    // the next command it printed, as printed: catches up, one offsite message naming the backup
    const { r: next, sent } = await during(() => script('offsite.mts', ['--push', '--json']));
    expect(next.code, next.stderr).toBe(0);
    const uploaded = JSON.parse(next.stdout).uploaded.map((u: { backupId: string }) => u.backupId);
    expect(uploaded).toContain(newId);
    expect(sent).toEqual([expect.objectContaining({ operation: 'offsite', outcome: 'ok', backup: uploaded[0], reason: null })]);
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

    // the scheduled push with that password: exit 2, one failed offsite message saying why, no secret
    const { r: push, sent } = await during(() => script('offsite.mts', ['--push', '--quiet'], wrong));
    expect(push.code, push.stderr).toBe(2);
    expect(sent).toEqual([expect.objectContaining({ operation: 'offsite', outcome: 'failed', reason: expect.stringMatching(/^the password in OFFSITE_PASSWORD_FILE .* does not open the rest repository/) })]);
    expect(secretsIn([JSON.stringify(sent), push.stdout + push.stderr], secrets())).toEqual([]);
  });

  it('offsite check: exit 0 and one ok message', async () => {
    const { r, sent } = await during(() => script('offsite.mts', ['--check']));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(sent).toEqual([expect.objectContaining({ operation: 'offsite-check', outcome: 'ok', reason: null })]);
  });

  it('retention offsite keeps the newest snapshot', async () => {
    const ids = await offsiteIds();
    expect(ids.length).toBeGreaterThanOrEqual(2); // the first backup and the one caught up above
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

  it('the VPS is gone: RUNBOOK word for word, from a fresh clone, an empty STATE_DIR, no containers, no images, to green smoke', async () => {
    // the backup names the release a fresh clone checks out (rollout tags images with the git sha)
    await createTask(stack, 'last-before-disaster');
    const release = (await mustRun('git', ['-C', repoRoot, 'rev-parse', 'HEAD'])).trim().slice(0, 12);
    const b = await script('backup.mts', ['--json', '--quiet', '--app-tag', release]);
    expect(b.code, b.stderr).toBe(0);
    const drId = JSON.parse(b.stdout).backup.id;

    // the password manager: what the RUNBOOK says to keep off the VPS, as saved before the disaster.
    // The env file is the stack's own; only COMPOSE_FILE names its files relative to the checkout, as an
    // operator's does (the stack's names them in this test's checkout, which a new VPS does not have).
    const vault = join(stack.runDir, 'password-manager');
    const keep = (path: string, content: string | Buffer) => {
      const f = join(vault, path); // an absolute path is kept under its own path
      mkdirSync(dirname(f), { recursive: true });
      writeFileSync(f, content, { mode: 0o600 });
    };
    const envText = readFileSync(stack.envFile, 'utf8');
    expect(envText).toMatch(/^COMPOSE_FILE=\S+$/m);
    keep('.env.prod', envText.replace(/^COMPOSE_FILE=.*$/m, 'COMPOSE_FILE=docker-compose.yml:test/support/pebble.compose.yml'));
    const secretFiles = [be.passwordFile, be.env.OFFSITE_REST_PASSWORD_FILE];
    for (const f of secretFiles) keep(f, readFileSync(f));
    // the operator's editor: pastes what the password manager holds for the file it opens
    const editor = join(stack.runDir, 'paste-from-password-manager');
    writeFileSync(editor, `#!/bin/sh\ncase "$1" in /*) src=${shq(vault)}"$1" ;; *) src=${shq(vault)}/"$1" ;; esac\ncat "$src" > "$1"\n`, { mode: 0o755 });

    // the disaster: app and proxy containers, their volumes, the app and proxy images, STATE_DIR and
    // the secret files are gone (Pebble, the test's stand-in for Let's Encrypt, the fake Bot API and the
    // offsite backend stay: they are "the internet")
    await stack.mustCompose('rm', '-s', '-f', '-v', 'app', 'caddy');
    for (const v of ['caddy_data', 'caddy_config']) await run('docker', ['volume', 'rm', '-f', `${stack.project}_${v}`]);
    for (const image of [appImage, proxyImage]) {
      const refs = await imageRefs(image);
      if (refs.length) await mustRun('docker', ['rmi', ...refs]);
    }
    const wipe = () => rmSync(stack.stateDir, { recursive: true, force: true });
    wipe();
    expect(await stack.containers('app')).toEqual([]);
    expect(await stack.containers('caddy')).toEqual([]);
    expect([...(await imageRefs(appImage)), ...(await imageRefs(proxyImage))]).toEqual([]);

    // a first attempt with a wrong restic password fails at fetch: exit 2, one failed recover-vps message
    const wrongPw = join(stack.runDir, 'wrong-password');
    writeFileSync(wrongPw, 'not-the-password\n', { mode: 0o600 });
    const attempt = await during(() => runScript('recover-vps.mts', ['--config', envVariant(stack, 'env.recover-wrong-password', { OFFSITE_PASSWORD_FILE: wrongPw })], { timeoutMs: 120_000 }));
    expect(attempt.r.code, attempt.r.stdout + attempt.r.stderr).toBe(2);
    expect(attempt.sent).toEqual([expect.objectContaining({ operation: 'recover-vps', outcome: 'failed', reason: expect.stringMatching(/^the password in OFFSITE_PASSWORD_FILE .* does not open the rest repository/) })]);
    expect(existsSync(join(stack.stateDir, 'data', 'lazyflow.db'))).toBe(false);
    wipe(); // back to an empty machine: the attempt made the (empty) directories
    for (const f of secretFiles) rmSync(f); // they were on the VPS too

    // "The VPS is gone", its shell blocks in order in one root shell, as an operator pastes them. Only
    // what the section names as yours differs: REPO_URL (this repository), TOOLKIT_DIR (a temp dir),
    // the editor (pastes from the password manager above). npm ci runs with npm's prefer-offline
    // setting (npm_config_prefer_offline: this machine's npm cache holds every package; the registry
    // is asked only for what is missing), and NODE_EXTRA_CA_CERTS trusts Pebble's root as a VPS's
    // system store trusts Let's Encrypt's.
    const runbook = readFileSync(join(repoRoot, 'RUNBOOK.md'), 'utf8');
    const at = runbook.indexOf('\n## The VPS is gone\n');
    const section = runbook.slice(at, runbook.indexOf('\n## ', at + 5));
    const blocks = [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    expect(blocks[0]).toMatch(/^REPO_URL=\S+ .*\nTOOLKIT_DIR=\S+\n/);
    toolkitDir = join(stack.runDir, 'srv-lazyflow-deploy');
    const shell = blocks.join('\n')
      .replace(/^REPO_URL=\S+/m, `REPO_URL=${shq(repoRoot)}`)
      .replace(/^TOOLKIT_DIR=\S+/m, `TOOLKIT_DIR=${shq(toolkitDir)}`);
    const trust = join(stack.runDir, 'trust.pem');
    writeFileSync(trust, [process.env.NODE_EXTRA_CA_CERTS && existsSync(process.env.NODE_EXTRA_CA_CERTS) ? readFileSync(process.env.NODE_EXTRA_CA_CERTS, 'utf8') : '', readFileSync(stack.caPem, 'utf8')].join('\n'));
    const { r, sent } = await during(() => run('bash', ['-e', '-o', 'pipefail', '-x', '-c', shell], {
      cwd: stack.runDir,
      env: { EDITOR: editor, NODE_EXTRA_CA_CERTS: trust, npm_config_prefer_offline: 'true' },
      timeoutMs: 600_000,
    }));
    // the phase table, for BENCHMARKS.md (Offsite: RTO)
    if (process.env.LAZYFLOW_OFFSITE_DR_LOG) writeFileSync(process.env.LAZYFLOW_OFFSITE_DR_LOG, r.stdout + r.stderr);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const out = r.stdout + r.stderr;
    expect(out).toMatch(new RegExp(`the service is back: backup ${drId} .* on release ${release}, smoke green`));
    // the secret files are back where the env file names them, mode 600
    for (const f of secretFiles) expect(statSync(f).mode & 0o777, f).toBe(0o600);
    // one message from the recovery (its rollout sends none), one from the fresh backup; smoke, the check
    // and the schedules send none
    expect(sent.map((h) => `${h.operation} ${h.outcome}`), out).toEqual(['recover-vps ok', 'backup ok']);
    expect(sent[0]).toMatchObject({ backup: drId, release: expect.stringMatching(new RegExp(`^${release} \\(`)) });

    const titles = (await listTasks(stack)).map((t) => t.title);
    expect(titles).toContain('last-before-disaster');
    expect((await download(stack, firstUpload.id)).body.equals(firstUpload.content)).toBe(true);
    const app = await appContainer(stack);
    expect(app?.status).toBe('running');
    const image = (await mustRun('docker', ['inspect', '--format', '{{.Config.Image}}', app!.id])).trim();
    expect(image).toBe(`${appImage}:${release}`);
    expect(await imageRefs(proxyImage)).toContain(`${proxyImage}:${release}`); // rebuilt from the clone
    // the schedules are installed for this project, from the clone
    const st = await runScript('schedules.mts', ['--config', join(toolkitDir, '.env.prod'), '--status', '--json']);
    expect(JSON.parse(st.stdout).jobs.every((j: { installed: boolean }) => j.installed), st.stdout).toBe(true);
  }, 900_000);

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
    const { r: c, sent: checkSent } = await during(() => script('offsite.mts', ['--check', '--read-data-subset', '100%']));
    expect(c.code, c.stdout + c.stderr).toBe(1);
    expect(c.stderr).toMatch(new RegExp(`offsite check failed .*${PACK_DAMAGE.source}`));
    expect(checkSent).toEqual([expect.objectContaining({ operation: 'offsite-check', outcome: 'failed', reason: expect.stringMatching(PACK_DAMAGE) })]);
    const l = await script('offsite.mts', ['--list']);
    expect(l.stdout).toMatch(/CHECK FAILED/);
    const { r, sent } = await during(() => script('restore.mts', ['--from', 'offsite:latest', '--yes', '--ca', stack.caPem]));
    expect(r.code, r.stdout + r.stderr).toBe(1);
    // the error names the damage, not only the exit code
    expect(r.stderr).toMatch(new RegExp(`fetching offsite snapshot \\w+ failed .*${PACK_DAMAGE.source}`));
    expect(sent).toEqual([expect.objectContaining({ operation: 'restore', outcome: 'failed', reason: expect.stringMatching(PACK_DAMAGE) })]);
    expect(await fingerprint()).toEqual(before);
    expect(readdirSync(stack.stateDir).filter((n) => n.startsWith('.offsite-fetch-') || n.startsWith('.restore-'))).toEqual([]);
  });
});
