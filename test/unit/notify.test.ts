// Notifications: the message text and JSON payload (pure), which channels an env file turns on,
// redaction of channel secrets, and the real HTTP senders against a local receiver and the fake
// Bot API: what arrives, and that a channel that is down is reported, never thrown.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatText, webhookPayload, type OpMessage } from '../../scripts/lib/notify/message.mts';
import { redactChannelSecrets, redactUrl, selectChannels, sendToChannels } from '../../scripts/lib/notify/channels.mts';
import { notifyOperation, summarize } from '../../scripts/lib/notify/notify.mts';
import { startFakeBotApi, type FakeBotApi } from '../support/fake-bot-api.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts';
import { randomBotToken } from '../support/telegram.ts';
import { parseRetryAfter, retryDelayMs, type RetryPolicy, type SendFailure } from '../../scripts/lib/notify/retry.mts';

const at = '2026-12-01T10:00:00.000Z';
const now = new Date(at);

describe('message formatting', () => {
  const cases: { name: string; m: OpMessage; text: string }[] = [
    { name: 'success with release and duration', m: { operation: 'rollout', outcome: 'ok', release: 'abc123', durationMs: 42_000, host: 'vps1' }, text: '✅ lazyflow rollout ok abc123 in 42.0 s [vps1]' },
    { name: 'failure with its one line', m: { operation: 'backup', outcome: 'failed', reason: 'disk full\n  at /srv/state', host: 'vps1' }, text: '❌ lazyflow backup FAILED: disk full at /srv/state [vps1]' },
    { name: 'alert started', m: { operation: 'watch', outcome: 'failed', reason: 'health: connection refused', host: 'h', alert: { problem: 'app-down', state: 'started', since: at } }, text: '❌ lazyflow PROBLEM app-down: health: connection refused [h]' },
    { name: 'alert reminder names since', m: { operation: 'watch', outcome: 'failed', host: 'h', alert: { problem: 'disk-low', state: 'reminder', since: at } }, text: '❌ lazyflow STILL FAILING disk-low (since 2026-12-01T10:00:00Z) [h]' },
    { name: 'alert resolved', m: { operation: 'watch', outcome: 'ok', reason: 'app healthy', host: 'h', alert: { problem: 'app-down', state: 'resolved', since: at } }, text: '✅ lazyflow RESOLVED app-down (since 2026-12-01T10:00:00Z): app healthy [h]' },
    { name: 'legacy free text', m: { operation: 'release', outcome: 'ok', text: 'lazyflow: deployed v2', host: 'h' }, text: 'lazyflow: deployed v2 [h]' },
  ];
  for (const c of cases) it(c.name, () => expect(formatText(c.m, now)).toBe(c.text));

  it('a long reason is cut to one line of 500 characters', () => {
    const t = formatText({ operation: 'restore', outcome: 'failed', reason: 'x'.repeat(1000), host: 'h' }, now);
    expect(t.length).toBeLessThan(540);
    expect(t).toContain('…');
    // an offsite upload that timed out, as the toolkit words it: whole, with what it means at the end
    const upload = 'offsite: upload of backup 20261206T234038Z-manual failed: listing offsite snapshots failed: no result from the rest repository rest:http://127.0.0.1:42855/lazyflow/ within 15 s (OFFSITE_TIMEOUT): Stat(<config/>) failed: dial tcp 127.0.0.1:42855: connect: connection refused; the local backup 20261206T234038Z-manual is intact and published';
    expect(formatText({ operation: 'backup', outcome: 'failed', reason: upload, host: 'h' }, now)).toBe(`❌ lazyflow backup FAILED: ${upload} [h]`);
  });

  it('the webhook payload carries text for Slack, content for Discord, and the fields', () => {
    const p = webhookPayload({ operation: 'rollout', outcome: 'failed', release: 'r1', durationMs: 1500, reason: 'gate: unhealthy', host: 'h' }, now);
    expect(p).toEqual({
      text: '❌ lazyflow rollout FAILED r1 in 1.5 s: gate: unhealthy [h]',
      content: '❌ lazyflow rollout FAILED r1 in 1.5 s: gate: unhealthy [h]',
      source: 'lazyflow',
      operation: 'rollout',
      outcome: 'failed',
      release: 'r1',
      backup: null,
      duration_ms: 1500,
      reason: 'gate: unhealthy',
      revert: null,
      host: 'h',
      at,
      alert: null,
    });
  });
});

describe('channel selection', () => {
  const T = '123456:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
  const A = '999999:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
  const rows: { name: string; v: Record<string, string>; want: string[] }[] = [
    { name: 'nothing configured', v: {}, want: [] },
    { name: 'chat id without any token', v: { ADMIN_CHAT_ID: '42' }, want: [] },
    { name: 'bot token and chat id', v: { BOT_TOKEN: T, ADMIN_CHAT_ID: '42' }, want: ['telegram:BOT_TOKEN'] },
    { name: 'a separate alert bot wins', v: { BOT_TOKEN: T, ALERT_BOT_TOKEN: A, ADMIN_CHAT_ID: '42' }, want: ['telegram:ALERT_BOT_TOKEN'] },
    { name: 'webhook only (local mode, no bot)', v: { ALERT_WEBHOOK_URL: 'https://ntfy.sh/lazyflow-x' }, want: ['webhook'] },
    { name: 'both', v: { BOT_TOKEN: T, ADMIN_CHAT_ID: '-1001', ALERT_WEBHOOK_URL: 'https://h/x' }, want: ['telegram:BOT_TOKEN', 'webhook'] },
  ];
  for (const r of rows) {
    it(r.name, () => {
      expect(selectChannels(r.v).map((c) => (c.name === 'telegram' ? `telegram:${c.tokenKey}` : c.name))).toEqual(r.want);
    });
  }

  it('webhook URLs are logged as scheme and host only; tokens never', () => {
    expect(redactUrl('https://user:pw@hooks.slack.com/services/T0/B0/secret?x=1')).toBe('https://hooks.slack.com/<redacted>');
    expect(redactUrl('https://ntfy.sh/')).toBe('https://ntfy.sh');
    const chans = selectChannels({ BOT_TOKEN: T, ADMIN_CHAT_ID: '1', ALERT_WEBHOOK_URL: 'https://u:hunter22@h.test/hook/s3cr3t?token=abcd1234' });
    const out = redactChannelSecrets(`failed ${T} https://u:hunter22@h.test/hook/s3cr3t?token=abcd1234 hunter22 token=abcd1234 /hook/s3cr3t`, chans);
    expect(out).not.toContain(T);
    expect(out).not.toContain('hunter22');
    expect(out).not.toContain('abcd1234');
    expect(out).not.toContain('s3cr3t');
  });
});

describe('senders against a local receiver and the fake Bot API', () => {
  let bot: FakeBotApi;
  let hook: WebhookReceiver;
  const token = randomBotToken();
  beforeAll(async () => {
    bot = await startFakeBotApi({ host: '127.0.0.1' });
    hook = await startWebhookReceiver();
  });
  afterAll(async () => {
    await bot?.stop();
    await hook?.stop().catch(() => {});
  });

  it('one message arrives at the admin chat and one JSON body at the webhook', async () => {
    const env = { values: { BOT_TOKEN: token, ADMIN_CHAT_ID: '4242', TELEGRAM_API_ROOT: bot.url, ALERT_WEBHOOK_URL: `${hook.url}/hooks/abc?k=v` } };
    const results = await notifyOperation(env, { operation: 'backup', outcome: 'failed', reason: 'ENOSPC', host: 'vps' });
    expect(results.map((r) => [r.channel, r.ok])).toEqual([['telegram', true], ['webhook', true]]);
    expect(summarize(results)).toBe(`telegram: sent to chat 4242; webhook: posted to ${hook.url}/<redacted> (HTTP 200)`);
    const msgs = bot.sentMessages(token);
    expect(msgs.map((m) => [String(m.chat_id), m.text])).toEqual([['4242', '❌ lazyflow backup FAILED: ENOSPC [vps]']]);
    expect(hook.received).toHaveLength(1);
    expect(hook.received[0]).toMatchObject({ method: 'POST', path: '/hooks/abc?k=v', json: { operation: 'backup', outcome: 'failed', reason: 'ENOSPC', host: 'vps', text: '❌ lazyflow backup FAILED: ENOSPC [vps]' } });
    expect(hook.received[0].headers['content-type']).toBe('application/json');
  });

  it('userinfo in the webhook URL becomes Basic auth, not part of the request line', async () => {
    const u = new URL(hook.url);
    const before = hook.received.length;
    const r = await sendToChannels(selectChannels({ ALERT_WEBHOOK_URL: `http://alice:s%40cret@${u.host}/p` }), { operation: 'drill', outcome: 'ok', host: 'h' });
    expect(r[0].ok).toBe(true);
    expect(hook.received[before].headers.authorization).toBe(`Basic ${Buffer.from('alice:s@cret').toString('base64')}`);
  });

  it('a channel that answers an error or is down is reported with secrets redacted, never thrown', async () => {
    const alertToken = randomBotToken();
    bot.failNext(alertToken, 'sendMessage', { error_code: 403, description: 'Forbidden: bot was blocked by the user' });
    hook.status = 500;
    const env = { values: { BOT_TOKEN: token, ALERT_BOT_TOKEN: alertToken, ADMIN_CHAT_ID: '4242', TELEGRAM_API_ROOT: bot.url, ALERT_WEBHOOK_URL: `${hook.url}/hooks/secretpath` } };
    // retried quickly here (the retry itself: 'retry: when a failed send is tried again' below)
    const quick = { maxAttempts: 2, budgetMs: 1000, baseMs: 50, maxBackoffMs: 50 };
    const r1 = await notifyOperation(env, { operation: 'restore', outcome: 'ok', host: 'h' }, { retry: quick });
    expect(r1.map((r) => r.ok)).toEqual([false, false]);
    expect(r1[0].detail).toMatch(/403 Forbidden/);
    expect(r1[1].detail).toMatch(/HTTP 500/);
    hook.status = 200;
    await hook.stop();
    const r2 = await notifyOperation({ values: { ...env.values, TELEGRAM_API_ROOT: 'http://127.0.0.1:1' } }, { operation: 'restore', outcome: 'ok', host: 'h' }, { timeoutMs: 2000, retry: quick });
    expect(r2.map((r) => r.ok)).toEqual([false, false]);
    expect(r2[1].detail).toMatch(/unreachable: (ECONNREFUSED|UND_ERR_SOCKET)/);
    for (const r of [...r1, ...r2]) {
      expect(r.detail).not.toContain(alertToken);
      expect(r.detail).not.toContain('secretpath');
    }
    await hook.restart();
  });
});

describe('preflight: alert keys', async () => {
  const { checkAlertChannels } = await import('../../scripts/lib/checks/preflight.mts');
  const T = '123456:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
  const rows: { name: string; v: Record<string, string>; level: string; key?: string }[] = [
    { name: 'no channel: a warning naming what to set', v: {}, level: 'warn', key: 'ADMIN_CHAT_ID' },
    { name: 'telegram channel', v: { BOT_TOKEN: T, ADMIN_CHAT_ID: '-100123' }, level: 'ok' },
    { name: 'chat id that is not one', v: { BOT_TOKEN: T, ADMIN_CHAT_ID: 'my chat' }, level: 'error', key: 'ADMIN_CHAT_ID' },
    { name: 'malformed alert token', v: { ALERT_BOT_TOKEN: 'nope', ADMIN_CHAT_ID: '1' }, level: 'error', key: 'ALERT_BOT_TOKEN' },
    { name: 'webhook that is no URL', v: { ALERT_WEBHOOK_URL: 'hooks.slack.com/x' }, level: 'error', key: 'ALERT_WEBHOOK_URL' },
    { name: 'plain http heartbeat off-host', v: { ALERT_WEBHOOK_URL: 'https://h/x', HEARTBEAT_URL: 'http://hc.example.net/ping/x' }, level: 'warn', key: 'HEARTBEAT_URL' },
    { name: 'bad reminder interval', v: { ALERT_WEBHOOK_URL: 'https://h/x', WATCH_REMIND_AFTER: 'six hours' }, level: 'error', key: 'WATCH_REMIND_AFTER' },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const out = checkAlertChannels(r.v, '.env.prod');
      const worst = out.find((x) => x.level === 'error') ?? out.find((x) => x.level === 'warn') ?? out[0];
      expect(worst.level).toBe(r.level);
      if (r.key) expect(worst.key).toBe(r.key);
      expect(JSON.stringify(out)).not.toContain(T);
    });
  }
});

describe('retry: when a failed send is tried again', () => {
  const p: RetryPolicy = { maxAttempts: 4, budgetMs: 20_000, baseMs: 1000, maxBackoffMs: 8000 };
  const rows: { name: string; f: SendFailure; attempt: number; elapsedMs: number; want: number | null }[] = [
    { name: "Telegram's 429 waits its retry_after", f: { status: 429, retryAfterMs: 3000 }, attempt: 1, elapsedMs: 0, want: 3000 },
    { name: 'a 429 whose retry_after ends past the budget is left to the next watch run', f: { status: 429, retryAfterMs: 35_000 }, attempt: 1, elapsedMs: 0, want: null },
    { name: 'a 5xx backs off 1 s', f: { status: 502 }, attempt: 1, elapsedMs: 0, want: 1000 },
    { name: 'then 2 s', f: { status: 500 }, attempt: 2, elapsedMs: 1100, want: 2000 },
    { name: 'then 4 s', f: { status: 503 }, attempt: 3, elapsedMs: 3200, want: 4000 },
    { name: 'no answer at all (refused, timed out) backs off like a 5xx', f: {}, attempt: 1, elapsedMs: 0, want: 1000 },
    { name: 'after the last attempt: give up', f: { status: 500 }, attempt: 4, elapsedMs: 7000, want: null },
    { name: 'a wait past the budget is not started', f: { status: 500 }, attempt: 3, elapsedMs: 17_000, want: null },
    { name: 'any other 4xx does not heal: no retry', f: { status: 403 }, attempt: 1, elapsedMs: 0, want: null },
    { name: 'a 400 (wrong chat id) neither', f: { status: 400 }, attempt: 1, elapsedMs: 0, want: null },
  ];
  for (const r of rows) it(r.name, () => expect(retryDelayMs(r.f, r.attempt, r.elapsedMs, p)).toBe(r.want));

  it('Retry-After as seconds or as an HTTP date', () => {
    const t = Date.parse('2026-12-01T10:00:00Z');
    expect(parseRetryAfter('7', t)).toBe(7000);
    expect(parseRetryAfter('Tue, 01 Dec 2026 10:00:30 GMT', t)).toBe(30_000);
    expect([parseRetryAfter(null, t), parseRetryAfter('soon', t)]).toEqual([undefined, undefined]);
  });

  describe('against the fake Bot API and a local receiver', () => {
    let bot: FakeBotApi;
    let hook: WebhookReceiver;
    const token = randomBotToken();
    const fast: RetryPolicy = { maxAttempts: 4, budgetMs: 5000, baseMs: 50, maxBackoffMs: 400 };
    beforeAll(async () => {
      bot = await startFakeBotApi({ host: '127.0.0.1' });
      hook = await startWebhookReceiver();
    });
    afterAll(async () => {
      await bot.stop();
      await hook.stop();
    });

    it("a 429 from Telegram is sent again after its retry_after, and arrives once", async () => {
      bot.failNext(token, 'sendMessage', { error_code: 429, description: 'Too Many Requests: retry after 1', parameters: { retry_after: 1 } });
      const [r] = await notifyOperation({ values: { BOT_TOKEN: token, ADMIN_CHAT_ID: '77', TELEGRAM_API_ROOT: bot.url } }, { operation: 'watch', outcome: 'failed', reason: 'x', host: 'h' }, { retry: fast });
      expect(r).toMatchObject({ channel: 'telegram', ok: true, attempts: 2 });
      const calls = bot.callsTo('sendMessage', token);
      expect(calls.map((c) => c.status)).toEqual([429, 200]);
      // the second call waited what Telegram asked (retry_after 1 s), not the 50 ms backoff
      expect(calls[1].at - calls[0].at).toBeGreaterThanOrEqual(1000);
      expect(bot.sentMessages(token)).toHaveLength(1);
    });

    it('a 429 asking longer than the budget is not waited for: reported, for the next run', async () => {
      bot.failNext(token, 'sendMessage', { error_code: 429, description: 'Too Many Requests: retry after 60', parameters: { retry_after: 60 } });
      const [r] = await notifyOperation({ values: { BOT_TOKEN: token, ADMIN_CHAT_ID: '77', TELEGRAM_API_ROOT: bot.url } }, { operation: 'watch', outcome: 'failed', host: 'h' }, { retry: fast });
      expect(r).toMatchObject({ ok: false, attempts: 1 });
      expect(r.detail).toMatch(/429 Too Many Requests/);
    });

    it('5xx from Telegram and from the webhook are retried with backoff until one is taken', async () => {
      bot.failNext(token, 'sendMessage', { error_code: 502, description: 'Bad Gateway' }, 2);
      hook.failNext(503, 2);
      const before = hook.received.length;
      const r = await notifyOperation({ values: { BOT_TOKEN: token, ADMIN_CHAT_ID: '77', TELEGRAM_API_ROOT: bot.url, ALERT_WEBHOOK_URL: `${hook.url}/h` } }, { operation: 'watch', outcome: 'failed', host: 'h' }, { retry: fast });
      expect(r.map((x) => [x.channel, x.ok, x.attempts])).toEqual([['telegram', true, 3], ['webhook', true, 3]]);
      expect(r[1].detail).toMatch(/\(3 attempts\)$/);
      expect(hook.received.length - before).toBe(3);
    });

    it('a 5xx that lasts gives up after maxAttempts, named', async () => {
      hook.failNext(500, 10);
      const [r] = await notifyOperation({ values: { ALERT_WEBHOOK_URL: `${hook.url}/h` } }, { operation: 'watch', outcome: 'failed', host: 'h' }, { retry: fast });
      expect(r).toMatchObject({ ok: false, attempts: 4 });
      expect(r.detail).toMatch(/HTTP 500 \(4 attempts\)$/);
    });
  });
});
