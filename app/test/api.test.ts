import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { initData, makeApp, tma, type Ctx } from "./helpers.ts";

let ctx: Ctx;
beforeAll(() => {
  ctx = makeApp({ ALLOWED_ORIGINS: "https://app.example.com", UPLOAD_MAX_BYTES: "1000" });
});
afterAll(() => ctx.close());

const ADA = { id: 42, first_name: "Ada", username: "ada" };
const BOB = { id: 43, first_name: "Bob" };
const req = (path: string, init: RequestInit & { as?: Record<string, unknown> } = {}) => {
  const headers = new Headers(init.headers);
  if (init.as) headers.set("Authorization", tma(ctx.botToken, init.as).Authorization!);
  if (typeof init.body === "string") headers.set("Content-Type", "application/json");
  return ctx.app.request(path, { ...init, headers });
};

describe("health", () => {
  test("200 with version, db ok and the heartbeat", async () => {
    ctx.store.heartbeat("heartbeat", "2030-01-01T00:00:00.000Z");
    const res = await req("/health");
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ status: "ok", version: "dev", db: "ok", jobs: { lastTickAt: "2030-01-01T00:00:00.000Z" } });
    expect(typeof body.timestamp).toBe("string");
  });

  test("/health only reads: any number of calls writes nothing", async () => {
    const changes = () => (ctx.db.query("SELECT total_changes() AS n").get() as { n: number }).n;
    const before = changes();
    for (let i = 0; i < 20; i++) expect((await req("/health")).status).toBe(200);
    expect(changes()).toBe(before);
    expect(ctx.db.query("SELECT 1 FROM app_meta WHERE key = 'health_probe'").get()).toBeNull();
  });

  test("/health/write writes at most once per second, however often it is called", async () => {
    let t = 1_000_000;
    const c = makeApp({}, undefined, { nowMs: () => t });
    try {
      const changes = () => (c.db.query("SELECT total_changes() AS n").get() as { n: number }).n;
      const before = changes();
      for (let i = 0; i < 10; i++) {
        const res = await c.app.request("/health/write");
        expect(res.status).toBe(200);
        expect(await res.json()).toMatchObject({ status: "ok", db: "ok" });
        t += 50;
      }
      expect(changes()).toBe(before + 1);
      t += 1000;
      expect((await c.app.request("/health/write")).status).toBe(200);
      expect(changes()).toBe(before + 2);
    } finally {
      c.close();
    }
  });

  test("a database that reads but cannot be written: /health 200, /health/write 503", async () => {
    const c = makeApp();
    try {
      c.db.exec("PRAGMA query_only = ON");
      expect((await c.app.request("/health")).status).toBe(200);
      const res = await c.app.request("/health/write");
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: "error", db: "error" });
    } finally {
      c.close();
    }
  });
});

describe("auth", () => {
  test("401 JSON without, with malformed, forged or stale initData", async () => {
    for (const h of [undefined, "Bearer x", "tma ", `tma ${initData("1:other", ADA)}`, `tma ${initData(ctx.botToken, ADA, 1000)}`]) {
      const res = await req("/me", { headers: h ? { Authorization: h } : {} });
      expect(res.status).toBe(401);
      expect((await res.json()).error).toBe("unauthorized");
    }
  });

  test("/me upserts the user", async () => {
    const res = await req("/me", { as: ADA });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: 42, first_name: "Ada", username: "ada" });
    await req("/me", { as: { ...ADA, first_name: "Ada L." } });
    expect((ctx.db.query("SELECT first_name FROM users WHERE id = 42").get() as { first_name: string }).first_name).toBe("Ada L.");
  });
});

describe("tasks", () => {
  test("CRUD for the owner, 404 for everybody else", async () => {
    let res = await req("/tasks", { method: "POST", as: ADA, body: JSON.stringify({ title: "  write tests " }) });
    expect(res.status).toBe(201);
    const task = await res.json();
    expect(task).toMatchObject({ title: "write tests", done: false });

    res = await req("/tasks", { as: ADA });
    expect((await res.json()).tasks.map((t: { id: number }) => t.id)).toEqual([task.id]);
    expect((await (await req("/tasks", { as: BOB })).json()).tasks).toEqual([]);

    res = await req(`/tasks/${task.id}`, { method: "PATCH", as: BOB, body: JSON.stringify({ done: true }) });
    expect(res.status).toBe(404);
    res = await req(`/tasks/${task.id}`, { method: "DELETE", as: BOB });
    expect(res.status).toBe(404);

    res = await req(`/tasks/${task.id}`, { method: "PATCH", as: ADA, body: JSON.stringify({ done: true }) });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: task.id, done: true, title: "write tests" });
    res = await req(`/tasks/${task.id}`, { method: "PATCH", as: ADA, body: JSON.stringify({ title: "renamed" }) });
    expect(await res.json()).toMatchObject({ done: true, title: "renamed" });

    res = await req(`/tasks/${task.id}`, { method: "DELETE", as: ADA });
    expect(res.status).toBe(204);
    expect((await req(`/tasks/${task.id}`, { method: "DELETE", as: ADA })).status).toBe(404);
    expect((await req(`/tasks/abc`, { method: "PATCH", as: ADA, body: "{}" })).status).toBe(404);
  });

  test("validation", async () => {
    for (const body of ["{}", JSON.stringify({ title: "" }), JSON.stringify({ title: "x".repeat(201) }), "nope", "[]"])
      expect((await req("/tasks", { method: "POST", as: ADA, body })).status).toBe(400);
    const t = await (await req("/tasks", { method: "POST", as: ADA, body: JSON.stringify({ title: "t" }) })).json();
    expect((await req(`/tasks/${t.id}`, { method: "PATCH", as: ADA, body: JSON.stringify({ done: "yes" }) })).status).toBe(400);
    expect((await req(`/tasks/${t.id}`, { method: "PATCH", as: ADA, body: "{}" })).status).toBe(400);
  });
});

describe("media and files", () => {
  const upload = (as: Record<string, unknown>, content: BlobPart, name = "../../etc/passwd", type = "text/plain") => {
    const form = new FormData();
    form.append("file", new File([content], name, { type }));
    return req("/media", { method: "POST", as, body: form });
  };

  test("upload stores a random name; owner downloads as attachment; others get 404", async () => {
    const res = await upload(ADA, "hello world");
    expect(res.status).toBe(201);
    const m = await res.json();
    expect(m).toMatchObject({ size: 11, mime: "text/plain", name: "passwd" });
    expect(m.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const stored = readdirSync(join(ctx.dir, "uploads"));
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatch(/^[0-9a-f]{32}$/);

    expect((await req(`/files/${m.id}`)).status).toBe(401);
    expect((await req(`/files/${m.id}`, { as: BOB })).status).toBe(404);
    expect((await req(`/files/unknown-id`, { as: ADA })).status).toBe(404);
    const dl = await req(`/files/${m.id}`, { as: ADA });
    expect(dl.status).toBe(200);
    expect(await dl.text()).toBe("hello world");
    expect(dl.headers.get("content-type")).toBe("text/plain");
    expect(dl.headers.get("content-disposition")).toStartWith("attachment;");
    expect(dl.headers.get("x-content-type-options")).toBe("nosniff");
  });

  test("too large -> 413, missing field -> 400, hostile mime neutralised", async () => {
    const big = await upload(ADA, "x".repeat(1001));
    expect(big.status).toBe(413);
    expect((await upload(ADA, "x".repeat(1000))).status).toBe(201);
    const form = new FormData();
    form.append("other", "x");
    expect((await req("/media", { method: "POST", as: ADA, body: form })).status).toBe(400);
    const odd = await (await upload(ADA, "<b>", "a.html", "text/html; charset=utf-8\r\nX: y")).json();
    expect(["text/html", "application/octet-stream"]).toContain(odd.mime);
    // the declared part type wins over Bun's guess from the extension
    expect((await (await upload(ADA, "png?", "a.txt", "image/png")).json()).mime).toBe("image/png");
    expect((await req("/media", { method: "POST", body: new FormData() })).status).toBe(401);
  });
});

describe("CORS", () => {
  test("allowed origin echoed, others get no ACAO, never *", async () => {
    const ok = await req("/tasks", { as: ADA, headers: { Origin: "https://app.example.com" } });
    expect(ok.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    const evil = await req("/tasks", { as: ADA, headers: { Origin: "https://evil.example.com" } });
    expect(evil.headers.get("access-control-allow-origin")).toBeNull();
    const pre = await req("/tasks", {
      method: "OPTIONS",
      headers: { Origin: "https://app.example.com", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type" },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(pre.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
    const preEvil = await req("/tasks", { method: "OPTIONS", headers: { Origin: "https://evil.example.com", "Access-Control-Request-Method": "POST" } });
    expect(preEvil.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("readiness while shutting down", () => {
  test("/ready turns 503 draining while /health and the API are still served", async () => {
    let draining = false;
    const c = makeApp({}, () => draining);
    try {
      const ready0 = await c.app.request("/ready");
      expect(ready0.status).toBe(200);
      expect(await ready0.json()).toMatchObject({ status: "ready", version: "dev" });
      draining = true;
      const ready = await c.app.request("/ready");
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ status: "draining", version: "dev" });
      expect((await c.app.request("/health")).status).toBe(200);
      expect((await c.app.request("/me", { headers: tma(c.botToken, ADA) })).status).toBe(200);
    } finally {
      c.close();
    }
  });
});

describe("health when the database is unusable", () => {
  test("503 with status error", async () => {
    const broken = makeApp();
    broken.db.close();
    try {
      const res = await broken.app.request("/health");
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: "error", db: "error" });
      expect((await broken.app.request("/ready")).status).toBe(503);
      expect((await broken.app.request("/health/write")).status).toBe(503);
    } finally {
      broken.close();
    }
  });
});
