// Offsite plumbing against each real backend (no app stack: a STATE_DIR with a real SQLite
// database): SFTP (OpenSSH in a stand-in container, key auth), REST (rclone serve restic, basic
// auth) and S3 (moto_server, an emulator: it proves our S3 configuration and credentials
// plumbing, not a storage product). Each: init, backup.mts uploads, list shows it offsite,
// check passes, restore --dry-run fetches and verifies it, and no secret shows in output, in the ops
// log, or in any process's command line (sampled from /proc while restic uploads).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { dockerMissingReason } from '../support/docker-probe.ts';
import { offsiteMissingReason, startBackend, type BackendKind, type OffsiteBackend } from '../support/offsite-backends.ts';
import { runScript } from '../support/run.ts';
import { sampleCmdlines, secretsIn } from '../support/proc.ts';

const kinds: BackendKind[] = ['sftp', 'rest', 's3'];
const missing = dockerMissingReason ?? (await offsiteMissingReason(kinds));
if (missing && process.env.REQUIRE_DOCKER === '1') throw new Error(`offsite backends unavailable with REQUIRE_DOCKER=1: ${missing}`);
if (missing) console.warn(`SKIPPING offsite backend tests: ${missing}`);

function makeState(dir: string, project: string, extra: Record<string, string>) {
  const state = join(dir, 'state');
  for (const sub of ['data', 'uploads', 'backups', 'logs']) mkdirSync(join(state, sub), { recursive: true });
  const db = new Database(join(state, 'data', 'lazyflow.db'));
  db.pragma('journal_mode = WAL');
  db.exec(`CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT); CREATE TABLE media (id TEXT PRIMARY KEY, file_name TEXT);`);
  const ins = db.prepare('INSERT INTO tasks (title) VALUES (?)');
  for (let i = 0; i < 200; i++) ins.run(`task-${i}`);
  db.prepare('INSERT INTO media VALUES (?, ?)').run('m1', 'm1.bin');
  db.pragma('user_version = 4');
  db.close();
  writeFileSync(join(state, 'uploads', 'm1.bin'), Buffer.alloc(50_000, 7));
  const envFile = join(dir, 'env.prod');
  const env = { COMPOSE_PROJECT_NAME: project, STATE_DIR: state, ...extra };
  writeFileSync(envFile, Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { mode: 0o600 });
  chmodSync(envFile, 0o600);
  return { state, envFile };
}

describe.skipIf(Boolean(missing)).each(kinds)('offsite plumbing: %s', (kind) => {
  let be: OffsiteBackend;
  let dir: string;
  let envFile: string;
  const script = (name: string, args: string[]) => runScript(name, ['--config', envFile, ...args], { timeoutMs: 120_000 });

  beforeAll(async () => {
    be = await startBackend(kind);
    dir = mkdtempSync(join(tmpdir(), `lzf-offsite-plumb-${kind}-`));
    ({ envFile } = makeState(dir, `lzf-e2e-plumb-${kind}`, { ...be.env, OFFSITE_TIMEOUT: '60' }));
  });
  afterAll(async () => {
    await be?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('init, backup goes offsite, list, check, fetch-and-verify; secrets stay out of output', async () => {
    const init = await script('offsite.mts', ['--init']);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout + init.stderr).toMatch(/created an encrypted restic repository/);

    const ps = sampleCmdlines();
    const b = await script('backup.mts', ['--json', '--app-tag', 'abc123']);
    const cmdlines = ps.stop();
    expect(b.code, b.stderr).toBe(0);
    expect(cmdlines.filter((c) => /restic.* backup .*--tag id=/.test(c)), 'no restic backup process was sampled').not.toEqual([]);
    const out = JSON.parse(b.stdout);
    expect(out.offsite.uploaded).toHaveLength(1);
    expect(out.offsite.uploaded[0].backupId).toBe(out.backup.id);

    const l = await script('offsite.mts', ['--list', '--json']);
    expect(l.code, l.stderr).toBe(0);
    const list = JSON.parse(l.stdout);
    const row = list.backups.find((r: { id: string }) => r.id === out.backup.id);
    expect(row.local.verified).toBe(true);
    expect(row.offsite.release).toBe('abc123');
    expect(row.offsite.schema).toBe(4);

    const c = await script('offsite.mts', ['--check', '--read-data-subset', '100%']);
    expect(c.code, c.stderr).toBe(0);

    const r = await script('restore.mts', ['--from', 'offsite:latest', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`restore backup ${out.backup.id}`);
    expect(r.stdout).toMatch(/tasks 200/);

    // the secrets of this backend: the restic password, and the S3 secret key or the REST password (the
    // SFTP key is a file restic's ssh reads; its path may show, its content never)
    const secrets: Record<string, string> = { 'restic password': readFileSync(be.passwordFile, 'utf8') };
    if (be.env.AWS_SECRET_ACCESS_KEY) secrets.AWS_SECRET_ACCESS_KEY = be.env.AWS_SECRET_ACCESS_KEY;
    if (be.env.OFFSITE_REST_PASSWORD_FILE) secrets['REST password'] = readFileSync(be.env.OFFSITE_REST_PASSWORD_FILE, 'utf8');
    if (be.env.OFFSITE_SFTP_KEY) secrets['SFTP key'] = readFileSync(be.env.OFFSITE_SFTP_KEY, 'utf8').split('\n').slice(1, 3).join('\n');
    const opsLog = readFileSync(join(dir, 'state', 'logs', 'ops.log'), 'utf8');
    expect(opsLog).toMatch(/upload backup/); // the log the scan reads holds the upload
    const all = [init, b, l, c, r].map((x) => x.stdout + x.stderr).join('\n');
    expect(secretsIn([all], secrets), 'in the output').toEqual([]);
    expect(secretsIn([opsLog], secrets), 'in STATE_DIR/logs/ops.log').toEqual([]);
    expect(secretsIn(cmdlines, secrets), 'in a command line').toEqual([]);
  });
});
