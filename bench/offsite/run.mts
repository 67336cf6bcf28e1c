// Offsite benchmark (restic to a local REST server, `rclone serve restic`, on this machine):
//   1. first upload of a backup of an N MiB database (default 1024): bytes sent, time
//   2. an hour of typical writes (3600 commits: a task, a 2 KiB bot message, a heartbeat), backup, upload
//   3. a day of the same writes (86400 commits), backup, upload: the bytes/day of the daily schedule
//   4. RTO data phases from an empty STATE_DIR: fetch (restic restore) and verify+swap (the restore path)
// The build/start/smoke phases of a recovery come from recover-vps.mts itself (see BENCHMARKS.md).
//   node bench/offsite/run.mts [--mib 1024] [--keep]
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import minimist from 'minimist';
import Database from 'better-sqlite3';
import { makeDb } from '../backup/make-db.mts';
import { startBackend } from '../../test/support/offsite-backends.ts';
import { loadOpsEnv } from '../../scripts/lib/config/env.mts';
import { createLogger, formatBytes, renderTable } from '../../scripts/lib/cli/log.mts';
import { runBackup } from '../../scripts/lib/backup/backup.mts';
import { loadOffsiteConfig } from '../../scripts/lib/offsite/config.mts';
import { fetchSnapshot, initRepository, uploadBackup } from '../../scripts/lib/offsite/offsite.mts';
import { listBackups } from '../../scripts/lib/backup/manifest.mts';
import { runRestore } from '../../scripts/lib/restore/restore.mts';

const args = minimist(process.argv.slice(2), { boolean: ['keep'], default: { mib: 1024 } });
const mib = Number(args.mib);
const log = createLogger({ quiet: true, op: 'bench-offsite' });
const base = mkdtempSync(join(tmpdir(), 'lzf-bench-offsite-'));
const be = await startBackend('rest');

function envFor(name: string, state: string): string {
  const f = join(base, `${name}.env`);
  const v = { COMPOSE_PROJECT_NAME: 'lzf-bench-offsite', STATE_DIR: state, ...be.env };
  writeFileSync(f, Object.entries(v).map(([k, x]) => `${k}=${x}`).join('\n') + '\n', { mode: 0o600 });
  chmodSync(f, 0o600);
  return f;
}

function writes(dbPath: string, commits: number): number {
  const db = new Database(dbPath, { timeout: 5000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const task = db.prepare(`INSERT INTO tasks (user_id, title, done, created_at, updated_at) VALUES (1, ?, 0, ?, ?)`);
  const msg = db.prepare(`INSERT INTO bot_messages (update_id, chat_id, from_id, text, created_at) VALUES (?, 1, 1, ?, ?)`);
  const beat = db.prepare(`INSERT INTO job_heartbeats (job, last_tick_at, ticks) VALUES ('bench', ?, 1) ON CONFLICT(job) DO UPDATE SET last_tick_at = excluded.last_tick_at, ticks = ticks + 1`);
  const start = (db.prepare('SELECT coalesce(max(update_id), 0) FROM bot_messages').pluck().get() as number) + 1;
  const one = db.transaction((i: number) => {
    const ts = new Date().toISOString();
    task.run(`bench task ${i}`, ts, ts);
    msg.run(start + i, `message ${i} ` + Math.random().toString(36).repeat(150).slice(0, 2000), ts);
    beat.run(ts);
  });
  const t = performance.now();
  for (let i = 0; i < commits; i++) one(i);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return performance.now() - t;
}

const rows: Record<string, unknown>[] = [];
try {
  const state = join(base, 'state');
  for (const d of ['data', 'uploads', 'backups', 'logs']) mkdirSync(join(state, d), { recursive: true });
  const env = loadOpsEnv(envFor('live', state));
  const cfg = loadOffsiteConfig(env)!;
  await initRepository(env, cfg, log);
  const t0 = performance.now();
  const made = makeDb(env.layout.db, mib * 2 ** 20);
  console.error(`database: ${formatBytes(made.bytes)} (${((performance.now() - t0) / 1000).toFixed(0)} s to build)`);

  const cycle = async (label: string, commits: number) => {
    const writeMs = commits ? writes(env.layout.db, commits) : 0;
    const tb = performance.now();
    const b = await runBackup({ layout: env.layout, reason: 'manual', log, lockHeld: true, skipAppInfo: true });
    const localMs = performance.now() - tb;
    const entry = listBackups(env.layout).backups.find((x) => x.id === b.id)!;
    const up = await uploadBackup(env, cfg, entry, log);
    rows.push({ step: label, writes: commits, 'db size': formatBytes(statSync(env.layout.db).size), 'local backup': `${(localMs / 1000).toFixed(1)} s`, upload: `${(up.ms / 1000).toFixed(1)} s`, 'bytes read': formatBytes(up.totalBytes), 'new data': formatBytes(up.dataAddedRaw), 'bytes sent': formatBytes(up.dataAdded), 'sent/read': `${((100 * up.dataAdded) / up.totalBytes).toFixed(2)} %`, 'write sim': `${(writeMs / 1000).toFixed(1)} s` });
    return up;
  };
  await cycle('first upload (full)', 0);
  await cycle('after 1 h of writes', 3600);
  const day = await cycle('after 24 h of writes', 86_400);

  // RTO, data phases: an empty STATE_DIR on "the new machine"
  const fresh = join(base, 'fresh');
  const fenv = loadOpsEnv(envFor('fresh', fresh));
  const fcfg = loadOffsiteConfig(fenv)!;
  for (const d of ['data', 'uploads', 'backups', 'logs']) mkdirSync(join(fresh, d), { recursive: true });
  const f = await fetchSnapshot(fenv, fcfg, 'latest', log);
  const tv = performance.now();
  await runRestore({ ctx: fenv, backup: f.backup, from: f.backup.id, log, yes: true, startApp: false, smoke: false });
  const verifyMs = performance.now() - tv;
  f.remove();

  console.log(`\nOffsite benchmark: ${mib} MiB database, restic to rclone serve restic on 127.0.0.1 (same machine: no network limit)\n`);
  console.log(renderTable(rows, ['step', { key: 'writes', align: 'right' }, { key: 'db size', align: 'right' }, { key: 'local backup', align: 'right' }, { key: 'upload', align: 'right' }, { key: 'bytes read', align: 'right' }, { key: 'new data', align: 'right' }, { key: 'bytes sent', align: 'right' }, { key: 'sent/read', align: 'right' }]));
  console.log(`\nRTO data phases from an empty STATE_DIR: fetch ${(f.ms / 1000).toFixed(1)} s, verify+swap ${(verifyMs / 1000).toFixed(1)} s`);
  console.log(`RPO with the documented daily 03:17 backup: up to 24 h (plus the upload time); offsite cost of one day of writes: ${formatBytes(day.dataAdded)} sent`);
} finally {
  await be.destroy();
  if (!args.keep) rmSync(base, { recursive: true, force: true });
}
