import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { appEnv, appEnvPath, appEnvText, keyOwner, COMPOSE_APP_KEYS } from '../../scripts/lib/config/app-env.mts';
import { checkAppEnv, checkMissingAppKeys, checkStackKeys } from '../../scripts/lib/checks/preflight.mts';
import { sandboxEnv } from '../../scripts/lib/contract/check.mts';
import { parseEnvText } from '../../scripts/lib/config/env.mts';

const repo = join(import.meta.dirname, '..', '..');

describe('app env: which keys of the env file are the app\'s own', () => {
  it.each([
    // the app's own settings reach it
    ['MINI_APP_URL', 'app'],
    ['GOOGLE_OAUTH_STATE_SECRET', 'app'],
    ['GOOGLE_OAUTH_CLIENT_ID', 'app'],
    ['EXTRA_APP_SETTING', 'app'],
    ['SENTRY_DSN', 'app'],
    ['INITDATA_MAX_AGE_S', 'app'],
    // docker-compose.yml's environment: passes these already
    ['BOT_TOKEN', 'compose'],
    ['WEBHOOK_SECRET', 'compose'],
    ['APP_URL', 'compose'],
    ['DB_PATH', 'compose'],
    ['LOG_LEVEL', 'compose'],
    ['TELEGRAM_API_ROOT', 'compose'],
    // offsite backup credentials never reach the app (a compromised app must not delete the backups)
    ['AWS_ACCESS_KEY_ID', 'backup'],
    ['AWS_SECRET_ACCESS_KEY', 'backup'],
    ['AWS_DEFAULT_REGION', 'backup'],
    ['OFFSITE_REPOSITORY', 'backup'],
    ['OFFSITE_PASSWORD_FILE', 'backup'],
    ['OFFSITE_SFTP_KEY', 'backup'],
    ['OFFSITE_REST_PASSWORD_FILE', 'backup'],
    ['RESTIC_PASSWORD_FILE', 'backup'],
    ['RESTIC_REPOSITORY', 'backup'],
    ['B2_ACCOUNT_KEY', 'backup'],
    ['AZURE_ACCOUNT_KEY', 'backup'],
    ['RCLONE_CONFIG', 'backup'],
    ['GOOGLE_APPLICATION_CREDENTIALS', 'backup'],
    ['GOOGLE_PROJECT_ID', 'backup'],
    ['OS_PASSWORD', 'backup'],
    ['BACKUP_KEEP', 'backup'],
    // the proxy's
    ['DOMAIN', 'proxy'],
    ['ACME_EMAIL', 'proxy'],
    ['ACME_CA', 'proxy'],
    ['HTTPS_PORT', 'proxy'],
    ['PUBLISH_ADDRESS', 'proxy'],
    ['API_PATHS', 'proxy'],
    ['PROXY_IMAGE', 'proxy'],
    ['CADDY_IMAGE', 'proxy'],
    ['READY_PATH', 'proxy'],
    ['FRONTEND_DIR', 'proxy'],
    ['FRONTEND_BUILD', 'proxy'],
    ['FRONTEND_DIST', 'proxy'],
    ['FRONTEND_URL', 'app'],
    ['PROXY_URL', 'app'],
    ['HTTPS_PROXY', 'app'],
    // the toolkit's (alerts and watch carry secrets of their own)
    ['COMPOSE_PROJECT_NAME', 'toolkit'],
    ['COMPOSE_FILE', 'toolkit'],
    ['STATE_DIR', 'toolkit'],
    ['APP_TAG', 'toolkit'],
    ['BUN_IMAGE', 'toolkit'],
    ['APP_MEMORY_LIMIT', 'toolkit'],
    ['ALERT_BOT_TOKEN', 'toolkit'],
    ['ALERT_WEBHOOK_URL', 'toolkit'],
    ['HEARTBEAT_URL', 'toolkit'],
    ['WATCH_CERT_DAYS', 'toolkit'],
    ['PEBBLE_DIR', 'toolkit'],
    ['LAZYFLOW_RESTIC_BIN', 'toolkit'],
    ['DOCKER_HOST', 'toolkit'],
    ['HEALTHCHECK_PATH', 'toolkit'],
  ])('%s -> %s', (key, owner) => {
    expect(keyOwner(key)).toBe(owner);
  });

  it('every key of .env.prod.example is placed; the example has no app key by accident (its backup and alert keys stay out)', () => {
    const example = parseEnvText(readFileSync(join(repo, '.env.prod.example'), 'utf8'), '.env.prod.example');
    const { vars } = appEnv(example);
    // the example's only app key is the one the lazyflow app requires
    expect(Object.keys(vars)).toEqual(['MINI_APP_URL']);
  });

  it('every key docker-compose.yml passes through environment: is a compose key (so the file does not repeat it)', () => {
    const compose = readFileSync(join(repo, 'docker-compose.yml'), 'utf8');
    const app = compose.slice(compose.indexOf('  app:'), compose.indexOf('  caddy:'));
    const env = app.slice(app.indexOf('    environment:'), app.indexOf('    volumes:'));
    const keys = [...env.matchAll(/^ {6}([A-Z_]+):/gm)].map((m) => m[1]);
    expect(keys.length).toBeGreaterThan(5);
    expect([...keys].sort()).toEqual([...COMPOSE_APP_KEYS].sort());
  });

  it('appEnv splits the values: app keys with values, the rest by name only, multi-line values refused', () => {
    const a = appEnv({ MINI_APP_URL: 'https://m.example', AWS_SECRET_ACCESS_KEY: 'k', BOT_TOKEN: '1:x', EMPTY_ONE: '', PEM: 'a\nb', DOMAIN: 'd' });
    expect(a.vars).toEqual({ MINI_APP_URL: 'https://m.example', EMPTY_ONE: '' });
    expect(a.withheld).toEqual([{ key: 'AWS_SECRET_ACCESS_KEY', owner: 'backup' }, { key: 'BOT_TOKEN', owner: 'compose' }, { key: 'DOMAIN', owner: 'proxy' }]);
    expect(a.multiline).toEqual(['PEM']);
  });

  it('the file text is raw KEY=value lines (compose reads it with format: raw: no quotes, no $ expansion)', () => {
    expect(appEnvText({ A: 'x $HOME "q"', B: '' })).toMatch(/^# written by the lazyflow toolkit[^\n]*\nA=x \$HOME "q"\nB=\n$/);
    expect(appEnvText({}).split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([]);
    expect(appEnvPath('/srv/lazyflow/')).toBe('/srv/lazyflow/app.env');
  });

  it('the contract sandbox uses the same rule: backup, alert and toolkit keys stay out, app keys reach it', () => {
    const e = sandboxEnv({ MINI_APP_URL: 'https://m.example', EXTRA_APP_SETTING: 'on', AWS_SECRET_ACCESS_KEY: 'k', OFFSITE_REPOSITORY: 's3:x', ALERT_WEBHOOK_URL: 'https://h/x', HEARTBEAT_URL: 'https://h/y' });
    expect(e).toMatchObject({ MINI_APP_URL: 'https://m.example', EXTRA_APP_SETTING: 'on' });
    for (const k of ['AWS_SECRET_ACCESS_KEY', 'OFFSITE_REPOSITORY', 'ALERT_WEBHOOK_URL', 'HEARTBEAT_URL']) expect(e[k], k).toBeUndefined();
    // exactly the app keys production gets: none made up for the ones the env file lacks
    expect(sandboxEnv({}).MINI_APP_URL).toBeUndefined();
  });
});

describe('preflight: the app\'s own keys', () => {
  const file = '/srv/.env.prod';
  const failed = (v: Record<string, string>) => checkAppEnv(v, file).filter((r) => !r.ok);
  it('names the app keys it passes, never their values', () => {
    const r = checkAppEnv({ MINI_APP_URL: 'https://app.acme.dev', GOOGLE_OAUTH_STATE_SECRET: 'sup3r-s3cret-value', AWS_SECRET_ACCESS_KEY: 'aws-secret-value' }, file);
    const text = JSON.stringify(r);
    expect(text).toContain('MINI_APP_URL, GOOGLE_OAUTH_STATE_SECRET');
    expect(text).toContain('kept from the app container (backup credentials): AWS_SECRET_ACCESS_KEY');
    expect(text).not.toContain('sup3r-s3cret-value');
    expect(text).not.toContain('aws-secret-value');
    expect(failed({ MINI_APP_URL: 'https://app.acme.dev' })).toEqual([]);
  });
  it.each([
    ['http://app.acme.dev', /MINI_APP_URL in \/srv\/.env.prod must be https/],
    ['app.acme.dev', /MINI_APP_URL in \/srv\/.env.prod is not a URL/],
    ['ftp://app.acme.dev', /must be https/],
  ])('MINI_APP_URL=%s is refused, naming the key', (value, message) => {
    const f = failed({ MINI_APP_URL: value });
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({ key: 'MINI_APP_URL', file });
    expect(f[0].message).toMatch(message);
    expect(f[0].fix).toMatch(/MINI_APP_URL=https:\/\//);
  });
  it('unset MINI_APP_URL is not preflight\'s business (the contract checker finds an app that needs it)', () => {
    expect(failed({})).toEqual([]);
  });
  it.each([
    [{ READY_PATH: '/ready', HEALTHCHECK_PATH: '/health/write', FRONTEND_DIR: 'app/web', FRONTEND_DIST: 'app/web/dist' }, []],
    [{ READY_PATH: '/health', HEALTHCHECK_PATH: '/health', FRONTEND_DIR: 'frontend', FRONTEND_DIST: 'frontend/dist' }, []],
    [{ HEALTHCHECK_PATH: "/health'; exit 0; '" }, ['HEALTHCHECK_PATH']],
    [{ READY_PATH: 'ready' }, ['READY_PATH']],
    [{ READY_PATH: '/ready $HOME' }, ['READY_PATH']],
    [{ FRONTEND_DIR: '../elsewhere' }, ['FRONTEND_DIR']],
    [{ FRONTEND_DIST: '/srv/www' }, ['FRONTEND_DIST']],
  ])('the stack\'s own keys: %o fails %o', (values, keys) => {
    const f = checkStackKeys(values as Record<string, string>, file);
    expect(f.map((x) => x.key)).toEqual(keys);
    for (const x of f) expect(x).toMatchObject({ ok: false, file, fix: expect.stringContaining(String(x.key)) });
  });
  it('app keys the contract checker found missing are named, with the image that needed them, as warnings', () => {
    const r = checkMissingAppKeys({ image: 'lazyflow-app:abc', at: '2026-03-01T00:00:00.000Z', keys: ['MINI_APP_URL'] }, file);
    expect(r).toHaveLength(1);
    expect(r[0]).toMatchObject({ ok: true, level: 'warn', key: 'MINI_APP_URL', file });
    expect(r[0].message).toBe('MINI_APP_URL is not set in /srv/.env.prod: the contract check of lazyflow-app:abc (2026-03-01T00:00:00.000Z) saw the app exit at start-up naming it');
    expect(r[0].fix).toMatch(/^add MINI_APP_URL=<value> to \/srv\/.env.prod/);
    expect(checkMissingAppKeys(null, file)).toEqual([]);
  });
  it('a multi-line app value fails, naming the key; a key compose fixes is a warning', () => {
    expect(failed({ GOOGLE_KEY_PEM: '-----BEGIN\nx' })[0]).toMatchObject({ key: 'GOOGLE_KEY_PEM' });
    const w = checkAppEnv({ DB_PATH: '/elsewhere.db' }, file).find((r) => r.key === 'DB_PATH');
    expect(w).toMatchObject({ ok: true, level: 'warn' });
  });
});
