// Shared test fixtures: a valid env, a temp state dir, the app wired in-process, a fake Bot API.

import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Database } from "bun:sqlite";
import { parseEnv, type Env } from "../src/env.ts";
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
  /** Make the next N calls fail with HTTP 500 / ok:false. */
  failNext(n: number): void;
  stop(): void;
}

export function startFakeBotApi(): FakeBotApi {
  const calls: FakeBotApi["calls"] = [];
  let failures = 0;
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
        return Response.json({ ok: false, error_code: 500, description: "Internal Server Error: fake" }, { status: 500 });
      }
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
    failNext: (n) => void (failures = n),
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
}

export function makeApp(overrides: Record<string, string | undefined> = {}, isDraining?: () => boolean): Ctx {
  const dir = mkdtempSync(join(tmpdir(), "lazyflow-test-"));
  mkdirSync(join(dir, "data"));
  mkdirSync(join(dir, "uploads"));
  const env = mustEnv(
    baseRaw({ DB_PATH: join(dir, "data", "lazyflow.db"), UPLOADS_DIR: join(dir, "uploads"), ...overrides }),
  );
  const db = openDatabase(env.DB_PATH);
  migrate(db);
  const store = createStore(db);
  const bot = createBot({ env, store, log: silentLogger, botInfo: { ...LOCAL_BOT_INFO, id: 123456, username: "test_bot" } });
  const app = createApp({ env, store, bot, log: silentLogger, isDraining });
  return {
    env,
    db,
    store,
    app,
    dir,
    botToken: env.LOCAL_MODE ? "1:LAZYFLOW_LOCAL_MODE_NOT_A_REAL_TOKEN" : env.BOT_TOKEN,
    close() {
      try {
        db.close();
      } catch {}
      rmSync(dir, { recursive: true, force: true });
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
