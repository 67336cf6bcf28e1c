// signInitData checked by an independent implementation of Telegram's documented algorithm
// (core.telegram.org/bots/webapps, "Validating data received via the Mini App"), written here with
// WebCrypto and hand-made query parsing so that it shares no code path with the signer.
import { describe, expect, it } from 'vitest';
import { makeMessageUpdate, randomBotToken, randomSecret, signInitData } from '../support/telegram.ts';
import { BOT_TOKEN_RE } from '../support/fake-bot-api.ts';

const enc = new TextEncoder();

async function hmac(key: Uint8Array<ArrayBuffer>, message: string): Promise<Uint8Array<ArrayBuffer>> {
  const k = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, enc.encode(message)));
}

/** Telegram's check: hex(HMAC_SHA256(data_check_string, HMAC_SHA256(bot_token, "WebAppData"))) === hash. */
async function verify(initData: string, botToken: string): Promise<{ valid: boolean; fields: Map<string, string> }> {
  const fields = new Map<string, string>();
  for (const pair of initData.split('&')) {
    const i = pair.indexOf('=');
    fields.set(decodeURIComponent(pair.slice(0, i).replace(/\+/g, ' ')), decodeURIComponent(pair.slice(i + 1).replace(/\+/g, ' ')));
  }
  const hash = fields.get('hash') ?? '';
  const keys = [...fields.keys()].filter((k) => k !== 'hash').sort();
  const dataCheckString = keys.map((k) => `${k}=${fields.get(k)}`).join('\n');
  const secretKey = await hmac(enc.encode('WebAppData'), botToken);
  const expected = Buffer.from(await hmac(secretKey, dataCheckString)).toString('hex');
  return { valid: expected === hash, fields };
}

// A public example used by Mini App libraries (e.g. the README of github.com/sanvew/InitDataTelegram,
// after docs.telegram-mini-apps.com/platform/init-data): a throwaway token and an initData it signs.
const VECTOR_TOKEN = '5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8';
const VECTOR =
  'query_id=AAHdF6IQAAAAAN0XohDhrOrc' +
  '&user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%22%2C%22last_name%22%3A%22Kibenko%22%2C%22username%22%3A%22vdkfrost%22%2C%22language_code%22%3A%22ru%22%2C%22is_premium%22%3Atrue%7D' +
  '&auth_date=1662771648' +
  '&hash=c501b71e775f74ce10e377dea85a7ea24ecd640b223ea86dfe453e0eaed2e2b2';

describe('signInitData', () => {
  it('reproduces a published initData vector byte for byte', async () => {
    expect((await verify(VECTOR, VECTOR_TOKEN)).valid).toBe(true); // the checker itself is right
    const signed = signInitData(VECTOR_TOKEN, {
      query_id: 'AAHdF6IQAAAAAN0XohDhrOrc',
      user: { id: 279058397, first_name: 'Vladislav', last_name: 'Kibenko', username: 'vdkfrost', language_code: 'ru', is_premium: true },
      auth_date: 1662771648,
    });
    expect(signed).toBe(VECTOR);
  });

  it('signs what an independent verifier accepts, with Telegram\'s encoding', async () => {
    const token = randomBotToken();
    const user = {
      id: 123456789,
      first_name: 'Zoë Test',
      username: 'zoe_test',
      language_code: 'de',
      allows_write_to_pm: true,
      photo_url: 'https://t.me/i/userpic/320/abc.svg',
    };
    const before = Math.floor(Date.now() / 1000);
    const initData = signInitData(token, { user, chat_instance: '-5471737045128434439', chat_type: 'sender', start_param: 'a b&c=d' });
    const { valid, fields } = await verify(initData, token);
    expect(valid).toBe(true);
    expect(initData).toMatch(/&hash=[0-9a-f]{64}$/);
    expect(initData).not.toContain('+'); // spaces as %20, like Telegram's clients
    expect(initData).toContain('start_param=a%20b%26c%3Dd');
    expect(fields.get('user')).toContain('"photo_url":"https:\\/\\/t.me\\/i\\/userpic\\/320\\/abc.svg"');
    expect(JSON.parse(fields.get('user')!)).toEqual(user);
    const authDate = Number(fields.get('auth_date'));
    expect(authDate).toBeGreaterThanOrEqual(before);
    expect(authDate).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    // URLSearchParams (what most backends use) reads the same values.
    expect(new URLSearchParams(initData).get('start_param')).toBe('a b&c=d');

    const plain = signInitData(token, { user }, { escapeSlashes: false });
    expect((await verify(plain, token)).fields.get('user')).toBe(JSON.stringify(user));
    expect((await verify(plain, token)).valid).toBe(true);
  });

  it('produces data that fails verification once tampered with or checked against another token', async () => {
    const token = randomBotToken();
    const initData = signInitData(token, { user: { id: 42, first_name: 'Eve' }, query_id: 'AAE', auth_date: 1700000000 });
    expect((await verify(initData, token)).valid).toBe(true);
    expect((await verify(initData, randomBotToken())).valid).toBe(false);
    expect((await verify(initData.replace('%22id%22%3A42', '%22id%22%3A43'), token)).valid).toBe(false);
    expect((await verify(initData.replace('auth_date=1700000000', 'auth_date=1800000000'), token)).valid).toBe(false);
    expect((await verify(`${initData.replace(/&hash=.*/, '')}&hash=${'0'.repeat(64)}`, token)).valid).toBe(false);
  });
});

describe('tokens and secrets', () => {
  it('randomBotToken has the shape of a real token and is accepted by the fake Bot API', () => {
    const tokens = new Set(Array.from({ length: 50 }, () => randomBotToken()));
    expect(tokens.size).toBe(50);
    for (const t of tokens) {
      expect(t).toMatch(/^[1-9]\d{8}:[A-Za-z0-9_-]{35}$/);
      expect(t).toMatch(BOT_TOKEN_RE);
    }
  });

  it('randomSecret uses only what setWebhook accepts', () => {
    expect(randomSecret()).toMatch(/^[A-Za-z0-9_-]{48}$/);
    expect(randomSecret(256)).toMatch(/^[A-Za-z0-9_-]{256}$/);
    expect(randomSecret(1)).toMatch(/^[A-Za-z0-9_-]$/);
    expect(randomSecret()).not.toBe(randomSecret());
    expect(() => randomSecret(0)).toThrow();
  });
});

describe('makeMessageUpdate', () => {
  it('builds a private-chat text message with a bot_command entity for commands', () => {
    const u = makeMessageUpdate({ update_id: 7, chat_id: 1001, text: '/start@my_bot payload', from: { id: 1001, first_name: 'Ann', username: 'ann' } });
    expect(u.update_id).toBe(7);
    expect(u.message).toMatchObject({
      from: { id: 1001, is_bot: false, first_name: 'Ann', username: 'ann', language_code: 'en' },
      chat: { id: 1001, type: 'private', first_name: 'Ann', username: 'ann' },
      text: '/start@my_bot payload',
      entities: [{ offset: 0, length: '/start@my_bot'.length, type: 'bot_command' }],
    });
    expect(typeof u.message.message_id).toBe('number');
    expect(u.message.date).toBeGreaterThan(Date.now() / 1000 - 60);
  });

  it('leaves plain text without entities, update_id to the fake, and builds group chats', () => {
    const u = makeMessageUpdate({ chat_id: -1001234567890, text: 'hello /not a command', from: { id: 5, first_name: 'Bo' } });
    expect('update_id' in u).toBe(false);
    expect(u.message.entities).toBeUndefined();
    expect(u.message.chat).toEqual({ id: -1001234567890, title: 'Test group', type: 'supergroup' });
    const a = makeMessageUpdate({ chat_id: 9, text: 'a' });
    const b = makeMessageUpdate({ chat_id: 9, text: 'b' });
    expect(b.message.message_id).toBe((a.message.message_id as number) + 1);
  });
});
