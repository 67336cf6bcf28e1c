// Process entry point: env -> state dirs -> db + migrations -> bot -> Hono app -> Bun.serve -> jobs.
// Everything testable lives in the other modules; this file only wires and handles the lifecycle.

import { formatEnvErrors, parseEnv, type Env } from "./env.ts";
import { createLogger, errorFields, type Logger } from "./log.ts";
import { checkStateDirs } from "./fscheck.ts";
import { checkpointAndClose, createStore, migrate, openDatabase, SCHEMA_VERSION } from "./db.ts";
import { ALLOWED_UPDATES, createBot, webhookUrl } from "./bot.ts";
import { createApp, redactPath } from "./app.ts";
import { createJobs, heartbeatJob, pruneJob } from "./jobs.ts";
import type { Bot } from "grammy";
import type { BotContext } from "./bot.ts";

const HARD_SHUTDOWN_MS = 9000;
/**
 * Lame-duck period after SIGTERM: /ready answers 503 while every other request is still served,
 * so Caddy's active health check (every 250 ms) takes this upstream out before the listener
 * closes. Closing at once would reset connections Caddy had just opened, and a POST that was
 * already sent cannot be retried.
 */
const LAME_DUCK_MS = 1000;
/** Part of the hard timeout reserved for jobs + checkpoint after draining requests. */
const DRAIN_MS = 7000;

const parsed = parseEnv(process.env);
if (!parsed.ok) {
  createLogger("info").error("invalid_environment", { message: formatEnvErrors(parsed.errors), errors: parsed.errors });
  process.exit(2);
}
const env: Env = parsed.env;
const log = createLogger(env.LOG_LEVEL);

function fatal(msg: string, fields: Record<string, unknown>): never {
  log.error(msg, fields);
  process.exit(1);
}

const botMode = env.LOCAL_MODE
  ? "local"
  : env.NODE_ENV === "production"
    ? "webhook"
    : env.NODE_ENV === "development"
      ? "polling"
      : "none";

log.info("starting", {
  version: env.APP_VERSION,
  nodeEnv: env.NODE_ENV,
  bun: Bun.version,
  pid: process.pid,
  uid: process.getuid?.(),
  botMode,
  appUrl: env.APP_URL,
  dbPath: env.DB_PATH,
  uploadsDir: env.UPLOADS_DIR,
});

const dirProblems = checkStateDirs(env.DB_PATH, env.UPLOADS_DIR);
if (dirProblems.length) fatal("state_dir_not_writable", { message: dirProblems.join("; ") });

let db: ReturnType<typeof openDatabase>;
try {
  db = openDatabase(env.DB_PATH);
  const { from, to } = migrate(db);
  log.info("db_ready", {
    path: env.DB_PATH,
    journalMode: (db.query("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode,
    schemaFrom: from,
    schemaTo: to,
    latest: SCHEMA_VERSION,
  });
} catch (err) {
  fatal("db_open_failed", { path: env.DB_PATH, err });
}
const store = createStore(db);
const bot = createBot({ env, store, log });
let shuttingDown = false;
const app = createApp({ env, store, bot, log, polling: botMode === "polling", isDraining: () => shuttingDown });

const server = Bun.serve({
  hostname: "0.0.0.0",
  port: env.PORT,
  // Bun rejects larger bodies itself; the exact limit (413 JSON) is enforced by the /media route.
  maxRequestBodySize: env.UPLOAD_MAX_BYTES + 1024 * 1024,
  idleTimeout: 30,
  async fetch(req, srv) {
    const res = await app.fetch(req, { server: srv });
    // While draining, ask keep-alive clients (Caddy) to open a new connection elsewhere.
    if (shuttingDown) res.headers.set("Connection", "close");
    return res;
  },
});
log.info("listening", { port: server.port, hostname: "0.0.0.0" });

const jobs = createJobs([heartbeatJob(store, env.JOB_HEARTBEAT_MS), pruneJob(store, env.PRUNE_INTERVAL_MS, log)], log);
jobs.start();

const lifecycle = new AbortController();

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });

/** setWebhook with retries in the background: a Telegram outage must not crash-loop the container. */
async function registerWebhook(b: Bot<BotContext>, e: Env, l: Logger, signal: AbortSignal): Promise<void> {
  let delay = 1000;
  for (let attempt = 1; !signal.aborted; attempt++) {
    try {
      // Not bot.init(): it retries getMe silently with up to 20 min backoff; fail fast and log instead.
      if (!b.isInited()) b.botInfo = await b.api.getMe(signal as never);
      await b.api.setWebhook(
        webhookUrl(e),
        { secret_token: e.WEBHOOK_SECRET, allowed_updates: [...ALLOWED_UPDATES], drop_pending_updates: false },
        signal as never,
      );
      l.info("webhook_registered", { url: redactPath(new URL(webhookUrl(e)).pathname), bot: b.botInfo.username, attempt });
      return;
    } catch (err) {
      if (signal.aborted) return;
      const cause = (err as { error?: unknown }).error; // grammY HttpError wraps the fetch error
      const scrub = (v: unknown) => (v === undefined ? undefined : String(errorFields(v).message).split(b.token).join("[token]"));
      l.warn("webhook_register_failed", { attempt, retryInMs: delay, err: scrub(err), cause: scrub(cause) });
      await sleep(delay, signal);
      delay = Math.min(delay * 2, 60_000);
    }
  }
}

if (botMode === "webhook") void registerWebhook(bot, env, log, lifecycle.signal);
else if (botMode === "polling") {
  void bot
    .start({
      drop_pending_updates: false,
      allowed_updates: [...ALLOWED_UPDATES],
      onStart: (me) => log.info("polling_started", { bot: me.username }),
    })
    .catch((err) => log.error("polling_failed", { err }));
  bot.catch((err) => log.error("update_failed", { err: err.error, update_id: err.ctx.update.update_id }));
} else log.info("bot_idle", { reason: botMode === "local" ? "local mode: no BOT_TOKEN, localhost APP_URL" : "NODE_ENV=test" });

async function shutdown(signal: string): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  const t0 = performance.now();
  const elapsed = () => Math.round(performance.now() - t0);
  log.info("shutdown_start", { signal, pendingRequests: server.pendingRequests });
  const hard = setTimeout(() => {
    log.error("shutdown_timeout", { ms: elapsed(), pendingRequests: server.pendingRequests });
    process.exit(1);
  }, HARD_SHUTDOWN_MS);
  try {
    lifecycle.abort();
    await Bun.sleep(LAME_DUCK_MS);
    log.info("lame_duck_done", { ms: elapsed(), pendingRequests: server.pendingRequests });
    // Stop accepting new connections; in-flight requests keep running.
    void server.stop(false);
    while (server.pendingRequests > 0 && performance.now() - t0 < DRAIN_MS) await Bun.sleep(25);
    const left = server.pendingRequests;
    // Close idle keep-alive connections (and anything that overran the drain window).
    await server.stop(true);
    log.info("server_stopped", { ms: elapsed(), abandonedRequests: left });
    if (botMode === "polling" && bot.isRunning()) await bot.stop();
    await jobs.stop();
    const cp = checkpointAndClose(db);
    // After a successful TRUNCATE checkpoint busy is 0 and the WAL file is empty.
    log.info("db_closed", { checkpoint: "TRUNCATE", walTruncated: cp.busy === 0, busy: cp.busy });
  } catch (err) {
    log.error("shutdown_error", { err, ms: elapsed() });
    clearTimeout(hard);
    process.exit(1);
  }
  clearTimeout(hard);
  log.info("shutdown_complete", { ms: elapsed() });
  process.exit(0);
}

process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
