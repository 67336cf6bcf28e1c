import { describe, expect, test } from "bun:test";
import { effectiveBotToken, formatEnvErrors, LOCAL_DEFAULT_WEBHOOK_SECRET, LOCAL_MODE_BOT_TOKEN, parseEnv } from "../src/env.ts";
import { baseRaw, SECRET } from "./helpers.ts";

const errorKeys = (raw: Record<string, string | undefined>) => {
  const r = parseEnv(raw);
  return r.ok ? [] : r.errors.map((e) => e.key);
};

describe("parseEnv", () => {
  test("valid production env with defaults", () => {
    const r = parseEnv(baseRaw());
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.env).toMatchObject({
      NODE_ENV: "production",
      PORT: 3000,
      APP_URL: "https://bot.example.com",
      DB_PATH: "/app/data/lazyflow.db",
      UPLOADS_DIR: "/app/uploads",
      ALLOWED_ORIGINS: ["https://bot.example.com"],
      LOG_LEVEL: "info",
      TELEGRAM_API_ROOT: "https://api.telegram.org",
      ADMIN_CHAT_ID: null,
      APP_VERSION: "dev",
      UPLOAD_MAX_BYTES: 10 * 1024 * 1024,
      UPLOAD_QUOTA_BYTES: 256 * 1024 * 1024,
      UPLOAD_CONCURRENCY: 4,
      UPLOAD_USER_CONCURRENCY: 2,
      UPLOAD_MIN_FREE_BYTES: 1024 * 1024 * 1024,
      JOB_HEARTBEAT_MS: 5000,
      INITDATA_MAX_AGE_S: 86400,
      LOCAL_MODE: false,
      LOCAL_BOT_TOKEN: "",
    });
  });

  test("empty record names every required key in one result", () => {
    const r = parseEnv({});
    expect(r.ok).toBe(false);
    if (r.ok) return;
    // NODE_ENV missing -> the other rules are checked as for production, so APP_URL is required too
    expect(r.errors.map((e) => e.key).sort()).toEqual(["APP_URL", "BOT_TOKEN", "NODE_ENV", "WEBHOOK_SECRET"]);
    const r2 = parseEnv({ NODE_ENV: "production" });
    expect(r2.ok ? [] : r2.errors.map((e) => e.key).sort()).toEqual(["APP_URL", "BOT_TOKEN", "WEBHOOK_SECRET"]);
  });

  test("every invalid key is reported at once, and formatted as one message", () => {
    const raw = {
      NODE_ENV: "staging",
      PORT: "70000",
      APP_URL: "not a url",
      BOT_TOKEN: "nope",
      WEBHOOK_SECRET: "short",
      DB_PATH: "relative.db",
      UPLOADS_DIR: "uploads",
      ALLOWED_ORIGINS: "https://ok.example.com,https://bad.example.com/path",
      LOG_LEVEL: "loud",
      TELEGRAM_API_ROOT: "ftp://x",
      ADMIN_CHAT_ID: "abc",
      APP_VERSION: "has space",
      UPLOAD_MAX_BYTES: "ten",
      JOB_HEARTBEAT_MS: "5",
      INITDATA_MAX_AGE_S: "0",
    };
    const r = parseEnv(raw);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const keys = r.errors.map((e) => e.key).sort();
    expect(keys).toEqual(Object.keys(raw).sort());
    const msg = formatEnvErrors(r.errors);
    for (const k of Object.keys(raw)) expect(msg).toContain(k);
    expect(msg.startsWith(`Invalid environment (${keys.length} problems)`)).toBe(true);
  });

  test("http APP_URL refused in production, allowed in development", () => {
    expect(errorKeys(baseRaw({ APP_URL: "http://bot.example.com" }))).toEqual(["APP_URL"]);
    expect(parseEnv(baseRaw({ NODE_ENV: "development", APP_URL: "http://bot.example.com" })).ok).toBe(true);
  });

  test("* in ALLOWED_ORIGINS refused in production, accepted in development", () => {
    expect(errorKeys(baseRaw({ ALLOWED_ORIGINS: "*" }))).toEqual(["ALLOWED_ORIGINS"]);
    expect(errorKeys(baseRaw({ ALLOWED_ORIGINS: "https://a.example.com, *" }))).toEqual(["ALLOWED_ORIGINS"]);
    const dev = parseEnv(baseRaw({ NODE_ENV: "development", ALLOWED_ORIGINS: "*" }));
    expect(dev.ok && dev.env.ALLOWED_ORIGINS).toEqual(["*"]);
  });

  test("ALLOWED_ORIGINS comma list is parsed to exact origins", () => {
    const r = parseEnv(baseRaw({ ALLOWED_ORIGINS: " https://a.example.com ,https://b.example.com:8443/ ,," }));
    expect(r.ok && r.env.ALLOWED_ORIGINS).toEqual(["https://a.example.com", "https://b.example.com:8443"]);
  });

  test("weak or malformed WEBHOOK_SECRET refused", () => {
    expect(errorKeys(baseRaw({ WEBHOOK_SECRET: "a".repeat(31) }))).toEqual(["WEBHOOK_SECRET"]);
    expect(errorKeys(baseRaw({ WEBHOOK_SECRET: "a".repeat(31) + "!" }))).toEqual(["WEBHOOK_SECRET"]);
    expect(errorKeys(baseRaw({ WEBHOOK_SECRET: "with space in the secret value 0123" }))).toEqual(["WEBHOOK_SECRET"]);
    expect(errorKeys(baseRaw({ WEBHOOK_SECRET: "" }))).toEqual(["WEBHOOK_SECRET"]);
    expect(parseEnv(baseRaw({ WEBHOOK_SECRET: "A-z_0".repeat(7) })).ok).toBe(true);
  });

  test("local mode: empty BOT_TOKEN + localhost APP_URL", () => {
    const r = parseEnv({ NODE_ENV: "production", APP_URL: "https://localhost", BOT_TOKEN: "", WEBHOOK_SECRET: LOCAL_DEFAULT_WEBHOOK_SECRET });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.env.LOCAL_MODE).toBe(true);
    expect(r.env.BOT_TOKEN).toBe("");
    expect(r.env.ALLOWED_ORIGINS).toEqual(["https://localhost"]);
    const port = parseEnv({ NODE_ENV: "production", APP_URL: "https://localhost:8443", WEBHOOK_SECRET: SECRET });
    expect(port.ok && port.env.LOCAL_MODE).toBe(true);
  });

  test("local mode: the install's own LOCAL_BOT_TOKEN signs initData instead of the public dummy; ignored outside local mode", () => {
    const own = parseEnv({ NODE_ENV: "production", APP_URL: "https://localhost", WEBHOOK_SECRET: SECRET, LOCAL_BOT_TOKEN: "4242:own-install-token_abc" });
    expect(own.ok && effectiveBotToken(own.env)).toBe("4242:own-install-token_abc");
    const none = parseEnv({ NODE_ENV: "production", APP_URL: "https://localhost", WEBHOOK_SECRET: SECRET });
    expect(none.ok && effectiveBotToken(none.env)).toBe(LOCAL_MODE_BOT_TOKEN);
    expect(errorKeys({ NODE_ENV: "production", APP_URL: "https://localhost", WEBHOOK_SECRET: SECRET, LOCAL_BOT_TOKEN: "not a token" })).toEqual(["LOCAL_BOT_TOKEN"]);
    const prod = parseEnv(baseRaw({ LOCAL_BOT_TOKEN: "4242:own-install-token_abc" }));
    expect(prod.ok && effectiveBotToken(prod.env)).toBe(prod.ok ? prod.env.BOT_TOKEN : "");
  });

  test("not local mode: BOT_TOKEN required for a real host, local default secret refused", () => {
    expect(errorKeys({ NODE_ENV: "production", APP_URL: "https://bot.example.com", WEBHOOK_SECRET: SECRET })).toEqual(["BOT_TOKEN"]);
    expect(errorKeys(baseRaw({ WEBHOOK_SECRET: LOCAL_DEFAULT_WEBHOOK_SECRET }))).toEqual(["WEBHOOK_SECRET"]);
    // localhost but with a real token is not local mode either
    const r = parseEnv(baseRaw({ APP_URL: "https://localhost", WEBHOOK_SECRET: LOCAL_DEFAULT_WEBHOOK_SECRET }));
    expect(r.ok ? [] : r.errors.map((e) => e.key)).toEqual(["WEBHOOK_SECRET"]);
    const ok = parseEnv(baseRaw({ APP_URL: "https://localhost" }));
    expect(ok.ok && ok.env.LOCAL_MODE).toBe(false);
  });

  test("numbers, optional keys and normalisation", () => {
    const r = parseEnv(
      baseRaw({
        PORT: "8080",
        APP_URL: "https://bot.example.com/",
        TELEGRAM_API_ROOT: "http://fake-bot-api:8081/",
        ADMIN_CHAT_ID: "-1001234567890",
        APP_VERSION: "v1.2.3-abc",
        UPLOAD_MAX_BYTES: "1024",
        JOB_HEARTBEAT_MS: "250",
        INITDATA_MAX_AGE_S: "60",
        LOG_LEVEL: "DEBUG",
      }),
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.env).toMatchObject({
      PORT: 8080,
      APP_URL: "https://bot.example.com",
      TELEGRAM_API_ROOT: "http://fake-bot-api:8081",
      ADMIN_CHAT_ID: -1001234567890,
      APP_VERSION: "v1.2.3-abc",
      UPLOAD_MAX_BYTES: 1024,
      JOB_HEARTBEAT_MS: 250,
      INITDATA_MAX_AGE_S: 60,
      LOG_LEVEL: "debug",
    });
  });

  test("development without APP_URL defaults to localhost (local mode without token)", () => {
    const r = parseEnv({ NODE_ENV: "development", WEBHOOK_SECRET: SECRET });
    expect(r.ok && r.env.APP_URL).toBe("http://localhost:3000");
    expect(r.ok && r.env.LOCAL_MODE).toBe(true);
  });
});
