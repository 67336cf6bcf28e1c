import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { LOCAL_DEFAULT_WEBHOOK_SECRET } from "../src/env.ts";
import { makeApp, SECRET, startFakeBotApi, update, type Ctx, type FakeBotApi } from "./helpers.ts";

let api: FakeBotApi;
let ctx: Ctx;
beforeAll(() => {
  api = startFakeBotApi();
  ctx = makeApp({ TELEGRAM_API_ROOT: api.url });
});
afterAll(() => {
  ctx.close();
  api.stop();
});

const post = (c: Ctx, body: unknown, opts: { secret?: string; header?: string | null } = {}) => {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  const header = opts.header === undefined ? c.env.WEBHOOK_SECRET : opts.header;
  if (header !== null) headers["X-Telegram-Bot-Api-Secret-Token"] = header;
  return c.app.request(`/webhook/${opts.secret ?? c.env.WEBHOOK_SECRET}`, {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
};
const count = (c: Ctx, sql: string, ...args: number[]) =>
  (c.db.query(sql).get(...args) as { n: number }).n;

describe("webhook", () => {
  test("wrong path secret -> 404, before any header check", async () => {
    const res = await post(ctx, update(1, "hi"), { secret: "x".repeat(40) });
    expect(res.status).toBe(404);
    expect((await post(ctx, update(1, "hi"), { secret: "x".repeat(40), header: null })).status).toBe(404);
    expect(count(ctx, "SELECT count(*) AS n FROM processed_updates")).toBe(0);
  });

  test("missing or wrong X-Telegram-Bot-Api-Secret-Token -> 401 (grammY)", async () => {
    expect((await post(ctx, update(2, "hi"), { header: null })).status).toBe(401);
    expect((await post(ctx, update(2, "hi"), { header: SECRET.slice(0, -1) + "Q" })).status).toBe(401);
    expect(count(ctx, "SELECT count(*) AS n FROM processed_updates")).toBe(0);
  });

  test("/start replies via sendMessage and is recorded once", async () => {
    const before = api.calls.length;
    const res = await post(ctx, update(100, "/start", 4242));
    expect(res.status).toBe(200);
    const sent = api.calls.slice(before).filter((c) => c.method === "sendMessage");
    expect(sent).toHaveLength(1);
    expect(sent[0]!.payload.chat_id).toBe(4242);
    expect(String(sent[0]!.payload.text)).toContain("Hi, Ada");
    expect(count(ctx, "SELECT count(*) AS n FROM bot_messages WHERE update_id = ?", 100)).toBe(1);
  });

  test("the same update delivered twice is processed once", async () => {
    const before = api.calls.length;
    const u = update(200, "/start", 77);
    expect((await post(ctx, u)).status).toBe(200);
    expect((await post(ctx, u)).status).toBe(200);
    expect(api.calls.slice(before).filter((c) => c.method === "sendMessage")).toHaveLength(1);
    expect(count(ctx, "SELECT count(*) AS n FROM processed_updates WHERE update_id = ?", 200)).toBe(1);
    expect(count(ctx, "SELECT count(*) AS n FROM bot_messages WHERE update_id = ?", 200)).toBe(1);
  });

  test("concurrent redeliveries: the handler runs once (one sendMessage), the others get 503", async () => {
    // A slow Bot API keeps the first delivery in its handler while the redeliveries arrive.
    api.setSendDelay(300);
    try {
      const u = update(250, "/start", 2500);
      const before = api.sendMessages().length;
      const statuses = (await Promise.all([post(ctx, u), post(ctx, u), post(ctx, u)])).map((r) => r.status);
      expect(api.sendMessages().slice(before)).toHaveLength(1);
      expect(statuses.sort()).toEqual([200, 503, 503]);
      expect((await post(ctx, u)).status).toBe(200);
      expect(api.sendMessages().slice(before)).toHaveLength(1);
      expect(count(ctx, "SELECT count(*) AS n FROM bot_messages WHERE update_id = ?", 250)).toBe(1);
    } finally {
      api.setSendDelay(0);
    }
  });

  test("a failing handler answers 500 and is NOT recorded; the redelivery is processed", async () => {
    api.failNext(1);
    const u = update(300, "/start", 55);
    const before = api.calls.length;
    expect((await post(ctx, u)).status).toBe(500);
    expect(count(ctx, "SELECT count(*) AS n FROM processed_updates WHERE update_id = ?", 300)).toBe(0);
    expect(count(ctx, "SELECT count(*) AS n FROM bot_messages WHERE update_id = ?", 300)).toBe(0);
    expect((await post(ctx, u)).status).toBe(200);
    expect(api.calls.slice(before).filter((c) => c.method === "sendMessage")).toHaveLength(2);
    expect(count(ctx, "SELECT count(*) AS n FROM bot_messages WHERE update_id = ?", 300)).toBe(1);
  });

  test("plain messages are recorded without a reply; malformed bodies are 400", async () => {
    const before = api.calls.length;
    expect((await post(ctx, update(400, "just text"))).status).toBe(200);
    expect(api.calls.length).toBe(before);
    expect((ctx.db.query("SELECT text FROM bot_messages WHERE update_id = 400").get() as { text: string }).text).toBe("just text");
    expect((await post(ctx, "{not json")).status).toBe(400);
    expect((await post(ctx, { message: {} })).status).toBe(400);
  });

  test("local mode: replies are skipped (no Bot API call) and updates still recorded", async () => {
    const local = makeApp({ APP_URL: "https://localhost", BOT_TOKEN: "", WEBHOOK_SECRET: LOCAL_DEFAULT_WEBHOOK_SECRET, TELEGRAM_API_ROOT: api.url });
    try {
      expect(local.env.LOCAL_MODE).toBe(true);
      const before = api.calls.length;
      expect((await post(local, update(1, "/start"))).status).toBe(200);
      expect(api.calls.length).toBe(before);
      expect(count(local, "SELECT count(*) AS n FROM bot_messages")).toBe(1);
    } finally {
      local.close();
    }
  });
});
