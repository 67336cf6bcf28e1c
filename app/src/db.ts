// SQLite (bun:sqlite) in WAL mode, schema versioned by PRAGMA user_version.
// All SQL of the app lives here so the HTTP and bot layers stay thin.

import { Database } from "bun:sqlite";

/**
 * Append-only list of migrations: index i brings user_version i -> i+1.
 * Never edit a released entry; add a new one.
 */
export const MIGRATIONS: readonly string[] = [
  // v1: the tables of the runtime contract.
  `
  CREATE TABLE users (
    id            INTEGER PRIMARY KEY,          -- Telegram user id
    first_name    TEXT NOT NULL DEFAULT '',
    last_name     TEXT,
    username      TEXT,
    language_code TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
  );
  CREATE TABLE tasks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title      TEXT NOT NULL,
    done       INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE INDEX tasks_user_id ON tasks(user_id, id);
  CREATE TABLE media (
    id            TEXT PRIMARY KEY,             -- random, URL-safe
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    file_name     TEXT NOT NULL UNIQUE,         -- random stored name under UPLOADS_DIR
    original_name TEXT NOT NULL,
    mime          TEXT NOT NULL,
    size          INTEGER NOT NULL,
    created_at    TEXT NOT NULL
  );
  CREATE INDEX media_user_id ON media(user_id);
  CREATE TABLE processed_updates (
    update_id    INTEGER PRIMARY KEY,
    processed_at TEXT NOT NULL
  );
  CREATE TABLE job_heartbeats (
    job          TEXT PRIMARY KEY,
    last_tick_at TEXT NOT NULL,
    ticks        INTEGER NOT NULL DEFAULT 0
  );
  `,
  // v2: observable bot traffic (one row per processed message update) and a small key/value table
  // used by the /health write probe.
  `
  CREATE TABLE bot_messages (
    update_id  INTEGER PRIMARY KEY,
    chat_id    INTEGER,
    from_id    INTEGER,
    text       TEXT,
    created_at TEXT NOT NULL
  );
  CREATE TABLE app_meta (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  `,
  // v3: honest Telegram updates. Failed attempts are counted across redeliveries; an update that
  // fails permanently (or too often) becomes a dead letter and is answered 200 so Telegram's queue
  // moves. The indexes let the prune job delete by age without scanning.
  `
  CREATE TABLE update_attempts (
    update_id       INTEGER PRIMARY KEY,
    attempts        INTEGER NOT NULL,
    last_error      TEXT NOT NULL,
    first_failed_at TEXT NOT NULL,
    last_failed_at  TEXT NOT NULL
  );
  CREATE INDEX update_attempts_last_failed_at ON update_attempts(last_failed_at);
  CREATE TABLE dead_letters (
    update_id  INTEGER PRIMARY KEY,
    attempts   INTEGER NOT NULL,
    reason     TEXT NOT NULL CHECK (reason IN ('permanent', 'max_attempts')),
    last_error TEXT NOT NULL,
    chat_id    INTEGER,
    failed_at  TEXT NOT NULL
  );
  CREATE INDEX dead_letters_failed_at ON dead_letters(failed_at);
  CREATE INDEX processed_updates_processed_at ON processed_updates(processed_at);
  CREATE INDEX bot_messages_created_at ON bot_messages(created_at);
  `,
  // v4: a dead letter keeps its update (the JSON Telegram sent), so the operator can have the app
  // process it again once the cause is fixed (retry-dead-letter.ts); older rows have none.
  `
  ALTER TABLE dead_letters ADD COLUMN update_json TEXT;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export class SchemaTooNewError extends Error {
  constructor(public readonly found: number, public readonly supported: number) {
    super(
      `database schema version ${found} is newer than this app supports (${supported}); ` +
        `refusing to start (restore the matching backup or deploy a newer image)`,
    );
    this.name = "SchemaTooNewError";
  }
}

export function openDatabase(path: string): Database {
  const db = new Database(path, { create: true, strict: true });
  // busy_timeout first: the other PRAGMAs may need a lock while another container holds it.
  db.exec("PRAGMA busy_timeout = 5000");
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = NORMAL");
  db.exec("PRAGMA foreign_keys = ON");
  return db;
}

export function userVersion(db: Database): number {
  return (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
}

/** Applies pending migrations, each in its own IMMEDIATE transaction. Returns versions {from, to}. */
export function migrate(db: Database, migrations: readonly string[] = MIGRATIONS): { from: number; to: number } {
  const from = userVersion(db);
  if (from > migrations.length) throw new SchemaTooNewError(from, migrations.length);
  for (;;) {
    // Re-read inside the write lock: two containers booting on the same file must not both migrate.
    const step = db.transaction(() => {
      const v = userVersion(db);
      if (v > migrations.length) throw new SchemaTooNewError(v, migrations.length);
      if (v === migrations.length) return false;
      db.exec(migrations[v]!);
      db.exec(`PRAGMA user_version = ${v + 1}`);
      return true;
    });
    if (!step.immediate()) break;
  }
  return { from, to: userVersion(db) };
}

/** Clean shutdown: fold the WAL back into the main file, then close. */
export function checkpointAndClose(db: Database): { busy: number; log: number; checkpointed: number } {
  const r = db.query("PRAGMA wal_checkpoint(TRUNCATE)").get() as { busy: number; log: number; checkpointed: number };
  db.close();
  return r;
}

// ---------------------------------------------------------------------------------------------
// Data access

export interface UserRow {
  id: number;
  first_name: string;
  last_name: string | null;
  username: string | null;
  language_code: string | null;
  created_at: string;
  updated_at: string;
}

export interface TaskRow {
  id: number;
  user_id: number;
  title: string;
  done: number;
  created_at: string;
  updated_at: string;
}

export interface MediaRow {
  id: string;
  user_id: number;
  file_name: string;
  original_name: string;
  mime: string;
  size: number;
  created_at: string;
}

export interface TelegramUserInput {
  id: number;
  first_name?: string;
  last_name?: string;
  username?: string;
  language_code?: string;
}

export interface BotMessageInput {
  chat_id: number | null;
  from_id: number | null;
  text: string | null;
}

const now = () => new Date().toISOString();

const HOUR_MS = 3_600_000;

/**
 * How long the bot's bookkeeping is kept. Telegram stops redelivering an update after 24 h, so a
 * processed update_id older than that can never come back; 48 h leaves room for clock skew.
 */
export interface Retention {
  processedUpdatesMaxAgeMs: number;
  botMessagesMaxAgeMs: number;
  botMessagesMaxRows: number;
  deadLettersMaxAgeMs: number;
  deadLettersMaxRows: number;
}
export const RETENTION: Retention = {
  processedUpdatesMaxAgeMs: 48 * HOUR_MS,
  botMessagesMaxAgeMs: 7 * 24 * HOUR_MS,
  botMessagesMaxRows: 100_000,
  deadLettersMaxAgeMs: 30 * 24 * HOUR_MS,
  deadLettersMaxRows: 10_000,
};

/** A database write a handler queues; applied inside the update's commit transaction. */
export type UpdateEffect = (store: Store) => void;

export interface UpdateFailure {
  /** Error text for the operator, already free of secrets. */
  error: string;
  /** A failure that a redelivery cannot fix (a Bot API 4xx such as 403 "bot was blocked by the user"). */
  permanent: boolean;
  maxAttempts: number;
  chatId: number | null;
  /** the update as Telegram sent it: kept with a dead letter so it can be retried */
  update?: unknown;
}

export type FailureOutcome =
  | { deadLetter: false; attempts: number }
  | { deadLetter: true; attempts: number; reason: "permanent" | "max_attempts" };

export interface DeadLetterRow {
  update_id: number;
  attempts: number;
  reason: "permanent" | "max_attempts";
  last_error: string;
  chat_id: number | null;
  failed_at: string;
  update_json: string | null;
}

/** The update JSON kept with a dead letter; null when there is none or it would be too large (1 MiB, the webhook's own limit). */
function keptUpdate(update: unknown): string | null {
  if (update === undefined || update === null) return null;
  const json = JSON.stringify(update);
  return json.length <= 1024 * 1024 ? json : null;
}

export function createStore(db: Database) {
  const q = {
    upsertUser: db.query(
      `INSERT INTO users (id, first_name, last_name, username, language_code, created_at, updated_at)
       VALUES ($id, $first_name, $last_name, $username, $language_code, $now, $now)
       ON CONFLICT(id) DO UPDATE SET first_name = excluded.first_name, last_name = excluded.last_name,
         username = excluded.username, language_code = excluded.language_code, updated_at = excluded.updated_at
       RETURNING *`,
    ),
    listTasks: db.query(`SELECT * FROM tasks WHERE user_id = ? ORDER BY id`),
    getTask: db.query(`SELECT * FROM tasks WHERE id = ? AND user_id = ?`),
    insertTask: db.query(
      `INSERT INTO tasks (user_id, title, done, created_at, updated_at) VALUES (?, ?, 0, ?, ?) RETURNING *`,
    ),
    updateTask: db.query(
      `UPDATE tasks SET title = coalesce($title, title), done = coalesce($done, done), updated_at = $now
       WHERE id = $id AND user_id = $user_id RETURNING *`,
    ),
    deleteTask: db.query(`DELETE FROM tasks WHERE id = ? AND user_id = ?`),
    insertMedia: db.query(
      `INSERT INTO media (id, user_id, file_name, original_name, mime, size, created_at)
       VALUES ($id, $user_id, $file_name, $original_name, $mime, $size, $created_at)`,
    ),
    getMedia: db.query(`SELECT * FROM media WHERE id = ? AND user_id = ?`),
    mediaBytes: db.query(`SELECT coalesce(sum(size), 0) AS n FROM media WHERE user_id = ?`),
    isProcessed: db.query(`SELECT 1 AS x FROM processed_updates WHERE update_id = ?`),
    markProcessed: db.query(`INSERT OR IGNORE INTO processed_updates (update_id, processed_at) VALUES (?, ?)`),
    insertBotMessage: db.query(
      `INSERT INTO bot_messages (update_id, chat_id, from_id, text, created_at) VALUES (?, ?, ?, ?, ?)`,
    ),
    heartbeat: db.query(
      `INSERT INTO job_heartbeats (job, last_tick_at, ticks) VALUES (?, ?, 1)
       ON CONFLICT(job) DO UPDATE SET last_tick_at = excluded.last_tick_at, ticks = ticks + 1
       RETURNING ticks`,
    ),
    lastTick: db.query(`SELECT last_tick_at FROM job_heartbeats WHERE job = ?`),
    select1: db.query(`SELECT 1 AS ok`),
    probeWrite: db.query(
      `INSERT INTO app_meta (key, value, updated_at) VALUES ('health_probe', $v, $v)
       ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    ),
    isDeadLetter: db.query(`SELECT 1 AS x FROM dead_letters WHERE update_id = ?`),
    countAttempt: db.query(
      `INSERT INTO update_attempts (update_id, attempts, last_error, first_failed_at, last_failed_at)
       VALUES ($id, 1, $error, $now, $now)
       ON CONFLICT(update_id) DO UPDATE SET attempts = attempts + 1, last_error = excluded.last_error,
         last_failed_at = excluded.last_failed_at
       RETURNING attempts`,
    ),
    clearAttempts: db.query(`DELETE FROM update_attempts WHERE update_id = ?`),
    insertDeadLetter: db.query(
      `INSERT OR IGNORE INTO dead_letters (update_id, attempts, reason, last_error, chat_id, failed_at, update_json)
       VALUES ($id, $attempts, $reason, $error, $chat_id, $now, $update_json)`,
    ),
    getDeadLetter: db.query(`SELECT * FROM dead_letters WHERE update_id = ?`),
    deleteDeadLetter: db.query(`DELETE FROM dead_letters WHERE update_id = ?`),
    retryFailed: db.query(
      `UPDATE dead_letters SET attempts = attempts + 1, last_error = $error, failed_at = $now WHERE update_id = $id`,
    ),
  };

  // The commit of a handled update: the update_id record, the handler's queued writes and its
  // bot_messages row in ONE transaction, so a crash leaves either all of them or none (then Telegram
  // redelivers and the handler runs again). false (and nothing written) if the update was already
  // recorded, e.g. by another process that handled a concurrent redelivery.
  const commitUpdate = db.transaction((updateId: number, message: BotMessageInput | null, effects: readonly UpdateEffect[]): boolean => {
    if (q.isDeadLetter.get(updateId) !== null) return false;
    const ts = now();
    if (q.markProcessed.run(updateId, ts).changes === 0) return false;
    for (const effect of effects) effect(store);
    if (message) q.insertBotMessage.run(updateId, message.chat_id, message.from_id, message.text, ts);
    q.clearAttempts.run(updateId);
    return true;
  });

  // One failed attempt, counted across redeliveries; the attempt that makes it permanent (or reaches
  // maxAttempts) turns it into a dead letter. The handler's writes were never applied.
  const recordFailure = db.transaction((updateId: number, f: UpdateFailure): FailureOutcome => {
    const ts = now();
    const { attempts } = q.countAttempt.get({ id: updateId, error: f.error, now: ts }) as { attempts: number };
    const reason = f.permanent ? "permanent" : attempts >= f.maxAttempts ? "max_attempts" : null;
    if (!reason) return { deadLetter: false, attempts };
    q.insertDeadLetter.run({ id: updateId, attempts, reason, error: f.error, chat_id: f.chatId, now: ts, update_json: keptUpdate(f.update) });
    q.clearAttempts.run(updateId);
    return { deadLetter: true, attempts, reason };
  });

  // The commit of a retried dead letter (retry-dead-letter.ts): the dead letter goes in the same
  // transaction that records the update_id and applies the handler's writes, so the update is either
  // still a dead letter or processed, exactly once, whatever crashes and however many retries race.
  // false (nothing written) when it is no longer a dead letter or was processed meanwhile.
  const commitRetry = db.transaction((updateId: number, message: BotMessageInput | null, effects: readonly UpdateEffect[]): boolean => {
    // checked before anything changes: returning false commits nothing (an immediate transaction, so
    // no other writer slips in between the checks and the writes)
    if (q.isProcessed.get(updateId) !== null) return false;
    if (q.deleteDeadLetter.run(updateId).changes === 0) return false;
    const ts = now();
    q.markProcessed.run(updateId, ts);
    for (const effect of effects) effect(store);
    if (message) q.insertBotMessage.run(updateId, message.chat_id, message.from_id, message.text, ts);
    q.clearAttempts.run(updateId);
    return true;
  });

  // Deletes at most `batch` rows of one table per statement, so the write lock is held only briefly.
  const pruneOlder = (table: string, column: string) =>
    db.query(`DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE ${column} < ? LIMIT ?)`);
  const pruneBeyond = (table: string, column: string) =>
    db.query(
      `DELETE FROM ${table} WHERE rowid IN (
         SELECT rowid FROM ${table} WHERE rowid NOT IN (SELECT rowid FROM ${table} ORDER BY ${column} DESC, rowid DESC LIMIT ?)
         LIMIT ?)`,
    );
  const prune = {
    processed_updates: { age: pruneOlder("processed_updates", "processed_at") },
    update_attempts: { age: pruneOlder("update_attempts", "last_failed_at") },
    bot_messages: { age: pruneOlder("bot_messages", "created_at"), count: pruneBeyond("bot_messages", "created_at") },
    dead_letters: { age: pruneOlder("dead_letters", "failed_at"), count: pruneBeyond("dead_letters", "failed_at") },
  } as const;

  const store = {
    db,
    upsertUser(u: TelegramUserInput): UserRow {
      return q.upsertUser.get({
        id: u.id,
        first_name: u.first_name ?? "",
        last_name: u.last_name ?? null,
        username: u.username ?? null,
        language_code: u.language_code ?? null,
        now: now(),
      }) as UserRow;
    },
    listTasks: (userId: number) => q.listTasks.all(userId) as TaskRow[],
    createTask(userId: number, title: string): TaskRow {
      const ts = now();
      return q.insertTask.get(userId, title, ts, ts) as TaskRow;
    },
    updateTask(userId: number, id: number, patch: { title?: string; done?: boolean }): TaskRow | null {
      return (
        (q.updateTask.get({
          id,
          user_id: userId,
          title: patch.title ?? null,
          done: patch.done === undefined ? null : patch.done ? 1 : 0,
          now: now(),
        }) as TaskRow | null) ?? null
      );
    },
    deleteTask: (userId: number, id: number) => q.deleteTask.run(id, userId).changes > 0,
    insertMedia: (m: MediaRow) => void q.insertMedia.run({ ...m }),
    getMedia: (userId: number, id: string) => (q.getMedia.get(id, userId) as MediaRow | null) ?? null,
    /** bytes of uploads the user has stored (the per-user quota counts these) */
    mediaBytes: (userId: number) => (q.mediaBytes.get(userId) as { n: number }).n,
    isProcessed: (updateId: number) => q.isProcessed.get(updateId) !== null,
    isDeadLetter: (updateId: number) => q.isDeadLetter.get(updateId) !== null,
    commitUpdate: (updateId: number, message: BotMessageInput | null, effects: readonly UpdateEffect[] = []) =>
      commitUpdate.immediate(updateId, message, effects),
    recordFailure: (updateId: number, failure: UpdateFailure) => recordFailure.immediate(updateId, failure),
    deadLetter: (updateId: number) => (q.getDeadLetter.get(updateId) as DeadLetterRow | null) ?? null,
    commitRetry: (updateId: number, message: BotMessageInput | null, effects: readonly UpdateEffect[] = []) =>
      commitRetry.immediate(updateId, message, effects),
    /** A retry that failed again: it stays a dead letter, one more attempt and the new error on it. */
    recordRetryFailure: (updateId: number, error: string) => void q.retryFailed.run({ id: updateId, error, now: now() }),
    deadLetters: () => db.query(`SELECT * FROM dead_letters ORDER BY failed_at DESC, update_id DESC`).all() as DeadLetterRow[],
    /**
     * One pass of at most `batch` deletions per table and rule (age, then count), each its own short
     * transaction. Returns rows deleted per table; the prune job repeats until a pass deletes nothing.
     */
    pruneOnce(nowMs: number, retention: Retention = RETENTION, batch = 5000): Record<keyof typeof prune, number> {
      const cutoff = (ageMs: number) => new Date(nowMs - ageMs).toISOString();
      const n = (s: { run: (...a: (string | number)[]) => { changes: number } }, ...a: (string | number)[]) => s.run(...a).changes;
      return {
        processed_updates: n(prune.processed_updates.age, cutoff(retention.processedUpdatesMaxAgeMs), batch),
        update_attempts: n(prune.update_attempts.age, cutoff(retention.processedUpdatesMaxAgeMs), batch),
        bot_messages:
          n(prune.bot_messages.age, cutoff(retention.botMessagesMaxAgeMs), batch) +
          n(prune.bot_messages.count, retention.botMessagesMaxRows, batch),
        dead_letters:
          n(prune.dead_letters.age, cutoff(retention.deadLettersMaxAgeMs), batch) +
          n(prune.dead_letters.count, retention.deadLettersMaxRows, batch),
      };
    },
    heartbeat(job: string, at: string = now()): number {
      return (q.heartbeat.get(job, at) as { ticks: number }).ticks;
    },
    lastTickAt: (job: string) => (q.lastTick.get(job) as { last_tick_at: string } | null)?.last_tick_at ?? null,
    /** SELECT 1 only: cheap enough for the proxy's readiness probe every 250 ms. */
    probeRead(): void {
      q.select1.get();
    },
    /** A tiny write (one app_meta row); throws if the database cannot be written. */
    probeWrite(): void {
      q.probeWrite.run({ v: now() });
    },
  };
  return store;
}

export type Store = ReturnType<typeof createStore>;
