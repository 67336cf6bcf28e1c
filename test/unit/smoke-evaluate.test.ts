import { describe, it, expect } from 'vitest';
import {
  certCovers, evalBackupAge, evalContainers, evalCors, evalDb, evalDeadLetters, type DeadLettersObs, evalDisk, evalHealth, evalJobs, evalLogRotation,
  evalMiniApp, evalNoMiniApp, configScriptProblem, evalFrontend, evalRedirect, evalSecurityHeaders, evalTls, evalUploads, evalWebhook, evalWebhookInfo,
  expectedWebhookUrl, parseComposePs, smokeExitCode, worst, DAY_MS, HOUR_MS, type HttpObs,
} from '../../scripts/lib/checks/evaluate.mts';

const now = new Date('2025-06-01T12:00:00Z');
const res = (status: number, headers: Record<string, string> = {}, body = ''): HttpObs => ({ status, headers, body });
const goodHeaders = {
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'strict-origin-when-cross-origin',
  'content-security-policy': "default-src 'self'; script-src 'self' https://telegram.org; frame-ancestors https://web.telegram.org",
};

describe('smoke evaluators', () => {
  it('worst status wins and exit code', () => {
    expect(worst([{ status: 'pass', detail: 'a' }, { status: 'warn', detail: 'b' }]).status).toBe('warn');
    expect(smokeExitCode([{ name: 'x', status: 'warn', detail: '' }, { name: 'y', status: 'skip', detail: '' }])).toBe(0);
    expect(smokeExitCode([{ name: 'x', status: 'fail', detail: '' }])).toBe(1);
  });

  it('containers: running healthy, unhealthy, missing, two app containers', () => {
    const ps = parseComposePs('{"Service":"app","State":"running","Health":"healthy"}\n{"Service":"caddy","State":"running","Health":"healthy"}\n');
    expect(evalContainers(ps).status).toBe('pass');
    expect(parseComposePs('[{"Service":"app","State":"running"}]')).toHaveLength(1);
    expect(evalContainers([{ Service: 'app', State: 'running', Health: 'unhealthy' }, { Service: 'caddy', State: 'running', Health: 'healthy' }]).detail).toMatch(/app running but unhealthy/);
    expect(evalContainers([{ Service: 'caddy', State: 'running', Health: 'healthy' }]).detail).toMatch(/app: not running/);
    expect(evalContainers([
      { Service: 'app', State: 'running', Health: 'healthy' }, { Service: 'app', State: 'running', Health: 'healthy' },
      { Service: 'caddy', State: 'running', Health: 'healthy' }]).detail).toMatch(/2 containers/);
  });

  it('containers: a drain flag whose process died fails, naming the flag and the command that removes it; a live one warns', () => {
    const ok = [{ Service: 'app', State: 'running', Health: 'healthy' }, { Service: 'caddy', State: 'running', Health: 'healthy' }];
    const drain = { what: 'swap to v2', since: '2026-12-07T02:00:00.000Z', next: 'node scripts/recover.mts --config .env.prod' };
    const stale = evalContainers(ok, undefined, { ...drain, ownerAlive: false });
    expect(stale.status).toBe('fail');
    expect(stale.detail).toMatch(/STATE_DIR\/proxy\/draining, left by "swap to v2" .*whose process is gone: Caddy holds every request .*next: node scripts\/recover\.mts --config \.env\.prod/);
    expect(evalContainers(ok, undefined, { ...drain, ownerAlive: true }).status).toBe('warn');
    expect(evalContainers(ok, undefined, null).status).toBe('pass');
  });

  it('health: version match', () => {
    const body = JSON.stringify({ status: 'ok', version: 'v2', db: 'ok' });
    expect(evalHealth(res(200, {}, body), 'v2').status).toBe('pass');
    expect(evalHealth(res(200, {}, body), 'v3').detail).toMatch(/expected "v3"/);
    expect(evalHealth(res(503, {}, JSON.stringify({ status: 'error', db: 'error' }))).status).toBe('fail');
    expect(evalHealth({ ...res(0), error: 'ECONNREFUSED' }).status).toBe('fail');
  });

  it.each<[string, HttpObs, string | undefined, { imageRef: string; tag: string; status: string } | null, 'pass' | 'fail', RegExp]>([
    ['no version, the running container runs the release', res(200, {}, '{"status":"ok"}'), 'abc', { imageRef: 'app:abc', tag: 'abc', status: 'running' }, 'pass', /no version \(health-version \(recommended, RUNBOOK\.md#the-app-contract\)\), so the running app container was compared instead: its image app:abc is the release/],
    ['no version, the container runs another image', res(200, {}, '{"status":"ok"}'), 'abc', { imageRef: 'app:old', tag: 'old', status: 'running' }, 'fail', /no version .* the running app container is app:old \(running\), not abc/],
    ['no version, no container', res(200, {}, '{"status":"ok"}'), 'abc', null, 'fail', /is missing, not abc/],
    ['no version, plain text body (the contract asks only for 200)', res(200, {}, 'OK'), 'abc', { imageRef: 'app:abc', tag: 'abc', status: 'running' }, 'pass', /is the release/],
    ['no version, nothing expected', res(200, {}, '{"status":"ok"}'), undefined, null, 'pass', /^200, no version in \/health \(health-version/],
    ['a version wins over the image', res(200, {}, '{"status":"ok","version":"old"}'), 'abc', { imageRef: 'app:abc', tag: 'abc', status: 'running' }, 'fail', /reports version "old", expected "abc"/],
    ['200 but status error', res(200, {}, '{"status":"error"}'), 'abc', { imageRef: 'app:abc', tag: 'abc', status: 'running' }, 'fail', /status=error/],
  ])('health without a version: %s', (_n, r, expected, running, status, detail) => {
    const v = evalHealth(r, expected, running);
    expect(v.status).toBe(status);
    expect(v.detail).toMatch(detail);
  });

  it('TLS: < 14 d warn, < 3 d fail, not covering or unverified fails', () => {
    const base = { authorized: true, subjectAltNames: 'DNS:bot.acme.dev', issuer: 'R3' };
    const exp = (days: number) => new Date(now.getTime() + days * DAY_MS).toUTCString();
    expect(evalTls({ ...base, validTo: exp(60) }, 'bot.acme.dev', now).status).toBe('pass');
    expect(evalTls({ ...base, validTo: exp(13.9) }, 'bot.acme.dev', now).status).toBe('warn');
    expect(evalTls({ ...base, validTo: exp(14.1) }, 'bot.acme.dev', now).status).toBe('pass');
    expect(evalTls({ ...base, validTo: exp(2.9) }, 'bot.acme.dev', now).status).toBe('fail');
    expect(evalTls({ ...base, validTo: exp(-1) }, 'bot.acme.dev', now).status).toBe('fail');
    expect(evalTls({ ...base, validTo: exp(60) }, 'other.acme.dev', now).detail).toMatch(/does not cover/);
    expect(evalTls({ ...base, authorized: false, authorizationError: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' }, 'bot.acme.dev', now).detail).toMatch(/--ca/);
    expect(certCovers('DNS:*.acme.dev', 'bot.acme.dev')).toBe(true);
    expect(certCovers('DNS:*.acme.dev', 'a.bot.acme.dev')).toBe(false);
  });

  it('TLS: short-lived certificates are judged against their lifetime', () => {
    const at = (h: number) => new Date(now.getTime() + h * HOUR_MS).toUTCString();
    const base = { authorized: true, subjectAltNames: 'DNS:localhost', issuer: 'Caddy Local Authority' };
    // Caddy internal CA: 12 h leaf
    expect(evalTls({ ...base, validFrom: at(-2), validTo: at(10) }, 'localhost', now).status).toBe('pass');
    expect(evalTls({ ...base, validFrom: at(-10), validTo: at(2) }, 'localhost', now).status).toBe('warn');
    expect(evalTls({ ...base, validFrom: at(-11.5), validTo: at(0.5) }, 'localhost', now).status).toBe('fail');
    // a 90-day certificate still uses the 14 d / 3 d rule
    expect(evalTls({ ...base, validFrom: at(-80 * 24), validTo: at(10 * 24) }, 'localhost', now).status).toBe('warn');
  });

  it('redirect', () => {
    expect(evalRedirect(res(308, { location: 'https://bot.acme.dev/' }), 'bot.acme.dev').status).toBe('pass');
    expect(evalRedirect(res(200), 'bot.acme.dev').status).toBe('fail');
    expect(evalRedirect(res(301, { location: 'http://bot.acme.dev/' }), 'bot.acme.dev').status).toBe('fail');
  });

  it('security headers: present, and a Server header fails', () => {
    expect(evalSecurityHeaders([{ path: '/', r: res(200, goodHeaders) }]).status).toBe('pass');
    const { 'x-content-type-options': _x, ...missing } = goodHeaders;
    expect(evalSecurityHeaders([{ path: '/health', r: res(200, missing) }]).detail).toMatch(/missing x-content-type-options/);
    expect(evalSecurityHeaders([{ path: '/', r: res(200, { ...goodHeaders, server: 'Caddy' }) }]).detail).toMatch(/Server: Caddy/);
    expect(evalSecurityHeaders([{ path: '/', r: res(200, { ...goodHeaders, 'strict-transport-security': 'max-age=60' }) }]).detail).toMatch(/weak strict-transport-security/);
  });

  it('CORS', () => {
    const o = 'https://bot.acme.dev';
    const evil = 'https://evil.invalid';
    expect(evalCors({ allowedOrigin: o, otherOrigin: evil, allowed: res(204, { 'access-control-allow-origin': o }), other: res(204) }).status).toBe('pass');
    expect(evalCors({ allowedOrigin: o, otherOrigin: evil, allowed: res(204, { 'access-control-allow-origin': '*' }), other: res(204, { 'access-control-allow-origin': '*' }) }).detail).toMatch(/wildcard/);
    // a CORS middleware that does not answer the allowed origin is broken
    expect(evalCors({ allowedOrigin: o, otherOrigin: evil, allowed: res(204, { 'access-control-allow-methods': 'GET' }), other: res(204, { 'access-control-allow-methods': 'GET' }) })).toMatchObject({ status: 'fail', detail: expect.stringMatching(/not answered/) });
    // an app without CORS at all (no Access-Control-* header for anyone): skipped with a notice naming the contract section
    const none = evalCors({ allowedOrigin: o, otherOrigin: evil, allowed: res(404, { 'content-type': 'application/json' }), other: res(404) });
    expect(none.status).toBe('skip');
    expect(none.detail).toMatch(/no CORS preflight \(OPTIONS \/me -> 404.*\(cors, RUNBOOK\.md#also-relied-on\)$/);
    // an app without CORS never hides a foreign origin answered
    expect(evalCors({ allowedOrigin: o, otherOrigin: evil, allowed: res(204), other: res(204, { 'access-control-allow-origin': evil }) }).status).toBe('fail');
    expect(evalCors({ allowedOrigin: o, otherOrigin: evil, allowed: res(204, { 'access-control-allow-origin': o }), other: res(204, { 'access-control-allow-origin': evil }) }).detail).toMatch(/foreign origin/);
  });

  it('webhook', () => {
    expect(evalWebhook({ get: res(404), postNoHeader: res(401) }).status).toBe('pass');
    expect(evalWebhook({ get: res(200), postNoHeader: res(401) }).status).toBe('fail');
    expect(evalWebhook({ get: res(405), postNoHeader: res(200) }).detail).toMatch(/expected 401/);
  });

  it('upload privacy: a URL serving the canary fails, SPA fallback does not', () => {
    const canary = 'canary-123';
    const probes = [{ url: '/uploads/x', r: res(404) }, { url: '/x', r: res(200, {}, '<html>spa</html>') }];
    expect(evalUploads({ unauth: res(401), probes, canary }).status).toBe('pass');
    expect(evalUploads({ unauth: res(200), probes, canary }).status).toBe('fail');
    expect(evalUploads({ unauth: res(404), probes: [...probes, { url: '/u/x', r: res(200, {}, 'canary-123') }], canary }).detail).toMatch(/\/u\/x/);
  });

  it('upload privacy of a bot without uploads (shape webhook): no /files expectation, a leaked canary still fails', () => {
    const canary = 'canary-123';
    const probes = [{ url: '/uploads/x', r: res(404) }, { url: '/files/x', r: res(404) }];
    expect(evalUploads({ probes, canary })).toMatchObject({ status: 'pass', detail: expect.stringMatching(/no uploads route expected/) });
    expect(evalUploads({ probes: [...probes, { url: '/x', r: res(200, {}, 'canary-123') }], canary })).toMatchObject({ status: 'fail', detail: expect.stringMatching(/\/x served an uploaded file/) });
  });

  it.each<[string, HttpObs, string]>([
    ["Caddy's 404: no Mini App", res(404), 'pass'],
    ['a plain answer', res(200, { 'content-type': 'text/plain' }, 'ok'), 'pass'],
    ['an HTML page: some front end is served', res(200, { 'content-type': 'text/html' }, '<!doctype html><html><body>app</body></html>'), 'fail'],
    ['no answer', { status: 0, headers: {}, body: '', error: 'ECONNREFUSED' }, 'fail'],
  ])('no Mini App (shape webhook): %s', (_n, index, status) => {
    expect(evalNoMiniApp({ index }).status).toBe(status);
  });

  it('telegram webhook info: url, error after start, pending threshold', () => {
    const url = expectedWebhookUrl('https://bot.acme.dev/', 's3cret');
    expect(url).toBe('https://bot.acme.dev/webhook/s3cret');
    const startedAt = new Date(now.getTime() - 60_000);
    const o = { expectedUrl: url, secret: 's3cret', startedAt, pendingMax: 50 };
    expect(evalWebhookInfo({ url, pending_update_count: 0 }, o).status).toBe('pass');
    const wrong = evalWebhookInfo({ url: 'https://x/webhook/s3cret', pending_update_count: 0 }, o);
    expect(wrong.status).toBe('fail');
    expect(wrong.detail).not.toContain('s3cret');
    const oldErr = Math.floor((startedAt.getTime() - 3600_000) / 1000);
    expect(evalWebhookInfo({ url, pending_update_count: 0, last_error_date: oldErr, last_error_message: 'x' }, o).status).toBe('pass');
    const newErr = Math.floor(now.getTime() / 1000);
    expect(evalWebhookInfo({ url, pending_update_count: 0, last_error_date: newErr, last_error_message: 'Wrong response from the webhook: 502' }, o).detail).toMatch(/502/);
    expect(evalWebhookInfo({ url, pending_update_count: 50 }, o).detail).toMatch(/pending_update_count 50/);
  });

  it('database', () => {
    const good = { quickCheck: 'ok', journalMode: 'wal', userVersion: 3, uid: 1000, mode: 0o644, dirMode: 0o750 };
    expect(evalDb(good).status).toBe('pass');
    expect(evalDb({ ...good, dirMode: 0o755 }).status).toBe('warn');
    expect(evalDb({ ...good, journalMode: 'delete' }).status).toBe('fail');
    expect(evalDb({ ...good, quickCheck: 'row 3 missing from index' }).status).toBe('fail');
    expect(evalDb({ ...good, uid: 0 }).detail).toMatch(/chown 1000/);
    expect(evalDb({ ...good, mode: 0o666 }).detail).toMatch(/world-writable/);
  });

  it('jobs recency', () => {
    const at = (s: number) => new Date(now.getTime() - s * 1000).toISOString();
    expect(evalJobs({ lastTickAt: at(3), now, maxAgeMs: 30_000 }).status).toBe('pass');
    expect(evalJobs({ lastTickAt: at(31), now, maxAgeMs: 30_000 }).detail).toMatch(/stalled/);
    expect(evalJobs({ lastTickAt: null, now, maxAgeMs: 30_000, startedAt: new Date(now.getTime() - 5000) }).status).toBe('warn');
    expect(evalJobs({ lastTickAt: null, now, maxAgeMs: 30_000, startedAt: new Date(now.getTime() - 60_000) }).status).toBe('fail');
    // no heartbeat at all (recommended item jobs-heartbeat absent): skipped, naming the item and the RUNBOOK section
    const absent = evalJobs({ lastTickAt: undefined, now, maxAgeMs: 30_000, startedAt: new Date(now.getTime() - 60_000) });
    expect(absent.status).toBe('skip');
    expect(absent.detail).toMatch(/^jobs-heartbeat \(recommended\) missing: .*skipped.*\(RUNBOOK\.md#the-app-contract\)$/);
  });

  it('disk thresholds', () => {
    const G = 2 ** 30;
    expect(evalDisk({ path: '/s', freeBytes: 50 * G, totalBytes: 100 * G, minFreeBytes: G }).status).toBe('pass');
    expect(evalDisk({ path: '/s', freeBytes: 1.5 * G, totalBytes: 10 * G, minFreeBytes: G }).status).toBe('warn');
    expect(evalDisk({ path: '/s', freeBytes: 0.5 * G, totalBytes: 100 * G, minFreeBytes: G }).status).toBe('fail');
    expect(evalDisk({ path: '/s', freeBytes: 4 * G, totalBytes: 100 * G, minFreeBytes: G }).status).toBe('fail');
  });

  it('backup age: > 26 h warns, none warns', () => {
    const at = (h: number) => new Date(now.getTime() - h * HOUR_MS).toISOString();
    expect(evalBackupAge({ newest: { id: 'b', createdAt: at(25.9) }, now }).status).toBe('pass');
    expect(evalBackupAge({ newest: { id: 'b', createdAt: at(26.1) }, now }).status).toBe('warn');
    expect(evalBackupAge({ newest: null, now }).status).toBe('warn');
  });

  it('log rotation', () => {
    expect(evalLogRotation([{ service: 'app', type: 'json-file', config: { 'max-size': '10m', 'max-file': '5' } }, { service: 'caddy', type: 'local' }]).status).toBe('pass');
    expect(evalLogRotation([{ service: 'app', type: 'json-file', config: {} }]).detail).toMatch(/without max-size/);
  });

  it('mini app', () => {
    const index = res(200, goodHeaders, '<!doctype html><html><script src="/config.js"></script><script src="./main.js"></script></html>');
    const config = res(200, {}, 'window.LAZYFLOW_CONFIG = {"apiBase": "https://bot.acme.dev"};');
    expect(evalMiniApp({ index, config, apiBase: 'https://bot.acme.dev' }).status).toBe('pass');
    expect(evalMiniApp({ index: res(200, {}, '<html>'), config, apiBase: 'https://bot.acme.dev' }).detail).toMatch(/without Content-Security-Policy/);
    expect(evalMiniApp({ index, config: res(200, {}, 'x'), apiBase: 'https://bot.acme.dev' }).detail).toMatch(/API base/);
    const page = (body: string) => evalMiniApp({ index: res(200, goodHeaders, `<!doctype html><html>${body}</html>`), config, apiBase: 'https://bot.acme.dev' }).detail;
    expect(page('<script src="./main.js"></script>')).toMatch(/^the index never loads \/config\.js, so window\.LAZYFLOW_API_BASE_URL stays unset: add <script src="\/config\.js"><\/script> before/);
  });

  it.each([
    ['the reference app: Telegram\'s script, /config.js, the bundle', '<script src="https://telegram.org/js/telegram-web-app.js"></script><script src="/config.js"></script><script src="./main.js"></script>', null],
    ['/config.js in <head>, the bundle at the end of <body>', '<head><script src="/config.js"></script></head><body><script src="/app.js"></script></body>', null],
    ['no scripts of its own (a static page)', '<p>hello</p><script src="https://telegram.org/js/telegram-web-app.js"></script>', null],
    ['a module bundle before /config.js (modules run after the parse)', '<script type="module" src="/assets/index-abc.js"></script><script src="/config.js"></script>', null],
    ['the bundle without /config.js', '<script src="/assets/index-abc.js"></script>', /never loads \/config\.js/],
    ['/config.js after a classic bundle', '<script src="/app.js"></script><script src="/config.js"></script>', /loads \/config\.js after \/app\.js, which runs first/],
    ['config.js relative to the index at /', '<script src="config.js"></script><script src="app.js"></script>', null],
    ['another config.js (a sub-directory\'s)', '<script src="/js/config.js"></script><script src="app.js"></script>', /never loads \/config\.js/],
  ] as const)('mini app index: %s', (_n, body, problem) => {
    const got = configScriptProblem(`<!doctype html><html>${body}</html>`);
    if (problem === null) expect(got).toBeNull();
    else expect(got).toMatch(problem);
  });
});

describe('front end of the live release', () => {
  const marker = (tag: string) => res(200, {}, JSON.stringify({ appTag: tag, gitSha: 'abc' }));
  const rows: [string, Parameters<typeof evalFrontend>[0], 'pass' | 'warn' | 'skip' | 'fail', RegExp][] = [
    ['the live release', { marker: marker('v2'), expected: 'v2', expectedStaged: true }, 'pass', /Mini App of v2/],
    ['an older release', { marker: marker('v1'), expected: 'v2', expectedStaged: true }, 'fail', /served is v1's, the app runs v2/],
    ['the live release predates per-release front ends', { marker: marker('v1'), expected: 'v0', expectedStaged: false }, 'warn', /v0 has no front end of its own/],
    ['a release runs but Caddy serves its image\'s Mini App (the index page answers)', { marker: res(200, {}, '<!doctype html><html></html>'), expected: 'v2', expectedStaged: true }, 'warn', /not v2's/],
    ['before the first rollout', { marker: res(200, {}, '<!doctype html><html></html>'), expectedStaged: false }, 'pass', /no release yet/],
    ['nothing answers', { marker: { status: 0, headers: {}, body: '', error: 'ECONNREFUSED' }, expected: 'v2', expectedStaged: true }, 'fail', /ECONNREFUSED/],
    ['no release recorded yet', { marker: marker('v1'), expectedStaged: false }, 'pass', /Mini App of v1/],
  ];
  for (const [name, input, status, detail] of rows) {
    it(name, () => {
      const v = evalFrontend(input);
      expect(v.status).toBe(status);
      expect(v.detail).toMatch(detail);
    });
  }
});

describe('dead letters', () => {
  const newest = { update_id: 100000007, failed_at: '2025-06-01T11:00:00.000Z', last_error: 'sendMessage: 403 Forbidden: bot was blocked by the user' };
  const rows: [string, DeadLettersObs, 'pass' | 'warn' | 'skip', RegExp][] = [
    ['none', { table: true, count: 0 }, 'pass', /^no dead letters$/],
    ['one, with the newest named', { table: true, count: 1, newest }, 'warn', /^1 dead letter\(s\); newest: update 100000007 at 2025-06-01T11:00:00.000Z \(sendMessage: 403 Forbidden: bot was blocked by the user\); see RUNBOOK/],
    ['many, a table with other columns', { table: true, count: 42, newest: {} }, 'warn', /^42 dead letter\(s\); newest: update \?;/],
    ['an app without the table', { table: false }, 'skip', /no dead_letters table/],
    ['unreadable database', { error: 'database /x does not exist' }, 'skip', /not readable: database \/x does not exist/],
  ];
  it.each(rows)('%s -> %s', (_name, obs, status, detail) => {
    const v = evalDeadLetters(obs);
    expect(v.status).toBe(status);
    expect(v.detail).toMatch(detail);
  });
  it('never fails, so smoke and the rollout gate are not blocked by dead letters', () => {
    for (const [, obs] of rows) expect(evalDeadLetters(obs).status).not.toBe('fail');
    expect(smokeExitCode([{ name: 'dead-letters', ...evalDeadLetters({ table: true, count: 9, newest }) }])).toBe(0);
  });
});
