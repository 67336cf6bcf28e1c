// grammY bot: handlers, update de-duplication, local-mode stub for the Bot API.

import { Bot, GrammyError, HttpError, type Context, type RawApi, type Transformer } from "grammy";
import type { UserFromGetMe } from "grammy/types";
import { effectiveBotToken, type Env } from "./env.ts";
import type { Logger } from "./log.ts";
import type { BotMessageInput, Store, UpdateEffect } from "./db.ts";

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

/**
 * The context every handler gets. A handler's database writes go through `ctx.effects.write(fn)`:
 * they are applied in the same transaction that records the update_id, after every handler
 * succeeded, so they happen exactly once. Reads inside the handler do not see them yet.
 */
export type BotContext = Context & { effects: { write(effect: UpdateEffect): void } };

/**
 * An update that a redelivery cannot fix: the Bot API refused the call with a 4xx other than 429
 * (e.g. 403 "bot was blocked by the user", 400 "chat not found"). 401 and 404 are left out: they mean
 * our token or API root is wrong, which is true for every update and fixed by the operator, so
 * those count as ordinary failed attempts.
 */
export function isPermanentFailure(err: unknown): boolean {
  if (!(err instanceof GrammyError)) return false;
  const code = err.error_code;
  return code >= 400 && code < 500 && code !== 429 && code !== 401 && code !== 404;
}

/** One line for the dead_letters table and the log: what failed, without the bot token or webhook secret. */
export function describeFailure(err: unknown, secrets: readonly string[]): string {
  let text: string;
  if (err instanceof GrammyError) text = `${err.method}: ${err.error_code} ${err.description}`;
  else if (err instanceof HttpError) text = `${err.message} (${err.error instanceof Error ? err.error.message : String(err.error)})`;
  else if (err instanceof Error) text = `${err.name}: ${err.message}`;
  else text = String(err);
  for (const s of secrets) if (s) text = text.split(s).join("[redacted]");
  return text.replace(/\s+/g, " ").slice(0, 500);
}

export interface CreateBotOptions {
  env: Env;
  store: Store;
  log: Logger;
  /** Skip getMe (tests). Local mode always uses LOCAL_BOT_INFO. */
  botInfo?: UserFromGetMe;
  /**
   * Re-process dead letters (retry-dead-letter.ts): an update is handled although it is a dead letter;
   * success removes the dead letter in the commit that records it (commitRetry), a failure leaves it a
   * dead letter with one more attempt and rejects handleUpdate.
   */
  retryDeadLetters?: boolean;
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

export function createBot({ env, store, log, botInfo, retryDeadLetters = false }: CreateBotOptions): Bot<BotContext> {
  const bot = new Bot<BotContext>(effectiveBotToken(env), {
    botInfo: env.LOCAL_MODE ? LOCAL_BOT_INFO : botInfo,
    // timeoutSeconds: grammY's default (500 s) would stall a webhook handler or the setWebhook retry
    // loop on a hung connection; 60 s still exceeds long polling's 30 s getUpdates timeout.
    client: { apiRoot: env.TELEGRAM_API_ROOT, timeoutSeconds: 60 },
  });
  if (env.LOCAL_MODE) bot.api.config.use(localModeTransformer(log));

  // Telegram redelivers an update until we answer 2xx (and gives up after about a day). Per update:
  //  - already processed or dead-lettered: answer 200, run nothing;
  //  - still being handled by this process (a concurrent redelivery): 503, Telegram retries later;
  //  - handlers succeed: their queued writes, the update_id and the bot_messages row commit in one
  //    transaction (exactly once); calls they made to Telegram are at-least-once (a crash after a
  //    sendMessage and before the commit repeats it on redelivery);
  //  - a handler fails: the attempt is counted in the database. Permanent (a Bot API 4xx, see
  //    isPermanentFailure) or the UPDATE_MAX_ATTEMPTS-th attempt: a dead letter, answered 200 so the
  //    queue moves. Otherwise transient (429, 5xx, network, a bug): 500, Telegram redelivers.
  const inFlight = new Set<number>();
  const secrets = [effectiveBotToken(env), env.WEBHOOK_SECRET];
  bot.use(async (ctx, next) => {
    const id = ctx.update?.update_id;
    if (!Number.isSafeInteger(id)) throw new BadUpdateError("update_id missing");
    if (store.isProcessed(id)) {
      log.info("update_duplicate", { update_id: id });
      return;
    }
    if (!retryDeadLetters && store.isDeadLetter(id)) {
      log.info("update_dead_letter_redelivered", { update_id: id });
      return;
    }
    if (inFlight.has(id)) throw new UpdateInFlightError(id);
    inFlight.add(id);
    try {
      const effects: UpdateEffect[] = [];
      ctx.effects = { write: (effect) => void effects.push(effect) };
      let recorded: boolean;
      try {
        await next();
        recorded = retryDeadLetters ? store.commitRetry(id, messageOf(ctx), effects) : store.commitUpdate(id, messageOf(ctx), effects);
      } catch (err) {
        const error = describeFailure(err, secrets);
        if (retryDeadLetters) {
          store.recordRetryFailure(id, error);
          log.warn("dead_letter_retry_failed", { update_id: id, error });
          throw err;
        }
        let outcome;
        try {
          outcome = store.recordFailure(id, {
            error,
            permanent: isPermanentFailure(err),
            maxAttempts: env.UPDATE_MAX_ATTEMPTS,
            chatId: messageOf(ctx)?.chat_id ?? null,
            update: ctx.update,
          });
        } catch (dbErr) {
          // Cannot even count the attempt (database busy or broken): let Telegram redeliver.
          log.error("update_failure_not_recorded", { update_id: id, err: describeFailure(dbErr, secrets) });
          throw err;
        }
        if (!outcome.deadLetter) {
          log.warn("update_attempt_failed", { update_id: id, attempts: outcome.attempts, maxAttempts: env.UPDATE_MAX_ATTEMPTS, error });
          throw err;
        }
        log.warn("update_dead_letter", { update_id: id, attempts: outcome.attempts, reason: outcome.reason, error });
        return;
      }
      if (retryDeadLetters) log.info(recorded ? "dead_letter_retried" : "dead_letter_retry_skipped", { update_id: id });
      else log.info(recorded ? "update_processed" : "update_duplicate", { update_id: id, late: !recorded || undefined });
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

  // "/add <title>": a task for the sender. The task row commits with the update_id (once); the
  // confirmation is a Telegram call (at least once).
  bot.command("add", async (ctx) => {
    const title = ctx.match.trim().slice(0, 200);
    const from = ctx.from;
    if (!from) return;
    if (!title) {
      await ctx.reply("Usage: /add <task title>");
      return;
    }
    ctx.effects.write((s) => {
      s.upsertUser({ id: from.id, first_name: from.first_name, last_name: from.last_name, username: from.username, language_code: from.language_code });
      s.createTask(from.id, title);
    });
    await ctx.reply(`Added: ${title}`);
  });

  return bot;
}

export function webhookUrl(env: Env): string {
  return `${env.APP_URL}/webhook/${env.WEBHOOK_SECRET}`;
}
