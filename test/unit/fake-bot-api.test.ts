// The fake Bot API against a real local HTTPS webhook receiver (self-signed certificate for hook.test,
// reached through the fake's --resolve style mapping). Real sockets on 127.0.0.1, nothing mocked.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import https from 'node:https';
import net from 'node:net';
import type http from 'node:http';
import { startFakeBotApi, type FakeBotApi } from '../support/fake-bot-api.ts';
import { makeMessageUpdate, randomBotToken, randomSecret } from '../support/telegram.ts';

type Behaviour =
  | number
  | 'hang'
  | { status: number; body?: string; contentType?: string; gate?: Promise<void>; headers?: Record<string, string> };

type Received = { path: string; headers: http.IncomingHttpHeaders; body: string; json: any };

/** An HTTPS server for hook.test that answers from a script (then `fallback`) and records requests. */
async function startReceiver(key: Buffer, cert: Buffer) {
  const received: Received[] = [];
  const script: Behaviour[] = [];
  let fallback: Behaviour = 200;
  const server = https.createServer({ key, cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        parsed = undefined;
      }
      received.push({ path: req.url ?? '', headers: req.headers, body, json: parsed });
      const b = script.length ? script.shift()! : fallback;
      if (b === 'hang') return;
      const r = typeof b === 'number' ? { status: b } : b;
      if (r.gate) await r.gate;
      res.writeHead(r.status, { 'Content-Type': r.contentType ?? 'text/plain', ...(r.headers ?? {}) });
      res.end(r.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    received,
    script,
    setFallback(b: Behaviour) {
      fallback = b;
    },
    reset() {
      received.length = 0;
      script.length = 0;
      fallback = 200;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

type Via = 'json' | 'form' | 'query' | 'multipart' | 'get';

async function call(fake: FakeBotApi, token: string, method: string, params: Record<string, unknown> = {}, via: Via = 'json') {
  const url = new URL(`${fake.url}/bot${token}/${method}`);
  const flat = Object.entries(params).map(([k, v]): [string, string] => [k, typeof v === 'string' ? v : JSON.stringify(v)]);
  let init: RequestInit = { method: 'POST' };
  if (via === 'json') init = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) };
  if (via === 'form') init = { method: 'POST', body: new URLSearchParams(flat) };
  if (via === 'multipart') {
    const form = new FormData();
    for (const [k, v] of flat) form.set(k, v);
    init = { method: 'POST', body: form };
  }
  if (via === 'query' || via === 'get') {
    for (const [k, v] of flat) url.searchParams.set(k, v);
    init = { method: via === 'get' ? 'GET' : 'POST' };
  }
  const res = await fetch(url, init);
  return { status: res.status, body: (await res.json()) as any };
}

/** A port on 127.0.0.1 with nothing listening. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

let dir: string;
let key: Buffer;
let cert: Buffer;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let fake: FakeBotApi;
let hookUrl: string;
const extraFakes: FakeBotApi[] = [];

async function anotherFake(opts: Parameters<typeof startFakeBotApi>[0]) {
  const f = await startFakeBotApi({ host: '127.0.0.1', ...opts });
  extraFakes.push(f);
  return f;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fake-bot-api-'));
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-subj', '/CN=hook.test', '-addext', 'subjectAltName=DNS:hook.test', '-days', '1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ],
    { stdio: 'pipe' },
  );
  key = readFileSync(join(dir, 'key.pem'));
  cert = readFileSync(join(dir, 'cert.pem'));
  receiver = await startReceiver(key, cert);
  fake = await startFakeBotApi({
    host: '127.0.0.1',
    ca: cert,
    resolve: { [`hook.test:${receiver.port}`]: `127.0.0.1:${receiver.port}` },
    retryDelaysMs: [100, 200],
  });
  hookUrl = `https://hook.test:${receiver.port}/webhook/path-secret`;
});

afterAll(async () => {
  await fake?.stop();
  for (const f of extraFakes) await f.stop();
  await receiver?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => receiver.reset());

describe('fake Bot API: requests and answers', () => {
  it('answers getMe for any well-formed token, over POST JSON and GET, and refuses others like Telegram', async () => {
    const token = randomBotToken();
    const id = Number(token.split(':')[0]);
    const me = await call(fake, token, 'getMe');
    expect(me.status).toBe(200);
    expect(me.body).toEqual({
      ok: true,
      result: {
        id,
        is_bot: true,
        first_name: 'Fake Bot',
        username: `${id}_fake_bot`,
        can_join_groups: true,
        can_read_all_group_messages: false,
        supports_inline_queries: false,
        can_connect_to_business: false,
        has_main_web_app: false,
      },
    });
    expect((await call(fake, token, 'getme', {}, 'get')).body.result.id).toBe(id);

    const unauthorized = await call(fake, '123:short', 'getMe');
    expect(unauthorized).toEqual({ status: 401, body: { ok: false, error_code: 401, description: 'Unauthorized' } });
    const unknown = await call(fake, token, 'noSuchMethod');
    expect(unknown).toEqual({ status: 404, body: { ok: false, error_code: 404, description: 'Not Found' } });
    const res = await fetch(`${fake.url}/elsewhere`);
    expect(res.status).toBe(404);
    expect(fake.callsTo('noSuchMethod', token)).toHaveLength(1);
  });

  it('takes parameters as JSON, form, multipart and query string, and records sendMessage', async () => {
    const token = randomBotToken();
    for (const via of ['json', 'form', 'multipart', 'query'] as const) {
      const r = await call(fake, token, 'sendMessage', { chat_id: 4242, text: `hello via ${via}` }, via);
      expect(r.status, via).toBe(200);
      expect(r.body.ok).toBe(true);
      expect(r.body.result).toMatchObject({
        chat: { id: 4242, type: 'private' },
        text: `hello via ${via}`,
        from: { id: Number(token.split(':')[0]), is_bot: true },
      });
      expect(r.body.result.date).toBeGreaterThan(Date.now() / 1000 - 60);
    }
    const sent = fake.sentMessages(token);
    expect(sent.map((m) => [m.chat_id, m.text])).toEqual([
      [4242, 'hello via json'],
      [4242, 'hello via form'],
      [4242, 'hello via multipart'],
      [4242, 'hello via query'],
    ]);
    expect(sent.map((m) => m.message_id)).toEqual([1, 2, 3, 4]);
    expect(fake.callsTo('sendMessage', token).every((c) => c.status === 200 && c.response?.ok)).toBe(true);
  });

  it('refuses sendMessage without text or chat_id with Telegram\'s words, and continues message ids after an incoming message', async () => {
    const token = randomBotToken();
    expect(await call(fake, token, 'sendMessage', { chat_id: 1, text: '' })).toEqual({
      status: 400,
      body: { ok: false, error_code: 400, description: 'Bad Request: message text is empty' },
    });
    expect((await call(fake, token, 'sendMessage', { text: 'hi' })).body.description).toBe('Bad Request: chat_id is empty');
    expect((await call(fake, token, 'sendMessage', { chat_id: 'not-a-chat', text: 'hi' })).body.description).toBe(
      'Bad Request: chat not found',
    );

    fake.queueUpdate(token, makeMessageUpdate({ chat_id: 777, text: '/start', message_id: 41, from: { id: 777, first_name: 'Ann', username: 'ann' } }));
    const reply = await call(fake, token, 'sendMessage', { chat_id: 777, text: 'welcome' });
    expect(reply.body.result).toMatchObject({ message_id: 42, chat: { id: 777, type: 'private', first_name: 'Ann', username: 'ann' } });

    const strict = await anotherFake({ strictChats: true });
    expect((await call(strict, token, 'sendMessage', { chat_id: 5, text: 'hi' })).body.description).toBe('Bad Request: chat not found');

    fake.failNext(token, 'sendMessage', { error_code: 429, description: 'Too Many Requests: retry after 3', parameters: { retry_after: 3 } });
    expect(await call(fake, token, 'sendMessage', { chat_id: 777, text: 'again' })).toEqual({
      status: 429,
      body: { ok: false, error_code: 429, description: 'Too Many Requests: retry after 3', parameters: { retry_after: 3 } },
    });
    expect((await call(fake, token, 'sendMessage', { chat_id: 777, text: 'again' })).body.ok).toBe(true);

    fake.blockChat(token, 778);
    for (let i = 0; i < 2; i++) {
      expect(await call(fake, token, 'sendMessage', { chat_id: 778, text: 'hello?' })).toEqual({
        status: 403,
        body: { ok: false, error_code: 403, description: 'Forbidden: bot was blocked by the user' },
      });
    }
    expect((await call(fake, token, 'sendMessage', { chat_id: 777, text: 'others still get it' })).body.ok).toBe(true);
  });
});

describe('fake Bot API: setWebhook, getWebhookInfo, deleteWebhook', () => {
  it('validates setWebhook like Telegram and reports the webhook in getWebhookInfo', async () => {
    const token = randomBotToken();
    const refuse = async (params: Record<string, unknown>) => {
      const r = await call(fake, token, 'setWebhook', params);
      expect(r.status).toBe(400);
      expect(r.body.ok).toBe(false);
      expect(r.body.error_code).toBe(400);
      return r.body.description as string;
    };
    expect(await refuse({ url: `http://hook.test:${receiver.port}/x` })).toBe(
      'Bad Request: bad webhook: An HTTPS URL must be provided for webhook',
    );
    expect(await refuse({ url: 'ftp://hook.test/x' })).toBe('Bad Request: invalid webhook URL specified');
    expect(await refuse({ url: hookUrl, secret_token: 'has space' })).toBe('Bad Request: secret token contains unallowed characters');
    expect(await refuse({ url: hookUrl, secret_token: 'a+b/c=' })).toBe('Bad Request: secret token contains unallowed characters');
    expect(await refuse({ url: hookUrl, secret_token: 'a'.repeat(257) })).toBe('Bad Request: secret token is too long');
    expect(await refuse({ url: hookUrl, ip_address: 'not-an-ip' })).toBe('Bad Request: bad webhook: Invalid IP address specified');
    expect(await refuse({ url: 'https://nohost.invalid/hook' })).toBe('Bad Request: bad webhook: Failed to resolve host: Name or service not known');
    expect(fake.webhookInfo(token)).toEqual({ url: '', has_custom_certificate: false, pending_update_count: 0 });

    const secret = randomSecret(256);
    const set = await call(fake, token, 'setWebhook', { url: hookUrl, secret_token: secret });
    expect(set).toEqual({ status: 200, body: { ok: true, result: true, description: 'Webhook was set' } });
    expect((await call(fake, token, 'setWebhook', { url: hookUrl, secret_token: secret })).body).toEqual({
      ok: true,
      result: true,
      description: 'Webhook is already set',
    });
    const expected = {
      url: hookUrl,
      has_custom_certificate: false,
      pending_update_count: 0,
      max_connections: 40,
      ip_address: '127.0.0.1',
    };
    expect((await call(fake, token, 'getWebhookInfo')).body).toEqual({ ok: true, result: expected });
    expect(fake.webhookInfo(token)).toEqual(expected);
    const calls = fake.callsTo('setWebhook', token).filter((c) => c.response?.ok);
    expect(calls.at(-1)?.params).toMatchObject({ url: hookUrl, secret_token: secret });

    await call(fake, token, 'setWebhook', { url: hookUrl, secret_token: secret, max_connections: 500, allowed_updates: ['callback_query', 'message'] });
    expect(fake.webhookInfo(token)).toEqual({ ...expected, max_connections: 100, allowed_updates: ['message', 'callback_query'] });

    const strictPorts = await anotherFake({ allowedPorts: [443, 80, 88, 8443], resolve: { [`hook.test:${receiver.port}`]: `127.0.0.1:${receiver.port}` } });
    expect((await call(strictPorts, token, 'setWebhook', { url: hookUrl })).body.description).toBe(
      'Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443',
    );
    expect((await call(strictPorts, token, 'setWebhook', { url: 'https://127.0.0.1:8443/hook' })).body.ok).toBe(true);
  });

  it('delivers queued updates in update_id order, as JSON, with the secret header', async () => {
    const token = randomBotToken();
    const secret = randomSecret();
    await call(fake, token, 'setWebhook', { url: hookUrl, secret_token: secret });
    const updates = [1, 2, 3, 4, 5].map((n) => makeMessageUpdate({ chat_id: 1000 + n, text: `message ${n}` }));
    const ids = updates.map((u) => fake.queueUpdate(token, u));
    expect(ids[0]).toBe(100000001);
    expect(ids).toEqual(ids.map((_, i) => ids[0] + i));
    await fake.waitForDrained(token);

    expect(receiver.received.map((r) => r.json.update_id)).toEqual(ids);
    for (const [i, r] of receiver.received.entries()) {
      expect(r.path).toBe('/webhook/path-secret');
      expect(r.headers['x-telegram-bot-api-secret-token']).toBe(secret);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers.host).toBe(`hook.test:${receiver.port}`);
      expect(r.json).toEqual({ update_id: ids[i], ...updates[i] });
      expect(Object.keys(r.json)[0]).toBe('update_id');
    }
    const mine = fake.deliveries.filter((d) => d.token === token);
    expect(mine.map((d) => [d.update_id, d.status, d.ok, d.attempt])).toEqual(ids.map((id) => [id, 200, true, 1]));
    expect(fake.webhookInfo(token)).toMatchObject({ pending_update_count: 0 });
    expect(fake.webhookInfo(token).last_error_date).toBeUndefined();

    // Without a secret there is no secret header.
    await call(fake, token, 'setWebhook', { url: hookUrl });
    fake.queueUpdate(token, makeMessageUpdate({ chat_id: 1, text: 'no secret' }));
    await fake.waitForDrained(token);
    expect(receiver.received.at(-1)?.headers['x-telegram-bot-api-secret-token']).toBeUndefined();
  });

  it('keeps a failing update queued with last_error_*, retries it, and lets nothing overtake it', async () => {
    const token = randomBotToken();
    await call(fake, token, 'setWebhook', { url: hookUrl, secret_token: 's3cret' });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    receiver.script.push(500, 500, { status: 200, gate });
    const before = Math.floor(Date.now() / 1000);
    const first = fake.queueUpdate(token, makeMessageUpdate({ chat_id: 1, text: 'first' }));
    await fake.waitFor(() => fake.deliveries.filter((d) => d.token === token).length >= 1);
    const second = fake.queueUpdate(token, makeMessageUpdate({ chat_id: 1, text: 'second' }));

    // The third attempt is held by the receiver: meanwhile Telegram's view shows the failure.
    await fake.waitFor(() => receiver.received.length >= 3);
    const failing = fake.webhookInfo(token);
    expect(failing).toMatchObject({
      url: hookUrl,
      pending_update_count: 2,
      last_error_message: 'Wrong response from the webhook: 500 Internal Server Error',
    });
    expect(failing.last_error_date).toBeGreaterThanOrEqual(before);
    expect(failing.last_error_date).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    expect((await call(fake, token, 'getWebhookInfo')).body.result).toEqual(failing);

    release();
    await fake.waitForDrained(token);
    expect(receiver.received.map((r) => r.json.update_id)).toEqual([first, first, first, second]);
    const mine = fake.deliveries.filter((d) => d.token === token);
    expect(mine.map((d) => [d.update_id, d.status, d.attempt])).toEqual([
      [first, 500, 1],
      [first, 500, 2],
      [first, 200, 3],
      [second, 200, 1],
    ]);
    expect(mine[0].error).toBe('Wrong response from the webhook: 500 Internal Server Error');
    expect(fake.webhookInfo(token).pending_update_count).toBe(0);
  });

  it("waits a failed answer's Retry-After (whole seconds) instead of its own backoff, as Telegram does", async () => {
    const token = randomBotToken();
    await call(fake, token, 'setWebhook', { url: hookUrl });
    receiver.script.push({ status: 503, headers: { 'Retry-After': '2' } }, { status: 503, headers: { 'Retry-After': 'soon' } });
    const id = fake.queueUpdate(token, makeMessageUpdate({ chat_id: 1, text: 'held' }));
    await fake.waitForDrained(token, 15_000);
    const mine = fake.deliveries.filter((d) => d.token === token);
    expect(mine.map((d) => [d.update_id, d.status, d.attempt])).toEqual([[id, 503, 1], [id, 503, 2], [id, 200, 3]]);
    // the second attempt came after the 2 s asked; the third after the fake's own short backoff ('soon' is no number)
    expect(mine[1].at - mine[1].durationMs - mine[0].at).toBeGreaterThanOrEqual(2000);
    expect(mine[0].error).toBe('Wrong response from the webhook: 503 Service Unavailable');
  });

  it('words network failures like Telegram; deleteWebhook with drop_pending_updates empties the queue', async () => {
    const token = randomBotToken();
    const port = await closedPort();
    fake.resolve(`down.test:${port}`, `127.0.0.1:${port}`);
    await call(fake, token, 'setWebhook', { url: `https://down.test:${port}/hook` });
    fake.queueUpdate(token, makeMessageUpdate({ chat_id: 1, text: 'one' }));
    fake.queueUpdate(token, makeMessageUpdate({ chat_id: 1, text: 'two' }));
    await fake.waitFor(() => fake.deliveries.filter((d) => d.token === token).length >= 2);
    const d = fake.deliveries.find((x) => x.token === token)!;
    expect(d).toMatchObject({ status: 'network error', ok: false, error: 'Connection refused' });
    expect(fake.webhookInfo(token)).toMatchObject({ pending_update_count: 2, last_error_message: 'Connection refused' });

    const del = await call(fake, token, 'deleteWebhook', { drop_pending_updates: true });
    expect(del).toEqual({ status: 200, body: { ok: true, result: true, description: 'Webhook was deleted' } });
    expect(fake.webhookInfo(token)).toEqual({ url: '', has_custom_certificate: false, pending_update_count: 0 });
    const attempts = fake.deliveries.filter((x) => x.token === token).length;
    await new Promise((r) => setTimeout(r, 400));
    expect(fake.deliveries.filter((x) => x.token === token).length).toBe(attempts);
    expect((await call(fake, token, 'deleteWebhook')).body.description).toBe('Webhook is already deleted');
  });

  it('gives up on an attempt that gets no answer in time ("Read timeout expired")', async () => {
    const token = randomBotToken();
    const slow = await anotherFake({
      ca: cert,
      resolve: { [`hook.test:${receiver.port}`]: `127.0.0.1:${receiver.port}` },
      deliveryTimeoutMs: 300,
      retryDelaysMs: [50],
    });
    receiver.script.push('hang');
    await call(slow, token, 'setWebhook', { url: hookUrl });
    const id = slow.queueUpdate(token, makeMessageUpdate({ chat_id: 1, text: 'slow' }));
    await slow.waitForDrained(token);
    expect(slow.deliveries.map((d) => [d.update_id, d.status, d.error ?? null])).toEqual([
      [id, 'network error', 'Read timeout expired'],
      [id, 200, null],
    ]);
    expect(slow.webhookInfo(token).last_error_message).toBe('Read timeout expired');
  });

  it('refuses an untrusted certificate, and trusts one uploaded with setWebhook (multipart)', async () => {
    const token = randomBotToken();
    const noCa = await anotherFake({ resolve: { [`hook.test:${receiver.port}`]: `127.0.0.1:${receiver.port}` }, retryDelaysMs: [50] });
    await call(noCa, token, 'setWebhook', { url: hookUrl });
    const id = noCa.queueUpdate(token, makeMessageUpdate({ chat_id: 1, text: 'tls' }));
    await noCa.waitFor(() => noCa.deliveries.length >= 1);
    expect(noCa.deliveries[0]).toMatchObject({
      update_id: id,
      status: 'network error',
      error: 'SSL error {error:0A000086:SSL routines::certificate verify failed}',
    });
    expect(receiver.received).toHaveLength(0);

    const form = new FormData();
    form.set('url', hookUrl);
    form.set('certificate', new Blob([new Uint8Array(cert)], { type: 'application/x-pem-file' }), 'cert.pem');
    const res = await fetch(`${noCa.url}/bot${token}/setWebhook`, { method: 'POST', body: form });
    expect(await res.json()).toEqual({ ok: true, result: true, description: 'Webhook was set' });
    expect(noCa.webhookInfo(token).has_custom_certificate).toBe(true);
    await noCa.waitForDrained(token);
    expect(receiver.received.map((r) => r.json.update_id)).toEqual([id]);
    const uploaded = noCa.callsTo('setWebhook', token).at(-1)!.params.certificate as { file_name: string; size: number };
    expect(uploaded.file_name).toBe('cert.pem');
    expect(uploaded.size).toBe(cert.length);
  });

  it('executes a method given in the webhook\'s answer, as Telegram does', async () => {
    const token = randomBotToken();
    await call(fake, token, 'setWebhook', { url: hookUrl });
    receiver.script.push({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({ method: 'sendMessage', chat_id: 55, text: 'pong' }),
    });
    fake.queueUpdate(token, makeMessageUpdate({ chat_id: 55, text: 'ping' }));
    const sent = await fake.waitFor(() => fake.sentMessages(token)[0]);
    expect(sent).toMatchObject({ chat_id: 55, text: 'pong', message: { chat: { id: 55 } } });
    expect(fake.callsTo('sendMessage', token)[0].viaWebhookReply).toBe(true);
  });
});

describe('fake Bot API: getUpdates', () => {
  it('answers 409 while a webhook is set, and confirms updates by offset once it is deleted', async () => {
    const token = randomBotToken();
    await call(fake, token, 'setWebhook', { url: hookUrl });
    expect(await call(fake, token, 'getUpdates')).toEqual({
      status: 409,
      body: {
        ok: false,
        error_code: 409,
        description: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
      },
    });
    expect((await call(fake, token, 'deleteWebhook')).body).toEqual({ ok: true, result: true, description: 'Webhook was deleted' });

    const ids = [1, 2, 3].map((n) => fake.queueUpdate(token, makeMessageUpdate({ chat_id: 9, text: `u${n}` })));
    const all = await call(fake, token, 'getUpdates');
    expect(all.body.result.map((u: any) => u.update_id)).toEqual(ids);
    expect(fake.webhookInfo(token).pending_update_count).toBe(3);
    const rest = await call(fake, token, 'getUpdates', { offset: ids[2] });
    expect(rest.body.result.map((u: any) => u.update_id)).toEqual([ids[2]]);
    expect(fake.webhookInfo(token).pending_update_count).toBe(1);
    expect((await call(fake, token, 'getUpdates', { offset: ids[2] + 1 })).body.result).toEqual([]);
    expect(fake.webhookInfo(token).pending_update_count).toBe(0);
  });

  it('long-polls until an update arrives', async () => {
    const token = randomBotToken();
    const started = Date.now();
    const poll = call(fake, token, 'getUpdates', { timeout: 5 });
    await new Promise((r) => setTimeout(r, 100));
    const id = fake.queueUpdate(token, makeMessageUpdate({ chat_id: 3, text: 'wake up' }));
    const r = await poll;
    expect(r.body.result.map((u: any) => u.update_id)).toEqual([id]);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('does not queue update types the bot did not ask for', async () => {
    const token = randomBotToken();
    fake.queueUpdate(token, { chat_member: { chat: { id: -1, type: 'group', title: 'g' } } });
    expect(fake.webhookInfo(token).pending_update_count).toBe(0);
    await call(fake, token, 'getUpdates', { allowed_updates: ['chat_member'] });
    fake.queueUpdate(token, { chat_member: { chat: { id: -1, type: 'group', title: 'g' } } });
    fake.queueUpdate(token, makeMessageUpdate({ chat_id: 3, text: 'not wanted now' }));
    expect(fake.pendingUpdates(token).map((u) => Object.keys(u)[1])).toEqual(['chat_member']);
  });
});

describe('fake Bot API: stop()', () => {
  it('cancels retries and long polls and frees the port', async () => {
    const token = randomBotToken();
    const f = await startFakeBotApi({ host: '127.0.0.1', retryDelaysMs: [20] });
    const port = await closedPort();
    f.resolve(`down.test:${port}`, `127.0.0.1:${port}`);
    await call(f, token, 'setWebhook', { url: `https://down.test:${port}/` });
    f.queueUpdate(token, makeMessageUpdate({ chat_id: 1, text: 'never delivered' }));
    await f.waitFor(() => f.deliveries.length >= 2);
    const other = randomBotToken();
    const poll = call(f, other, 'getUpdates', { timeout: 30 }).catch((e: Error) => e);
    await f.waitFor(() => f.callsTo('getUpdates', other).length === 1);

    const t0 = Date.now();
    await f.stop();
    expect(Date.now() - t0).toBeLessThan(2000);
    const answered = await poll;
    expect(answered instanceof Error || (answered as any).body.ok === true).toBe(true);
    const count = f.deliveries.length;
    await new Promise((r) => setTimeout(r, 150));
    expect(f.deliveries.length).toBe(count);
    await expect(fetch(`${f.url}/bot${token}/getMe`)).rejects.toThrow();
    await f.stop(); // idempotent
  });
});
