// Bot API calls made from the host (smoke's telegram check, the rollout's Telegram gate, notify).
// The API root comes from the env file's TELEGRAM_API_ROOT; a root that names the host as seen from
// a container (host.docker.internal) is dialled on 127.0.0.1 from here.
import type { WebhookInfo } from '../checks/evaluate.mts';

export function hostApiRoot(values: Record<string, string | undefined>, override?: string): string {
  const root = (override || process.env.OPS_TELEGRAM_API_ROOT || values.TELEGRAM_API_ROOT || 'https://api.telegram.org').replace(/\/+$/, '');
  try {
    const u = new URL(root);
    if (u.hostname === 'host.docker.internal' || u.hostname === 'gateway.docker.internal') {
      u.hostname = '127.0.0.1';
      return u.toString().replace(/\/+$/, '');
    }
  } catch {
    /* leave as is: the call reports it */
  }
  return root;
}

export class BotApiError extends Error {
  /** Telegram's error_code (or the HTTP status of an answer that was not JSON); undefined when no answer came */
  readonly code?: number;
  /** a 429's parameters.retry_after: seconds to wait before the next call */
  readonly retryAfterS?: number;
  constructor(method: string, detail: string, answer: { code?: number; retryAfterS?: number } = {}) {
    super(`Bot API ${method}: ${detail}`);
    this.name = 'BotApiError';
    this.code = answer.code;
    this.retryAfterS = answer.retryAfterS;
  }
}

/** Redacts the token from anything printed. */
export function redactToken(s: string, token: string): string {
  return token ? s.split(token).join('<BOT_TOKEN>') : s;
}

export async function callBotApi<T>(root: string, token: string, method: string, params?: Record<string, unknown>, timeoutMs = 10_000): Promise<T> {
  const url = `${root}/bot${token}/${method}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: params ? 'POST' : 'GET',
      headers: params ? { 'content-type': 'application/json' } : undefined,
      body: params ? JSON.stringify(params) : undefined,
      signal: AbortSignal.timeout(timeoutMs),
      // the token is in the URL: a redirect is an error, never followed to another host
      redirect: 'manual',
    });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new BotApiError(method, redactToken(`${root} unreachable: ${cause?.code ?? cause?.message ?? (e as Error).message}`, token));
  }
  let body: { ok?: boolean; result?: T; description?: string; error_code?: number; parameters?: { retry_after?: number } };
  try {
    body = (await res.json()) as typeof body;
  } catch {
    throw new BotApiError(method, `HTTP ${res.status}, not JSON`, { code: res.status });
  }
  if (!body.ok) {
    const retryAfter = body.parameters?.retry_after;
    throw new BotApiError(method, `${body.error_code ?? res.status} ${body.description ?? ''}`.trim(), { code: body.error_code ?? res.status, retryAfterS: typeof retryAfter === 'number' ? retryAfter : undefined });
  }
  return body.result as T;
}

export function getWebhookInfo(root: string, token: string): Promise<WebhookInfo> {
  return callBotApi<WebhookInfo>(root, token, 'getWebhookInfo');
}

/**
 * setWebhook as the toolkit does it when the app has not registered one: the URL and the secret_token
 * header only. allowed_updates is left out (Telegram keeps the previous setting) and pending updates
 * are kept.
 */
export function setWebhook(root: string, token: string, url: string, secretToken: string): Promise<unknown> {
  return callBotApi(root, token, 'setWebhook', { url, secret_token: secretToken, drop_pending_updates: false });
}

export function sendMessage(root: string, token: string, chatId: string, text: string): Promise<unknown> {
  return callBotApi(root, token, 'sendMessage', { chat_id: chatId, text, disable_notification: false });
}
