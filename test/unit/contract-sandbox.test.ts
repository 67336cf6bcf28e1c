// The contract sandbox's env and the log lines it reads: production's settings with placeholder
// secrets (never the real BOT_TOKEN: a candidate calling setWebhook would move the live webhook),
// and an app's exit told apart: a key the env file lacks, a Bot API call that failed, a read-only write.
import { describe, it, expect } from 'vitest';
import {
  isSecretKey, LOCAL_WEBHOOK_SECRET, placeholderLike, SANDBOX_BOT_TOKEN, SANDBOX_TELEGRAM_API_ROOT, SANDBOX_TELEGRAM_STUB_ROOT, sandboxEnv, sandboxSetKeys,
} from '../../scripts/lib/contract/sandbox-env.mts';
import { missingKeysInLog, readOnlyErrorInLog, telegramErrorInLog } from '../../scripts/lib/contract/items.mts';

const TOKEN = '7012345678:AAH3kq-very_real-token-of-the-bot-xy';
const SECRET = 'Wb9f2c1e0a8d7b6c5f4e3d2c1b0a9f8e7d6c5b4a';

describe('sandbox env: production\'s settings, placeholder secrets', () => {
  const full = {
    BOT_TOKEN: TOKEN, WEBHOOK_SECRET: SECRET, APP_URL: 'https://bot.example.com', ALLOWED_ORIGINS: 'https://bot.example.com', ADMIN_CHAT_ID: '123456',
    MINI_APP_URL: 'https://bot.example.com', GOOGLE_OAUTH_STATE_SECRET: 'abcdef0123456789abcdef0123456789', STRIPE_API_KEY: 'sk_live_ABC123',
    SENTRY_DSN: 'https://k3y@o1.ingest.example/2', UPSTREAM_URL: 'https://user:p4ss@api.example.com/x', FEATURE_FLAG: 'on',
    TELEGRAM_API_ROOT: 'https://api.telegram.org', RESTIC_PASSWORD: 'r', AWS_SECRET_ACCESS_KEY: 'a', ALERT_BOT_TOKEN: TOKEN, STATE_DIR: '/srv/lazyflow',
  };
  const e = sandboxEnv(full);

  it('no value of a secret reaches the sandbox', () => {
    const text = Object.values(e).join('\n');
    for (const v of [TOKEN, SECRET, full.GOOGLE_OAUTH_STATE_SECRET, full.STRIPE_API_KEY, 'p4ss', 'r', 'a']) expect(text.includes(`\n${v}\n`) || Object.values(e).includes(v), v).toBe(false);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(SECRET);
  });

  it.each<[string, string | undefined, RegExp | string]>([
    ['BOT_TOKEN: well formed, no bot\'s', e.BOT_TOKEN, /^\d+:[A-Za-z0-9_-]{35}$/],
    ['WEBHOOK_SECRET: same shape as the real one', e.WEBHOOK_SECRET, /^[A-Z][a-z0-9]{39}$/],
    ['Telegram out of reach', e.TELEGRAM_API_ROOT, SANDBOX_TELEGRAM_API_ROOT],
    ['APP_URL as production', e.APP_URL, 'https://bot.example.com'],
    ['ADMIN_CHAT_ID as production', e.ADMIN_CHAT_ID, '123456'],
    ['an app key as is', e.MINI_APP_URL, 'https://bot.example.com'],
    ['a plain app setting as is', e.FEATURE_FLAG, 'on'],
    ['an app secret: placeholder of its shape', e.GOOGLE_OAUTH_STATE_SECRET, /^[a-z0-9]{32}$/],
    ['an API key keeps its separators', e.STRIPE_API_KEY, /^[a-z]{2}_[a-z]{4}_[A-Z]{3}\d{3}$/],
    ['a URL keeps its host, not its password', e.UPSTREAM_URL, /^https:\/\/user:[a-z]\d[a-z]{2}@api\.example\.com\/x$/],
    ['DB_PATH: the contract\'s', e.DB_PATH, '/app/data/lazyflow.db'],
  ])('%s', (_what, value, expected) => {
    if (typeof expected === 'string') expect(value).toBe(expected);
    else expect(value).toMatch(expected);
  });

  it('placeholders are not the secret, and stable (the gate caches per env)', () => {
    expect(e.BOT_TOKEN).toBe(SANDBOX_BOT_TOKEN);
    expect(e.GOOGLE_OAUTH_STATE_SECRET).not.toBe(full.GOOGLE_OAUTH_STATE_SECRET);
    expect(sandboxEnv(full)).toEqual(e);
    expect(placeholderLike('K', 'aaaa')).toBe(placeholderLike('K', 'zzzz'));
  });

  it('a polling bot (BOT_SHAPE=polling) gets the sandbox\'s stub Bot API, still with the placeholder token', () => {
    const p = sandboxEnv({ ...full, BOT_SHAPE: 'polling' });
    expect(p.TELEGRAM_API_ROOT).toBe(SANDBOX_TELEGRAM_STUB_ROOT);
    expect(p.TELEGRAM_API_ROOT).toBe('http://telegram-stub:8081');
    expect(p.BOT_TOKEN).toBe(SANDBOX_BOT_TOKEN);
    expect(Object.values(p).join('\n')).not.toContain(TOKEN);
    // the webhook shapes keep a root nothing answers (a webhook app calls Telegram only to set its webhook)
    for (const shape of ['webhook', 'webhook-miniapp']) expect(sandboxEnv({ ...full, BOT_SHAPE: shape }).TELEGRAM_API_ROOT).toBe(SANDBOX_TELEGRAM_API_ROOT);
  });

  it('toolkit, proxy and backup keys stay out', () => {
    for (const k of ['RESTIC_PASSWORD', 'AWS_SECRET_ACCESS_KEY', 'ALERT_BOT_TOKEN', 'STATE_DIR']) expect(e[k], k).toBeUndefined();
  });

  it('what the env file lacks stays as production has it: an empty token, the public local secret, no ADMIN_CHAT_ID', () => {
    const bare = sandboxEnv({});
    expect(bare.BOT_TOKEN).toBe('');
    expect(bare.WEBHOOK_SECRET).toBe(LOCAL_WEBHOOK_SECRET);
    expect(bare.ADMIN_CHAT_ID).toBeUndefined();
    expect(sandboxSetKeys(bare)).not.toContain('BOT_TOKEN');
    expect(sandboxSetKeys(e)).toContain('BOT_TOKEN');
  });

  it.each([
    ['GOOGLE_OAUTH_STATE_SECRET', true], ['BOT_TOKEN', true], ['STRIPE_API_KEY', true], ['DB_PASSWORD', true], ['SENTRY_DSN', true],
    ['MINI_APP_URL', false], ['KEYBOARD_LAYOUT', false], ['TOKENIZER_MODEL', false], ['FEATURE_FLAG', false],
  ])('secret key name %s: %s', (k, secret) => expect(isSecretKey(k)).toBe(secret));
});

describe('why the app exited: read from its last log lines', () => {
  const grammyUncaught = [
    '1 | (function (entry, fetcher)',
    "error: Network request for 'setWebhook' failed!",
    '      at toHttpError (/app/node_modules/grammy/out/core/error.js:84:12)',
    'Bun v1.4.5 (Linux x64)',
  ].join('\n');
  it.each<[string, string, { telegram: boolean; readOnly: boolean; missing: string[] }]>([
    ['grammY: setWebhook unreachable', grammyUncaught, { telegram: true, readOnly: false, missing: [] }],
    ['grammY: getMe refused by Telegram', "GrammyError: Call to 'getMe' failed! (401: Unauthorized)", { telegram: true, readOnly: false, missing: [] }],
    ['a fetch to api.telegram.org', 'FetchError: request to https://api.telegram.org/bot.../setWebhook failed, reason: ENOTFOUND', { telegram: true, readOnly: false, missing: [] }],
    ['a required key the env file lacks', 'config: GOOGLE_CLIENT_ID is required in production', { telegram: false, readOnly: false, missing: ['GOOGLE_CLIENT_ID'] }],
    ['a required key the sandbox sets (placeholder)', 'config: BOT_TOKEN is required', { telegram: false, readOnly: false, missing: [] }],
    ['a write to the root filesystem', "EROFS: read-only file system, mkdir '/home/bun/.cache'", { telegram: false, readOnly: true, missing: [] }],
    ['any other crash', 'TypeError: undefined is not an object', { telegram: false, readOnly: false, missing: [] }],
  ])('%s', (_what, log, want) => {
    expect(Boolean(telegramErrorInLog(log))).toBe(want.telegram);
    expect(Boolean(readOnlyErrorInLog(log))).toBe(want.readOnly);
    expect(missingKeysInLog(log, sandboxSetKeys(sandboxEnv({ BOT_TOKEN: TOKEN })))).toEqual(want.missing);
  });
  it('the Telegram line is the one reported', () => {
    expect(telegramErrorInLog(grammyUncaught)).toBe("error: Network request for 'setWebhook' failed!");
  });
});
