// The HTTP surface of the app as a Hono instance. Built by createApp(deps) so tests can drive it
// in-process with app.request(...); server.ts wires env + db + bot + jobs + Bun.serve.

import { randomBytes, timingSafeEqual } from "node:crypto";
import { statfsSync } from "node:fs";
import { open, rename, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { BotError, webhookCallback, type Bot } from "grammy";
import { effectiveBotToken, type Env } from "./env.ts";
import type { Logger } from "./log.ts";
import type { Store, TaskRow, UserRow } from "./db.ts";
import { validateInitData } from "./initdata.ts";
import { BadUpdateError, UpdateInFlightError, type BotContext } from "./bot.ts";
import { discardBody, streamFilePart, uploadSlots, UploadError } from "./upload.ts";

export interface AppDeps {
  env: Env;
  store: Store;
  bot: Bot<BotContext>;
  log: Logger;
  /** Name of the job whose last tick /health reports. */
  heartbeatJob?: string;
  /** Development long-polling: the webhook route is then disabled (404). */
  polling?: boolean;
  /** True once SIGTERM arrived: /ready turns 503 so the proxy stops routing here. */
  isDraining?: () => boolean;
  /** Clock of the /health/write rate limit (tests). */
  nowMs?: () => number;
}

/** /health/write writes at most once per this interval; calls in between get the last result. */
export const WRITE_PROBE_MIN_INTERVAL_MS = 1000;

type AppEnv = { Variables: { user: UserRow } };

const TITLE_MAX = 200;
/** Room for the multipart envelope around a file of UPLOAD_MAX_BYTES. */
const MULTIPART_OVERHEAD = 64 * 1024;

export function redactPath(path: string): string {
  // any case, and an encoded slash: Caddy routes /WEBHOOK/<secret> and /webhook%2F<secret> here too
  return path.replace(/\/webhook(\/|%2f)[^/]*/gi, "/webhook/[redacted]");
}

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/**
 * 413 for a body over the limit, sent only once the body is read and dropped: Hono's bodyLimit answers
 * from Content-Length alone, and a proxy still streaming the body (Caddy) then answered 502 instead of
 * this 413 now and then. Memory stays at one chunk; Caddy bounds the size (request_body max_size).
 */
const tooLarge = (limit: number) => async (c: Context) => {
  try {
    const reader = c.req.raw.body?.getReader();
    if (reader) for (;;) if ((await reader.read()).done) break;
  } catch {
    /* the client went away, or the body was already taken: nothing left to read */
  }
  return jsonError(c, 413, "payload_too_large", `limit is ${limit} bytes`);
};

const jsonError = (c: Context, status: 400 | 401 | 404 | 413 | 500 | 503, error: string, message?: string) =>
  c.json(message ? { error, message } : { error }, status);

const taskJson = (t: TaskRow) => ({
  id: t.id,
  title: t.title,
  done: t.done === 1,
  created_at: t.created_at,
  updated_at: t.updated_at,
});

const userJson = (u: UserRow) => ({
  id: u.id,
  first_name: u.first_name,
  last_name: u.last_name,
  username: u.username,
  language_code: u.language_code,
  created_at: u.created_at,
});

function parseId(s: string): number | null {
  if (!/^[1-9]\d{0,15}$/.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : null;
}

function cleanMime(type: string): string {
  const base = type.split(";")[0]!.trim().toLowerCase();
  return /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/.test(base)
    ? base
    : "application/octet-stream";
}

function cleanName(name: string): string {
  // Stored only as metadata (never used in a path); strip control chars and path parts.
  const base = name.split(/[\\/]/).pop() ?? "";
  const cleaned = base.replace(/[\u0000-\u001f\u007f]/g, "").trim().slice(0, 255);
  return cleaned || "file";
}

function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]/g, "_").replace(/["\\]/g, "_");
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

export function createApp({ env, store, bot, log, heartbeatJob = "heartbeat", polling = false, isDraining = () => false, nowMs = Date.now }: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const botToken = effectiveBotToken(env);

  // --- request log (one line per request; webhook secret never logged) ---
  app.use("*", async (c, next) => {
    const start = performance.now();
    await next();
    const path = c.req.path;
    const fields = {
      method: c.req.method,
      path: redactPath(path),
      status: c.res.status,
      ms: Math.round((performance.now() - start) * 10) / 10,
    };
    // Docker's healthcheck polls every 2 s: keep those at debug.
    if (path === "/health" || path === "/health/write") log.debug("request", fields);
    else log.info("request", fields);
  });
  app.use("*", async (c, next) => {
    await next();
    c.header("X-Content-Type-Options", "nosniff");
  });

  app.onError((err, c) => {
    const status = (err as { status?: number }).status;
    if (status === 413) return jsonError(c, 413, "payload_too_large", `limit is ${env.UPLOAD_MAX_BYTES} bytes`);
    log.error("request_error", { method: c.req.method, path: redactPath(c.req.path), err });
    return jsonError(c, 500, "internal_error");
  });
  app.notFound((c) => jsonError(c, 404, "not_found"));

  // --- health ---
  // /health is public (Caddy routes it) and polled by load balancers and smoke: reads only, so no
  // number of callers can make it write. The write probe is /health/write: internal (Caddy does not
  // route it) and rate-limited here, for the container's HEALTHCHECK.
  const health = (c: Context) => {
    const base = { version: env.APP_VERSION, timestamp: new Date().toISOString() };
    let lastTickAt: string | null = null;
    try {
      store.probeRead();
      lastTickAt = store.lastTickAt(heartbeatJob);
    } catch (err) {
      log.error("health_db_error", { err });
      return c.json({ status: "error", ...base, db: "error", jobs: { lastTickAt } }, 503);
    }
    return c.json({ status: "ok", ...base, db: "ok", jobs: { lastTickAt } });
  };
  let lastWrite: { atMs: number; ok: boolean } | null = null;
  const healthWrite = (c: Context) => {
    const base = { version: env.APP_VERSION, timestamp: new Date().toISOString() };
    const t = nowMs();
    if (!lastWrite || t - lastWrite.atMs >= WRITE_PROBE_MIN_INTERVAL_MS || t < lastWrite.atMs) {
      let ok = true;
      try {
        store.probeWrite();
      } catch (err) {
        ok = false;
        log.error("health_db_write_error", { err });
      }
      lastWrite = { atMs: t, ok };
    }
    const checkedAt = new Date(Date.now() - (t - lastWrite.atMs)).toISOString();
    return lastWrite.ok
      ? c.json({ status: "ok", ...base, db: "ok", write: { checkedAt } })
      : c.json({ status: "error", ...base, db: "error", write: { checkedAt } }, 503);
  };
  app.get("/health", health);
  app.get("/health/write", healthWrite);
  // Readiness for the proxy's active health check (not routed publicly by Caddy): 503 from
  // SIGTERM on, while /health and every other route keep answering normally.
  app.get("/ready", (c) => {
    const base = { version: env.APP_VERSION, timestamp: new Date().toISOString() };
    if (isDraining()) return c.json({ status: "draining", ...base }, 503);
    try {
      store.probeRead();
    } catch (err) {
      log.error("ready_db_error", { err });
      return c.json({ status: "error", ...base, db: "error" }, 503);
    }
    return c.json({ status: "ready", ...base });
  });

  // --- Telegram webhook ---
  // Created on first use: webhookCallback() disables bot.start(), which development polling needs.
  let handleUpdate: ((c: Context) => Promise<Response>) | null = null;
  app.post(
    "/webhook/:secret",
    async (c, next) => {
      // Wrong path secret: look like nothing is here (before grammY checks the header).
      if (polling || !safeEqual(c.req.param("secret"), env.WEBHOOK_SECRET)) return jsonError(c, 404, "not_found");
      await next();
    },
    bodyLimit({ maxSize: 1024 * 1024, onError: tooLarge(1024 * 1024) }),
    async (c) => {
      try {
        handleUpdate ??= webhookCallback(bot, "hono", {
          secretToken: env.WEBHOOK_SECRET,
          onTimeout: "throw",
          timeoutMilliseconds: 10_000,
        }) as (c: Context) => Promise<Response>;
        return await handleUpdate(c);
      } catch (e) {
        const inner = e instanceof BotError ? e.error : e;
        if (inner instanceof UpdateInFlightError) {
          log.warn("update_in_flight", { message: inner.message });
          return jsonError(c, 503, "in_flight");
        }
        if (inner instanceof BadUpdateError || inner instanceof SyntaxError) {
          log.warn("update_rejected", { message: (inner as Error).message });
          return jsonError(c, 400, "bad_update");
        }
        // Not recorded as processed: Telegram will redeliver it.
        log.error("update_failed", { err: inner });
        return jsonError(c, 500, "update_failed");
      }
    },
  );

  // --- Mini App API ---
  const isApiPath = (p: string) =>
    p === "/me" || p === "/tasks" || p.startsWith("/tasks/") || p === "/media" || p.startsWith("/files/");
  const corsMw = cors({
    origin: (origin) => {
      if (!origin) return null;
      if (env.ALLOWED_ORIGINS.includes(origin)) return origin;
      if (env.ALLOWED_ORIGINS.includes("*") && env.NODE_ENV !== "production") return origin;
      return null;
    },
    allowMethods: ["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
    allowHeaders: ["Authorization", "Content-Type"],
    exposeHeaders: ["Content-Disposition"],
    maxAge: 600,
  });
  const auth: MiddlewareHandler<AppEnv> = async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const m = /^tma (.+)$/.exec(header);
    if (!m) return jsonError(c, 401, "unauthorized", "Authorization: tma <initData> required");
    const r = validateInitData(m[1]!, botToken, { maxAgeS: env.INITDATA_MAX_AGE_S });
    if (!r.ok) {
      log.info("auth_rejected", { reason: r.reason, path: c.req.path });
      return jsonError(c, 401, "unauthorized", r.reason);
    }
    const u = r.data.user;
    c.set(
      "user",
      store.upsertUser({
        id: u.id,
        first_name: typeof u.first_name === "string" ? u.first_name : "",
        last_name: typeof u.last_name === "string" ? u.last_name : undefined,
        username: typeof u.username === "string" ? u.username : undefined,
        language_code: typeof u.language_code === "string" ? u.language_code : undefined,
      }),
    );
    await next();
  };
  // Registered once on "*" and filtered by path, so no request runs them twice.
  app.use("*", (c, next) => (isApiPath(c.req.path) ? corsMw(c, next) : next()));
  app.use("*", (c, next) => (isApiPath(c.req.path) ? auth(c, next) : next()));
  const jsonLimit = bodyLimit({ maxSize: 64 * 1024, onError: tooLarge(64 * 1024) });

  app.get("/me", (c) => c.json(userJson(c.get("user"))));

  app.get("/tasks", (c) => c.json({ tasks: store.listTasks(c.get("user").id).map(taskJson) }));

  const readJson = async (c: Context): Promise<Record<string, unknown> | null> => {
    try {
      const body = await c.req.json();
      return body && typeof body === "object" && !Array.isArray(body) ? body : null;
    } catch {
      return null;
    }
  };
  const validTitle = (t: unknown): string | null => {
    if (typeof t !== "string") return null;
    const s = t.trim();
    return s.length >= 1 && s.length <= TITLE_MAX ? s : null;
  };

  app.post("/tasks", jsonLimit, async (c) => {
    const body = await readJson(c);
    const title = validTitle(body?.title);
    if (!title) return jsonError(c, 400, "invalid_title", `title must be 1-${TITLE_MAX} characters`);
    return c.json(taskJson(store.createTask(c.get("user").id, title)), 201);
  });

  app.patch("/tasks/:id", jsonLimit, async (c) => {
    const id = parseId(c.req.param("id"));
    if (id === null) return jsonError(c, 404, "not_found");
    const body = await readJson(c);
    if (!body) return jsonError(c, 400, "invalid_body", "JSON object expected");
    const patch: { title?: string; done?: boolean } = {};
    if (body.title !== undefined) {
      const title = validTitle(body.title);
      if (!title) return jsonError(c, 400, "invalid_title", `title must be 1-${TITLE_MAX} characters`);
      patch.title = title;
    }
    if (body.done !== undefined) {
      if (typeof body.done !== "boolean") return jsonError(c, 400, "invalid_done", "done must be a boolean");
      patch.done = body.done;
    }
    if (patch.title === undefined && patch.done === undefined)
      return jsonError(c, 400, "invalid_body", "nothing to update (title and/or done)");
    const t = store.updateTask(c.get("user").id, id, patch);
    return t ? c.json(taskJson(t)) : jsonError(c, 404, "not_found");
  });

  app.delete("/tasks/:id", (c) => {
    const id = parseId(c.req.param("id"));
    if (id === null || !store.deleteTask(c.get("user").id, id)) return jsonError(c, 404, "not_found");
    return c.body(null, 204);
  });

  // Uploads stream to disk (upload.ts): a few chunks in memory per upload, at most UPLOAD_CONCURRENCY
  // at once (UPLOAD_USER_CONCURRENCY per user), each byte counted against the file limit, the user's
  // quota (stored plus in progress) and the disk's free-space floor as it arrives.
  const slots = uploadSlots(env.UPLOAD_CONCURRENCY, env.UPLOAD_USER_CONCURRENCY);
  const inProgress = new Map<number, number>();
  const freeBytes = () => {
    const s = statfsSync(env.UPLOADS_DIR);
    return s.bavail * s.bsize;
  };
  app.post("/media", async (c) => {
    const user = c.get("user");
    const declared = Number(c.req.header("content-length") ?? NaN);
    if (declared > env.UPLOAD_MAX_BYTES + MULTIPART_OVERHEAD)
      return jsonError(c, 413, "payload_too_large", `limit is ${env.UPLOAD_MAX_BYTES} bytes`);
    const id = randomBytes(16).toString("base64url");
    const fileName = randomBytes(16).toString("hex");
    const finalPath = join(env.UPLOADS_DIR, fileName);
    const partPath = `${finalPath}.part`;
    let release: (() => void) | null = null;
    let fh: FileHandle | null = null;
    let counted = 0;
    const count = (n: number) => {
      inProgress.set(user.id, (inProgress.get(user.id) ?? 0) + n - counted);
      counted = n;
    };
    try {
      release = slots.acquire(user.id);
      const stored = store.mediaBytes(user.id);
      const quotaLeft = () => env.UPLOAD_QUOTA_BYTES - stored - ((inProgress.get(user.id) ?? 0) - counted);
      if (declared > quotaLeft() + MULTIPART_OVERHEAD)
        throw new UploadError(413, "quota_exceeded", `upload quota is ${env.UPLOAD_QUOTA_BYTES} bytes per user; ${Math.max(0, quotaLeft())} left`);
      let nextFreeCheck = 0;
      fh = await open(partPath, "wx", 0o600);
      const file = await streamFilePart(
        c.req.raw.body,
        c.req.header("content-type") ?? "",
        "file",
        (chunk) => fh!.write(chunk),
        (total) => {
          if (total > env.UPLOAD_MAX_BYTES) throw new UploadError(413, "payload_too_large", `limit is ${env.UPLOAD_MAX_BYTES} bytes`);
          if (total > quotaLeft())
            throw new UploadError(413, "quota_exceeded", `upload quota is ${env.UPLOAD_QUOTA_BYTES} bytes per user`);
          count(total);
          // statfs every MiB: the disk the backups share keeps its floor
          if (total >= nextFreeCheck) {
            nextFreeCheck = total + 1024 * 1024;
            if (freeBytes() < env.UPLOAD_MIN_FREE_BYTES)
              throw new UploadError(507, "insufficient_storage", "the server is low on disk space; try again later");
          }
        },
      );
      await fh.close();
      fh = null;
      if (freeBytes() < env.UPLOAD_MIN_FREE_BYTES)
        throw new UploadError(507, "insufficient_storage", "the server is low on disk space; try again later");
      await rename(partPath, finalPath);
      const mime = cleanMime(file.type ?? "");
      const name = cleanName(file.name);
      store.insertMedia({ id, user_id: user.id, file_name: fileName, original_name: name, mime, size: file.size, created_at: new Date().toISOString() });
      log.info("media_stored", { id, user_id: user.id, size: file.size, mime });
      return c.json({ id, size: file.size, mime, name }, 201);
    } catch (err) {
      await fh?.close().catch(() => {});
      await unlink(partPath).catch(() => {});
      if (err instanceof UploadError) {
        // refused before the body was looked at (busy, quota): read it to its end, so the client gets this answer
        await discardBody(c.req.raw.body);
        if (err.status !== 400) log.info("media_refused", { user_id: user.id, code: err.code });
        if (err.status === 429) c.header("Retry-After", "5");
        return c.json({ error: err.code, message: err.message }, err.status);
      }
      await unlink(finalPath).catch(() => {});
      throw err;
    } finally {
      if (counted) count(0);
      if (inProgress.get(user.id) === 0) inProgress.delete(user.id);
      release?.();
    }
  });

  app.get("/files/:mediaId", async (c) => {
    const mediaId = c.req.param("mediaId");
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(mediaId)) return jsonError(c, 404, "not_found");
    const m = store.getMedia(c.get("user").id, mediaId);
    if (!m) return jsonError(c, 404, "not_found");
    const f = Bun.file(join(env.UPLOADS_DIR, m.file_name));
    if (!(await f.exists())) {
      log.warn("media_file_missing", { id: m.id, file_name: m.file_name });
      return jsonError(c, 404, "not_found");
    }
    return new Response(f.stream(), {
      status: 200,
      headers: {
        "Content-Type": m.mime,
        "Content-Length": String(f.size),
        "Content-Disposition": contentDisposition(m.original_name),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
      },
    });
  });

  return app;
}
