// Helpers shared by the backup and restore e2e suites: drive real writes through the app's API
// (Mini App auth with signed initData), read databases and backups on the host, run the scripts.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Stack } from './stack.ts';
import { signInitData } from './telegram.ts';
import { multipartFile } from './https.ts';
import { runScript, run, type RunResult } from './run.ts';

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export function auth(stack: Stack, userId = 424242) {
  return `tma ${signInitData(stack.botToken, { user: { id: userId, first_name: 'Backup', username: `u${userId}` } })}`;
}

export async function createTask(stack: Stack, title: string, userId = 424242): Promise<{ id: number; title: string }> {
  const r = await stack.fetch('/tasks', {
    method: 'POST',
    body: JSON.stringify({ title }),
    headers: { 'content-type': 'application/json', authorization: auth(stack, userId) },
    timeoutMs: 30_000,
  });
  if (r.status !== 201) throw new Error(`POST /tasks: ${r.status} ${r.text()}`);
  return r.json();
}

export async function listTasks(stack: Stack, userId = 424242): Promise<{ id: number; title: string }[]> {
  const r = await stack.fetch('/tasks', { headers: { authorization: auth(stack, userId) }, timeoutMs: 30_000 });
  if (r.status !== 200) throw new Error(`GET /tasks: ${r.status} ${r.text()}`);
  return r.json().tasks;
}

export async function upload(stack: Stack, content: Buffer, name = 'photo.bin', userId = 424242): Promise<{ id: string; size: number }> {
  const { body, contentType } = multipartFile('file', name, content);
  const r = await stack.fetch('/media', { method: 'POST', body, headers: { 'content-type': contentType, authorization: auth(stack, userId) }, timeoutMs: 30_000 });
  if (r.status !== 201) throw new Error(`POST /media: ${r.status} ${r.text()}`);
  return r.json();
}

export async function download(stack: Stack, mediaId: string, userId = 424242) {
  return stack.fetch(`/files/${mediaId}`, { headers: { authorization: auth(stack, userId) }, timeoutMs: 30_000 });
}

export interface Writer {
  /** tasks the API acknowledged (201), with the time the reply arrived */
  acked: { id: number; title: string; at: number }[];
  /** "<ISO time> <error>" of each write that failed */
  failures: string[];
  stop(): Promise<void>;
}

/** commits continuously through the API: POST /tasks from `concurrency` loops until stopped */
export function startWriter(stack: Stack, prefix: string, concurrency = 2): Writer {
  const w: Writer = { acked: [], failures: [], stop: async () => {} };
  let running = true;
  let n = 0;
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      const title = `${prefix}-${n++}`;
      try {
        const t = await createTask(stack, title);
        w.acked.push({ id: t.id, title, at: Date.now() });
      } catch (err) {
        // when it failed, to find it in the proxy's and the app's logs
        w.failures.push(`${new Date().toISOString()} ${(err as Error).message}`);
      }
    }
  });
  w.stop = async () => {
    running = false;
    await Promise.all(loops);
  };
  return w;
}

export function readDb<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

export function backupDirs(stateDir: string): string[] {
  const d = join(stateDir, 'backups');
  return existsSync(d) ? readdirSync(d).sort() : [];
}

export function manifestOf(stateDir: string, id: string) {
  return JSON.parse(readFileSync(join(stateDir, 'backups', id, 'manifest.json'), 'utf8'));
}

export function script(stack: Stack, name: 'backup.mts' | 'restore.mts', args: string[], timeoutMs = 240_000): Promise<RunResult> {
  return runScript(name, ['--config', stack.envFile, ...args], { timeoutMs });
}

export async function appContainer(stack: Stack): Promise<{ id: string; startedAt: string; status: string } | null> {
  const ids = await stack.containers('app');
  if (!ids.length) return null;
  const r = await run('docker', ['inspect', '--format', '{{.State.StartedAt}} {{.State.Status}}', ids[0]]);
  const [startedAt, status] = r.stdout.trim().split(' ');
  return { id: ids[0], startedAt, status };
}

export async function waitHealthy(stack: Stack, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await stack.fetch('/health', { timeoutMs: 5000 });
      if (r.status === 200) return;
    } catch {
      /* retry */
    }
    if (Date.now() > deadline) throw new Error('app not healthy through Caddy');
    await new Promise((r) => setTimeout(r, 500));
  }
}

export interface Spawned {
  child: import('node:child_process').ChildProcess;
  done: Promise<RunResult>;
}

/** start a toolkit script without waiting for it, to kill it or race it */
export async function spawnScript(stack: Stack, name: 'backup.mts' | 'restore.mts', args: string[]): Promise<Spawned> {
  const { spawn } = await import('node:child_process');
  const { repoRoot } = await import('./run.ts');
  const started = Date.now();
  const child = spawn(process.execPath, [join(repoRoot, 'scripts', name), '--config', stack.envFile, ...args], {
    cwd: repoRoot,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<RunResult>((res) => child.on('close', (code, signal) => res({ code, signal, stdout, stderr, ms: Date.now() - started })));
  return { child, done };
}

/** the phase in STATE_DIR/restore-journal.json, or null */
export function journalPhase(stateDir: string): string | null {
  try {
    return JSON.parse(readFileSync(join(stateDir, 'restore-journal.json'), 'utf8')).phase;
  } catch {
    return null;
  }
}

/** poll until `probe` is true; fast, for catching short phases */
export async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 60_000, everyMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Seeds a stack with tasks and one upload, then takes a backup: the starting point of restore tests. */
export async function seedAndBackUp(stack: Stack, o: { tasks: number; prefix: string; bytes: number; fileName: string }) {
  for (let i = 0; i < o.tasks; i++) await createTask(stack, `${o.prefix}-${i}`);
  const content = randomBytes(o.bytes);
  const upload1 = { id: (await upload(stack, content, o.fileName)).id as string, content };
  const r = await script(stack, 'backup.mts', ['--json', '--quiet']);
  if (r.code !== 0) throw new Error(`backup.mts exited ${r.code}: ${r.stderr}`);
  return { backupId: JSON.parse(r.stdout).backup.id as string, upload: upload1 };
}
