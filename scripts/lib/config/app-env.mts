// The app's own settings: which keys of the operator env file belong to the app (MINI_APP_URL,
// GOOGLE_OAUTH_STATE_SECRET, ...) and reach its container, and which belong to the toolkit, the
// proxy or the backups and never do. One rule, used by the production stack (the file below, which
// docker-compose.yml's app service reads with `env_file:`) and by the contract checker's sandbox.
//
// The rule is a deny list: every key is the app's unless it is named here. Backup credentials
// (AWS_*, OFFSITE_*, RESTIC_*, the other restic backends' keys) are denied on purpose: an app that
// is compromised must not be able to delete the backups that would repair it.
import fs from 'node:fs';
import path from 'node:path';
import { fsyncDir } from '../host/fsutil.mts';
import { StepError } from '../cli/errors.mts';

export type KeyOwner = 'app' | 'compose' | 'toolkit' | 'proxy' | 'backup';

/** Set by docker-compose.yml's `environment:` for the app (the env file's value, or a fixed one): not repeated in the file. */
export const COMPOSE_APP_KEYS: readonly string[] = [
  'NODE_ENV', 'PORT', 'APP_URL', 'BOT_TOKEN', 'WEBHOOK_SECRET', 'DB_PATH', 'UPLOADS_DIR', 'ALLOWED_ORIGINS', 'LOG_LEVEL',
  'TELEGRAM_API_ROOT', 'ADMIN_CHAT_ID', 'UPLOAD_MAX_BYTES', 'JOB_HEARTBEAT_MS',
  'UPLOAD_QUOTA_BYTES', 'UPLOAD_CONCURRENCY', 'UPLOAD_USER_CONCURRENCY', 'UPLOAD_MIN_FREE_BYTES',
];

/** The toolkit's own keys: compose project, images, state, alerts, watch. */
export const TOOLKIT_KEYS: readonly string[] = [
  'COMPOSE_PROJECT_NAME', 'COMPOSE_FILE', 'STATE_DIR', 'APP_IMAGE', 'APP_TAG', 'BUN_IMAGE', 'LOG_MAX_SIZE', 'LOG_MAX_FILE', 'APP_MEMORY_LIMIT', 'ALERT_BOT_TOKEN', 'ALERT_WEBHOOK_URL', 'HEARTBEAT_URL',
  // the app container's healthcheck (docker-compose.yml), not a setting of the app
  'HEALTHCHECK_PATH',
  // what the toolkit builds and checks for the bot (config/shape.mts), not a setting of the app
  'BOT_SHAPE',
];
export const TOOLKIT_PREFIXES: readonly string[] = ['COMPOSE_', 'DOCKER_', 'LAZYFLOW_', 'PEBBLE_', 'WATCH_', 'ALERT_'];

/** The proxy's keys (Caddy, published ports, routing). Named one by one: none is a secret, and a broad
 * prefix would swallow an app key of the same shape (PROXY_URL). Secrets get prefixes (backup, alerts). */
export const PROXY_KEYS: readonly string[] = [
  'DOMAIN', 'PUBLISH_ADDRESS', 'HTTP_PORT', 'HTTPS_PORT', 'PROXY_HOLD_DURATION', 'PROXY_READ_BODY_TIMEOUT', 'API_PATHS', 'READY_PATH', 'PROXY_IMAGE', 'PROXY_TAG', 'CADDY_IMAGE',
  // how the proxy image builds the Mini App (docker/caddy/Dockerfile)
  'FRONTEND_DIR', 'FRONTEND_BUILD', 'FRONTEND_DIST',
];
export const PROXY_PREFIXES: readonly string[] = ['ACME_'];

/** Offsite backup credentials and settings, restic's backends included (s3, b2, azure, gs, swift, rclone). */
export const BACKUP_KEYS: readonly string[] = ['GOOGLE_PROJECT_ID', 'GOOGLE_APPLICATION_CREDENTIALS', 'GOOGLE_ACCESS_TOKEN'];
export const BACKUP_PREFIXES: readonly string[] = ['OFFSITE_', 'RESTIC_', 'BACKUP_', 'AWS_', 'B2_', 'AZURE_', 'RCLONE_', 'OS_', 'ST_'];

/** Who a key of the env file belongs to. Only 'app' keys reach the app through the app env file. */
export function keyOwner(key: string): KeyOwner {
  const has = (keys: readonly string[], prefixes: readonly string[] = []) => keys.includes(key) || prefixes.some((p) => key.startsWith(p));
  if (has(BACKUP_KEYS, BACKUP_PREFIXES)) return 'backup';
  if (has(COMPOSE_APP_KEYS)) return 'compose';
  if (has(PROXY_KEYS, PROXY_PREFIXES)) return 'proxy';
  if (has(TOOLKIT_KEYS, TOOLKIT_PREFIXES)) return 'toolkit';
  return 'app';
}

export interface AppEnv {
  /** the app's own keys and their values, in the env file's order */
  vars: Record<string, string>;
  /** keys of the env file that stay out (names only), with their owner */
  withheld: { key: string; owner: Exclude<KeyOwner, 'app'> }[];
  /** app keys whose value spans lines: a container env file cannot carry them */
  multiline: string[];
}

/** Split the env file's values into the app's own keys and the rest. Pure. */
export function appEnv(values: Record<string, string>): AppEnv {
  const out: AppEnv = { vars: {}, withheld: [], multiline: [] };
  for (const [key, value] of Object.entries(values)) {
    const owner = keyOwner(key);
    if (owner !== 'app') out.withheld.push({ key, owner });
    else if (/[\r\n]/.test(value)) out.multiline.push(key);
    else out.vars[key] = value;
  }
  return out;
}

/** The file's text: KEY=value lines, read by compose with `format: raw` (no quotes, no $ expansion). */
export function appEnvText(vars: Record<string, string>): string {
  const lines = Object.entries(vars).map(([k, v]) => `${k}=${v}`);
  return `# written by the lazyflow toolkit from the env file before every compose up: edit the env file, not this\n${lines.join('\n')}${lines.length ? '\n' : ''}`;
}

export const APP_ENV_FILE = 'app.env';

/** Where the app env file lives: STATE_DIR/app.env (docker-compose.yml: ${STATE_DIR:-./.state}/app.env). */
export function appEnvPath(stateDir: string): string {
  return path.join(path.resolve(stateDir), APP_ENV_FILE);
}

/**
 * Write the app's own keys to STATE_DIR/app.env, mode 0600, atomically (temp file, fsync, rename,
 * fsync of the directory): compose never reads a half-written file. Call it before every compose
 * up of the app. Returns the file and the key names written (never the values).
 */
export function writeAppEnvFile(env: { values: Record<string, string>; stateDir: string }): { file: string; keys: string[]; changed: boolean } {
  const file = appEnvPath(env.stateDir);
  const { vars } = appEnv(env.values);
  const text = appEnvText(vars);
  const keys = Object.keys(vars);
  let old: string | null = null;
  try {
    old = fs.readFileSync(file, 'utf8');
  } catch {
    old = null;
  }
  if (old === text && (fs.statSync(file).mode & 0o077) === 0) return { file, keys, changed: false };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(path.dirname(file));
  return { file, keys, changed: true };
}

/** writeAppEnvFile for the operations: logs the key names at debug, and says what to fix when it cannot write. */
export function syncAppEnvFile(env: { values: Record<string, string>; stateDir: string }, log?: { debug(msg: string): void }): string[] {
  try {
    const w = writeAppEnvFile(env);
    log?.debug(`app env ${w.file}${w.changed ? ' written' : ' unchanged'}: ${w.keys.length ? w.keys.join(', ') : 'no own keys'}`);
    return w.keys;
  } catch (err) {
    const file = appEnvPath(env.stateDir);
    throw new StepError(`cannot write the app's env file ${file}: ${(err as Error).message}`, { step: 'app-env', hint: `make ${path.dirname(file)} writable by the user running the toolkit (sudo chown "$(id -u)" ${path.dirname(file)}), then retry` });
  }
}
