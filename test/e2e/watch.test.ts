// The watch under a simulated outage on the real stack (Pebble certificate, fake Bot API as the
// admin chat, a local HTTP receiver as the alert webhook), run as the every-minute timer would:
// exactly one "down" and one "up" arrive on each channel; a channel that is down changes neither
// the watch's exit code nor what the other channel gets. A certificate near expiry and a stale backup
// go through the same real path (observe -> decide -> notify -> state file), made real by the env
// file's own thresholds (a WATCH_CERT_DAYS above Pebble's 90-day lifetime, a WATCH_BACKUP_MAX_AGE of
// one second), with a short WATCH_REMIND_AFTER: one alert each when they start, a reminder once the
// interval has passed and none before, one "resolved" each when the thresholds are back to normal.
// Then status.mts shows release, backups, offsite and the last drill. Both channels down for two
// watch runs (Telegram answering 502, the receiver gone): the alert arrives once each when they are
// back. Maintenance under HTTPS load with Telegram updates flowing: every request 503 with
// Retry-After, the updates delivered again and processed once each after it ends, no alert; `--for`
// ends by itself.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeDocker } from '../support/docker.ts';
import { startStack, waitFor, type Stack } from '../support/stack.ts';
import { runScript, type RunResult } from '../support/run.ts';
import { script, waitHealthy } from '../support/backup.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts';
import { appendJournal } from '../../scripts/lib/release/journal.mts';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { startLoad, type LoadOp } from '../support/load.mts';
import { makeMessageUpdate } from '../support/telegram.ts';

const explain = (r: RunResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
const ADMIN_CHAT = '777001';

describeDocker('watch: alerts on changes of state only', () => {
  let stack: Stack;
  let hook: WebhookReceiver;
  const watch = (config?: string) => runScript('watch.mts', ['--config', config ?? stack.envFile, '--ca', stack.caPem, '--once', '--json', '--timeout', '5'], { timeoutMs: 60_000 });
  const parsed = (r: RunResult) => JSON.parse(r.stdout) as { ok: boolean; at: string; alerts: { problem: string; state: string; detail: string; channels: string }[]; heartbeat: string };
  const hookAlerts = () => hook.received.filter((x) => x.method === 'POST').map((x) => `${x.json.alert?.state} ${x.json.alert?.problem}`);
  let chat0 = 0; // the admin chat's messages before this test's watch runs (the setup backup notifies)
  const chatAlerts = () => stack.fakeBot!.sentMessages(stack.botToken).filter((m) => String(m.chat_id) === ADMIN_CHAT).map((m) => m.text).slice(chat0);
  const pings = () => hook.received.filter((x) => x.method === 'GET' && x.path === '/heartbeat/uuid-1').length;

  beforeAll(async () => {
    hook = await startWebhookReceiver();
    stack = await startStack({
      name: 'watch',
      env: { ADMIN_CHAT_ID: ADMIN_CHAT, ALERT_WEBHOOK_URL: `${hook.url}/hook/s3cret-path`, HEARTBEAT_URL: `${hook.url}/heartbeat/uuid-1`, WATCH_REMIND_AFTER: '1h' },
    });
    // a fresh backup, so that the only problem this test causes is the outage
    const b = await script(stack, 'backup.mts', ['--reason', 'manual', '--quiet']);
    expect(b.code, explain(b)).toBe(0);
    // the backup notifies once on each channel (test/e2e/notify.test.ts); the watch's alerts start after it
    expect(hook.received.map((x) => `${x.method} ${x.json?.operation} ${x.json?.outcome}`)).toEqual(['POST backup ok']);
    expect(chatAlerts()).toEqual([expect.stringMatching(/^✅ lazyflow backup ok /)]);
    hook.received.length = 0;
    chat0 = chatAlerts().length;
  });
  afterAll(async () => {
    await stack?.down();
    await hook?.stop().catch(() => {});
  });

  it('app stopped for several runs, then started: one down and one up on both channels; a dead channel fails nothing', async () => {
    const healthy = await watch();
    expect(healthy.code, explain(healthy)).toBe(0);
    expect(parsed(healthy)).toMatchObject({ ok: true, alerts: [], heartbeat: 'pinged' });
    expect(pings()).toBe(1);

    await stack.mustCompose('stop', '--timeout', '5', 'app');
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await watch();
      codes.push(r.code ?? -1);
      if (i === 0) expect(parsed(r).alerts, explain(r)).toEqual([]); // one run is a blip, not yet an outage
    }
    expect(codes).toEqual([1, 1, 1, 1]);
    expect(pings()).toBe(1); // the dead man's switch is not fed while unhealthy
    expect(hookAlerts()).toEqual(['started app-down']);
    expect(chatAlerts()).toHaveLength(1);
    expect(chatAlerts()[0]).toMatch(/^❌ lazyflow PROBLEM app-down: .*health/);

    await stack.mustCompose('start', 'app');
    await waitHealthy(stack);
    const back = await watch();
    expect(back.code, explain(back)).toBe(0);
    expect(parsed(back).alerts.map((a) => `${a.state} ${a.problem}`)).toEqual(['resolved app-down']);
    expect(hookAlerts()).toEqual(['started app-down', 'resolved app-down']);
    expect(chatAlerts()).toHaveLength(2);
    expect(chatAlerts()[1]).toMatch(/^✅ lazyflow RESOLVED app-down \(since .*\)/);
    const again = await watch();
    expect(again.code).toBe(0);
    expect(hookAlerts()).toHaveLength(2);
    expect(hook.received.find((x) => x.method === 'POST')!.json).toMatchObject({ source: 'lazyflow', operation: 'watch', outcome: 'failed', alert: { problem: 'app-down', state: 'started' } });

    // the webhook receiver is down: the outage still reaches the admin chat, the exit code is health's
    await hook.stop();
    await stack.mustCompose('stop', '--timeout', '5', 'app');
    const r1 = await watch();
    const r2 = await watch();
    expect([r1.code, r2.code], explain(r2)).toEqual([1, 1]);
    expect(parsed(r2).alerts[0].channels).toMatch(/telegram: sent to chat 777001; webhook: not sent \(http:\/\/127\.0\.0\.1:\d+\/<redacted>: unreachable/);
    expect(r2.stderr).not.toContain('s3cret-path');
    expect(chatAlerts()).toHaveLength(3);
    await stack.mustCompose('start', 'app');
    await waitHealthy(stack);
    const r3 = await watch(); // healthy, but the heartbeat receiver is down: still exit 0
    expect(r3.code, explain(r3)).toBe(0);
    expect(parsed(r3).heartbeat).toMatch(/ping failed: unreachable/);
    expect(chatAlerts()).toHaveLength(4);
    await hook.restart();
  }, 300_000); // eleven watch runs, three of them retrying the dead receiver

  it('a certificate near expiry and a stale backup: one alert each, a reminder at WATCH_REMIND_AFTER and none before, one resolved each', async () => {
    const REMIND_S = 8;
    // the same stack and STATE_DIR, stricter thresholds: documented settings in the env file, no fake clock
    const strict = join(stack.runDir, 'env.strict');
    const lines = readFileSync(stack.envFile, 'utf8').split('\n').filter((l) => !/^WATCH_(CERT_DAYS|BACKUP_MAX_AGE|REMIND_AFTER)=/.test(l));
    writeFileSync(strict, [...lines, 'WATCH_CERT_DAYS=100', 'WATCH_BACKUP_MAX_AGE=1s', `WATCH_REMIND_AFTER=${REMIND_S}s`].join('\n') + '\n', { mode: 0o600 });
    const state = () => JSON.parse(readFileSync(join(stack.stateDir, 'watch', 'state.json'), 'utf8')) as { problems: Record<string, { since: string; alertedAt?: string; lastAlertAt?: string }> };
    const alerts = (r: RunResult) => parsed(r).alerts.map((a) => `${a.state} ${a.problem}`);
    const [h0, c0] = [hookAlerts().length, chatAlerts().length];

    const first = await watch(strict);
    expect(first.code, explain(first)).toBe(1);
    expect(alerts(first)).toEqual([]); // seen once: not yet confirmed
    const start = await watch(strict);
    expect(start.code, explain(start)).toBe(1);
    expect(alerts(start)).toEqual(['started backup-stale', 'started cert-expiry']);
    const byName = Object.fromEntries(parsed(start).alerts.map((a) => [a.problem, a]));
    expect(byName['cert-expiry'].detail).toMatch(/^certificate expires in (8\d|9\d)\.\d days \(\d{4}-\d\d-\d\d\), under 100$/);
    expect(byName['backup-stale'].detail).toMatch(/^newest backup \S+ is \d+\.\d h old \(> 1s\)$/);
    const startedAt = parsed(start).at;
    expect(state().problems['cert-expiry']).toMatchObject({ alertedAt: startedAt, lastAlertAt: startedAt });
    expect(state().problems['backup-stale']).toMatchObject({ alertedAt: startedAt, lastAlertAt: startedAt });
    expect(hookAlerts().slice(h0)).toEqual(['started backup-stale', 'started cert-expiry']);
    expect(chatAlerts().slice(c0)).toEqual([
      expect.stringMatching(/^❌ lazyflow PROBLEM backup-stale: newest backup .* \(> 1s\) \[/),
      expect.stringMatching(/^❌ lazyflow PROBLEM cert-expiry: certificate expires in .* under 100 \[/),
    ]);

    // before the interval: still failing, nothing sent
    const early = await watch(strict);
    const earlyMs = Date.parse(parsed(early).at) - Date.parse(startedAt);
    expect(earlyMs, `the harness needs a watch run under ${REMIND_S} s; this one came ${earlyMs} ms after the alert`).toBeLessThan(REMIND_S * 1000);
    expect([early.code, alerts(early)]).toEqual([1, []]);

    // at the interval: one reminder each
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(startedAt) + REMIND_S * 1000 - Date.now())));
    const remind = await watch(strict);
    expect(alerts(remind), explain(remind)).toEqual(['reminder backup-stale', 'reminder cert-expiry']);
    expect(state().problems['cert-expiry']).toMatchObject({ alertedAt: startedAt, lastAlertAt: parsed(remind).at });
    expect(chatAlerts().slice(c0 + 2)).toEqual([
      expect.stringMatching(/^❌ lazyflow STILL FAILING backup-stale \(since .*\): newest backup /),
      expect.stringMatching(/^❌ lazyflow STILL FAILING cert-expiry \(since .*\): certificate expires in /),
    ]);

    // the thresholds back to normal (the env file the stack runs with): one resolved each
    const back = await watch();
    expect(back.code, explain(back)).toBe(0);
    expect(alerts(back)).toEqual(['resolved backup-stale', 'resolved cert-expiry']);
    expect(state().problems).toEqual({});
    expect(hookAlerts().slice(h0)).toEqual(['started backup-stale', 'started cert-expiry', 'reminder backup-stale', 'reminder cert-expiry', 'resolved backup-stale', 'resolved cert-expiry']);
    expect(chatAlerts().slice(c0 + 4)).toEqual([
      expect.stringMatching(/^✅ lazyflow RESOLVED backup-stale \(since .*\): newest backup \S+ is \d+\.\d h old \[/),
      expect.stringMatching(/^✅ lazyflow RESOLVED cert-expiry \(since .*\): certificate expires in .* days \(\S+\) \[/),
    ]);
  });

  /** the app up and the watch's state healthy whatever an earlier case left (a case's own assertions start from here) */
  const settle = async () => {
    await stack.mustCompose('start', 'app');
    await waitHealthy(stack);
    await waitFor('a healthy watch run', async () => (await watch()).code === 0, 90_000, 1000);
  };

  it('both channels down for two watch runs, then up: the alert arrives, once on each', async () => {
    const fake = stack.fakeBot!;
    await settle();
    await stack.mustCompose('stop', '--timeout', '5', 'app');
    const [h0, c0] = [hookAlerts().length, chatAlerts().length];
    const first = await watch();
    expect(parsed(first).alerts, explain(first)).toEqual([]); // seen once: not yet an outage
    // Telegram answers 502 to every try of the next two runs (3 tries each), the receiver is gone
    fake.failNext(stack.botToken, 'sendMessage', { error_code: 502, description: 'Bad Gateway' }, 6);
    await hook.stop();
    let lost1: RunResult, lost2: RunResult;
    try {
      lost1 = await watch();
      lost2 = await watch();
    } finally {
      await hook.restart(); // the receiver is back, as later cases expect it, whatever failed
    }
    for (const r of [lost1, lost2]) {
      expect(r.code, explain(r)).toBe(1);
      expect(parsed(r).alerts.map((a) => `${a.state} ${a.problem} ${(a as unknown as { delivered: boolean }).delivered}`)).toEqual(['started app-down false']);
      expect(parsed(r).alerts[0].channels).toMatch(/telegram: not sent \(chat 777001: Bot API sendMessage: 502 Bad Gateway \(3 attempts\)\); webhook: not sent .*unreachable.*; sent again at the next run$/);
    }
    expect(JSON.parse(readFileSync(join(stack.stateDir, 'watch', 'state.json'), 'utf8')).undelivered).toMatchObject([{ problem: 'app-down', state: 'started', tries: 2 }]);
    expect(fake.callsTo('sendMessage', stack.botToken).slice(-6).map((c) => c.status)).toEqual([502, 502, 502, 502, 502, 502]);
    expect([hookAlerts().length - h0, chatAlerts().length - c0]).toEqual([0, 0]);

    const back = await watch();
    expect(back.code, explain(back)).toBe(1);
    expect(parsed(back).alerts.map((a) => `${a.state} ${a.problem}`)).toEqual(['started app-down']);
    expect(hookAlerts().slice(h0)).toEqual(['started app-down']);
    expect(chatAlerts().slice(c0)).toEqual([expect.stringMatching(/^❌ lazyflow PROBLEM app-down: /)]);
    // dated when it was due, not when it finally went out
    expect(hook.received.at(-1)!.json.at).toBe(parsed(lost1).at);
    const quiet = await watch();
    expect(parsed(quiet).alerts).toEqual([]);
    expect([hookAlerts().length - h0, chatAlerts().length - c0]).toEqual([1, 1]);

    await stack.mustCompose('start', 'app');
    await waitHealthy(stack);
    const up = await watch();
    expect(up.code, explain(up)).toBe(0);
    expect(hookAlerts().slice(h0)).toEqual(['started app-down', 'resolved app-down']);
    expect(chatAlerts().slice(c0)).toHaveLength(2);
  }, 300_000);

  it('maintenance under HTTPS load and Telegram updates: 503 + Retry-After for all, updates delivered again and processed once each after it, no alert; --for ends by itself', async () => {
    const fake = stack.fakeBot!;
    const maintenance = (...args: string[]) => runScript('maintenance.mts', ['--config', stack.envFile, ...args], { timeoutMs: 60_000 });
    const send = (i: number) => ({ id: fake.queueUpdate(stack.botToken, makeMessageUpdate({ chat_id: 7_100_000 + i, text: '/start' })), chat: 7_100_000 + i });
    await settle();
    const [h0, c0] = [hookAlerts().length, chatAlerts().length];
    const ops: LoadOp[] = [
      { name: 'GET /health', method: 'GET', path: '/health', okStatuses: [200, 503] },
      { name: 'GET /', method: 'GET', path: '/', okStatuses: [200, 503] },
      { name: 'POST /tasks', method: 'POST', path: '/tasks', headers: { 'content-type': 'application/json' }, body: 'task-json', okStatuses: [401, 503] },
    ];
    const load = startLoad({ domain: stack.domain, httpsPort: stack.httpsPort, ca: stack.ca }, ops, { concurrency: 4, pauseMs: 20 });
    const updates: { id: number; chat: number }[] = [];
    let sending = true;
    const sender = (async () => {
      for (let i = 0; sending; i++) {
        updates.push(send(i));
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    await new Promise((r) => setTimeout(r, 1500));

    const on = await maintenance('--on', '--message', 'Upgrading <the> database');
    const onAt = Date.now();
    expect(on.code, explain(on)).toBe(0);
    const page = await stack.fetch('/');
    expect([page.status, page.headers['retry-after']]).toEqual([503, '120']);
    expect(page.text()).toContain('Upgrading &lt;the&gt; database');
    const hookReply = await stack.fetch(`/webhook/${stack.webhookSecret}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': stack.webhookSecret }, body: '{"update_id":1}' });
    expect([hookReply.status, hookReply.headers['retry-after']]).toEqual([503, '10']);
    // only the toolkit's key passes, and it never reaches a log
    const key = readFileSync(join(stack.stateDir, 'proxy', 'maintenance.key'), 'utf8').trim();
    expect((await stack.fetch('/health', { headers: { 'x-lazyflow-maintenance-key': 'guess' } })).status).toBe(503);
    expect((await stack.fetch('/health', { headers: { 'x-lazyflow-maintenance-key': key } })).status).toBe(200);
    const status = await maintenance('--status', '--json');
    expect(JSON.parse(status.stdout)).toMatchObject({ on: true, until: null, message: 'Upgrading <the> database' });

    // the watch: nothing judged or announced (twice: more than WATCH_CONFIRM_RUNS), heartbeat fed
    for (let i = 0; i < 2; i++) {
      const w = await watch();
      expect(w.code, explain(w)).toBe(0);
      expect(parsed(w)).toMatchObject({ ok: true, maintenance: true, alerts: [], heartbeat: 'pinged' });
    }
    // smoke passes with the key: the app itself is checked, Telegram's held queue is a warning
    const smoke = await runScript('smoke.mts', ['--config', stack.envFile, '--ca', stack.caPem, '--json'], { timeoutMs: 60_000 });
    expect(smoke.code, explain(smoke)).toBe(0);
    expect(JSON.parse(smoke.stdout).results.find((r: { name: string }) => r.name === 'telegram')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^maintenance on: Telegram holds \d+ update\(s\)/) });
    await fake.waitFor(() => fake.deliveries.some((d) => d.status === 503 && d.at > onAt), { timeoutMs: 30_000 });
    expect(fake.webhookInfo(stack.botToken).pending_update_count).toBeGreaterThan(0);

    // nothing reached either channel while it was on
    expect([hookAlerts().length - h0, chatAlerts().length - c0]).toEqual([0, 0]);

    const offAt = Date.now();
    const off = await maintenance('--off');
    const offDone = Date.now();
    expect(off.code, explain(off)).toBe(0);
    await new Promise((r) => setTimeout(r, 1500));
    sending = false;
    await sender;
    const samples = await load.stop();
    await fake.waitForDrained(stack.botToken, 60_000);

    // every request answered; those sent entirely within the window got 503, those after it 200/401
    expect(samples.filter((x) => !x.ok).map((x) => `${x.op} ${x.status} ${x.error ?? ''}`)).toEqual([]);
    const inside = samples.filter((x) => x.start > onAt && x.start + x.ms < offAt);
    const after = samples.filter((x) => x.start > offDone);
    expect(inside.length).toBeGreaterThan(0);
    expect([...new Set(inside.map((x) => x.status))]).toEqual([503]);
    expect(after.length).toBeGreaterThan(0);
    expect(after.filter((x) => x.status === 503)).toEqual([]);
    // every update processed exactly once: held by Telegram (503s) during the window, delivered after
    const held = updates.filter((u) => fake.deliveries.some((d) => d.update_id === u.id && d.status === 503));
    expect(held.length).toBeGreaterThan(0);
    const db = new Database(join(stack.stateDir, 'data', 'lazyflow.db'), { readonly: true, fileMustExist: true });
    try {
      const counts = new Map((db.prepare('SELECT update_id, count(*) AS n FROM bot_messages GROUP BY update_id').all() as { update_id: number; n: number }[]).map((r) => [r.update_id, r.n]));
      for (const u of updates) expect(counts.get(u.id), `update ${u.id}`).toBe(1);
    } finally {
      db.close();
    }
    const replies = fake.sentMessages(stack.botToken);
    for (const u of updates) expect(replies.filter((m) => Number(m.chat_id) === u.chat), `replies to chat ${u.chat}`).toHaveLength(1);

    // after it: Telegram's record of the window's 503s is no delivery problem for the watch (a later
    // error of the app's own would be, and is announced as usual: not this test's subject)
    for (let i = 0; i < 2; i++) {
      const w = await watch();
      const problems = (JSON.parse(w.stdout) as { problems: { problem: string; detail: string }[] }).problems;
      const appLog = async () => (await stack.compose('logs', '--no-color', '--tail', '200', 'app')).stdout.split('\n').filter((l) => /update_failed|update_in_flight|error/.test(l)).join('\n');
      expect(problems.filter((p) => /\b503\b/.test(p.detail)), problems.length ? await appLog() : '').toEqual([]);
      expect(parsed(w).alerts.filter((a) => /\b503\b/.test(a.detail))).toEqual([]);
    }
    expect((await stack.compose('logs', '--no-color', 'caddy')).stdout).not.toContain(key);

    // --for: ends by itself; nothing of the toolkit runs in between
    const timed = await maintenance('--on', '--for', '3s');
    expect(timed.code, explain(timed)).toBe(0);
    expect((await stack.fetch('/health')).status).toBe(503);
    await waitFor('maintenance --for 3s to end by itself', async () => (await stack.fetch('/health')).status === 200, 30_000, 250);
    expect(JSON.parse((await maintenance('--status', '--json')).stdout)).toMatchObject({ on: false, endedAt: expect.any(String) });
    expect((await maintenance('--off')).code).toBe(0);
  }, 300_000);

  it('status.mts --json shows the release, the running image and the backups', async () => {
    const tag = stack.env.APP_TAG;
    appendJournal(join(stack.stateDir, 'releases.jsonl'), { id: 'r-e2e-1', kind: 'rollout', appTag: tag, image: `${stack.env.APP_IMAGE}:${tag}`, result: 'ok', startedAt: new Date(Date.now() - 60_000).toISOString(), endedAt: new Date().toISOString() });
    const status = () => runScript('status.mts', ['--config', stack.envFile, '--ca', stack.caPem, '--json'], { timeoutMs: 60_000 });
    // the app was restarted by the previous case: Docker's health may still say "starting" (exit 1)
    const r = await waitFor('docker health to settle', async () => {
      const x = await status();
      return JSON.parse(x.stdout).running.health !== 'starting' && x;
    }, 30_000, 1000);
    expect(r.code, explain(r)).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.running).toMatchObject({ release: 'r-e2e-1', appTag: tag, status: 'running', health: 'healthy' });
    expect(s.operations[0]).toMatchObject({ id: 'r-e2e-1', result: 'ok' });
    expect(s.backups.local).toHaveLength(1);
    expect(s.backups.local[0]).toMatchObject({ verified: true });
    // offsite is not configured in this stack and no drill ran: said so, from the records, without restic
    expect(s.backups.offsite).toMatchObject({ configured: false, newest: null, lastCheck: null });
    expect(s.drill).toBeNull();
    expect(s.alerts).toEqual([]);
    expect(s.certificate.daysLeft).toBeGreaterThan(1);
    const table = await runScript('status.mts', ['--config', stack.envFile, '--ca', stack.caPem], { timeoutMs: 60_000 });
    expect(table.stdout).toMatch(/^Running\n {2}app \S+ {2}running, healthy/m);
    expect(table.stdout).toMatch(/^Backups\n {2}id/m);
    expect(table.stdout).toMatch(/^ {2}offsite: not configured$/m);
    // the hint names the env file status was given, not the default .env.prod
    expect(table.stdout).toMatch(new RegExp(`^ {2}last drill: never: node scripts/restore\\.mts --config ${stack.envFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} --drill$`, 'm'));
  });

  it('watch.mts --test-alert reaches both channels, and names the one that is down', async () => {
    const before = chatAlerts().length;
    const ok = await runScript('watch.mts', ['--config', stack.envFile, '--test-alert', '--json']);
    expect(ok.code, explain(ok)).toBe(0);
    expect(chatAlerts().slice(before)).toEqual([expect.stringMatching(/^lazyflow test alert: this channel works \[/)]);
    expect(hook.received.at(-1)!.json).toMatchObject({ operation: 'test', outcome: 'ok' });
    await hook.stop();
    const down = await runScript('watch.mts', ['--config', stack.envFile, '--test-alert', '--json']);
    expect(down.code, explain(down)).toBe(1);
    expect(JSON.parse(down.stdout).channels.map((c: { channel: string; ok: boolean }) => `${c.channel} ${c.ok}`)).toEqual(['telegram true', 'webhook false']);
    await hook.restart();
  });
});
