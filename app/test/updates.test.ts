// What a Telegram update does to the database: the handler's writes commit with its update_id (once),
// failed attempts are counted across redeliveries and restarts, permanent failures become dead letters.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { GrammyError, HttpError } from "grammy";
import { describeFailure, isPermanentFailure } from "../src/bot.ts";
import { count as n, makeApp, postUpdate as post, startFakeBotApi, TOKEN, update, type Ctx, type FakeBotApi } from "./helpers.ts";

let api: FakeBotApi;
beforeAll(() => {
  api = startFakeBotApi();
});
afterAll(() => api.stop());

const tasksOf = (c: Ctx, userId: number) =>
  (c.db.query("SELECT title FROM tasks WHERE user_id = ? ORDER BY id").all(userId) as { title: string }[]).map((t) => t.title);
const deadLetter = (c: Ctx, id: number) =>
  c.db.query("SELECT update_id, attempts, reason, last_error, chat_id, failed_at FROM dead_letters WHERE update_id = ?").get(id) as
    | { update_id: number; attempts: number; reason: string; last_error: string; chat_id: number | null; failed_at: string }
    | null;

describe("a handler's database writes commit with its update_id", () => {
  test("/add: one task per update however often it is delivered", async () => {
    const c = makeApp({ TELEGRAM_API_ROOT: api.url });
    try {
      const u = update(10, "/add buy milk", 901);
      for (let i = 0; i < 3; i++) expect((await post(c, u)).status).toBe(200);
      expect(tasksOf(c, 901)).toEqual(["buy milk"]);
      expect(n(c, "SELECT count(*) AS n FROM processed_updates WHERE update_id = 10")).toBe(1);
    } finally {
      c.close();
    }
  });

  test("a handler that fails after queuing its write leaves nothing behind; the redelivery applies it once", async () => {
    const c = makeApp({ TELEGRAM_API_ROOT: api.url });
    try {
      const u = update(11, "/add call mum", 902);
      api.failNext(1); // the confirmation sendMessage fails with 500, after the task was queued
      expect((await post(c, u)).status).toBe(500);
      expect(tasksOf(c, 902)).toEqual([]);
      expect(n(c, "SELECT count(*) AS n FROM processed_updates WHERE update_id = 11")).toBe(0);
      expect(n(c, "SELECT attempts AS n FROM update_attempts WHERE update_id = 11")).toBe(1);
      expect((await post(c, u)).status).toBe(200);
      expect(tasksOf(c, 902)).toEqual(["call mum"]);
      // the counter is gone once the update is processed
      expect(n(c, "SELECT count(*) AS n FROM update_attempts WHERE update_id = 11")).toBe(0);
    } finally {
      c.close();
    }
  });

  test("commitUpdate is all or nothing: a failing write rolls back the update_id record and the other writes", () => {
    const c = makeApp({ TELEGRAM_API_ROOT: api.url });
    try {
      c.store.upsertUser({ id: 903, first_name: "Ada" });
      expect(() =>
        c.store.commitUpdate(12, { chat_id: 903, from_id: 903, text: "x" }, [
          (s) => void s.createTask(903, "first"),
          () => {
            throw new Error("disk I/O error");
          },
        ]),
      ).toThrow("disk I/O error");
      expect(tasksOf(c, 903)).toEqual([]);
      expect(n(c, "SELECT count(*) AS n FROM processed_updates WHERE update_id = 12")).toBe(0);
      expect(n(c, "SELECT count(*) AS n FROM bot_messages WHERE update_id = 12")).toBe(0);
      // and an update already recorded (by another process) applies nothing a second time
      expect(c.store.commitUpdate(13, null, [(s) => void s.createTask(903, "once")])).toBe(true);
      expect(c.store.commitUpdate(13, null, [(s) => void s.createTask(903, "twice")])).toBe(false);
      expect(tasksOf(c, 903)).toEqual(["once"]);
    } finally {
      c.close();
    }
  });
});

describe("dead letters", () => {
  test("403 'bot was blocked by the user': a dead letter at the first attempt, answered 200, never retried", async () => {
    const c = makeApp({ TELEGRAM_API_ROOT: api.url });
    try {
      api.blockChat(666);
      const u = update(20, "/start", 666);
      const before = api.sendMessages().length;
      expect((await post(c, u)).status).toBe(200);
      const dl = deadLetter(c, 20)!;
      expect(dl).toMatchObject({ update_id: 20, attempts: 1, reason: "permanent", chat_id: 666 });
      expect(dl.last_error).toBe("sendMessage: 403 Forbidden: bot was blocked by the user");
      expect(Date.parse(dl.failed_at)).toBeGreaterThan(Date.now() - 60_000);
      expect(n(c, "SELECT count(*) AS n FROM processed_updates WHERE update_id = 20")).toBe(0);
      // a redelivery (Telegram had not seen our 200) runs no handler
      expect((await post(c, u)).status).toBe(200);
      expect(api.sendMessages().length - before).toBe(1);
      // other chats are unaffected
      expect((await post(c, update(21, "/start", 667))).status).toBe(200);
      expect(n(c, "SELECT count(*) AS n FROM processed_updates WHERE update_id = 21")).toBe(1);
    } finally {
      c.close();
    }
  });

  test("transient failures (500, 429) answer 500 until UPDATE_MAX_ATTEMPTS, counted across a restart; then a dead letter", async () => {
    const first = makeApp({ TELEGRAM_API_ROOT: api.url, UPDATE_MAX_ATTEMPTS: "3" });
    const u = update(30, "/start", 930);
    try {
      api.failNext(1);
      expect((await post(first, u)).status).toBe(500);
      api.failNext(1, { error_code: 429, description: "Too Many Requests: retry after 1" });
      expect((await post(first, u)).status).toBe(500);
      expect(deadLetter(first, 30)).toBeNull();
    } finally {
      first.closeDb();
    }
    // the process restarts (a deploy): the count lives in the database
    const second = makeApp({ TELEGRAM_API_ROOT: api.url, UPDATE_MAX_ATTEMPTS: "3" }, undefined, { dir: first.dir });
    try {
      expect(n(second, "SELECT attempts AS n FROM update_attempts WHERE update_id = 30")).toBe(2);
      api.failNext(1);
      expect((await post(second, u)).status).toBe(200);
      expect(deadLetter(second, 30)).toMatchObject({ attempts: 3, reason: "max_attempts", last_error: "sendMessage: 500 Internal Server Error: fake" });
      expect(n(second, "SELECT count(*) AS n FROM update_attempts WHERE update_id = 30")).toBe(0);
    } finally {
      second.close();
    }
  });

  test("a failure that succeeds on a redelivery leaves no dead letter", async () => {
    const c = makeApp({ TELEGRAM_API_ROOT: api.url, UPDATE_MAX_ATTEMPTS: "2" });
    try {
      api.failNext(1);
      expect((await post(c, update(40, "/start", 940))).status).toBe(500);
      expect((await post(c, update(40, "/start", 940))).status).toBe(200);
      expect(n(c, "SELECT count(*) AS n FROM dead_letters")).toBe(0);
    } finally {
      c.close();
    }
  });
});

describe("failure classification", () => {
  const grammy = (code: number, description: string) =>
    new GrammyError(`Call to 'sendMessage' failed! (${code}: ${description})`, { ok: false, error_code: code, description }, "sendMessage", {});
  test.each([
    [403, "Forbidden: bot was blocked by the user", true],
    [400, "Bad Request: chat not found", true],
    [429, "Too Many Requests: retry after 5", false],
    [401, "Unauthorized", false],
    [404, "Not Found", false],
    [500, "Internal Server Error", false],
    [502, "Bad Gateway", false],
  ] as const)("Bot API %i %s -> permanent %p", (code, description, permanent) => {
    expect(isPermanentFailure(grammy(code, description))).toBe(permanent);
  });
  test("network errors and handler bugs are transient", () => {
    expect(isPermanentFailure(new HttpError("Network request for 'sendMessage' failed!", new Error("ECONNREFUSED")))).toBe(false);
    expect(isPermanentFailure(new TypeError("x is undefined"))).toBe(false);
  });
  test("the recorded error names no secret", () => {
    const err = new HttpError("Network request for 'sendMessage' failed!", new Error(`connect to https://api.telegram.org/bot${TOKEN}/sendMessage refused`));
    const text = describeFailure(err, [TOKEN, "s3cret"]);
    expect(text).not.toContain(TOKEN);
    expect(text).toContain("/bot[redacted]/sendMessage");
    expect(describeFailure(new Error("x".repeat(2000)), []).length).toBe(500);
  });
});
