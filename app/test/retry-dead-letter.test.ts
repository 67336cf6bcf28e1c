// retry-dead-letter.ts: the operator's retry of a dead letter (node scripts/db.mts --retry) runs the
// app's own handlers on the kept update, as a second process beside the server, and commits it exactly
// once: the dead letter goes in the commit that records the update_id; a failed retry stays a dead letter.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { baseRaw, count as n, makeApp, postUpdate as post, startFakeBotApi, update, type Ctx, type FakeBotApi } from "./helpers.ts";

let api: FakeBotApi;
beforeAll(() => {
  api = startFakeBotApi();
});
afterAll(() => api.stop());


/**
 * the script as the toolkit runs it in the container: its own process, the container's environment
 * (async: the fake Bot API answers from this process)
 */
async function retry(c: Ctx, id: string) {
  const p = Bun.spawn([process.execPath, join(import.meta.dir, "..", "src", "retry-dead-letter.ts"), id], {
    env: { ...baseRaw({ DB_PATH: c.env.DB_PATH, UPLOADS_DIR: c.env.UPLOADS_DIR, TELEGRAM_API_ROOT: api.url }), PATH: process.env.PATH },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const last = stdout.trim().split("\n").at(-1) ?? "";
  return { code, out: JSON.parse(last) as { update_id: number; result: string; error?: string }, stderr };
}

describe("retry-dead-letter.ts", () => {
  test("a dead letter retried after its cause is gone is processed once: its writes, its reply, no dead letter", async () => {
    const c = makeApp({ TELEGRAM_API_ROOT: api.url });
    try {
      api.blockChat(777);
      expect((await post(c, update(50, "/add buy milk", 777))).status).toBe(200);
      const kept = c.db.query("SELECT update_json FROM dead_letters WHERE update_id = 50").get() as { update_json: string };
      expect(JSON.parse(kept.update_json)).toEqual(update(50, "/add buy milk", 777) as never);
      expect(n(c, "SELECT count(*) AS n FROM tasks WHERE user_id = 777")).toBe(0);

      api.unblockChat(777);
      const before = api.sendMessages().filter((m) => m.payload.chat_id === 777).length;
      const r = await retry(c, "50");
      expect(r.code, r.stderr).toBe(0);
      expect(r.out).toEqual({ update_id: 50, result: "processed" });
      expect(n(c, "SELECT count(*) AS n FROM dead_letters WHERE update_id = 50")).toBe(0);
      expect(n(c, "SELECT count(*) AS n FROM processed_updates WHERE update_id = 50")).toBe(1);
      expect(n(c, "SELECT count(*) AS n FROM tasks WHERE user_id = 777")).toBe(1);
      expect(api.sendMessages().filter((m) => m.payload.chat_id === 777).length - before).toBe(1);

      // again, or Telegram redelivering it: nothing runs twice
      const again = await retry(c, "50");
      expect(again.code).toBe(3);
      expect(again.out.result).toBe("already_processed");
      expect((await post(c, update(50, "/add buy milk", 777))).status).toBe(200);
      expect(n(c, "SELECT count(*) AS n FROM tasks WHERE user_id = 777")).toBe(1);
      expect(api.sendMessages().filter((m) => m.payload.chat_id === 777).length - before).toBe(1);
    } finally {
      c.close();
    }
  }, 30_000); // each retry starts a Bun process

  test("a retry that fails again stays a dead letter with one more attempt and the new error; nothing applied", async () => {
    const c = makeApp({ TELEGRAM_API_ROOT: api.url });
    try {
      api.blockChat(778);
      await post(c, update(51, "/add never", 778));
      const r = await retry(c, "51");
      expect(r.code).toBe(1);
      expect(r.out).toEqual({ update_id: 51, result: "failed", error: "sendMessage: 403 Forbidden: bot was blocked by the user" });
      expect(c.db.query("SELECT attempts, reason FROM dead_letters WHERE update_id = 51").get()).toEqual({ attempts: 2, reason: "permanent" });
      expect(n(c, "SELECT count(*) AS n FROM processed_updates WHERE update_id = 51")).toBe(0);
      expect(n(c, "SELECT count(*) AS n FROM tasks WHERE user_id = 778")).toBe(0);
    } finally {
      c.close();
    }
  }, 30_000); // each retry starts a Bun process

  test.each([
    ["999", 3, "not_found"],
    ["abc", 2, "usage"],
  ])("update %s: exit %d (%s), nothing changed", async (id, code, result) => {
    const c = makeApp({ TELEGRAM_API_ROOT: api.url });
    try {
      const r = await retry(c, id);
      expect(r.code).toBe(code);
      expect(r.out.result).toBe(result);
    } finally {
      c.close();
    }
  }, 30_000); // each retry starts a Bun process

  test("a dead letter from before the update was kept (schema v3) cannot be retried: exit 4, left as it is", async () => {
    const c = makeApp({ TELEGRAM_API_ROOT: api.url });
    try {
      c.db.run("INSERT INTO dead_letters (update_id, attempts, reason, last_error, chat_id, failed_at) VALUES (52, 1, 'permanent', 'x', 1, '2026-01-01T00:00:00Z')");
      const r = await retry(c, "52");
      expect(r.code).toBe(4);
      expect(r.out.result).toBe("no_update_kept");
      expect(n(c, "SELECT count(*) AS n FROM dead_letters WHERE update_id = 52")).toBe(1);
    } finally {
      c.close();
    }
  }, 30_000); // each retry starts a Bun process
});
