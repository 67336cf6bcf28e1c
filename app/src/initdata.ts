// Telegram Mini App initData validation, exactly as documented in
// https://core.telegram.org/bots/webapps#validating-data-received-via-the-mini-app
//   data_check_string = every received field except `hash`, sorted by key, "key=value" joined by "\n"
//   secret_key        = HMAC_SHA256(key = "WebAppData", message = bot_token)
//   hash              = hex(HMAC_SHA256(key = secret_key, message = data_check_string))

import { createHmac, timingSafeEqual } from "node:crypto";

export interface InitDataUser {
  id: number;
  first_name?: string;
  last_name?: string;
  username?: string;
  language_code?: string;
  is_premium?: boolean;
  [k: string]: unknown;
}

export interface ValidInitData {
  user: InitDataUser;
  authDate: number;
  fields: Record<string, string>;
}

export type InitDataResult = { ok: true; data: ValidInitData } | { ok: false; reason: string };

/** Clock skew tolerated for auth_date in the future. */
export const FUTURE_SKEW_S = 60;

export function secretKey(botToken: string): Buffer {
  return createHmac("sha256", "WebAppData").update(botToken).digest();
}

export function dataCheckString(fields: Record<string, string>): string {
  return Object.keys(fields)
    .filter((k) => k !== "hash")
    .sort()
    .map((k) => `${k}=${fields[k]}`)
    .join("\n");
}

/** Signs fields the way Telegram does (used by tests and local tooling). Returns the raw query string. */
export function signInitData(fields: Record<string, string>, botToken: string): string {
  const hash = createHmac("sha256", secretKey(botToken)).update(dataCheckString(fields)).digest("hex");
  const p = new URLSearchParams(fields);
  p.set("hash", hash);
  return p.toString();
}

export function validateInitData(
  raw: string,
  botToken: string,
  opts: { maxAgeS: number; nowS?: number },
): InitDataResult {
  if (!raw || raw.length > 8192) return { ok: false, reason: "initData missing or too long" };
  const params = new URLSearchParams(raw);
  const fields: Record<string, string> = {};
  for (const [k, v] of params) {
    if (Object.hasOwn(fields, k)) return { ok: false, reason: `duplicate field ${k}` };
    fields[k] = v;
  }
  const hash = fields.hash;
  if (!hash || !/^[0-9a-f]{64}$/.test(hash)) return { ok: false, reason: "hash missing or malformed" };

  const expected = createHmac("sha256", secretKey(botToken)).update(dataCheckString(fields)).digest();
  const given = Buffer.from(hash, "hex");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: "hash mismatch" };

  // Only trust the content after the signature checked out.
  const authDate = Number(fields.auth_date);
  if (!fields.auth_date || !/^\d+$/.test(fields.auth_date) || !Number.isSafeInteger(authDate))
    return { ok: false, reason: "auth_date missing or malformed" };
  const nowS = opts.nowS ?? Math.floor(Date.now() / 1000);
  if (authDate > nowS + FUTURE_SKEW_S) return { ok: false, reason: "auth_date in the future" };
  if (nowS - authDate > opts.maxAgeS) return { ok: false, reason: "initData expired" };

  let user: InitDataUser;
  try {
    user = JSON.parse(fields.user ?? "");
  } catch {
    return { ok: false, reason: "user missing or not JSON" };
  }
  if (!user || typeof user !== "object" || !Number.isSafeInteger(user.id) || user.id <= 0)
    return { ok: false, reason: "user.id missing" };
  return { ok: true, data: { user, authDate, fields } };
}
