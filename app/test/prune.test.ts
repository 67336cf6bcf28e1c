// The update bookkeeping stays bounded: processed_updates, update_attempts, bot_messages and
// dead_letters are pruned by age (and the last two by count) by the prune job, on a fake clock.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { RETENTION, type Retention } from "../src/db.ts";
import { createJobs, pruneJob } from "../src/jobs.ts";
import { silentLogger } from "../src/log.ts";
import { makeApp, type Ctx } from "./helpers.ts";

const HOUR = 3_600_000;
const NOW = Date.parse("2027-06-01T12:00:00.000Z");
const iso = (ms: number) => new Date(ms).toISOString();

let c: Ctx;
beforeEach(() => {
  c = makeApp();
});
afterEach(() => c.close());

const ids = (table: string) =>
  (c.db.query(`SELECT update_id AS id FROM ${table} ORDER BY update_id`).all() as { id: number }[]).map((r) => r.id);

/** One row per table and age (hours before NOW); update_id = 1000 + hours. */
function seed(hoursAgo: number[]) {
  for (const h of hoursAgo) {
    const id = 1000 + h;
    const at = iso(NOW - h * HOUR);
    c.db.query("INSERT INTO processed_updates (update_id, processed_at) VALUES (?, ?)").run(id, at);
    c.db.query("INSERT INTO bot_messages (update_id, chat_id, from_id, text, created_at) VALUES (?, 1, 1, 'x', ?)").run(id, at);
    c.db.query("INSERT INTO update_attempts (update_id, attempts, last_error, first_failed_at, last_failed_at) VALUES (?, 1, 'e', ?, ?)").run(id, at, at);
    c.db
      .query("INSERT INTO dead_letters (update_id, attempts, reason, last_error, chat_id, failed_at) VALUES (?, 1, 'permanent', 'e', 1, ?)")
      .run(id, at);
  }
}

describe("pruning", () => {
  test("by age: 48 h for update_ids and attempts (Telegram redelivers for 24 h), 7 d for bot_messages, 30 d for dead letters", () => {
    seed([1, 47, 49, 24 * 7 - 1, 24 * 7 + 1, 24 * 30 - 1, 24 * 30 + 1]);
    const deleted = c.store.pruneOnce(NOW);
    expect(deleted).toEqual({ processed_updates: 5, update_attempts: 5, bot_messages: 3, dead_letters: 1 });
    expect(ids("processed_updates")).toEqual([1001, 1047]);
    expect(ids("update_attempts")).toEqual([1001, 1047]);
    expect(ids("bot_messages")).toEqual([1001, 1047, 1049, 1000 + 24 * 7 - 1]);
    expect(ids("dead_letters")).toEqual([1001, 1047, 1049, 1000 + 24 * 7 - 1, 1000 + 24 * 7 + 1, 1000 + 24 * 30 - 1]);
    // nothing left to do: a second pass deletes nothing
    expect(Object.values(c.store.pruneOnce(NOW)).every((n) => n === 0)).toBe(true);
  });

  test("by count: bot_messages and dead letters keep only the newest rows", () => {
    seed([1, 2, 3, 4, 5]);
    const small: Retention = { ...RETENTION, botMessagesMaxRows: 2, deadLettersMaxRows: 3 };
    c.store.pruneOnce(NOW, small);
    expect(ids("bot_messages")).toEqual([1001, 1002]);
    expect(ids("dead_letters")).toEqual([1001, 1002, 1003]);
    expect(ids("processed_updates")).toEqual([1001, 1002, 1003, 1004, 1005]);
  });

  test("the prune job deletes a large backlog in small batches until nothing is left", async () => {
    const insert = c.db.query("INSERT INTO processed_updates (update_id, processed_at) VALUES (?, ?)");
    c.db.transaction(() => {
      for (let i = 0; i < 12_000; i++) insert.run(i + 1, iso(NOW - 72 * HOUR));
      insert.run(999_999, iso(NOW - HOUR));
    })();
    const job = pruneJob(c.store, 60_000, silentLogger, RETENTION, () => NOW);
    const jobs = createJobs([job], silentLogger);
    jobs.start();
    await Bun.sleep(50);
    await jobs.stop();
    expect(ids("processed_updates")).toEqual([999_999]);
  });

  test("a processed update redelivered within 48 h is still recognised after a prune", async () => {
    c.db.query("INSERT INTO processed_updates (update_id, processed_at) VALUES (7, ?)").run(iso(Date.now() - 30 * HOUR));
    c.store.pruneOnce(Date.now());
    expect(c.store.isProcessed(7)).toBe(true);
  });
});
