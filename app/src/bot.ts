// grammY bot: handlers, update de-duplication, local-mode stub for the Bot API.

import { Bot, type Context, type RawApi, type Transformer } from "grammy";
import type { UserFromGetMe } from "grammy/types";
import { effectiveBotToken, type Env } from "./env.ts";
import type { Logger } from "./log.ts";
import type { BotMessageInput, Store } from "./db.ts";

/** Fixed identity used when the bot must not call getMe (local mode, tests). */
export const LOCAL_BOT_INFO: UserFromGetMe = {
  id: 1,
  is_bot: true,
  first_name: "LazyFlow (local)",
  username: "lazyflow_local_bot",
  can_join_groups: false,
  can_read_all_group_messages: false,
  supports_inline_queries: false,
  can_connect_to_business: false,
  has_main_web_app: false,
} as UserFromGetMe;

/** Update types the bot handles; passed to setWebhook. */
export const ALLOWED_UPDATES = ["message"] as const;

/** A redelivery of an update that this process is still handling: answer 503 so Telegram retries later. */
export class UpdateInFlightError extends Error {
  constructor(updateId: number) {
    super(`update ${updateId} is already being processed`);
    this.name = "UpdateInFlightError";
  }
}

export class BadUpdateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BadUpdateError";
  }
}

export interface CreateBotOptions {
  env: Env;
  store: Store;
  log: Logger;
  /** Skip getMe (tests). Local mode always uses LOCAL_BOT_INFO. */
  botInfo?: UserFromGetMe;
}

/** In local mode every Bot API call is answered locally and logged instead of reaching Telegram. */
function localModeTransformer(log: Logger): Transformer<RawApi> {
  return async (_prev, method, payload) => {
    const p = (payload ?? {}) as Record<string, unknown>;
    log.info("telegram_call_skipped", { method, chat_id: p.chat_id, reason: "local mode (no BOT_TOKEN)" });
    const result =
      method === "sendMessage"
        ? { message_id: 0, date: Math.floor(Date.now() / 1000), chat: { id: p.chat_id, type: "private" }, text: p.text }
        : true;
    return { ok: true, result } as never;
  };
}

function messageOf(ctx: Context): BotMessageInput | null {
  const m = ctx.update.message ?? ctx.update.edited_message ?? ctx.update.channel_post;
  if (!m) return null;
  return { chat_id: m.chat?.id ?? null, from_id: m.from?.id ?? null, text: m.text ?? m.caption ?? null };
}

export function createBot({ env, store, log, botInfo }: CreateBotOptions): Bot {
  const bot = new Bot(effectiveBotToken(env), {
    botInfo: env.LOCAL_MODE ? LOCAL_BOT_INFO : botInfo,
    // timeoutSeconds: grammY's default (500 s) would stall a webhook handler or the setWebhook retry
    // loop on a hung connection; 60 s still exceeds long polling's 30 s getUpdates timeout.
    client: { apiRoot: env.TELEGRAM_API_ROOT, timeoutSeconds: 60 },
  });
  if (env.LOCAL_MODE) bot.api.config.use(localModeTransformer(log));

  // De-duplication: Telegram redelivers an update when we do not answer 2xx in time.
  // The update is recorded as processed only after every handler succeeded (same transaction as
  // its bot_messages row); a failing handler throws -> HTTP 500 -> Telegram redelivers.
  const inFlight = new Set<number>();
  bot.use(async (ctx, next) => {
    const id = ctx.update?.update_id;
    if (!Number.isSafeInteger(id)) throw new BadUpdateError("update_id missing");
    if (store.isProcessed(id)) {
      log.info("update_duplicate", { update_id: id });
      return;
    }
    if (inFlight.has(id)) throw new UpdateInFlightError(id);
    inFlight.add(id);
    try {
      await next();
      const recorded = store.recordUpdate(id, messageOf(ctx));
      log.info(recorded ? "update_processed" : "update_duplicate", { update_id: id, late: !recorded || undefined });
    } finally {
      inFlight.delete(id);
    }
  });

  bot.command("start", async (ctx) => {
    const name = ctx.from?.first_name ? `, ${ctx.from.first_name}` : "";
    const text = `Hi${name}! LazyFlow keeps your tasks. Open the Mini App to add some.`;
    // web_app buttons need an https URL; in development APP_URL may be plain http.
    const reply_markup = env.APP_URL.startsWith("https://")
      ? { inline_keyboard: [[{ text: "Open LazyFlow", web_app: { url: `${env.APP_URL}/` } }]] }
      : undefined;
    await ctx.reply(text, reply_markup ? { reply_markup } : {});
  });

  return bot;
}

export function webhookUrl(env: Env): string {
  return `${env.APP_URL}/webhook/${env.WEBHOOK_SECRET}`;
}
