// When a channel's send is tried again. zx's `retry` retries every error after a fixed sequence of
// delays; a channel must instead wait what Telegram's 429 asks (parameters.retry_after), back off on
// a 5xx or no answer, give up at once on any other 4xx (a wrong chat id does not heal), and stop
// within a time budget so that a watch run ends before the next one starts. What is not delivered
// then is the watch's to send again at its next run (watch/decide.mts afterSend).
import { setTimeout as sleep } from 'node:timers/promises';

/** How a send failed: the HTTP status (Telegram's error_code), none when no answer came. */
export interface SendFailure {
  status?: number;
  /** 429: how long the server asked to wait (Telegram's retry_after, a Retry-After header) */
  retryAfterMs?: number;
}

export interface RetryPolicy {
  /** attempts in all, the first included */
  maxAttempts: number;
  /** no wait may end later than this after the first attempt began */
  budgetMs: number;
  /** first backoff after a 5xx or no answer; doubled after each, up to maxBackoffMs */
  baseMs: number;
  maxBackoffMs: number;
}

// few and short within one send: what is still not delivered is tried again by the next watch run
export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 3, budgetMs: 20_000, baseMs: 500, maxBackoffMs: 4000 };

/** The error a sender throws, carrying what the retry decision needs. */
export class SendError extends Error {
  readonly failure: SendFailure;
  constructor(message: string, failure: SendFailure) {
    super(message);
    this.name = 'SendError';
    this.failure = failure;
  }
}

/**
 * Pure: after `attempt` failed attempts, `elapsedMs` into the send, wait this long before the next
 * one, or null to give up now.
 */
export function retryDelayMs(f: SendFailure, attempt: number, elapsedMs: number, p: RetryPolicy): number | null {
  if (attempt >= p.maxAttempts) return null;
  let delay: number;
  if (f.status === 429) delay = Math.max(f.retryAfterMs ?? p.baseMs, 0);
  else if (f.status === undefined || f.status >= 500) delay = Math.min(p.baseMs * 2 ** (attempt - 1), p.maxBackoffMs);
  else return null;
  // a wait that would end past the budget is not started: the next watch run sends it instead
  return elapsedMs + delay > p.budgetMs ? null : delay;
}

/** Calls `send` until it succeeds or retryDelayMs gives up; rethrows the last error, with the attempts made. */
export async function sendWithRetry<T>(send: () => Promise<T>, p: RetryPolicy = DEFAULT_RETRY): Promise<{ value: T; attempts: number }> {
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return { value: await send(), attempts: attempt };
    } catch (e) {
      const failure = e instanceof SendError ? e.failure : {};
      const delay = retryDelayMs(failure, attempt, Date.now() - started, p);
      if (delay === null) throw Object.assign(e as Error, { attempts: attempt });
      await sleep(delay);
    }
  }
}

/** Retry-After as seconds or an HTTP date (RFC 9110 10.2.3), in ms from now; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const t = Date.parse(value);
  return Number.isFinite(t) ? Math.max(0, t - now) : undefined;
}
