// Uploads stream to disk: the multipart parser across every chunk split, the per-user quota, the
// concurrency cap (429, never a queue), the free-space floor (507), and nothing left behind on refusal.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { makeApp, tma, type Ctx } from "./helpers.ts";
import { streamFilePart, uploadSlots, UploadError } from "../src/upload.ts";

const enc = new TextEncoder();
function multipart(parts: { name: string; filename?: string; type?: string; content: Uint8Array | string }[], boundary = "XyZb0undary") {
  const chunks: Uint8Array[] = [enc.encode("preamble to ignore\r\n")];
  for (const p of parts) {
    const disp = `form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ""}`;
    chunks.push(enc.encode(`--${boundary}\r\nContent-Disposition: ${disp}\r\n${p.type ? `Content-Type: ${p.type}\r\n` : ""}\r\n`));
    chunks.push(typeof p.content === "string" ? enc.encode(p.content) : p.content);
    chunks.push(enc.encode("\r\n"));
  }
  chunks.push(enc.encode(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}
const streamOf = (b: Uint8Array, size: number) =>
  new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < b.length; i += size) c.enqueue(b.subarray(i, i + size));
      c.close();
    },
  });

describe("streamFilePart", () => {
  // a file whose bytes look like the delimiter's beginning, split at every size up to the delimiter's length
  const content = Buffer.concat([enc.encode("a\r\n--XyZb0und\r\n-"), Buffer.alloc(300, 7), enc.encode("\r\n--XyZ")]);
  const { body, contentType } = multipart([
    { name: "note", content: "hello" },
    { name: "file", filename: "pic.png", type: "image/png", content },
  ]);
  for (const size of [1, 2, 3, 7, 13, 16, 17, 64, 4096]) {
    test(`chunks of ${size} bytes: the file's exact bytes, its name and declared type`, async () => {
      const got: Uint8Array[] = [];
      const part = await streamFilePart(streamOf(body, size), contentType, "file", async (c) => void got.push(Uint8Array.from(c)), () => {});
      expect(part).toEqual({ name: "pic.png", type: "image/png", size: content.length });
      expect(Buffer.compare(Buffer.concat(got), content)).toBe(0);
    });
  }

  test("refusals: no file part, truncated body, not multipart, onBytes throwing stops the write", async () => {
    const noFile = multipart([{ name: "other", content: "x" }]);
    await expect(streamFilePart(streamOf(noFile.body, 5), noFile.contentType, "file", async () => {}, () => {})).rejects.toThrow(/no part named "file"/);
    await expect(streamFilePart(streamOf(body.subarray(0, body.length - 40), 5), contentType, "file", async () => {}, () => {})).rejects.toThrow(/ended before/);
    await expect(streamFilePart(streamOf(body, 5), "application/json", "file", async () => {}, () => {})).rejects.toBeInstanceOf(UploadError);
    let written = 0;
    const stop = streamFilePart(streamOf(body, 50), contentType, "file", async (c) => void (written += c.length), (n) => {
      if (n > 100) throw new UploadError(413, "payload_too_large", "limit");
    });
    await expect(stop).rejects.toMatchObject({ status: 413 });
    expect(written).toBeLessThanOrEqual(100);
  });
});

describe("uploadSlots", () => {
  test("at most N at once, M per user; released slots are reusable, releasing twice counts once", () => {
    const s = uploadSlots(3, 2);
    const a1 = s.acquire(1);
    s.acquire(1);
    expect(() => s.acquire(1)).toThrow(/per user/);
    s.acquire(2);
    expect(() => s.acquire(3)).toThrow(/3 uploads are in progress/);
    a1();
    a1();
    expect(s.inFlight).toBe(2);
    s.acquire(3);
    expect(s.inFlight).toBe(3);
  });
});

describe("POST /media with limits", () => {
  let ctx: Ctx;
  const ADA = { id: 42, first_name: "Ada" };
  beforeAll(() => {
    ctx = makeApp({ UPLOAD_MAX_BYTES: "1000", UPLOAD_QUOTA_BYTES: "2500", UPLOAD_USER_CONCURRENCY: "1" });
  });
  afterAll(() => ctx.close());
  const post = (content: string, init: { stream?: ReadableStream<Uint8Array> } = {}) => {
    const m = multipart([{ name: "file", filename: "f.txt", type: "text/plain", content }]);
    return ctx.app.request("/media", {
      method: "POST",
      body: init.stream ?? m.body,
      headers: { "Content-Type": m.contentType, ...tma(ctx.botToken, ADA) },
      // @ts-expect-error Bun's fetch types: a streamed request body
      duplex: "half",
    });
  };
  const stored = () => readdirSync(join(ctx.dir, "uploads"));

  test("the per-user quota counts stored uploads: the third 1000-byte file is refused, and nothing is left behind", async () => {
    expect((await post("a".repeat(1000))).status).toBe(201);
    expect((await post("b".repeat(1000))).status).toBe(201);
    const r = await post("c".repeat(1000));
    expect(r.status).toBe(413);
    expect((await r.json()).error).toBe("quota_exceeded");
    expect((await post("d".repeat(400))).status).toBe(201);
    expect(stored().filter((f) => f.endsWith(".part"))).toEqual([]);
    expect(stored()).toHaveLength(3);
  });

  test("a second upload of the same user while one streams gets 429 with Retry-After", async () => {
    let finish!: () => void;
    const m = multipart([{ name: "file", filename: "slow.txt", content: "x".repeat(10) }]);
    const slow = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(m.body.subarray(0, 60));
        finish = () => {
          c.enqueue(m.body.subarray(60));
          c.close();
        };
      },
    });
    const first = post("", { stream: slow });
    await Bun.sleep(50);
    const second = await post("y");
    expect(second.status).toBe(429);
    expect(second.headers.get("retry-after")).toBe("5");
    finish();
    expect((await first).status).toBeLessThan(500);
  });
});

describe("free-space floor", () => {
  test("an upload that would leave the disk under UPLOAD_MIN_FREE_BYTES is refused with 507", async () => {
    const ctx = makeApp({ UPLOAD_MIN_FREE_BYTES: String(Number.MAX_SAFE_INTEGER) });
    try {
      const m = multipart([{ name: "file", filename: "f.txt", content: "x" }]);
      const r = await ctx.app.request("/media", { method: "POST", body: m.body, headers: { "Content-Type": m.contentType, ...tma(ctx.botToken, { id: 7, first_name: "Z" }) } });
      expect(r.status).toBe(507);
      expect(readdirSync(join(ctx.dir, "uploads"))).toEqual([]);
    } finally {
      ctx.close();
    }
  });
});
