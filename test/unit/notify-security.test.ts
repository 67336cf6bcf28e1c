// Alerts and heartbeats go only where the operator said and never carry a secret: a redirect is a
// failure (the target gets nothing), and every secret value of the env file is taken out of an
// alert's text before it is sent (the watch's alerts included).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendToChannels, selectChannels } from '../../scripts/lib/notify/channels.mts';
import { redactMessage } from '../../scripts/lib/notify/message.mts';
import { notifyOperation } from '../../scripts/lib/notify/notify.mts';
import { callBotApi } from '../../scripts/lib/telegram/bot-api.mts';

interface Seen {
  method: string;
  url: string;
  body: string;
}

function server(handler: (req: http.IncomingMessage, res: http.ServerResponse, seen: Seen[]) => void) {
  const seen: Seen[] = [];
  const s = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, body });
      handler(req, res, seen);
    });
  });
  return {
    seen,
    start: () => new Promise<string>((r) => s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as AddressInfo).port}`))),
    stop: () => new Promise<void>((r) => s.close(() => r())),
  };
}

describe('redirects are failures, never followed', () => {
  const target = server((_q, res) => res.end('{"ok":true,"result":{}}'));
  const redirector = server((_q, res) => {
    res.writeHead(302, { location: targetUrl + '/elsewhere' });
    res.end();
  });
  let targetUrl = '';
  let redirectUrl = '';
  beforeAll(async () => {
    targetUrl = await target.start();
    redirectUrl = await redirector.start();
  });
  afterAll(async () => {
    await target.stop();
    await redirector.stop();
  });

  it('an alert webhook answering 302 is reported not sent, and the redirect target receives nothing', async () => {
    const channels = selectChannels({ ALERT_WEBHOOK_URL: `${redirectUrl}/hook/s3cr3t-path` });
    const [r] = await sendToChannels(channels, { operation: 'watch', outcome: 'failed', reason: 'x' }, { timeoutMs: 5000 });
    expect(r!.ok).toBe(false);
    expect(r!.detail).toMatch(/HTTP 302 \(a redirect: not followed/);
    expect(r!.detail).not.toContain('s3cr3t-path');
    expect(target.seen).toEqual([]);
  });

  it('a Bot API root answering 302 fails the call; the token never reaches the redirect target', async () => {
    const token = '123456:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQr';
    await expect(callBotApi(redirectUrl, token, 'getMe', undefined, 5000)).rejects.toThrow(/HTTP 302/);
    expect(target.seen).toEqual([]);
  });
});

describe('secrets never leave in an alert', () => {
  const values = { WEBHOOK_SECRET: 'wh-secret-value-123', BOT_TOKEN: '123456:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQr', RESTIC_PASSWORD: 'short', APP_URL: 'https://example.com' };
  it('redactMessage takes every secret value out of reason, text, revert error and problem', () => {
    const m = redactMessage(
      { operation: 'watch', outcome: 'failed', reason: 'webhook url is https://example.com/webhook/wh-secret-value-123', text: 'bot 123456:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQr', revert: { ok: false, to: null, restoredDb: false, error: 'wh-secret-value-123' }, alert: { problem: 'p', state: 'started', since: 'x' } },
      values,
    );
    expect(JSON.stringify(m)).not.toMatch(/wh-secret-value-123|AAbbCCdd/);
    expect(m.reason).toBe('webhook url is https://example.com/webhook/<redacted>');
  });

  it("the watch's alert, as notifyOperation sends it, arrives without the secret", async () => {
    const receiver = server((_q, res) => res.end('ok'));
    const url = await receiver.start();
    try {
      await notifyOperation({ values: { ...values, ALERT_WEBHOOK_URL: `${url}/hook` } }, { operation: 'watch', outcome: 'failed', reason: 'telegram: last error for https://example.com/webhook/wh-secret-value-123', alert: { problem: 'telegram-delivery', state: 'started', since: '2026-12-07T00:00:00Z' } }, { timeoutMs: 5000 });
      expect(receiver.seen).toHaveLength(1);
      expect(receiver.seen[0]!.body).toContain('/webhook/<redacted>');
      expect(receiver.seen[0]!.body).not.toContain('wh-secret-value-123');
    } finally {
      await receiver.stop();
    }
  });
});
