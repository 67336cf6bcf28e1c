import { describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { dataCheckString, signInitData, validateInitData } from "../src/initdata.ts";
import { initData, TOKEN } from "./helpers.ts";

const now = Math.floor(Date.now() / 1000);
const opts = { maxAgeS: 86400, nowS: now };

describe("initData validation", () => {
  test("valid initData accepted, user parsed", () => {
    const r = validateInitData(initData(TOKEN, { id: 7, first_name: "Grace" }, now - 10), TOKEN, opts);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.data.user).toMatchObject({ id: 7, first_name: "Grace" });
  });

  test("hash is computed exactly as Telegram documents", () => {
    // Independent re-implementation of the documented algorithm.
    const fields = { auth_date: String(now), query_id: "Q", user: '{"id":1,"first_name":"A"}', signature: "sig" };
    const dcs = ["auth_date=" + now, "query_id=Q", "signature=sig", 'user={"id":1,"first_name":"A"}'].join("\n");
    expect(dataCheckString({ ...fields, hash: "x" })).toBe(dcs);
    const secret = createHmac("sha256", "WebAppData").update(TOKEN).digest();
    const hash = createHmac("sha256", secret).update(dcs).digest("hex");
    const raw = new URLSearchParams({ ...fields, hash }).toString();
    expect(validateInitData(raw, TOKEN, opts).ok).toBe(true);
    expect(signInitData(fields, TOKEN)).toContain(`hash=${hash}`);
  });

  test("forged hash rejected", () => {
    const good = initData(TOKEN, { id: 7 }, now);
    const forged = good.replace(/hash=([0-9a-f])/, (_m, c) => `hash=${c === "0" ? "1" : "0"}`);
    expect(validateInitData(forged, TOKEN, opts)).toEqual({ ok: false, reason: "hash mismatch" });
    // signed with another bot's token
    expect(validateInitData(initData("999:other", { id: 7 }, now), TOKEN, opts).ok).toBe(false);
    // tampered field after signing
    const tampered = good.replace(/user=[^&]+/, `user=${encodeURIComponent('{"id":8}')}`);
    expect(validateInitData(tampered, TOKEN, opts)).toEqual({ ok: false, reason: "hash mismatch" });
    expect(validateInitData(good.replace(/&?hash=[0-9a-f]+/, ""), TOKEN, opts).ok).toBe(false);
    expect(validateInitData("", TOKEN, opts).ok).toBe(false);
  });

  test("stale initData rejected", () => {
    expect(validateInitData(initData(TOKEN, { id: 7 }, now - 86401), TOKEN, opts)).toEqual({
      ok: false,
      reason: "initData expired",
    });
    expect(validateInitData(initData(TOKEN, { id: 7 }, now - 86400), TOKEN, opts).ok).toBe(true);
  });

  test("auth_date in the future rejected beyond 60 s", () => {
    expect(validateInitData(initData(TOKEN, { id: 7 }, now + 61), TOKEN, opts)).toEqual({
      ok: false,
      reason: "auth_date in the future",
    });
    expect(validateInitData(initData(TOKEN, { id: 7 }, now + 60), TOKEN, opts).ok).toBe(true);
  });

  test("signed but unusable payloads rejected", () => {
    const noUser = signInitData({ auth_date: String(now), query_id: "Q" }, TOKEN);
    expect(validateInitData(noUser, TOKEN, opts).ok).toBe(false);
    const badDate = signInitData({ auth_date: "soon", user: '{"id":1}' }, TOKEN);
    expect(validateInitData(badDate, TOKEN, opts).ok).toBe(false);
    const dup = initData(TOKEN, { id: 7 }, now) + `&auth_date=${now}`;
    expect(validateInitData(dup, TOKEN, opts).ok).toBe(false);
  });
});
