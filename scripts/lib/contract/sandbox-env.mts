// The env a sandboxed app starts with (contract check, restore drill): what production gives it
// (docker-compose.yml's `environment:` and the app's own keys from the env file, config/app-env.mts),
// with every secret replaced by a placeholder of the same shape and Telegram out of reach. The real
// BOT_TOKEN never enters a sandbox: a candidate release that calls setWebhook with it at start-up
// would move the live webhook to itself. Pure; deterministic, so the gate's cache key stays stable.
import { createHash } from 'node:crypto';
import { appEnv } from '../config/app-env.mts';
import { pollingBot } from '../config/shape.mts';
import { TELEGRAM_STUB_ALIAS, TELEGRAM_STUB_PORT } from '../commands/contract.mts';

/** Production's fixed values (docker-compose.yml) that the sandbox keeps as they are. */
export const SANDBOX_FIXED = {
  NODE_ENV: 'production',
  PORT: '3000',
  DB_PATH: '/app/data/lazyflow.db',
  UPLOADS_DIR: '/app/uploads',
} as const;

/** docker-compose.yml's default when the env file has no WEBHOOK_SECRET (public on purpose: local mode) */
export const LOCAL_WEBHOOK_SECRET = 'local-try-out-secret-not-for-production-0000';

/** A well-formed bot token (`<bot id>:<35 characters>`, as BotFather issues them) that is no bot's. */
export const SANDBOX_BOT_TOKEN = '1000000001:AAsandbox-placeholder-never-a-bot00';

/** Where the sandbox's Bot API root points: a closed port on the container's own loopback (refused at once). */
export const SANDBOX_TELEGRAM_API_ROOT = 'http://127.0.0.1:9';

/**
 * A polling bot's Bot API root in the sandbox (bot shape polling): the stub on the sandbox's network
 * (contract/telegram-stub.mts). A poller calls getMe and getUpdates before it is up at all (grammY's
 * bot.start() ends, and the app with it, when getMe is refused), so "refused at once" would fail every
 * polling app; the stub answers with a placeholder bot and no updates, and the real token never goes there.
 */
export const SANDBOX_TELEGRAM_STUB_ROOT = `http://${TELEGRAM_STUB_ALIAS}:${TELEGRAM_STUB_PORT}`;

/** the Bot API root a sandboxed app gets for these env values */
export const sandboxTelegramApiRoot = (values: Record<string, string | undefined>) => (pollingBot(values) ? SANDBOX_TELEGRAM_STUB_ROOT : SANDBOX_TELEGRAM_API_ROOT);

/** An app key whose name says it holds a secret (GOOGLE_OAUTH_STATE_SECRET, STRIPE_API_KEY, SESSION_PASSWORD, ...). */
export function isSecretKey(key: string): boolean {
  return /(^|_)(SECRET|SECRETS|TOKEN|PASSWORD|PASSWD|PASS|PASSPHRASE|PRIVATE|CREDENTIAL|CREDENTIALS|KEY|APIKEY|SALT|PEPPER|DSN)(_|$)/.test(key.toUpperCase());
}

/**
 * A stand-in of the same shape: each letter and digit replaced by one of its class (lower, upper,
 * digit), every other character kept, so an app's format check (length, prefix separators, hex)
 * still passes. Derived from the key and the shape only, never from the secret's characters.
 */
export function placeholderLike(key: string, value: string): string {
  let stream = Buffer.alloc(0);
  let block = 0;
  const next = (i: number): number => {
    while (i >= stream.length) stream = Buffer.concat([stream, createHash('sha256').update(`lazyflow-sandbox\0${key}\0${block++}`).digest()]);
    return stream[i];
  };
  return [...value].map((c, i) => {
    const b = next(i);
    if (/[0-9]/.test(c)) return String(b % 10);
    if (/[a-z]/.test(c)) return String.fromCharCode(97 + (b % 26));
    if (/[A-Z]/.test(c)) return String.fromCharCode(65 + (b % 26));
    return c;
  }).join('');
}

/** A URL's password replaced (scheme://user:secret@host): the host may stay, the credential may not. */
function withoutUrlPassword(key: string, value: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)([^@\s]+)(@.*)$/i.exec(value);
  return m ? `${m[1]}${placeholderLike(key, m[2])}${m[3]}` : value;
}

/**
 * The sandbox env for an env file's values: the app's own keys (secrets as placeholders), production's
 * fixed keys, APP_URL / ALLOWED_ORIGINS / ADMIN_CHAT_ID as production passes them, a placeholder
 * BOT_TOKEN and WEBHOOK_SECRET where the env file sets them (absent or empty ones stay as production
 * has them: empty token, the public local secret), and a Bot API root nothing answers (a polling bot's:
 * the sandbox's stub, sandboxTelegramApiRoot).
 */
export function sandboxEnv(values: Record<string, string> = {}): Record<string, string> {
  const own: Record<string, string> = {};
  for (const [k, v] of Object.entries(appEnv(values).vars)) own[k] = isSecretKey(k) ? placeholderLike(k, v) : withoutUrlPassword(k, v);
  const set = (k: string) => (values[k] ?? '').trim() !== '';
  return {
    ...own,
    ...SANDBOX_FIXED,
    APP_URL: set('APP_URL') ? values.APP_URL : 'https://localhost',
    ALLOWED_ORIGINS: set('ALLOWED_ORIGINS') ? values.ALLOWED_ORIGINS : 'https://localhost',
    BOT_TOKEN: set('BOT_TOKEN') ? SANDBOX_BOT_TOKEN : '',
    WEBHOOK_SECRET: set('WEBHOOK_SECRET') ? placeholderLike('WEBHOOK_SECRET', values.WEBHOOK_SECRET) : LOCAL_WEBHOOK_SECRET,
    TELEGRAM_API_ROOT: sandboxTelegramApiRoot(values),
    ...(set('ADMIN_CHAT_ID') ? { ADMIN_CHAT_ID: values.ADMIN_CHAT_ID } : {}),
    LOG_LEVEL: 'info',
    JOB_HEARTBEAT_MS: '1000',
    UPLOAD_MAX_BYTES: /^\d+$/.test(values.UPLOAD_MAX_BYTES ?? '') ? values.UPLOAD_MAX_BYTES : '10485760',
  };
}

/** The keys the app finds set (non-empty) in the sandbox: a key it names as missing outside these is one the env file lacks. */
export function sandboxSetKeys(env: Record<string, string>): string[] {
  return Object.entries(env).filter(([, v]) => v.trim() !== '').map(([k]) => k);
}

/** The env file's text for `docker run --env-file` (values never on argv). */
export function envFileText(env: Record<string, string>): string {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n';
}
