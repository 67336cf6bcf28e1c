// getUpdates in the fake Bot API, asked over real HTTP (fetch) as a polling bot asks Telegram; nothing
// mocked. The semantics checked are Telegram's documented ones (core.telegram.org/bots/api#getupdates):
// long polling up to `timeout` seconds, an update forgotten only once a later `offset` confirms it, a
// negative offset keeping the last -offset updates, `limit`, `allowed_updates` kept between calls and
// applying to updates created after the call, 409 while a webhook is set, 409 for the older of two
// concurrent polls ("terminated by other getUpdates request", as tdlib/telegram-bot-api answers it),
// deleteWebhook's drop_pending_updates, and updates kept while nobody polls (at most 24 h).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeBotApi, type FakeBotApi } from '../support/fake-bot-api.ts';
import { makeMessageUpdate, randomBotToken } from '../support/telegram.ts';

type Answer = { status: number; body: any };

async function call(f: FakeBotApi, token: string, method: string, params: Record<string, unknown> = {}, signal?: AbortSignal): Promise<Answer> {
  const res = await fetch(`${f.url}/bot${token}/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(params),
    signal,
  });
  return { status: res.status, body: await res.json() };
}

const ids = (a: Answer): number[] => (a.body.result as Array<{ update_id: number }>).map((u) => u.update_id);
const queueTexts = (f: FakeBotApi, token: string, n: number) =>
  Array.from({ length: n }, (_, i) => f.queueUpdate(token, makeMessageUpdate({ chat_id: 7, text: `m${i}` })));

let fake: FakeBotApi;
const others: FakeBotApi[] = [];

beforeAll(async () => {
  fake = await startFakeBotApi({ host: '127.0.0.1' });
});
afterAll(async () => {
  await fake?.stop();
  for (const f of others) await f.stop();
});

describe('fake Bot API: getUpdates offsets and limit', () => {
  it('hands the same updates out again until a later offset confirms them, and reports which ids were confirmed', async () => {
    const token = randomBotToken();
    const queued = queueTexts(fake, token, 3);
    expect(ids(await call(fake, token, 'getUpdates'))).toEqual(queued);
    // handing out is not confirming: a bot that crashed before its next call gets them again
    expect(ids(await call(fake, token, 'getUpdates'))).toEqual(queued);
    expect(fake.confirmedUpdateIds(token)).toEqual([]);
    expect(ids(await call(fake, token, 'getUpdates', { offset: queued[1] }))).toEqual([queued[1], queued[2]]);
    expect(fake.confirmedUpdateIds(token)).toEqual([queued[0]]);
    expect(ids(await call(fake, token, 'getUpdates', { offset: queued[2] + 1 }))).toEqual([]);
    expect(fake.confirmedUpdateIds(token)).toEqual(queued);
    expect(fake.webhookInfo(token).pending_update_count).toBe(0);
  });

  it('returns at most `limit` updates, oldest first (default and maximum 100)', async () => {
    const token = randomBotToken();
    const queued = queueTexts(fake, token, 105);
    expect(ids(await call(fake, token, 'getUpdates', { limit: 2 }))).toEqual(queued.slice(0, 2));
    expect(ids(await call(fake, token, 'getUpdates'))).toEqual(queued.slice(0, 100));
    expect(ids(await call(fake, token, 'getUpdates', { limit: 500 }))).toEqual(queued.slice(0, 100));
    expect(ids(await call(fake, token, 'getUpdates', { offset: queued[99] + 1, limit: 10 }))).toEqual(queued.slice(100));
  });

  it('a negative offset keeps the last -offset updates and forgets (confirms) the older ones', async () => {
    const token = randomBotToken();
    const queued = queueTexts(fake, token, 4);
    expect(ids(await call(fake, token, 'getUpdates', { offset: -1 }))).toEqual([queued[3]]);
    expect(fake.confirmedUpdateIds(token)).toEqual(queued.slice(0, 3));
    expect(fake.pendingUpdates(token).map((u) => u.update_id)).toEqual([queued[3]]);
  });
});

describe('fake Bot API: long polling', () => {
  it('holds a poll until an update arrives, and answers an empty list when the timeout passes', async () => {
    const token = randomBotToken();
    const empty = call(fake, token, 'getUpdates', { timeout: 1 });
    await fake.waitFor(() => fake.callsTo('getUpdates', token).length === 1);
    expect((await empty).body).toEqual({ ok: true, result: [] });

    const poll = call(fake, token, 'getUpdates', { timeout: 20 });
    await fake.waitFor(() => fake.callsTo('getUpdates', token).length === 2);
    let answered = false;
    void poll.then(() => (answered = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(answered).toBe(false);
    const id = fake.queueUpdate(token, makeMessageUpdate({ chat_id: 7, text: 'wake up' }));
    expect(ids(await poll)).toEqual([id]);
  });

  it('keeps updates that arrive while nobody polls, and a poller that went away confirms nothing', async () => {
    const token = randomBotToken();
    const first = fake.queueUpdate(token, makeMessageUpdate({ chat_id: 7, text: 'before' }));
    expect(ids(await call(fake, token, 'getUpdates', { timeout: 5 }))).toEqual([first]);
    // the bot is stopped mid long poll (its container goes away): the connection closes unanswered
    const gone = new AbortController();
    const poll = call(fake, token, 'getUpdates', { offset: first + 1, timeout: 30 }, gone.signal).catch((e: Error) => e);
    await fake.waitFor(() => fake.callsTo('getUpdates', token).length === 2);
    gone.abort();
    expect(await poll).toBeInstanceOf(Error);
    const later = queueTexts(fake, token, 2);
    await new Promise((r) => setTimeout(r, 100));
    expect(fake.pendingUpdates(token).map((u) => u.update_id)).toEqual(later);
    expect(fake.confirmedUpdateIds(token)).toEqual([first]);
    // the next instance starts without an offset and gets every unconfirmed update
    expect(ids(await call(fake, token, 'getUpdates', { timeout: 5 }))).toEqual(later);
  });

  it('forgets an update nobody confirmed after the retention time (Telegram: 24 hours)', async () => {
    const f = await startFakeBotApi({ host: '127.0.0.1', pendingUpdateTtlMs: 300 });
    others.push(f);
    const token = randomBotToken();
    const old = f.queueUpdate(token, makeMessageUpdate({ chat_id: 7, text: 'old' }));
    await new Promise((r) => setTimeout(r, 400));
    const fresh = f.queueUpdate(token, makeMessageUpdate({ chat_id: 7, text: 'fresh' }));
    expect(ids(await call(f, token, 'getUpdates'))).toEqual([fresh]);
    expect(f.webhookInfo(token).pending_update_count).toBe(1);
    expect(f.confirmedUpdateIds(token)).not.toContain(old);
  });
});

describe('fake Bot API: allowed_updates', () => {
  it('keeps the last setting when omitted, applies it to updates created after the call, and [] restores the default', async () => {
    const token = randomBotToken();
    const before = fake.queueUpdate(token, makeMessageUpdate({ chat_id: 7, text: 'queued before the filter' }));
    // "this parameter doesn't affect updates created before the call": the queued message still comes
    expect(ids(await call(fake, token, 'getUpdates', { allowed_updates: ['callback_query'] }))).toEqual([before]);
    await call(fake, token, 'getUpdates', { offset: before + 1 }); // omitted: the filter stays
    fake.queueUpdate(token, makeMessageUpdate({ chat_id: 7, text: 'filtered out' }));
    const cb = fake.queueUpdate(token, { callback_query: { id: '1', from: { id: 7, is_bot: false, first_name: 'U' }, chat_instance: '1', data: 'x' } });
    expect(ids(await call(fake, token, 'getUpdates'))).toEqual([cb]);
    expect(fake.webhookInfo(token).allowed_updates).toEqual(['callback_query']);
    await call(fake, token, 'getUpdates', { offset: cb + 1, allowed_updates: [] });
    expect(fake.webhookInfo(token).allowed_updates).toBeUndefined();
    const msg = fake.queueUpdate(token, makeMessageUpdate({ chat_id: 7, text: 'default again' }));
    expect(ids(await call(fake, token, 'getUpdates'))).toEqual([msg]);
  });
});

describe('fake Bot API: conflicts', () => {
  it('a second poller terminates the first one with 409, and the second one gets the updates', async () => {
    const token = randomBotToken();
    const first = call(fake, token, 'getUpdates', { timeout: 30 });
    await fake.waitFor(() => fake.callsTo('getUpdates', token).length === 1);
    const second = call(fake, token, 'getUpdates', { timeout: 30 });
    expect(await first).toEqual({
      status: 409,
      body: {
        ok: false,
        error_code: 409,
        description: 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running',
      },
    });
    const id = fake.queueUpdate(token, makeMessageUpdate({ chat_id: 7, text: 'for the survivor' }));
    expect(ids(await second)).toEqual([id]);
    expect(fake.confirmedUpdateIds(token)).toEqual([]);
  });

  it('answers 409 while a webhook is set, and setWebhook ends a pending long poll with 409', async () => {
    const token = randomBotToken();
    const f = await startFakeBotApi({ host: '127.0.0.1', allowInsecureWebhook: true });
    others.push(f);
    const poll = call(f, token, 'getUpdates', { timeout: 30 });
    await f.waitFor(() => f.callsTo('getUpdates', token).length === 1);
    expect((await call(f, token, 'setWebhook', { url: 'http://127.0.0.1:9/hook' })).body.ok).toBe(true);
    expect(await poll).toEqual({ status: 409, body: { ok: false, error_code: 409, description: 'Conflict: terminated by setWebhook request' } });
    expect(await call(f, token, 'getUpdates')).toEqual({
      status: 409,
      body: {
        ok: false,
        error_code: 409,
        description: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
      },
    });
    expect((await call(f, token, 'deleteWebhook')).body).toEqual({ ok: true, result: true, description: 'Webhook was deleted' });
    expect((await call(f, token, 'getUpdates')).body).toEqual({ ok: true, result: [] });
  });

  it('deleteWebhook with drop_pending_updates drops the queue without confirming it; without it the queue waits for the poller', async () => {
    const token = randomBotToken();
    const kept = queueTexts(fake, token, 2);
    expect((await call(fake, token, 'deleteWebhook')).body.description).toBe('Webhook is already deleted');
    expect(fake.pendingUpdates(token).map((u) => u.update_id)).toEqual(kept);
    expect((await call(fake, token, 'deleteWebhook', { drop_pending_updates: true })).body.ok).toBe(true);
    expect(fake.webhookInfo(token).pending_update_count).toBe(0);
    expect(fake.confirmedUpdateIds(token)).toEqual([]);
    expect((await call(fake, token, 'getUpdates')).body.result).toEqual([]);
  });
});
