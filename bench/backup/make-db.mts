// Builds (or reuses) a benchmark database of the app's schema and about the requested size.
import Database from 'better-sqlite3';
import { existsSync, statSync, renameSync, rmSync } from 'node:fs';

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, first_name TEXT NOT NULL DEFAULT '', last_name TEXT, username TEXT, language_code TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id INTEGER NOT NULL, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS tasks_user_id ON tasks(user_id, id);
CREATE TABLE IF NOT EXISTS media (id TEXT PRIMARY KEY, user_id INTEGER NOT NULL, file_name TEXT NOT NULL UNIQUE, original_name TEXT NOT NULL, mime TEXT NOT NULL, size INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS processed_updates (update_id INTEGER PRIMARY KEY, processed_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS job_heartbeats (job TEXT PRIMARY KEY, last_tick_at TEXT NOT NULL, ticks INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS bot_messages (update_id INTEGER PRIMARY KEY, chat_id INTEGER, from_id INTEGER, text TEXT, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS app_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
`;

/** a WAL database of about `bytes` bytes; reused when one of at least that size exists at path */
export function makeDb(path: string, bytes: number, log: (m: string) => void = () => {}): { rows: number; bytes: number; reused: boolean } {
  if (existsSync(path) && statSync(path).size >= bytes * 0.98) {
    const db = new Database(path);
    const rows = db.prepare('SELECT count(*) FROM bot_messages').pluck().get() as number;
    db.close();
    return { rows, bytes: statSync(path).size, reused: true };
  }
  const tmp = `${path}.building`;
  rmSync(tmp, { force: true });
  const db = new Database(tmp);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  db.pragma('user_version = 2');
  db.exec(SCHEMA);
  const ts = new Date().toISOString();
  db.prepare(`INSERT INTO users (id, first_name, created_at, updated_at) VALUES (1, 'bench', ?, ?)`).run(ts, ts);
  // bot message texts of ~2 KiB: realistic rows, and the size grows quickly
  const ins = db.prepare(`INSERT INTO bot_messages (update_id, chat_id, from_id, text, created_at) VALUES (?, 1, 1, ?, ?)`);
  const task = db.prepare(`INSERT INTO tasks (user_id, title, done, created_at, updated_at) VALUES (1, ?, 0, ?, ?)`);
  const batch = db.transaction((from: number, n: number) => {
    for (let k = from; k < from + n; k++) {
      ins.run(k, `message ${k} ` + Math.random().toString(36).repeat(150).slice(0, 2000), ts);
      if (k % 4 === 0) task.run(`task ${k}`, ts, ts);
    }
  });
  let rows = 0;
  const perBatch = 20_000;
  while ((db.pragma('page_count', { simple: true }) as number) * 4096 < bytes) {
    batch(rows, perBatch);
    rows += perBatch;
    if (rows % 100_000 === 0) log(`  ${rows} rows, ${Math.round(((db.pragma('page_count', { simple: true }) as number) * 4096) / 2 ** 20)} MiB`);
  }
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  renameSync(tmp, path);
  return { rows, bytes: statSync(path).size, reused: false };
}
