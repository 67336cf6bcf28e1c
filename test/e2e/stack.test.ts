// The production stack, end to end: our images, Caddy with a certificate from Pebble over real
// ACME, the app writing real SQLite on the host, and the fake Bot API delivering updates.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import tls from 'node:tls';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { X509Certificate, randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { describeDocker } from '../support/docker.ts';
import { startStack, waitFor, e2eImages, type Stack } from '../support/stack.ts';
import { signInitData, makeMessageUpdate, type TelegramUser } from '../support/telegram.ts';
import { multipartFile } from '../support/https.ts';
import { mustRun, repoRoot } from '../support/run.ts';

const alice = { id: 111001, first_name: 'Alice', username: 'alice' };
const bob = { id: 222002, first_name: 'Bob', username: 'bob' };

describeDocker('production stack (Pebble ACME, real containers)', () => {
  let stack: Stack;
  const auth = (user: TelegramUser, authDate?: number) =>
    `tma ${signInitData(stack.botToken, { user, ...(authDate ? { auth_date: authDate } : {}) })}`;
  const openDb = () => new Database(join(stack.stateDir, 'data', 'lazyflow.db'), { readonly: true, fileMustExist: true });

  beforeAll(async () => {
    // short bounds, so the slow-body and app-down probes below finish quickly
    stack = await startStack({ name: 'stack', env: { PROXY_READ_BODY_TIMEOUT: '5s', PROXY_HOLD_DURATION: '3s' } });
  });
  afterAll(async () => {
    await stack?.down();
  });

  it('serves /health over HTTPS with a certificate issued by Pebble for DOMAIN', async () => {
    const r = await stack.fetch('/health');
    expect(r.status).toBe(200);
    const body = r.json();
    expect(body).toMatchObject({ status: 'ok', db: 'ok', version: e2eImages().appTag });
    expect(typeof body.timestamp).toBe('string');
    const leaf = new X509Certificate(r.peerCertificate!.raw);
    expect(leaf.checkHost(stack.domain)).toBe(stack.domain);
    expect(leaf.issuer).toMatch(/Pebble/i);
    // Verified against Pebble's issuing root, the way curl --cacert would.
    const curl = await mustRun('curl', ['-sS', '--cacert', stack.caPem, '--resolve', `${stack.domain}:${stack.httpsPort}:127.0.0.1`,
      `https://${stack.domain}:${stack.httpsPort}/health`]);
    expect(JSON.parse(curl).status).toBe('ok');
  });

  it('keeps the internal probes internal: /health/write and /ready answer the app inside, 404 through Caddy', async () => {
    // the app serves them (so the 404 below is Caddy's, not a missing route)...
    const inside = (path: string) => stack.mustCompose('exec', '-T', 'app', 'bun', '-e', `const r = await fetch('http://127.0.0.1:3000${path}'); console.log(r.status)`);
    expect((await inside('/health/write')).trim()).toBe('200');
    expect((await inside('/ready')).trim()).toBe('200');
    // ...and no one outside reaches them: the write probe writes to the database, readiness is the swap's business
    for (const path of ['/health/write', '/ready', '/ready/x']) {
      const r = await stack.fetch(path);
      expect(r.status, path).toBe(404);
    }
    expect((await stack.fetch('/health')).status).toBe(200);
  });

  it('redirects HTTP to HTTPS', async () => {
    const r = await stack.fetchHttp('/tasks?x=1');
    expect([301, 302, 307, 308]).toContain(r.status);
    expect(r.headers.location).toBe(`https://${stack.domain}/tasks?x=1`);
  });

  it('sends the security headers and no Server header', async () => {
    for (const path of ['/', '/health']) {
      const r = await stack.fetch(path);
      expect(r.headers['strict-transport-security']).toMatch(/max-age=\d{7,}/);
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(r.headers['referrer-policy']).toBeTruthy();
      const csp = String(r.headers['content-security-policy']);
      expect(csp).toContain('https://telegram.org');
      expect(csp).toMatch(/frame-ancestors[^;]*https:\/\/web\.telegram\.org/);
      expect(r.headers.server).toBeUndefined();
    }
  });

  it('serves the Mini App index (SPA fallback) and /config.js from the environment', async () => {
    const index = await stack.fetch('/');
    expect(index.status).toBe(200);
    expect(index.headers['content-type']).toMatch(/text\/html/);
    expect(index.text()).toContain('telegram-web-app.js');
    expect(index.text()).toContain('/config.js');
    const deep = await stack.fetch('/some/client/route');
    expect(deep.status).toBe(200);
    expect(deep.text()).toBe(index.text());
    const config = await stack.fetch('/config.js');
    expect(config.status).toBe(200);
    expect(config.headers['content-type']).toMatch(/javascript/);
    expect(config.text()).toContain(`"apiBase": "${stack.env.APP_URL}"`);
  });

  it('accepts valid initData and rejects forged or stale initData', async () => {
    const ok = await stack.fetch('/me', { headers: { authorization: auth(alice) } });
    expect(ok.status).toBe(200);
    expect(ok.json()).toMatchObject({ id: alice.id });

    const forged = signInitData(stack.botToken, { user: alice }).replace(/hash=[0-9a-f]{4}/, 'hash=0000');
    expect((await stack.fetch('/me', { headers: { authorization: `tma ${forged}` } })).status).toBe(401);

    const tampered = signInitData(stack.botToken, { user: alice }).replace(encodeURIComponent('"id":111001'), encodeURIComponent('"id":222002'));
    expect((await stack.fetch('/me', { headers: { authorization: `tma ${tampered}` } })).status).toBe(401);

    const otherBot = signInitData('123456789:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', { user: alice });
    expect((await stack.fetch('/me', { headers: { authorization: `tma ${otherBot}` } })).status).toBe(401);

    const twoDaysAgo = Math.floor(Date.now() / 1000) - 2 * 86400;
    expect((await stack.fetch('/me', { headers: { authorization: auth(alice, twoDaysAgo) } })).status).toBe(401);
    expect((await stack.fetch('/me')).status).toBe(401);
  });

  it('serves an upload only to its owner through /files/:id and by no other path', async () => {
    const content = randomBytes(64 * 1024);
    const { body, contentType } = multipartFile('file', 'secret-plan.bin', content);
    const up = await stack.fetch('/media', { method: 'POST', body, headers: { 'content-type': contentType, authorization: auth(alice) } });
    expect(up.status).toBeLessThan(300);
    const { id } = up.json();
    expect(id).toBeTruthy();

    const own = await stack.fetch(`/files/${id}`, { headers: { authorization: auth(alice) } });
    expect(own.status).toBe(200);
    expect(Buffer.compare(own.body, content)).toBe(0);
    expect((await stack.fetch(`/files/${id}`, { headers: { authorization: auth(bob) } })).status).toBe(404);
    expect((await stack.fetch(`/files/${id}`)).status).toBe(401);
    expect((await stack.fetch(`/files/does-not-exist`, { headers: { authorization: auth(alice) } })).status).toBe(404);

    // The stored file has a random name; no URL other than /files/:id may return its bytes.
    const stored = readdirSync(join(stack.stateDir, 'uploads')).filter((f) => !f.startsWith('.'));
    expect(stored.length).toBeGreaterThan(0);
    expect(stored.some((f) => f.includes('secret-plan'))).toBe(false);
    for (const name of stored) {
      for (const path of [`/uploads/${name}`, `/app/uploads/${name}`, `/${name}`, `/files/${name}`, `/files/../uploads/${name}`, `/media/${name}`]) {
        const r = await stack.fetch(path, { headers: { authorization: auth(alice) } });
        expect(Buffer.compare(r.body, content), `${path} must not serve the upload`).not.toBe(0);
      }
    }
    // Caddy's body limit applies before the app sees anything.
    const huge = multipartFile('file', 'big.bin', Buffer.alloc(3 * 1024 * 1024));
    const tooBig = await stack.fetch('/media', { method: 'POST', body: huge.body, headers: { 'content-type': huge.contentType, authorization: auth(alice) } });
    expect(tooBig.status).toBe(413);
  });

  it('registered the webhook with secret_token at start-up', async () => {
    const calls = stack.fakeBot!.calls.filter((c) => c.token === stack.botToken && c.method === 'setWebhook');
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.at(-1)!.params).toMatchObject({
      url: `${stack.env.APP_URL}/webhook/${stack.webhookSecret}`,
      secret_token: stack.webhookSecret,
    });
    expect(stack.fakeBot!.calls.some((c) => c.method === 'getUpdates')).toBe(false);
  });

  it('guards the webhook: wrong path secret 404, missing or wrong header 401', async () => {
    const update = JSON.stringify(makeMessageUpdate({ update_id: 900001, chat_id: alice.id, text: 'hi', from: alice }));
    const json = { 'content-type': 'application/json' };
    const wrongPath = await stack.fetch(`/webhook/${'x'.repeat(48)}`, { method: 'POST', body: update, headers: { ...json, 'x-telegram-bot-api-secret-token': stack.webhookSecret } });
    expect(wrongPath.status).toBe(404);
    const noHeader = await stack.fetch(`/webhook/${stack.webhookSecret}`, { method: 'POST', body: update, headers: json });
    expect(noHeader.status).toBe(401);
    const wrongHeader = await stack.fetch(`/webhook/${stack.webhookSecret}`, { method: 'POST', body: update, headers: { ...json, 'x-telegram-bot-api-secret-token': 'y'.repeat(48) } });
    expect(wrongHeader.status).toBe(401);
    const get = await stack.fetch(`/webhook/${stack.webhookSecret}`);
    expect(get.status).toBeGreaterThanOrEqual(400);
    const db = openDb();
    try {
      expect(db.prepare('SELECT count(*) AS n FROM processed_updates WHERE update_id = 900001').get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
  });

  it('processes an update once even when Telegram delivers it twice', async () => {
    const fake = stack.fakeBot!;
    const update = makeMessageUpdate({ update_id: 700001, chat_id: alice.id, text: '/start', from: alice });
    const headers = { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': stack.webhookSecret };
    // First through the fake Bot API's real delivery, then the same update again by hand.
    fake.queueUpdate(stack.botToken, update);
    await waitFor('delivery of update 700001', async () => fake.webhookInfo(stack.botToken).pending_update_count === 0
      && fake.deliveries.some((d) => d.update_id === 700001 && d.ok), 30_000);
    const again = await stack.fetch(`/webhook/${stack.webhookSecret}`, { method: 'POST', body: JSON.stringify(update), headers });
    expect(again.status).toBe(200);
    const replies = fake.sentMessages(stack.botToken).filter((m) => Number(m.chat_id) === alice.id);
    expect(replies).toHaveLength(1);
    const db = openDb();
    try {
      expect(db.prepare('SELECT count(*) AS n FROM processed_updates WHERE update_id = 700001').get()).toEqual({ n: 1 });
    } finally {
      db.close();
    }
    expect(fake.webhookInfo(stack.botToken).last_error_date).toBeUndefined();
  });

  it('limits webhook bodies to 1 MB at Caddy', async () => {
    const big = JSON.stringify({ update_id: 900002, padding: 'x'.repeat(1024 * 1024 + 10) });
    const r = await stack.fetch(`/webhook/${stack.webhookSecret}`, { method: 'POST', body: big, headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': stack.webhookSecret } });
    expect(r.status).toBe(413);
  });

  it('writes a JSON access log in which the webhook secret never appears', async () => {
    const logs = await stack.mustCompose('logs', '--no-color', 'caddy');
    const access = logs.split('\n').map((l) => l.replace(/^[^{]*/, '')).filter((l) => l.includes('"logger":"http.log.access'));
    expect(access.length).toBeGreaterThan(0);
    const entries = access.map((l) => JSON.parse(l));
    const hooks = entries.filter((e) => String(e.request?.uri).startsWith('/webhook/'));
    expect(hooks.length).toBeGreaterThan(0);
    for (const e of hooks) expect(e.request.uri).toMatch(/^\/webhook\/\[redacted\]/);
    expect(logs).not.toContain(stack.webhookSecret);
    expect(logs).not.toContain(stack.botToken.split(':')[1]);
  });

  it('answers CORS for the allowed origin and stays silent for any other', async () => {
    const allowed = await stack.fetch('/me', { method: 'OPTIONS', headers: { origin: stack.env.APP_URL, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } });
    expect(allowed.headers['access-control-allow-origin']).toBe(stack.env.APP_URL);
    const get = await stack.fetch('/me', { headers: { origin: stack.env.APP_URL, authorization: auth(alice) } });
    expect(get.headers['access-control-allow-origin']).toBe(stack.env.APP_URL);
    for (const origin of ['https://evil.example', 'null']) {
      const r = await stack.fetch('/me', { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'GET' } });
      expect(r.headers['access-control-allow-origin']).toBeUndefined();
      const g = await stack.fetch('/me', { headers: { origin, authorization: auth(alice) } });
      expect(g.headers['access-control-allow-origin']).toBeUndefined();
    }
  });

  it('runs the app as non-root on a read-only root filesystem with no capabilities', async () => {
    const [id] = await stack.containers('app');
    const inspect = JSON.parse(await mustRun('docker', ['inspect', id]))[0];
    expect(inspect.HostConfig.ReadonlyRootfs).toBe(true);
    expect(inspect.HostConfig.CapDrop).toContain('ALL');
    expect(inspect.HostConfig.SecurityOpt.join(',')).toMatch(/no-new-privileges/);
    expect(inspect.HostConfig.PortBindings ?? {}).toEqual({});
    expect((await stack.mustCompose('exec', '-T', 'app', 'id', '-u')).trim()).toBe('1000');
    const write = await stack.compose('exec', '-T', 'app', 'bun', '-e', "require('fs').writeFileSync('/app/probe','x')");
    expect(write.code).not.toBe(0);
    expect(write.stderr + write.stdout).toMatch(/EROFS|read-only/i);
    const tmp = await stack.compose('exec', '-T', 'app', 'bun', '-e', "require('fs').writeFileSync('/tmp/probe','x')");
    expect(tmp.code).toBe(0);
  });

  it('runs Caddy with only the capability to bind its ports, a read-only root filesystem and no new privileges', async () => {
    const [id] = await stack.containers('caddy');
    const inspect = JSON.parse(await mustRun('docker', ['inspect', id]))[0];
    expect(inspect.HostConfig.ReadonlyRootfs).toBe(true);
    expect(inspect.HostConfig.CapDrop).toEqual(['ALL']);
    expect((inspect.HostConfig.CapAdd ?? []).map((c: string) => c.replace(/^CAP_/, ''))).toEqual(['NET_BIND_SERVICE']);
    expect(inspect.HostConfig.SecurityOpt.join(',')).toMatch(/no-new-privileges/);
    expect(Object.keys(inspect.HostConfig.Tmpfs ?? {})).toEqual(['/tmp']);
    const writable = (inspect.Mounts as { Destination: string; RW: boolean }[]).filter((m) => m.RW).map((m) => m.Destination).sort();
    expect(writable).toEqual(['/config', '/data']);
    // the process really lacks every other capability (CapEff of PID 1), and the root fs refuses writes
    const status = await stack.mustCompose('exec', '-T', 'caddy', 'cat', '/proc/1/status');
    const capEff = BigInt('0x' + /CapEff:\s*([0-9a-f]+)/.exec(status)![1]);
    expect(capEff).toBe(1n << 10n); // CAP_NET_BIND_SERVICE only
    expect(status).toMatch(/NoNewPrivs:\s*1/);
    const write = await stack.compose('exec', '-T', 'caddy', 'touch', '/etc/caddy/probe');
    expect(write.code).not.toBe(0);
    expect(write.stderr + write.stdout).toMatch(/read-only/i);
    expect((await stack.compose('exec', '-T', 'caddy', 'touch', '/tmp/probe')).code).toBe(0);
    // and it still serves: TLS from its /data volume, the Mini App, the proxied API
    expect((await stack.fetch('/health')).status).toBe(200);
  });

  // ---- probes from outside (issue 17) ----------------------------------------------------------
  it('internal paths stay 404 through Caddy in every spelling: encoded, upper case, doubled slashes', async () => {
    for (const path of ['/health/write', '/ready', '/Health/Write', '/HEALTH/WRITE', '/READY', '/Ready', '/health%2Fwrite', '/health%2fwrite',
      '/%68ealth/write', '/%72eady', '/health//write', '//ready', '/./ready', '/health/./write', '/ready?x=1']) {
      const r = await stack.fetch(path);
      expect(r.status, path).toBe(404);
      expect(r.text(), path).not.toMatch(/"status"\s*:\s*"(ok|ready)"/);
    }
  });

  it("ports 2019, 2020 and 3000 are unreachable from outside the host: only Caddy's 80/443 are published, and Caddy's admin and drain listeners refuse even a neighbour on the compose network", async () => {
    // "outside the host" reaches only what Docker publishes on the host's interfaces
    const [caddyId] = await stack.containers('caddy');
    const [appId] = await stack.containers('app');
    const bindings = (id: string) => JSON.parse(execFileSync('docker', ['inspect', id]).toString())[0].HostConfig.PortBindings ?? {};
    expect(Object.keys(bindings(caddyId)).sort()).toEqual(['443/tcp', '443/udp', '80/tcp']);
    expect(bindings(appId)).toEqual({});
    // and the app container (what a compromised app controls) cannot reach Caddy's admin API or the drain gate
    const probe = `const net = require('net');
      const p = (h, port) => new Promise((r) => { const s = net.connect(port, h); const t = setTimeout(() => { s.destroy(); r('timeout'); }, 3000);
        s.on('connect', () => { clearTimeout(t); s.destroy(); r('open'); }); s.on('error', (e) => { clearTimeout(t); r(e.code); }); });
      console.log(JSON.stringify({ admin: await p('caddy', 2019), drain: await p('caddy', 2020), https: await p('caddy', 443) }));`;
    const seen = JSON.parse((await stack.mustCompose('exec', '-T', 'app', 'bun', '-e', probe)).trim());
    expect(seen).toEqual({ admin: 'ECONNREFUSED', drain: 'ECONNREFUSED', https: 'open' });
  });

  it('refuses a foreign Host (421) and a foreign SNI (no certificate)', async () => {
    const foreign = await stack.fetch('/health', { headers: { host: 'evil.example' } });
    expect(foreign.status).toBe(421);
    expect(foreign.text()).not.toContain('"status":"ok"');
    const handshake = await new Promise<string>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: stack.httpsPort, servername: 'evil.example', rejectUnauthorized: false });
      s.on('secureConnect', () => {
        s.destroy();
        resolve(`handshake completed for ${String((s.getPeerCertificate() as { subject?: { CN?: string } }).subject?.CN)}`);
      });
      s.on('error', (e) => resolve(`refused: ${e.message}`));
    });
    expect(handshake).toMatch(/^refused/);
  });

  it('rejects initData signed for the future', async () => {
    const tomorrow = Math.floor(Date.now() / 1000) + 86400;
    expect((await stack.fetch('/me', { headers: { authorization: auth(alice, tomorrow) } })).status).toBe(401);
  });

  it('refuses 2 MiB bodies with 413 on every route that takes one, before the app', async () => {
    const twoMiB = Buffer.alloc(2 * 1024 * 1024, 'a');
    const json = { 'content-type': 'application/json', authorization: auth(alice) };
    expect((await stack.fetch('/tasks', { method: 'POST', body: twoMiB, headers: json })).status).toBe(413);
    expect((await stack.fetch(`/webhook/${stack.webhookSecret}`, { method: 'POST', body: twoMiB, headers: { ...json, 'x-telegram-bot-api-secret-token': stack.webhookSecret } })).status).toBe(413);
    const file = multipartFile('file', 'two.bin', twoMiB);
    expect((await stack.fetch('/media', { method: 'POST', body: file.body, headers: { 'content-type': file.contentType, authorization: auth(alice) } })).status).toBe(413);
  });

  it('cuts off a body that trickles in (PROXY_READ_BODY_TIMEOUT), and the app stores nothing of it', async () => {
    const title = `slow-${randomBytes(4).toString('hex')}`;
    const body = JSON.stringify({ title, pad: 'x'.repeat(20_000) });
    const outcome = await new Promise<{ sent: number; response: string }>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: stack.httpsPort, servername: stack.domain, ca: readFileSync(stack.caPem) });
      let sent = 0;
      let response = '';
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearInterval(timer);
        s.destroy();
        resolve({ sent, response });
      };
      s.on('secureConnect', () => {
        s.write(`POST /tasks HTTP/1.1\r\nHost: ${stack.domain}\r\nContent-Type: application/json\r\nAuthorization: ${auth(alice)}\r\nContent-Length: ${body.length}\r\n\r\n`);
        // one byte every 200 ms: the whole body would take over an hour
        timer = setInterval(() => {
          if (sent < body.length) s.write(body[sent++]!);
        }, 200);
      });
      s.on('data', (d) => (response += d.toString()));
      s.on('close', done);
      s.on('error', done);
      // a bound for the test itself, far beyond the 5 s the stack allows
      setTimeout(done, 90_000);
    });
    // the connection was closed long before the body could arrive, and no answer of the app came back
    // (Caddy 2.11 closes it with an empty response of its own)
    expect(outcome.sent).toBeLessThan(body.length);
    expect(outcome.response).not.toMatch(/^HTTP\/1\.1 201/);
    expect(outcome.response).not.toContain(title);
    console.log(`slow body: connection closed after ${outcome.sent} of ${body.length} bytes; answer: ${JSON.stringify(outcome.response.split('\r\n')[0] ?? '')}`);
    const tasks = await stack.fetch('/tasks', { headers: { authorization: auth(alice) } });
    expect(JSON.stringify(tasks.json())).not.toContain(title);
  }, 120_000);

  it('security headers on every kind of answer: the Mini App, the API, its errors, a refused internal path', async () => {
    for (const [path, headers] of [['/', {}], ['/me', { authorization: auth(alice) }], ['/me', {}], ['/ready', {}], ['/tasks/999999', { authorization: auth(alice) }]] as const) {
      const r = await stack.fetch(path, { headers });
      expect(r.headers['strict-transport-security'], path).toMatch(/max-age=\d{7,}/);
      expect(r.headers['x-content-type-options'], path).toBe('nosniff');
      expect(r.headers['content-security-policy'], path).toBeTruthy();
      expect(r.headers.server, path).toBeUndefined();
    }
  });

  it("stays under its memory limit with 20 concurrent maximum-size uploads (the app's peak RSS grows by less than one upload each)", async () => {
    const [appId] = await stack.containers('app');
    const inspect = JSON.parse(execFileSync('docker', ['inspect', appId]).toString())[0];
    const limit = inspect.HostConfig.Memory as number;
    const maxBytes = Number(stack.env.UPLOAD_MAX_BYTES);
    const hwm = async () => Number(/VmHWM:\s*(\d+) kB/.exec(await stack.mustCompose('exec', '-T', 'app', 'cat', '/proc/1/status'))![1]) * 1024;
    // the container's peak (page cache included) from its memory cgroup: v1 (reset first) or v2's memory.peak
    const v1 = `/sys/fs/cgroup/memory/docker/${inspect.Id}/memory.max_usage_in_bytes`;
    const v2 = `/sys/fs/cgroup/system.slice/docker-${inspect.Id}.scope/memory.peak`;
    let cgroupPeakFile: string | null = null;
    try {
      writeFileSync(v1, '0');
      cgroupPeakFile = v1;
    } catch {
      try {
        readFileSync(v2);
        cgroupPeakFile = v2;
      } catch {
        /* neither layout: the RSS measure below still holds */
      }
    }
    const before = await hwm();
    // a maximum-size file: UPLOAD_MAX_BYTES is the whole request's bound at Caddy, envelope included
    const content = randomBytes(maxBytes - 1024);
    let refusedBusy = 0;
    const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const user = { id: 900100 + i, first_name: `U${i}` };
      for (;;) {
        const { body, contentType } = multipartFile('file', `max-${i}.bin`, content);
        const r = await stack.fetch('/media', { method: 'POST', body, headers: { 'content-type': contentType, authorization: auth(user) }, timeoutMs: 120_000 });
        if (r.status !== 429) return r.status;
        refusedBusy++;
        await new Promise((res) => setTimeout(res, 500 + Math.random() * 500));
      }
    }));
    expect(results).toEqual(Array(20).fill(201));
    const after = await hwm();
    const cgroupPeak = cgroupPeakFile ? Number(readFileSync(cgroupPeakFile, 'utf8').trim()) : null;
    console.log(`20 concurrent uploads of ${content.length} bytes: ${refusedBusy} answered 429 and retried; app peak RSS ${(before / 2 ** 20).toFixed(1)} -> ${(after / 2 ** 20).toFixed(1)} MiB; container peak ${cgroupPeak === null ? 'n/a' : (cgroupPeak / 2 ** 20).toFixed(1) + ' MiB'} (${cgroupPeakFile ?? 'no cgroup file'}) of a ${(limit / 2 ** 20).toFixed(0)} MiB limit`);
    expect(refusedBusy).toBeGreaterThan(0);
    expect(after - before).toBeLessThan(20 * maxBytes);
    if (cgroupPeak !== null) expect(cgroupPeak).toBeLessThan(limit);
    expect(inspect.State.OOMKilled).toBe(false);
    expect((await stack.containers('app'))[0]).toBe(appId);
  }, 300_000);

  it('after a run that exercised errors (app down, bad webhook calls), no secret in any log', async () => {
    const hook = (path: string, header = stack.webhookSecret) =>
      stack.fetch(path, { method: 'POST', body: '{"update_id":1}', headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': header }, timeoutMs: 60_000 });
    const spellings = [`/webhook/${stack.webhookSecret}`, `/WEBHOOK/${stack.webhookSecret}`, `/webhook/${stack.webhookSecret}?x=1`, `/webhook%2F${stack.webhookSecret}`, `/webhook/${stack.webhookSecret}/extra`];
    // app up: wrong header, wrong method, every spelling
    for (const p of spellings) await hook(p, 'wrong-secret-header-value-000000000000000');
    await stack.fetch(`/webhook/${stack.webhookSecret}`);
    // app down: Caddy holds for PROXY_HOLD_DURATION, then answers with an error and writes its error log
    await stack.mustCompose('stop', 'app');
    try {
      for (const p of spellings) {
        const r = await hook(p);
        expect(r.status, p).toBeGreaterThanOrEqual(500);
      }
    } finally {
      await stack.mustCompose('start', 'app');
      await waitFor('app healthy again', async () => (await stack.fetch('/health')).status === 200, 60_000);
    }
    const logs = await stack.mustCompose('logs', '--no-color', 'caddy', 'app');
    expect(logs).toMatch(/http\.log\.error/);
    expect(logs).toContain('/webhook/[redacted]');
    expect(logs).not.toContain(stack.webhookSecret);
    expect(logs).not.toContain(stack.botToken.split(':')[1]);
  }, 180_000);

  it('keeps data across a restart and a recreation of the app container', async () => {
    const created = await stack.fetch('/tasks', { method: 'POST', body: JSON.stringify({ title: 'survive restarts' }), headers: { 'content-type': 'application/json', authorization: auth(alice) } });
    expect(created.status).toBeLessThan(300);
    const before = (await stack.containers('app'))[0];
    await stack.mustCompose('restart', 'app');
    await stack.mustCompose('up', '-d', '--wait', '--force-recreate', '--no-deps', '--pull', 'never', '--no-build', 'app');
    const after = (await stack.containers('app'))[0];
    expect(after).not.toBe(before);
    await waitFor('app healthy again', async () => (await stack.fetch('/health')).status === 200, 60_000);
    const tasks = await stack.fetch('/tasks', { headers: { authorization: auth(alice) } });
    expect(tasks.status).toBe(200);
    expect(JSON.stringify(tasks.json())).toContain('survive restarts');
  });

  it('reuses its certificate when Caddy restarts (Pebble sees no new order)', async () => {
    const serial = async () => new X509Certificate((await stack.fetch('/health')).peerCertificate!.raw).serialNumber;
    const before = await serial();
    const orders = await stack.pebbleOrders();
    expect(orders).toBeGreaterThan(0);
    await stack.mustCompose('restart', 'caddy');
    await stack.mustCompose('up', '-d', '--wait', '--force-recreate', '--no-deps', '--pull', 'never', '--no-build', 'caddy');
    await waitFor('HTTPS after Caddy restart', async () => (await stack.fetch('/health', { timeoutMs: 5000 })).status === 200, 60_000);
    expect(await serial()).toBe(before);
    expect(await stack.pebbleOrders()).toBe(orders);
  });
});

describeDocker('images', () => {
  it('never put a .env file into any layer of the app or Caddy image', async () => {
    // Build from a copy of the tree that holds decoy .env files, so the check can fail.
    const ctx = mkdtempSync(join(tmpdir(), 'lzf-e2e-dockerignore-'));
    const tag = `lazyflow-e2e-envcheck:${randomBytes(3).toString('hex')}`;
    try {
      const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard'], { cwd: repoRoot }).toString().split('\n').filter(Boolean);
      for (const f of files) {
        mkdirSync(dirname(join(ctx, f)), { recursive: true });
        try { cpSync(join(repoRoot, f), join(ctx, f)); } catch { /* deleted in the work tree */ }
      }
      for (const decoy of ['.env', '.env.prod', 'app/.env', 'app/.env.local', 'docker/caddy/.env']) {
        writeFileSync(join(ctx, decoy), 'BOT_TOKEN=decoy-secret\n');
      }
      const buildArgs = (names: string[]) => names.filter((n) => process.env[n]).flatMap((n) => ['--build-arg', `${n}=${process.env[n]}`]);
      const targets = [
        { tag: `${tag}-app`, args: ['-f', 'Dockerfile', ...buildArgs(['BUN_IMAGE'])] },
        { tag: `${tag}-caddy`, args: ['-f', 'docker/caddy/Dockerfile', ...buildArgs(['BUN_IMAGE', 'CADDY_IMAGE'])] },
      ];
      for (const t of targets) {
        await mustRun('docker', ['build', '-q', '-t', t.tag, ...t.args, '.'], { cwd: ctx, timeoutMs: 600_000 });
        const saveDir = join(ctx, `.save-${t.tag.replace(/[:/]/g, '_')}`);
        mkdirSync(saveDir);
        await mustRun('sh', ['-c', `docker save ${t.tag} | tar -x -C ${saveDir}`]);
        const layers = (await mustRun('sh', ['-c', `cd ${saveDir} && find . -name '*.tar' -o -name 'layer.tar' | sort -u`])).split('\n').filter(Boolean);
        expect(layers.length).toBeGreaterThan(0);
        for (const layer of layers) {
          const entries = (await mustRun('tar', ['-tf', join(saveDir, layer)])).split('\n');
          const leaked = entries.filter((e) => /(^|\/)\.env(\.[^/]*)?$/.test(e) && !e.endsWith('.env.prod.example'));
          expect(leaked, `${t.tag} layer ${layer}`).toEqual([]);
        }
      }
    } finally {
      for (const suffix of ['-app', '-caddy']) execFileSync('docker', ['image', 'rm', '-f', `${tag}${suffix}`], { stdio: 'ignore' });
      rmSync(ctx, { recursive: true, force: true });
    }
  });
});

describeDocker('local try-out (DOMAIN=localhost, no Telegram token)', () => {
  let stack: Stack;
  beforeAll(async () => {
    // Only what the demo sets: state, images and ports. Everything else is compose's embedded default.
    stack = await startStack({ name: 'local', pebble: false });
  });
  afterAll(async () => {
    await stack?.down();
  });

  it("serves https://localhost with Caddy's internal CA and runs the app in local mode", async () => {
    const r = await stack.fetch('/health');
    expect(r.status).toBe(200);
    expect(new X509Certificate(r.peerCertificate!.raw).issuer).toMatch(/Caddy Local Authority/);
    const [id] = await stack.containers('app');
    const env: string[] = JSON.parse(await mustRun('docker', ['inspect', id]))[0].Config.Env;
    expect(env).toContain('BOT_TOKEN=');
    expect(env).toContain('WEBHOOK_SECRET=local-try-out-secret-not-for-production-0000');
    const logs = await stack.mustCompose('logs', '--no-color', 'app');
    expect(logs).toMatch(/local mode/i);
    expect(logs).not.toMatch(/setWebhook failed/i);
  });
});
