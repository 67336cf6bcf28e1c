import { describe, it, expect } from 'vitest';
import { checkEnv, checkSystem, requiredKeys, isLocalMode, placeholderReason, preflightPassed, versionAtLeast, parseVersion, LOCAL_DEFAULT_SECRET } from '../../scripts/lib/checks/preflight.mts';

const good = {
  COMPOSE_PROJECT_NAME: 'lazyflow',
  STATE_DIR: '/srv/lazyflow',
  DOMAIN: 'bot.acme.dev',
  APP_URL: 'https://bot.acme.dev',
  ALLOWED_ORIGINS: 'https://bot.acme.dev',
  ACME_EMAIL: 'ops@acme.dev',
  BOT_TOKEN: '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw',
  WEBHOOK_SECRET: 'b3f1c9a7e5d24f608a1b2c3d4e5f60718293a4b5c6d7e8f9',
};
const obs = (values: Record<string, string>, mode = 0o600, example?: Record<string, string>) =>
  ({ file: '/srv/.env.prod', exists: true, mode, values, example, exampleFile: '.env.prod.example' });
const failures = (values: Record<string, string>, mode = 0o600, example?: Record<string, string>) =>
  checkEnv(obs(values, mode, example)).filter((r) => !r.ok);

describe('preflight: env file', () => {
  it('a good production file passes', () => {
    const r = checkEnv(obs(good));
    expect(failures(good)).toEqual([]);
    expect(preflightPassed(r)).toBe(true);
  });

  it('missing file names the file and the fix', () => {
    const r = checkEnv({ file: '/x/.env.prod', exists: false, values: {} });
    expect(r[0]).toMatchObject({ ok: false, file: '/x/.env.prod' });
    expect(r[0].fix).toMatch(/chmod 600/);
  });

  it('mode 0644 is refused with chmod 600', () => {
    const f = failures(good, 0o644);
    expect(f).toHaveLength(1);
    expect(f[0].message).toMatch(/0644/);
    expect(f[0].fix).toBe('chmod 600 /srv/.env.prod');
  });

  it.each(['WEBHOOK_SECRET', 'BOT_TOKEN', 'DOMAIN', 'APP_URL', 'ALLOWED_ORIGINS', 'ACME_EMAIL'])('missing %s is named', (k) => {
    const v: Record<string, string> = { ...good };
    delete v[k];
    const f = failures(v);
    expect(f.some((x) => x.key === k && x.message.includes(k))).toBe(true);
  });

  it('a polling bot (BOT_SHAPE=polling) needs only its token: no domain, certificate, webhook or Mini App keys', () => {
    const polling = { COMPOSE_PROJECT_NAME: 'bot', STATE_DIR: '/srv/bot', BOT_SHAPE: 'polling', BOT_TOKEN: good.BOT_TOKEN };
    expect(failures(polling)).toEqual([]);
    expect(requiredKeys(false, true)).toEqual(['BOT_TOKEN']);
    expect(failures({ ...polling, BOT_TOKEN: 'CHANGE_ME' }).map((x) => x.key)).toEqual(['BOT_TOKEN']);
    // what it does set is still checked
    expect(failures({ ...polling, APP_URL: 'http://bot.acme.dev' }).map((x) => x.key)).toEqual(['APP_URL']);
  });

  it.each([
    ['WEBHOOK_SECRET', 'CHANGE_ME'],
    ['BOT_TOKEN', 'CHANGE_ME'],
    ['DOMAIN', 'CHANGE_ME.example.com'],
    ['ACME_EMAIL', 'you@example.com'],
    ['BOT_TOKEN', '<your bot token>'],
  ])('placeholder %s=%s is named', (k, val) => {
    const f = failures({ ...good, [k]: val });
    expect(f.some((x) => x.key === k)).toBe(true);
  });

  it('the example file values count as placeholders', () => {
    const example = { ...good };
    const f = failures(good, 0o600, example);
    expect(f.map((x) => x.key)).toEqual(expect.arrayContaining(['BOT_TOKEN', 'WEBHOOK_SECRET', 'DOMAIN']));
  });

  it('wildcard CORS is refused', () => {
    const f = failures({ ...good, ALLOWED_ORIGINS: '*' });
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({ key: 'ALLOWED_ORIGINS' });
    expect(f[0].message).toMatch(/wildcard/);
    expect(failures({ ...good, ALLOWED_ORIGINS: 'https://*.acme.dev' })[0].key).toBe('ALLOWED_ORIGINS');
    expect(failures({ ...good, ALLOWED_ORIGINS: 'http://bot.acme.dev' })[0].key).toBe('ALLOWED_ORIGINS');
  });

  it('http APP_URL and a host other than DOMAIN are refused', () => {
    const f = failures({ ...good, APP_URL: 'http://bot.acme.dev' });
    expect(f[0]).toMatchObject({ key: 'APP_URL' });
    expect(f[0].message).toMatch(/https/);
    expect(failures({ ...good, APP_URL: 'https://other.acme.dev' })[0].message).toMatch(/not DOMAIN/);
  });

  it.each([
    ['short', 'abc123'],
    ['bad chars', 'a'.repeat(20) + '!@#$%^&*()+=' + 'b'.repeat(10)],
    ['low entropy', 'a'.repeat(40)],
    ['local default', LOCAL_DEFAULT_SECRET],
  ])('weak secret (%s) is refused', (_n, secret) => {
    const f = failures({ ...good, WEBHOOK_SECRET: secret });
    expect(f).toHaveLength(1);
    expect(f[0].key).toBe('WEBHOOK_SECRET');
    expect(f[0].fix).toMatch(/openssl rand -hex 32/);
  });

  it('bot token format', () => {
    expect(failures({ ...good, BOT_TOKEN: 'not-a-token' })[0].key).toBe('BOT_TOKEN');
  });

  it('local mode: no token, localhost, local default secret accepted with a warning', () => {
    const local = { DOMAIN: 'localhost', APP_URL: 'https://localhost', ALLOWED_ORIGINS: 'https://localhost', WEBHOOK_SECRET: LOCAL_DEFAULT_SECRET, BOT_TOKEN: '' };
    expect(isLocalMode(local)).toBe(true);
    const r = checkEnv(obs(local));
    expect(r.filter((x) => !x.ok)).toEqual([]);
    expect(r.some((x) => x.level === 'warn' && x.key === 'WEBHOOK_SECRET')).toBe(true);
    // a token makes it production: now the key set and secret rules apply
    expect(isLocalMode({ ...local, BOT_TOKEN: good.BOT_TOKEN })).toBe(false);
  });

  it('placeholder detector', () => {
    expect(placeholderReason('CHANGE_ME')).toBeTruthy();
    expect(placeholderReason('https://change-me.example.com')).toBeTruthy();
    expect(placeholderReason('lazyflow')).toBeNull();
    expect(placeholderReason('/srv/lazyflow')).toBeNull();
    expect(placeholderReason('https://bot.acme.dev')).toBeNull();
  });
});

describe('preflight: system', () => {
  const base = {
    docker: { ok: true, serverVersion: '20.10.24' },
    compose: { ok: true, version: '2.40.3' },
    nodeVersion: '24.1.0',
    disk: { path: '/srv', freeBytes: 10 * 2 ** 30, minFreeBytes: 2 ** 30 },
    composeConfig: { ok: true },
    caddyfile: { ok: true },
  };
  it('all good', () => {
    expect(checkSystem(base).every((r) => r.ok)).toBe(true);
  });
  it('each failure names the fix', () => {
    const r = checkSystem({
      docker: { ok: false, error: 'Cannot connect to the Docker daemon' },
      compose: { ok: true, version: '1.29.2' },
      nodeVersion: '22.17.1',
      disk: { path: '/srv', freeBytes: 100, minFreeBytes: 2 ** 30 },
      composeConfig: { ok: false, output: 'services.app.image must be a string' },
      caddyfile: { ok: false, output: 'Error: adapting config: unrecognized directive: revers_proxy' },
    });
    const failed = r.filter((x) => !x.ok);
    expect(failed.map((x) => x.name)).toEqual(['docker engine', 'compose v2', 'node', 'disk', 'compose config', 'caddyfile']);
    for (const f of failed) expect(f.fix).toBeTruthy();
    expect(failed.find((x) => x.name === 'caddyfile')!.message).toMatch(/revers_proxy/);
  });
  it('node version compare', () => {
    expect(versionAtLeast(parseVersion('v22.18.0')!, [22, 18])).toBe(true);
    expect(versionAtLeast(parseVersion('v22.17.9')!, [22, 18])).toBe(false);
    expect(versionAtLeast(parseVersion('v23.0.0')!, [22, 18])).toBe(true);
  });
});

describe('preflight: local try-out with compose defaults', () => {
  it('an env file with no app keys at all is a valid local try-out', () => {
    const r = checkEnv({ file: '/x/.env.local', exists: true, mode: 0o600, values: { COMPOSE_PROJECT_NAME: 'lazyflow', STATE_DIR: './.state' } });
    expect(r.filter((x) => !x.ok)).toEqual([]);
    expect(r.some((x) => x.name === 'mode' && x.level === 'warn')).toBe(true);
  });
  it('a token without the other keys is production: the missing keys are named', () => {
    const r = checkEnv({ file: '/x/.env.prod', exists: true, mode: 0o600, values: { BOT_TOKEN: '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw' } });
    const keys = r.filter((x) => !x.ok).map((x) => x.key);
    expect(keys).toEqual(expect.arrayContaining(['DOMAIN', 'APP_URL', 'WEBHOOK_SECRET', 'ALLOWED_ORIGINS', 'ACME_EMAIL']));
  });
});
