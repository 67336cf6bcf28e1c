import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { checkpointAndClose, migrate, MIGRATIONS, openDatabase, SCHEMA_VERSION, SchemaTooNewError, userVersion } from "../src/db.ts";

let dir = "";
afterEach(() => rmSync(dir, { recursive: true, force: true }));
const fresh = () => {
  dir = mkdtempSync(join(tmpdir(), "lazyflow-mig-"));
  return join(dir, "t.db");
};
const tables = (db: Database) =>
  (db.query("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]).map((r) => r.name);

describe("migrations", () => {
  test("fresh database gets the latest user_version and every table, in WAL", () => {
    const db = openDatabase(fresh());
    expect(migrate(db)).toEqual({ from: 0, to: SCHEMA_VERSION });
    expect(userVersion(db)).toBe(MIGRATIONS.length);
    expect(tables(db)).toEqual(["app_meta", "bot_messages", "dead_letters", "job_heartbeats", "media", "processed_updates", "tasks", "update_attempts", "users"]);
    expect((db.query("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode).toBe("wal");
    expect((db.query("PRAGMA foreign_keys").get() as { foreign_keys: number }).foreign_keys).toBe(1);
    expect((db.query("PRAGMA busy_timeout").get() as Record<string, number>).timeout).toBe(5000);
    expect((db.query("PRAGMA synchronous").get() as { synchronous: number }).synchronous).toBe(1); // NORMAL
    db.close();
  });

  test("re-running is a no-op, also after reopening", () => {
    const path = fresh();
    let db = openDatabase(path);
    migrate(db);
    db.exec("INSERT INTO users (id, first_name, created_at, updated_at) VALUES (1, 'a', 'x', 'x')");
    expect(migrate(db)).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
    checkpointAndClose(db);
    db = openDatabase(path);
    expect(migrate(db)).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
    expect((db.query("SELECT count(*) AS n FROM users").get() as { n: number }).n).toBe(1);
    db.close();
  });

  test("upgrades from an older version apply only the missing steps", () => {
    const db = openDatabase(fresh());
    expect(migrate(db, MIGRATIONS.slice(0, 1))).toEqual({ from: 0, to: 1 });
    expect(tables(db)).not.toContain("bot_messages");
    expect(migrate(db)).toEqual({ from: 1, to: SCHEMA_VERSION });
    expect(tables(db)).toContain("bot_messages");
    db.close();
  });

  test("a failing migration rolls back and leaves user_version unchanged", () => {
    const db = openDatabase(fresh());
    migrate(db);
    const broken = [...MIGRATIONS, "CREATE TABLE extra (x); THIS IS NOT SQL;"];
    expect(() => migrate(db, broken)).toThrow();
    expect(userVersion(db)).toBe(SCHEMA_VERSION);
    expect(tables(db)).not.toContain("extra");
    db.close();
  });

  test("a database newer than the app is refused", () => {
    const db = openDatabase(fresh());
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    expect(() => migrate(db)).toThrow(SchemaTooNewError);
    db.close();
  });

  test("clean close checkpoints the WAL away", () => {
    const path = fresh();
    const db = openDatabase(path);
    migrate(db);
    const r = checkpointAndClose(db);
    expect(r.busy).toBe(0);
    expect(Bun.file(`${path}-wal`).size).toBe(0);
  });
});
