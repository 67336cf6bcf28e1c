// Where messages go: the Telegram admin chat and a generic JSON webhook. Which channels are on is a
// pure function of the env values; sending never throws: a channel that fails is reported (with its
// secrets redacted) and the operation goes on.
import { BotApiError, callBotApi, hostApiRoot, redactToken } from '../telegram/bot-api.mts';
import { errorMessage } from '../cli/errors.mts';
import { formatText, webhookPayload, type OpMessage } from './message.mts';
import { DEFAULT_RETRY, parseRetryAfter, SendError, sendWithRetry, type RetryPolicy } from './retry.mts';

export type ChannelName = 'telegram' | 'webhook';

export interface TelegramChannel {
  name: 'telegram';
  apiRoot: string;
  token: string;
  chatId: string;
  /** which key the token came from (for messages: never the token itself) */
  tokenKey: 'ALERT_BOT_TOKEN' | 'BOT_TOKEN';
}

export interface WebhookChannel {
  name: 'webhook';
  url: string;
}

export type Channel = TelegramChannel | WebhookChannel;

export interface ChannelResult {
  channel: ChannelName;
  ok: boolean;
  /** where it went or why not, secrets redacted */
  detail: string;
  /** attempts made (more than 1: a 429 or a 5xx was tried again) */
  attempts?: number;
}

/** The channels the env file configures, in a fixed order. */
export function selectChannels(values: Record<string, string | undefined>, apiRootOverride?: string): Channel[] {
  const out: Channel[] = [];
  const chatId = (values.ADMIN_CHAT_ID ?? '').trim();
  const alertToken = (values.ALERT_BOT_TOKEN ?? '').trim();
  const botToken = (values.BOT_TOKEN ?? '').trim();
  const token = alertToken || botToken;
  if (chatId && token) {
    out.push({ name: 'telegram', apiRoot: hostApiRoot(values, apiRootOverride), token, chatId, tokenKey: alertToken ? 'ALERT_BOT_TOKEN' : 'BOT_TOKEN' });
  }
  const url = (values.ALERT_WEBHOOK_URL ?? '').trim();
  if (url) out.push({ name: 'webhook', url });
  return out;
}

/** A webhook URL fit for a log line: scheme and host only; userinfo, path and query carry secrets (Slack, Discord, ntfy tokens). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    const hasPath = u.pathname && u.pathname !== '/';
    return `${u.protocol}//${u.host}${hasPath ? '/<redacted>' : ''}`;
  } catch {
    return '<invalid URL>';
  }
}

/** Removes every secret of the channels from a text. */
export function redactChannelSecrets(s: string, channels: Channel[]): string {
  let out = s;
  for (const c of channels) {
    if (c.name === 'telegram') out = redactToken(out, c.token);
    else {
      const safe = redactUrl(c.url);
      out = out.split(c.url).join(safe);
      try {
        const u = new URL(c.url);
        for (const secret of [u.password, u.username, u.search.slice(1), u.pathname.length > 1 ? u.pathname : '']) {
          if (secret && secret.length >= 4) out = out.split(secret).join('<redacted>');
        }
      } catch {
        /* not a URL: nothing more to find */
      }
    }
  }
  return out;
}

async function sendTelegram(c: TelegramChannel, m: OpMessage, timeoutMs: number): Promise<string> {
  try {
    await callBotApi(c.apiRoot, c.token, 'sendMessage', { chat_id: c.chatId, text: formatText(m), disable_notification: false }, timeoutMs);
  } catch (e) {
    if (!(e instanceof BotApiError)) throw e;
    throw new SendError(e.message, { status: e.code, retryAfterMs: e.retryAfterS === undefined ? undefined : e.retryAfterS * 1000 });
  }
  return `sent to chat ${c.chatId}`;
}

async function sendWebhook(c: WebhookChannel, m: OpMessage, timeoutMs: number): Promise<string> {
  const u = new URL(c.url);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'lazyflow-notify/1' };
  // fetch refuses URLs with credentials: send them as Basic auth (ntfy access control, private receivers)
  if (u.username || u.password) {
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
    u.username = '';
    u.password = '';
  }
  let res: Response;
  try {
    // a redirect is a failure, never followed: the alert (and a Basic auth header) goes only where the operator said
    res = await fetch(u, { method: 'POST', headers, body: JSON.stringify(webhookPayload(m)), signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new SendError(`unreachable: ${cause?.code ?? cause?.message ?? errorMessage(e)}`, {});
  }
  await res.arrayBuffer().catch(() => undefined);
  if (!res.ok) throw new SendError(`HTTP ${res.status}${res.status >= 300 && res.status < 400 ? ' (a redirect: not followed; set ALERT_WEBHOOK_URL to its target)' : ''}`, { status: res.status, retryAfterMs: parseRetryAfter(res.headers.get('retry-after')) });
  return `posted to ${redactUrl(c.url)} (HTTP ${res.status})`;
}

export interface SendOptions {
  timeoutMs?: number;
  /** when a failed send is tried again (default DEFAULT_RETRY: 3 attempts within 20 s) */
  retry?: RetryPolicy;
}

const attemptsNote = (n: number | undefined) => (n && n > 1 ? ` (${n} attempts)` : '');

/** Sends to every channel concurrently, each retried on 429 and 5xx within the retry budget; never throws. */
export async function sendToChannels(channels: Channel[], m: OpMessage, opts: SendOptions = {}): Promise<ChannelResult[]> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const policy = opts.retry ?? DEFAULT_RETRY;
  return Promise.all(
    channels.map(async (c): Promise<ChannelResult> => {
      try {
        const { value, attempts } = await sendWithRetry(() => (c.name === 'telegram' ? sendTelegram(c, m, timeoutMs) : sendWebhook(c, m, timeoutMs)), policy);
        return { channel: c.name, ok: true, detail: `${value}${attemptsNote(attempts)}`, attempts };
      } catch (e) {
        const where = c.name === 'telegram' ? `chat ${c.chatId}` : redactUrl(c.url);
        const attempts = (e as { attempts?: number }).attempts;
        return { channel: c.name, ok: false, detail: redactChannelSecrets(`${where}: ${errorMessage(e)}${attemptsNote(attempts)}`, channels), attempts };
      }
    }),
  );
}
