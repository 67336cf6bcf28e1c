// Telegram test data: Mini App initData signed exactly as Telegram signs it, bot tokens and webhook
// secrets of the right shape, and realistic Update objects.
//
// initData signing follows core.telegram.org/bots/webapps ("Validating data received via the Mini App"):
//   data_check_string = every field except hash, sorted by key, as key=<value>, joined with "\n"
//   secret_key        = HMAC_SHA256(key: "WebAppData", message: bot_token)
//   hash              = hex(HMAC_SHA256(key: secret_key, message: data_check_string))
// Only node: built-ins are used.
import { createHmac, randomBytes, randomInt } from 'node:crypto';

export type TelegramUser = {
  id: number;
  is_bot?: boolean;
  first_name: string;
  last_name?: string;
  username?: string;
  language_code?: string;
  is_premium?: boolean;
  allows_write_to_pm?: boolean;
  photo_url?: string;
  [field: string]: unknown;
};

export type InitDataFields = {
  /** The user object (JSON-serialized into the query string) or an already serialized string. */
  user: TelegramUser | string;
  /** Unix seconds; default now. */
  auth_date?: number;
  query_id?: string;
  chat_instance?: string;
  chat_type?: string;
  start_param?: string;
  [field: string]: unknown;
};

export type SignInitDataOptions = {
  /**
   * Telegram's clients serialize "/" in JSON values as "\/" (e.g. photo_url "https:\/\/t.me\/i\/...").
   * Default true, so that a backend which re-serializes JSON before checking the hash fails as it would
   * in production.
   */
  escapeSlashes?: boolean;
};

const URL_SAFE = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';

/** The data-check-string of Telegram's Mini App validation for the given decoded fields. */
export function initDataCheckString(fields: Iterable<[string, string]>): string {
  return [...fields]
    .filter(([k]) => k !== 'hash')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
}

/**
 * Builds a Mini App initData query string (what Telegram.WebApp.initData holds) for `botToken`,
 * with a valid `hash`. Object values are JSON-serialized; fields keep the given order, hash comes last.
 * Tests that need a forged or tampered value edit the returned string themselves.
 */
export function signInitData(botToken: string, fields: InitDataFields, opts: SignInitDataOptions = {}): string {
  const escapeSlashes = opts.escapeSlashes ?? true;
  const entries: Array<[string, string]> = [];
  const withDate: Record<string, unknown> = { ...fields, auth_date: fields.auth_date ?? Math.floor(Date.now() / 1000) };
  for (const [k, v] of Object.entries(withDate)) {
    if (v === undefined || k === 'hash') continue;
    let s = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
    if (escapeSlashes && typeof v === 'object' && v !== null) s = s.replace(/\//g, '\\/');
    entries.push([k, s]);
  }
  const secretKey = createHmac('sha256', 'WebAppData').update(botToken).digest();
  const hash = createHmac('sha256', secretKey).update(initDataCheckString(entries)).digest('hex');
  entries.push(['hash', hash]);
  // Telegram percent-encodes like encodeURIComponent (spaces as %20, not +).
  return entries.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}

function randomFrom(alphabet: string, length: number): string {
  // 256 is a multiple of 64, so masking a byte is unbiased for this 64-character alphabet.
  if (alphabet.length !== 64) throw new Error('alphabet must have 64 characters');
  return [...randomBytes(length)].map((b) => alphabet[b & 63]).join('');
}

/** A token of the shape BotFather hands out: "<9 digits>:<35 characters of [A-Za-z0-9_-]>". */
export function randomBotToken(): string {
  const id = randomInt(100_000_000, 1_000_000_000);
  return `${id}:AA${randomFrom(URL_SAFE, 33)}`;
}

/** A secret of [A-Za-z0-9_-] (what setWebhook's secret_token accepts), 48 characters by default. */
export function randomSecret(length = 48): string {
  if (!Number.isInteger(length) || length < 1) throw new Error(`bad secret length ${length}`);
  return randomFrom(URL_SAFE, length);
}

let nextMessageId = 1;

export type MessageUpdateInput = {
  update_id?: number;
  chat_id: number;
  text: string;
  /** The sender; default a user whose id is chat_id (a private chat). */
  from?: Partial<TelegramUser> & { id: number };
  message_id?: number;
  /** Unix seconds; default now. */
  date?: number;
};

/**
 * A realistic `message` Update. A text starting with a /command gets its bot_command entity, as
 * Telegram adds it (grammY's bot.command() relies on it). update_id is left out unless given: the fake
 * Bot API's queueUpdate assigns one.
 */
export function makeMessageUpdate(input: MessageUpdateInput): { update_id?: number; message: Record<string, unknown> } {
  const fromInput = input.from ?? { id: input.chat_id };
  const from: TelegramUser = {
    id: fromInput.id,
    is_bot: false,
    first_name: fromInput.first_name ?? 'Test',
    ...(fromInput.last_name !== undefined ? { last_name: fromInput.last_name } : {}),
    ...(fromInput.username !== undefined ? { username: fromInput.username } : {}),
    language_code: fromInput.language_code ?? 'en',
    ...Object.fromEntries(
      Object.entries(fromInput).filter(([k]) => !['id', 'is_bot', 'first_name', 'last_name', 'username', 'language_code'].includes(k)),
    ),
  };
  let chat: Record<string, unknown>;
  if (input.chat_id > 0) {
    chat = { id: input.chat_id, first_name: from.first_name, type: 'private' };
    if (input.chat_id === from.id) {
      if (from.last_name !== undefined) chat.last_name = from.last_name;
      if (from.username !== undefined) chat.username = from.username;
    }
  } else {
    chat = { id: input.chat_id, title: 'Test group', type: input.chat_id <= -1_000_000_000_000 ? 'supergroup' : 'group' };
  }
  const message: Record<string, unknown> = {
    message_id: input.message_id ?? nextMessageId++,
    from,
    chat,
    date: input.date ?? Math.floor(Date.now() / 1000),
    text: input.text,
  };
  const command = /^\/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{1,64})?/.exec(input.text);
  if (command) message.entities = [{ offset: 0, length: command[0].length, type: 'bot_command' }];
  return input.update_id !== undefined ? { update_id: input.update_id, message } : { message };
}

/**
 * A steady stream of updates around an operation: `send` queues one every `everyMs` (default 100 ms),
 * from `leadMs` (default 1 s) before `during` starts until `leadMs` after it ends (also when it throws).
 * Returns what `during` returned and what `send` returned for each update, in order.
 */
export async function whileSending<S, R>(send: () => S, during: () => Promise<R>, o: { everyMs?: number; leadMs?: number } = {}): Promise<{ result: R; sent: S[] }> {
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const sent: S[] = [];
  let sending = true;
  const sender = (async () => {
    while (sending) {
      sent.push(send());
      await pause(o.everyMs ?? 100);
    }
  })();
  try {
    await pause(o.leadMs ?? 1000);
    const result = await during();
    await pause(o.leadMs ?? 1000);
    return { result, sent };
  } finally {
    sending = false;
    await sender;
  }
}
