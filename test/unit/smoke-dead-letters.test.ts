// readDeadLetters and readHandledUpdateMax on real SQLite files: our app's tables, an adopter's tables with other columns, none.
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { readDeadLetters, readHandledUpdateMax } from '../../scripts/lib/checks/smoke.mts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lzf-deadletters-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const dbWith = (name: string, sql: string) => {
  const file = path.join(dir, name);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(sql);
  db.close();
  return file;
};

describe('readDeadLetters', () => {
  it("our app's table: count and the newest by failed_at", () => {
    const f = dbWith('ours.db', `
      CREATE TABLE dead_letters (update_id INTEGER PRIMARY KEY, attempts INTEGER NOT NULL, reason TEXT NOT NULL, last_error TEXT NOT NULL, chat_id INTEGER, failed_at TEXT NOT NULL);
      INSERT INTO dead_letters VALUES (5, 1, 'permanent', 'sendMessage: 403 Forbidden: bot was blocked by the user', 9, '2025-06-01T10:00:00.000Z');
      INSERT INTO dead_letters VALUES (3, 5, 'max_attempts', 'TypeError: x', 8, '2025-06-01T11:00:00.000Z');`);
    expect(readDeadLetters(f)).toEqual({ table: true, count: 2, newest: { update_id: 3, failed_at: '2025-06-01T11:00:00.000Z', last_error: 'TypeError: x' } });
  });
  it('empty table, a table with other columns, no table, no database', () => {
    expect(readDeadLetters(dbWith('empty.db', 'CREATE TABLE dead_letters (update_id INTEGER PRIMARY KEY, failed_at TEXT)'))).toEqual({ table: true, count: 0, newest: undefined });
    const other = readDeadLetters(dbWith('other.db', "CREATE TABLE dead_letters (id TEXT, payload TEXT); INSERT INTO dead_letters VALUES ('a', '{}');"));
    expect(other).toEqual({ table: true, count: 1, newest: { update_id: undefined, failed_at: undefined, last_error: undefined } });
    expect(readDeadLetters(dbWith('none.db', 'CREATE TABLE tasks (id INTEGER)'))).toEqual({ table: false });
    expect(readDeadLetters(path.join(dir, 'missing.db'))).toMatchObject({ error: expect.stringMatching(/does not exist/) });
  });
});

describe('readHandledUpdateMax (the Telegram gate\'s evidence that the queue moves)', () => {
  it('the highest update_id across every table that has an update_id column', () => {
    const f = dbWith('handled.db', `
      CREATE TABLE processed_updates (update_id INTEGER PRIMARY KEY, processed_at TEXT);
      CREATE TABLE dead_letters (update_id INTEGER PRIMARY KEY, failed_at TEXT);
      CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT);
      INSERT INTO processed_updates VALUES (10, 'x'), (12, 'x');
      INSERT INTO dead_letters VALUES (14, 'x');
      INSERT INTO tasks VALUES (99, 'not an update');`);
    expect(readHandledUpdateMax(f)).toBe(14);
  });
  it('record tables still empty: -1 (the app keeps a record; nothing handled yet)', () => {
    expect(readHandledUpdateMax(dbWith('handled-empty.db', 'CREATE TABLE seen (update_id INTEGER)'))).toBe(-1);
  });
  it('no table with update_id, or no database: null (the gate falls back to the queue shrinking)', () => {
    expect(readHandledUpdateMax(dbWith('handled-none.db', 'CREATE TABLE folders (id INTEGER)'))).toBeNull();
    expect(readHandledUpdateMax(path.join(dir, 'missing.db'))).toBeNull();
  });
});
