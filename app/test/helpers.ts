// Shared test fixtures: a valid env, a temp state dir, the app wired in-process, a fake Bot API.

import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Database } from "bun:sqlite";
import { effectiveBotToken, parseEnv, type Env } from "../src/env.ts";
import { createStore, migrate, openDatabase, type Store } from "../src/db.ts";
import { createBot, LOCAL_BOT_INFO } from "../src/bot.ts";
import { createApp } from "../src/app.ts";
import { silentLogger } from "../src/log.ts";
import { signInitData } from "../src/initdata.ts";

export const SECRET = "test_webhook_secret_0123456789abcdefXYZ";
export const TOKEN = "123456:TEST-token_abcdefghijklmnopqrstuvwxyz";

export function baseRaw(overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    NODE_ENV: "production",
    APP_URL: "https://bot.example.com",
    BOT_TOKEN: TOKEN,
    WEBHOOK_SECRET: SECRET,
    ...overrides,
  };
}

export function mustEnv(raw: Record<string, string | undefined>): Env {
  const r = parseEnv(raw);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.env;
}

export interface FakeBotApi {
  url: string;
  calls: { method: string; payload: Record<string, unknown> }[];
  /** Make the next N calls fail like the Bot API does (default HTTP 500 / ok:false). */
  failNext(n: number, error?: { error_code: number; description: string }): void;
  /** Every call addressing this chat answers like Telegram for a user who blocked the bot (403). */
  blockChat(chatId: number): void;
  /** The user unblocked the bot: calls to the chat succeed again. */
  unblockChat(chatId: number): void;
  /** Answer sendMessage only after this long (a slow Bot API makes handlers slow). */
  setSendDelay(ms: number): void;
  sendMessages(): { method: string; payload: Record<string, unknown> }[];
  stop(): void;
}

export function startFakeBotApi(): FakeBotApi {
  const calls: FakeBotApi["calls"] = [];
  let failures = 0;
  let failure = { error_code: 500, description: "Internal Server Error: fake" };
  let sendDelayMs = 0;
  const blocked = new Set<number>();
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const m = /^\/bot[^/]+\/(\w+)$/.exec(new URL(req.url).pathname);
      if (!m) return new Response("not found", { status: 404 });
      const text = await req.text();
      const payload = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      calls.push({ method: m[1]!, payload });
      if (failures > 0) {
        failures--;
        return Response.json({ ok: false, ...failure }, { status: failure.error_code });
      }
      if (blocked.has(Number(payload.chat_id)))
        return Response.json({ ok: false, error_code: 403, description: "Forbidden: bot was blocked by the user" }, { status: 403 });
      if (m[1] === "getMe")
        return Response.json({ ok: true, result: { id: 123456, is_bot: true, first_name: "Test", username: "test_bot" } });
      if (m[1] === "sendMessage" && sendDelayMs > 0) await Bun.sleep(sendDelayMs);
      if (m[1] === "sendMessage")
        return Response.json({
          ok: true,
          result: { message_id: calls.length, date: 0, chat: { id: payload.chat_id, type: "private" }, text: payload.text },
        });
      return Response.json({ ok: true, result: true });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    calls,
    failNext: (n, error = { error_code: 500, description: "Internal Server Error: fake" }) => {
      failures = n;
      failure = error;
    },
    blockChat: (chatId) => void blocked.add(chatId),
    unblockChat: (chatId) => void blocked.delete(chatId),
    setSendDelay: (ms) => void (sendDelayMs = ms),
    sendMessages: () => calls.filter((c) => c.method === "sendMessage"),
    stop: () => void server.stop(true),
  };
}

export interface Ctx {
  env: Env;
  db: Database;
  store: Store;
  app: ReturnType<typeof createApp>;
  dir: string;
  botToken: string;
  close(): void;
  /** Close the database only, keeping the files (a process exit). */
  closeDb(): void;
}

export function makeApp(
  overrides: Record<string, string | undefined> = {},
  isDraining?: () => boolean,
  opts: { dir?: string; nowMs?: () => number } = {},
): Ctx {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "lazyflow-test-"));
  mkdirSync(join(dir, "data"), { recursive: true });
  mkdirSync(join(dir, "uploads"), { recursive: true });
  const env = mustEnv(
    baseRaw({ DB_PATH: join(dir, "data", "lazyflow.db"), UPLOADS_DIR: join(dir, "uploads"), ...overrides }),
  );
  const db = openDatabase(env.DB_PATH);
  migrate(db);
  const store = createStore(db);
  const bot = createBot({ env, store, log: silentLogger, botInfo: { ...LOCAL_BOT_INFO, id: 123456, username: "test_bot" } });
  const app = createApp({ env, store, bot, log: silentLogger, isDraining, nowMs: opts.nowMs });
  return {
    env,
    db,
    store,
    app,
    dir,
    botToken: effectiveBotToken(env),
    close() {
      try {
        db.close();
      } catch {}
      rmSync(dir, { recursive: true, force: true });
    },
    closeDb() {
      try {
        db.close();
      } catch {}
    },
  };
}

export function initData(
  token: string,
  user: Record<string, unknown> = { id: 42, first_name: "Ada", username: "ada" },
  authDate = Math.floor(Date.now() / 1000),
  extra: Record<string, string> = {},
): string {
  return signInitData(
    { query_id: "AAE-test", user: JSON.stringify(user), auth_date: String(authDate), ...extra },
    token,
  );
}

export function tma(token: string, user?: Record<string, unknown>): Record<string, string> {
  return { Authorization: `tma ${initData(token, user)}` };
}

export function update(updateId: number, text: string, chatId = 42): Record<string, unknown> {
  return {
    update_id: updateId,
    message: {
      message_id: updateId,
      date: Math.floor(Date.now() / 1000),
      chat: { id: chatId, type: "private", first_name: "Ada" },
      from: { id: chatId, is_bot: false, first_name: "Ada" },
      text,
      ...(text.startsWith("/") ? { entities: [{ type: "bot_command", offset: 0, length: text.split(" ")[0]!.length }] } : {}),
    },
  };
}

/** Telegram delivering an update to the app's webhook, secret header and all. */
export const postUpdate = (c: Ctx, body: unknown) =>
  c.app.request(`/webhook/${c.env.WEBHOOK_SECRET}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": c.env.WEBHOOK_SECRET },
    body: JSON.stringify(body),
  });

/** One `SELECT count(*) AS n ...` */
export const count = (c: Ctx, sql: string, ...args: number[]) => (c.db.query(sql).get(...args) as { n: number }).n;
