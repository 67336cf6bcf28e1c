// Environment contract of the app, validated once at start-up.
// parseEnv() is pure (no process.env, no I/O) so every rule is unit-testable;
// loadEnv() wraps it for server.ts and fails fast with ONE message naming every bad key.

export type NodeEnv = "development" | "production" | "test";
export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Env {
  NODE_ENV: NodeEnv;
  PORT: number;
  APP_URL: string; // normalised: no trailing slash
  BOT_TOKEN: string; // "" in local mode
  WEBHOOK_SECRET: string;
  DB_PATH: string;
  UPLOADS_DIR: string;
  ALLOWED_ORIGINS: string[]; // exact origins; ["*"] only outside production
  LOG_LEVEL: LogLevel;
  TELEGRAM_API_ROOT: string; // normalised: no trailing slash
  ADMIN_CHAT_ID: number | null;
  APP_VERSION: string;
  UPLOAD_MAX_BYTES: number;
  /** bytes of uploads one user may store in total */
  UPLOAD_QUOTA_BYTES: number;
  /** uploads in progress at once on this instance, and per user (more get 429) */
  UPLOAD_CONCURRENCY: number;
  UPLOAD_USER_CONCURRENCY: number;
  /** free space UPLOADS_DIR's disk keeps after an upload (the backups share it): below it, 507 */
  UPLOAD_MIN_FREE_BYTES: number;
  JOB_HEARTBEAT_MS: number;
  INITDATA_MAX_AGE_S: number;
  /** Failed attempts of one update (counted across redeliveries) before it becomes a dead letter. */
  UPDATE_MAX_ATTEMPTS: number;
  /** How often the prune job deletes old update bookkeeping. */
  PRUNE_INTERVAL_MS: number;
  /** Derived: BOT_TOKEN empty AND APP_URL host is a loopback name. */
  LOCAL_MODE: boolean;
  /** Local mode only: the install's own stand-in token (grammY's token, and the key initData is signed with); "" = the public dummy. */
  LOCAL_BOT_TOKEN: string;
}

export interface EnvError {
  key: string;
  message: string;
}

export type ParseEnvResult = { ok: true; env: Env } | { ok: false; errors: EnvError[] };

/** The value docker-compose.yml embeds for local try-outs. Refused unless in local mode. */
export const LOCAL_DEFAULT_WEBHOOK_SECRET = "local-try-out-secret-not-for-production-0000";

/** Bot token used in local mode (grammY needs some token; it is never sent to Telegram). */
export const LOCAL_MODE_BOT_TOKEN = "1:LAZYFLOW_LOCAL_MODE_NOT_A_REAL_TOKEN";

const NODE_ENVS: readonly NodeEnv[] = ["development", "production", "test"];
const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];
const SECRET_RE = /^[A-Za-z0-9_-]{32,256}$/;
const BOT_TOKEN_RE = /^\d+:[A-Za-z0-9_-]+$/;

export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h.endsWith(".localhost") || h === "127.0.0.1" || h === "::1";
}

type Raw = Record<string, string | undefined>;

export function parseEnv(raw: Raw): ParseEnvResult {
  const errors: EnvError[] = [];
  const err = (key: string, message: string) => errors.push({ key, message });
  // Treat empty strings (compose `KEY=`) as unset, trim surrounding whitespace.
  const get = (key: string): string | undefined => {
    const v = raw[key];
    if (v === undefined) return undefined;
    const t = v.trim();
    return t === "" ? undefined : t;
  };
  const int = (key: string, def: number, min: number, max: number): number => {
    const v = get(key);
    if (v === undefined) return def;
    if (!/^-?\d+$/.test(v)) {
      err(key, `must be an integer, got "${v}"`);
      return def;
    }
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      err(key, `must be an integer between ${min} and ${max}, got ${v}`);
      return def;
    }
    return n;
  };

  // NODE_ENV: required, so a forgotten value never silently turns production into development.
  const nodeEnvRaw = get("NODE_ENV");
  let NODE_ENV: NodeEnv = "production";
  if (nodeEnvRaw === undefined) err("NODE_ENV", `is required (one of ${NODE_ENVS.join("|")})`);
  else if (!(NODE_ENVS as readonly string[]).includes(nodeEnvRaw))
    err("NODE_ENV", `must be one of ${NODE_ENVS.join("|")}, got "${nodeEnvRaw}"`);
  else NODE_ENV = nodeEnvRaw as NodeEnv;
  const prod = NODE_ENV === "production";

  const PORT = int("PORT", 3000, 1, 65535);

  // APP_URL: public base URL of the app (Telegram webhook target, Mini App URL).
  let APP_URL = "";
  let appHost = "";
  const appUrlRaw = get("APP_URL");
  if (appUrlRaw === undefined) {
    if (prod) err("APP_URL", "is required in production (e.g. https://app.example.com)");
    else {
      APP_URL = `http://localhost:${PORT}`;
      appHost = "localhost";
    }
  } else {
    let u: URL | null = null;
    try {
      u = new URL(appUrlRaw);
    } catch {
      err("APP_URL", `must be an absolute URL, got "${appUrlRaw}"`);
    }
    if (u) {
      if (u.protocol !== "https:" && u.protocol !== "http:") err("APP_URL", `must be http(s), got "${u.protocol}"`);
      else if (prod && u.protocol !== "https:") err("APP_URL", `must use https in production, got "${appUrlRaw}"`);
      else if (u.search || u.hash || u.username || u.password)
        err("APP_URL", "must not contain credentials, a query or a fragment");
      else {
        APP_URL = u.origin + u.pathname.replace(/\/+$/, "");
        appHost = u.hostname;
      }
    }
  }

  const botTokenRaw = get("BOT_TOKEN");
  const LOCAL_MODE = botTokenRaw === undefined && appHost !== "" && isLoopbackHost(appHost);
  let BOT_TOKEN = "";
  if (botTokenRaw === undefined) {
    if (!LOCAL_MODE)
      err("BOT_TOKEN", `is required unless APP_URL is a localhost URL (local mode)${appHost ? `; APP_URL host is "${appHost}"` : ""}`);
  } else if (!BOT_TOKEN_RE.test(botTokenRaw)) err("BOT_TOKEN", "does not look like a Telegram bot token (<digits>:<token>)");
  else BOT_TOKEN = botTokenRaw;

  // local mode: `npm run demo` generates a token per install, so initData signed with the public dummy is refused
  let LOCAL_BOT_TOKEN = "";
  const localTokenRaw = get("LOCAL_BOT_TOKEN");
  if (localTokenRaw !== undefined) {
    if (!BOT_TOKEN_RE.test(localTokenRaw)) err("LOCAL_BOT_TOKEN", "does not look like a bot token (<digits>:<token>)");
    else if (LOCAL_MODE) LOCAL_BOT_TOKEN = localTokenRaw;
  }

  let WEBHOOK_SECRET = "";
  const secretRaw = get("WEBHOOK_SECRET");
  if (secretRaw === undefined) err("WEBHOOK_SECRET", "is required (at least 32 characters of A-Za-z0-9_-)");
  else if (!SECRET_RE.test(secretRaw))
    err("WEBHOOK_SECRET", `must be 32-256 characters of A-Za-z0-9_- (got ${secretRaw.length} characters)`);
  else if (secretRaw === LOCAL_DEFAULT_WEBHOOK_SECRET && !LOCAL_MODE)
    err("WEBHOOK_SECRET", "is the public local try-out default; generate a real secret (e.g. openssl rand -hex 32)");
  else WEBHOOK_SECRET = secretRaw;

  const pathKey = (key: string, def: string): string => {
    const v = get(key) ?? def;
    if (!v.startsWith("/")) {
      err(key, `must be an absolute path, got "${v}"`);
      return def;
    }
    return v;
  };
  const DB_PATH = pathKey("DB_PATH", "/app/data/lazyflow.db");
  if (DB_PATH.endsWith("/")) err("DB_PATH", "must be a file path, not a directory");
  const UPLOADS_DIR = pathKey("UPLOADS_DIR", "/app/uploads").replace(/(.)\/+$/, "$1");

  // ALLOWED_ORIGINS: comma list of exact origins. Default: the origin of APP_URL.
  let ALLOWED_ORIGINS: string[] = [];
  const originsRaw = get("ALLOWED_ORIGINS");
  if (originsRaw === undefined) {
    if (APP_URL) ALLOWED_ORIGINS = [new URL(APP_URL).origin];
  } else {
    const items = originsRaw.split(",").map((s) => s.trim()).filter(Boolean);
    const bad: string[] = [];
    for (const item of items) {
      if (item === "*") {
        if (prod) err("ALLOWED_ORIGINS", "must not contain * in production; list the exact origins");
        else ALLOWED_ORIGINS.push("*");
        continue;
      }
      try {
        const u = new URL(item);
        const normalised = item.replace(/\/+$/, "");
        if ((u.protocol !== "https:" && u.protocol !== "http:") || u.origin !== normalised) bad.push(item);
        else ALLOWED_ORIGINS.push(u.origin);
      } catch {
        bad.push(item);
      }
    }
    if (bad.length) err("ALLOWED_ORIGINS", `entries must be origins like https://app.example.com, got ${bad.map((b) => `"${b}"`).join(", ")}`);
  }

  let LOG_LEVEL: LogLevel = "info";
  const lvl = get("LOG_LEVEL")?.toLowerCase();
  if (lvl !== undefined) {
    if ((LOG_LEVELS as readonly string[]).includes(lvl)) LOG_LEVEL = lvl as LogLevel;
    else err("LOG_LEVEL", `must be one of ${LOG_LEVELS.join("|")}, got "${lvl}"`);
  }

  let TELEGRAM_API_ROOT = "https://api.telegram.org";
  const apiRootRaw = get("TELEGRAM_API_ROOT");
  if (apiRootRaw !== undefined) {
    try {
      const u = new URL(apiRootRaw);
      if (u.protocol !== "https:" && u.protocol !== "http:") throw new Error();
      TELEGRAM_API_ROOT = apiRootRaw.replace(/\/+$/, "");
    } catch {
      err("TELEGRAM_API_ROOT", `must be an http(s) URL, got "${apiRootRaw}"`);
    }
  }

  let ADMIN_CHAT_ID: number | null = null;
  const adminRaw = get("ADMIN_CHAT_ID");
  if (adminRaw !== undefined) {
    if (/^-?\d+$/.test(adminRaw) && Number.isSafeInteger(Number(adminRaw))) ADMIN_CHAT_ID = Number(adminRaw);
    else err("ADMIN_CHAT_ID", `must be a numeric Telegram chat id, got "${adminRaw}"`);
  }

  const APP_VERSION = get("APP_VERSION") ?? "dev";
  if (!/^[A-Za-z0-9._+-]{1,128}$/.test(APP_VERSION)) err("APP_VERSION", `must be 1-128 characters of A-Za-z0-9._+-, got "${APP_VERSION}"`);

  const UPLOAD_MAX_BYTES = int("UPLOAD_MAX_BYTES", 10 * 1024 * 1024, 1, 1024 * 1024 * 1024);
  const UPLOAD_QUOTA_BYTES = int("UPLOAD_QUOTA_BYTES", 256 * 1024 * 1024, 1, Number.MAX_SAFE_INTEGER);
  const UPLOAD_CONCURRENCY = int("UPLOAD_CONCURRENCY", 4, 1, 1000);
  const UPLOAD_USER_CONCURRENCY = int("UPLOAD_USER_CONCURRENCY", 2, 1, 1000);
  const UPLOAD_MIN_FREE_BYTES = int("UPLOAD_MIN_FREE_BYTES", 1024 * 1024 * 1024, 0, Number.MAX_SAFE_INTEGER);
  const JOB_HEARTBEAT_MS = int("JOB_HEARTBEAT_MS", 5000, 100, 24 * 3600 * 1000);
  const INITDATA_MAX_AGE_S = int("INITDATA_MAX_AGE_S", 86400, 1, 365 * 86400);
  const UPDATE_MAX_ATTEMPTS = int("UPDATE_MAX_ATTEMPTS", 5, 1, 1000);
  const PRUNE_INTERVAL_MS = int("PRUNE_INTERVAL_MS", 3600 * 1000, 1000, 24 * 3600 * 1000);

  if (errors.length) return { ok: false, errors };
  return {
    ok: true,
    env: {
      NODE_ENV,
      PORT,
      APP_URL,
      BOT_TOKEN,
      WEBHOOK_SECRET,
      DB_PATH,
      UPLOADS_DIR,
      ALLOWED_ORIGINS,
      LOG_LEVEL,
      TELEGRAM_API_ROOT,
      ADMIN_CHAT_ID,
      APP_VERSION,
      UPLOAD_MAX_BYTES,
      UPLOAD_QUOTA_BYTES,
      UPLOAD_CONCURRENCY,
      UPLOAD_USER_CONCURRENCY,
      UPLOAD_MIN_FREE_BYTES,
      JOB_HEARTBEAT_MS,
      INITDATA_MAX_AGE_S,
      UPDATE_MAX_ATTEMPTS,
      PRUNE_INTERVAL_MS,
      LOCAL_MODE,
      LOCAL_BOT_TOKEN,
    },
  };
}

export function formatEnvErrors(errors: EnvError[]): string {
  return (
    `Invalid environment (${errors.length} problem${errors.length === 1 ? "" : "s"}): ` +
    errors.map((e) => `${e.key} ${e.message}`).join("; ")
  );
}

/** Token grammY is constructed with: the real one, or the local-mode dummy. */
export function effectiveBotToken(env: Env): string {
  return env.LOCAL_MODE ? env.LOCAL_BOT_TOKEN || LOCAL_MODE_BOT_TOKEN : env.BOT_TOKEN;
}
