// The watch's decision as a table with a fake clock: runs one minute apart, each row says what the
// run observed and which alerts it must send. Changes of state only: one alert when a problem is
// confirmed, one when it ends, reminders at WATCH_REMIND_AFTER, never one per run.
import { describe, expect, it } from 'vitest';
import { afterSend, alertsToSend, decide, delivered, emptyState, healthy, MAX_UNDELIVERED, openAlerts, type Observations, type WatchState } from '../../scripts/lib/watch/decide.mts';
import { judgeFacts, type Facts } from '../../scripts/lib/watch/observe.mts';
import { parseDuration, watchSettings } from '../../scripts/lib/watch/settings.mts';
import type { SmokeResult } from '../../scripts/lib/checks/evaluate.mts';

const T0 = Date.parse('2026-12-01T00:00:00.000Z');
const MIN = 60_000;
const H = 60 * MIN;
const D = 24 * H;
const settings = watchSettings({ WATCH_REMIND_AFTER: '30m' });

const up: Observations = { problems: { 'app-down': { failing: false, detail: 'app healthy' }, smoke: { failing: false, detail: 'all smoke checks pass' } } };
const down: Observations = { problems: { 'app-down': { failing: true, detail: 'health: connection refused' }, smoke: { failing: true, detail: 'headers: 502' } } };

/** run the decision over a sequence of observations, one minute apart (or at given offsets) */
function simulate(steps: (Observations | [number, Observations])[], s = settings, start: WatchState = emptyState()) {
  let state = start;
  const log: string[] = [];
  steps.forEach((st, i) => {
    const [at, obs] = Array.isArray(st) ? [T0 + st[0], st[1]] : [T0 + i * MIN, st];
    const r = decide(state, obs, new Date(at), s);
    state = r.state;
    for (const a of r.alerts) log.push(`${Math.round((at - T0) / MIN)}m ${a.state} ${a.problem}`);
  });
  return { state, log };
}

describe('watch decision', () => {
  it('app down for five runs, then up: exactly one down and one up; the failures it causes are not announced', () => {
    const { log, state } = simulate([up, down, down, down, down, down, up, up]);
    expect(log).toEqual(['2m started app-down', '6m resolved app-down']);
    expect(healthy(state)).toBe(true);
  });

  it('a one-run blip is not announced at all (WATCH_CONFIRM_RUNS=2)', () => {
    expect(simulate([up, down, up, down, up]).log).toEqual([]);
  });

  it('WATCH_CONFIRM_RUNS=1 announces on the first failing run', () => {
    expect(simulate([up, down, up], watchSettings({ WATCH_CONFIRM_RUNS: '1' })).log).toEqual(['1m started app-down', '2m resolved app-down']);
  });

  it('a long outage is reminded every WATCH_REMIND_AFTER, not every run', () => {
    const steps = Array.from({ length: 95 }, () => down);
    const { log, state } = simulate([...steps, up]);
    expect(log).toEqual(['1m started app-down', '31m reminder app-down', '61m reminder app-down', '91m reminder app-down', '95m resolved app-down']);
    expect(openAlerts(state)).toEqual([]);
  });

  it('while announced and still down, the state shows one open alert since the first failing run', () => {
    const { state } = simulate([up, down, down, down]);
    expect(openAlerts(state)).toEqual([{ problem: 'app-down', since: new Date(T0 + MIN).toISOString(), detail: 'health: connection refused' }]);
    expect(healthy(state)).toBe(false);
  });

  it('a run that cannot observe a problem keeps it as it was (no false "resolved")', () => {
    const unknown: Observations = { problems: { 'app-down': { failing: undefined, detail: 'docker not answering' } } };
    expect(simulate([down, down, unknown, unknown, down, up]).log).toEqual(['1m started app-down', '5m resolved app-down']);
  });

  it('other smoke failures are announced when the app is up', () => {
    const broken: Observations = { problems: { 'app-down': { failing: false, detail: 'ok' }, smoke: { failing: true, detail: 'headers: no HSTS' } } };
    expect(simulate([up, broken, broken, broken, up]).log).toEqual(['2m started smoke', '4m resolved smoke']);
  });

  it('container restarts: a new restart count is a problem until 15 minutes without one', () => {
    const c = (n: number, oom = false): Observations => ({ problems: {}, containers: [{ id: 'a1', service: 'app', restartCount: n, oomKilled: oom }] });
    const steps: [number, Observations][] = [[0, c(0)], [MIN, c(1, true)], [2 * MIN, c(1)], [10 * MIN, c(1)], [17 * MIN, c(1)], [18 * MIN, c(1)]];
    const { log, state } = simulate(steps);
    expect(log).toEqual(['2m started container-restarts', '17m resolved container-restarts']);
    expect(state.restarts).toEqual({ a1: 1 });
  });

  it('an OOM kill in a container already seen (no restart: a child process killed) is a problem; a flag already seen is not news', () => {
    const c = (oom: boolean, n = 0): Observations => ({ problems: {}, containers: [{ id: 'a1', service: 'app', restartCount: n, oomKilled: oom }] });
    const steps: [number, Observations][] = [[0, c(false)], [MIN, c(true)], [2 * MIN, c(true)], [10 * MIN, c(true)], [17 * MIN, c(true)], [18 * MIN, c(false)], [19 * MIN, c(true)], [20 * MIN, c(true)]];
    const { log, state } = simulate(steps);
    expect(log).toEqual(['2m started container-restarts', '17m resolved container-restarts', '20m started container-restarts']);
    expect(state.lastRestartDetail).toBe('app was OOM killed');
    expect(state.oomKilled).toEqual(['a1']);
    // a container first seen with the flag set was killed before this watch knew it: still news, once
    expect(simulate([[0, c(true)], [MIN, c(true)], [16 * MIN, c(true)]]).log).toEqual(['1m started container-restarts', '16m resolved container-restarts']);
  });

  it('restart counts of containers that are gone are forgotten (bounded state)', () => {
    const { state } = simulate([
      { problems: {}, containers: [{ id: 'old', service: 'app', restartCount: 3, oomKilled: false }] },
      { problems: {}, containers: [{ id: 'new', service: 'app', restartCount: 0, oomKilled: false }] },
    ]);
    expect(Object.keys(state.restarts)).toEqual(['new']);
    expect(simulate([
      { problems: {}, containers: [{ id: 'old', service: 'app', restartCount: 0, oomKilled: true }] },
      { problems: {}, containers: [{ id: 'new', service: 'app', restartCount: 0, oomKilled: false }] },
    ]).state.oomKilled).toEqual([]);
  });

  it('Telegram: pending_update_count rising on 3 runs in a row, or a fresh last_error, is a problem', () => {
    const tg = (pending: number, lastErrorDate?: number): Observations => ({ problems: {}, telegram: { pending, lastErrorDate, lastErrorMessage: 'Connection refused' } });
    expect(simulate([tg(0), tg(1), tg(2), tg(5), tg(9), tg(0), tg(0)]).log).toEqual(['4m started telegram-delivery', '5m resolved telegram-delivery']);
    const errAt = (T0 + MIN) / 1000;
    // an error 1 minute in; fresh for 10 minutes
    const steps: [number, Observations][] = [[0, tg(0)], [2 * MIN, tg(0, errAt)], [3 * MIN, tg(0, errAt)], [12 * MIN, tg(0, errAt)]];
    expect(simulate(steps).log).toEqual(['3m started telegram-delivery', '12m resolved telegram-delivery']);
  });

  it('state of another version is ignored, not trusted', () => {
    const r = decide({ version: 99 } as unknown as WatchState, down, new Date(T0), settings);
    expect(r.state.version).toBe(1);
    expect(r.state.problems['app-down'].runs).toBe(1);
  });
});

describe('facts -> problems', () => {
  const pass = (name: string): SmokeResult => ({ name, status: 'pass', detail: 'ok', ms: 1 });
  const base: Facts = { smoke: ['containers', 'health', 'tls', 'headers'].map(pass) };
  const now = new Date(T0);
  const cert = (daysLeft: number, lifetimeDays = 90) => ({ authorized: true, validTo: new Date(T0 + daysLeft * D).toUTCString(), validFrom: new Date(T0 + daysLeft * D - lifetimeDays * D).toUTCString() });

  it('certificate under 14 days is a problem; at 20 days it is not; a 12 h local certificate is judged by smoke', () => {
    expect(judgeFacts({ ...base, tls: cert(13) }, settings, now)['cert-expiry'].failing).toBe(true);
    expect(judgeFacts({ ...base, tls: cert(13) }, settings, now)['cert-expiry'].detail).toMatch(/expires in 13\.0 days.*under 14/);
    expect(judgeFacts({ ...base, tls: cert(20) }, settings, now)['cert-expiry'].failing).toBe(false);
    expect(judgeFacts({ ...base, tls: cert(0.4, 0.5) }, settings, now)['cert-expiry'].failing).toBe(false);
    expect(judgeFacts({ ...base, tls: { authorized: false, error: 'ECONNREFUSED' } }, settings, now)['cert-expiry'].failing).toBeUndefined();
  });

  it('a larger WATCH_CERT_DAYS makes more certificates near expiry, never exempts them as short-lived', () => {
    const strict = watchSettings({ WATCH_CERT_DAYS: '60' });
    expect(judgeFacts({ ...base, tls: cert(45) }, strict, now)['cert-expiry']).toMatchObject({ failing: true, detail: expect.stringMatching(/expires in 45\.0 days.*under 60/) });
    expect(judgeFacts({ ...base, tls: cert(45, 45) }, strict, now)['cert-expiry'].failing).toBe(true); // a fresh 45-day certificate
    expect(judgeFacts({ ...base, tls: cert(61) }, strict, now)['cert-expiry'].failing).toBe(false);
    // 6-day and 12-hour certificates stay the tls check's to judge, whatever the threshold
    expect(judgeFacts({ ...base, tls: cert(3, 6) }, strict, now)['cert-expiry'].failing).toBe(false);
    const tlsFails: Facts = { smoke: [...base.smoke.filter((r) => r.name !== 'tls'), { name: 'tls', status: 'fail', detail: 'nearly expired', ms: 1 }] };
    expect(judgeFacts({ ...tlsFails, tls: cert(0.05, 6) }, strict, now)['cert-expiry'].failing).toBe(true);
  });

  it('certificate near expiry over days: one alert when it crosses 14 days, one when renewed', () => {
    let state = emptyState();
    const log: string[] = [];
    // daily runs (as if every run were a day): 16, 15, 14, 13.5, 13, 12 days left, then renewed to 90
    for (const [i, left] of [16, 15, 14.5, 13.5, 13, 12, 12, 90, 90].entries()) {
      const at = new Date(T0 + i * H);
      const r = decide(state, { problems: judgeFacts({ ...base, tls: cert(left) }, settings, new Date(T0)) }, at, watchSettings({ WATCH_REMIND_AFTER: '1d' }));
      state = r.state;
      log.push(...r.alerts.map((a) => `${i} ${a.state} ${a.problem}`));
    }
    expect(log).toEqual(['4 started cert-expiry', '7 resolved cert-expiry']);
  });

  it('stale backup: none, or newer than WATCH_BACKUP_MAX_AGE', () => {
    const at = (h: number) => ({ id: 'b', createdAt: new Date(T0 - h * H).toISOString() });
    expect(judgeFacts({ ...base, newestBackup: null }, settings, now)['backup-stale']).toMatchObject({ failing: true, detail: expect.stringMatching(/no backup yet/) });
    expect(judgeFacts({ ...base, newestBackup: at(27) }, settings, now)['backup-stale']).toMatchObject({ failing: true, detail: expect.stringMatching(/27\.0 h old \(> 26 h\)/) });
    expect(judgeFacts({ ...base, newestBackup: at(2) }, settings, now)['backup-stale'].failing).toBe(false);
    // issue 16: a backup recorded while the clock ran ahead never counts as newest, and raises the alert itself
    const ahead = { id: '20270101T000000Z-daily', createdAt: '2027-01-01T00:00:00.000Z' };
    expect(judgeFacts({ ...base, newestBackup: at(27), futureBackups: [ahead] }, settings, now)['backup-stale']).toMatchObject({ failing: true, detail: expect.stringMatching(/dated in the future .*20270101T000000Z-daily.*27\.0 h old/) });
    expect(judgeFacts({ ...base, newestBackup: at(2), futureBackups: [ahead] }, settings, now)['backup-stale'].failing).toBe(true);
    // the daily backup stops: announced on the second run over 26 h, reminded, resolved when a backup is taken
    let state = emptyState();
    const log: string[] = [];
    const s = watchSettings({ WATCH_REMIND_AFTER: '6h' });
    for (let m = 0; m <= 40 * 60; m += 30) {
      const t = new Date(T0 + m * MIN);
      const newest = m < 35 * 60 ? { id: 'b', createdAt: new Date(T0).toISOString() } : { id: 'c', createdAt: new Date(T0 + 35 * H).toISOString() };
      const r = decide(state, { problems: judgeFacts({ ...base, newestBackup: newest }, s, t) }, t, s);
      state = r.state;
      log.push(...r.alerts.map((a) => `${(m / 60).toFixed(1)}h ${a.state} ${a.problem}`));
    }
    expect(log).toEqual(['27.0h started backup-stale', '33.0h reminder backup-stale', '35.0h resolved backup-stale']);
  });

  it.each([
    // [case, configured, newest upload (hours before now, or null / unreadable), failing, detail]
    ['not configured: never a problem', false, null, false, /offsite not configured/],
    ['not configured, even with an old record', false, 100, false, /offsite not configured/],
    ['configured, nothing uploaded yet', true, null, true, /no offsite copy recorded yet: node scripts\/offsite\.mts --config \.env\.prod --push/],
    ['configured, fresh copy', true, 2, false, /^newest offsite copy b-2 is 2\.0 h old$/],
    ['configured, exactly at the limit', true, 26, false, /26\.0 h old$/],
    ['configured, too old', true, 27, true, /newest offsite copy b-27 is 27\.0 h old \(> 26 h\)/],
    ['configured, record unreadable', true, 'bad', true, /offsite upload record unreadable: boom/],
    ['WATCH_OFFSITE_MAX_AGE under an hour is shown as such', true, 1, true, /1\.0 h old \(> 90s\)/, { WATCH_OFFSITE_MAX_AGE: '90s' }],
  ] as const)('offsite-stale: %s', (_name, configured, hours, failing, detail, over?: Record<string, string>) => {
    const newest = hours === null ? null : hours === 'bad' ? { error: 'boom' } : { backupId: `b-${hours}`, backupCreatedAt: new Date(T0 - hours * H).toISOString(), at: new Date(T0).toISOString(), snapshotId: 'abc', source: 'upload' as const };
    const p = judgeFacts({ ...base, offsite: { configured, newest } }, over ? watchSettings(over) : settings, now);
    expect(p['offsite-stale'].failing).toBe(failing);
    expect(p['offsite-stale'].detail).toMatch(detail);
    expect(judgeFacts(base, settings, now)['offsite-stale']).toBeUndefined(); // not looked: not judged
  });

  it('offsite-stale over time: one start, reminders at WATCH_REMIND_AFTER, one end; not held while the app is down; WATCH_OFFSITE_MAX_AGE', () => {
    const s = watchSettings({ WATCH_REMIND_AFTER: '6h', WATCH_OFFSITE_MAX_AGE: '12h' });
    expect(s.offsiteMaxAgeMs).toBe(12 * H);
    const rec = (id: string, h: number) => ({ backupId: id, backupCreatedAt: new Date(T0 + h * H).toISOString(), at: new Date(T0 + h * H).toISOString(), snapshotId: null, source: 'upload' as const });
    let state = emptyState();
    const log: string[] = [];
    for (let m = 0; m <= 30 * 60; m += 30) {
      const t = new Date(T0 + m * MIN);
      // uploads stop after the one at 0 h; the app is down from 12 h to 14 h; an upload at 25 h
      const newest = m < 25 * 60 ? rec('b0', 0) : rec('b25', 25);
      const appDown = m >= 12 * 60 && m < 14 * 60;
      const r = decide(state, { problems: { ...judgeFacts({ ...base, offsite: { configured: true, newest } }, s, t), 'app-down': { failing: appDown, detail: appDown ? 'down' : 'ok' } } }, t, s);
      state = r.state;
      log.push(...r.alerts.map((a) => `${(m / 60).toFixed(1)}h ${a.state} ${a.problem}`));
    }
    expect(log).toEqual([
      '12.5h started app-down',
      '13.0h started offsite-stale',
      '14.0h resolved app-down',
      '19.0h reminder offsite-stale',
      '25.0h resolved offsite-stale',
    ]);
    expect(openAlerts(state)).toEqual([]);
  });

  it('offsite-stale that was announced resolves when OFFSITE_REPOSITORY is removed', () => {
    const old = { backupId: 'b', backupCreatedAt: new Date(T0 - 40 * H).toISOString(), at: new Date(T0 - 40 * H).toISOString(), snapshotId: null, source: 'upload' as const };
    let state = emptyState();
    const log: string[] = [];
    [true, true, true, false, false].forEach((configured, i) => {
      const t = new Date(T0 + i * MIN);
      const r = decide(state, { problems: judgeFacts({ ...base, offsite: { configured, newest: old } }, settings, t) }, t, settings);
      state = r.state;
      log.push(...r.alerts.map((a) => `${i}m ${a.state} ${a.problem}`));
    });
    expect(log).toEqual(['1m started offsite-stale', '3m resolved offsite-stale']);
  });

  it('app-down from containers or health; disk and dead letters from their facts; other smoke failures grouped', () => {
    const p = judgeFacts({
      smoke: [{ name: 'containers', status: 'fail', detail: 'app exited', ms: 1 }, pass('health'), { name: 'cors', status: 'fail', detail: 'wildcard', ms: 1 }, { name: 'disk', status: 'fail', detail: 'x', ms: 1 }],
      disk: { path: '/srv', freeBytes: 100 * 2 ** 20 },
      deadLetters: { table: true, count: 2 },
    }, settings, now);
    expect(p['app-down']).toEqual({ failing: true, detail: 'containers: app exited' });
    expect(p.smoke).toEqual({ failing: true, detail: 'cors: wildcard' });
    expect(p['disk-low']).toMatchObject({ failing: true, detail: '100 MiB free at /srv (< 1024 MiB)' });
    expect(p['dead-letters']).toMatchObject({ failing: true, detail: '2 dead letter(s)' });
  });
});

describe('settings', () => {
  it('durations and defaults', () => {
    expect([parseDuration('90s'), parseDuration('15m'), parseDuration('6h'), parseDuration('2d'), parseDuration('30'), parseDuration('soon')]).toEqual([90_000, 900_000, 21_600_000, 172_800_000, 30_000, null]);
    const s = watchSettings({});
    expect([s.remindAfterMs, s.confirmRuns, s.certWarnDays, s.backupMaxAgeMs, s.offsiteMaxAgeMs]).toEqual([6 * H, 2, 14, 26 * H, 26 * H]);
    expect(() => watchSettings({ WATCH_REMIND_AFTER: 'never' })).toThrow(/WATCH_REMIND_AFTER/);
    expect(() => watchSettings({ WATCH_OFFSITE_MAX_AGE: '0' })).toThrow(/WATCH_OFFSITE_MAX_AGE/);
  });
});

describe('state file', async () => {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { readWatchState, writeWatchState, watchStateFile } = await import('../../scripts/lib/watch/store.mts');

  it('round-trips, and an unreadable file is kept aside, not deleted, and the watch starts fresh', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'watch-state-'));
    try {
      const file = watchStateFile(dir);
      expect(readWatchState(file).state).toEqual(emptyState());
      const { state } = decide(emptyState(), down, new Date(T0), settings);
      writeWatchState(file, state);
      expect(readWatchState(file).state).toEqual(state);
      expect(fs.readdirSync(path.dirname(file))).toEqual(['state.json']); // no temp file left behind
      fs.writeFileSync(file, '{"version": 1, "probl');
      const r = readWatchState(file);
      expect(r.state).toEqual(emptyState());
      expect(r.note).toMatch(/unreadable.*kept as/);
      expect(fs.readdirSync(path.dirname(file)).filter((n) => n.startsWith('state.json.unreadable-'))).toHaveLength(1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('alerts that arrive: sent again at the next run until a channel takes one', () => {
  // each run: decide, send what alertsToSend says, then afterSend with what the channels did
  // (`up` per run: did any channel deliver?); the log lists every send attempt, delivered or not
  function runs(steps: { obs: Observations; channelUp: boolean; maintenance?: boolean }[]) {
    let state = emptyState();
    const log: string[] = [];
    steps.forEach((st, i) => {
      const now = new Date(T0 + i * MIN);
      const obs = { ...st.obs, maintenance: { on: Boolean(st.maintenance) } };
      const { state: decided, alerts } = decide(state, obs, now, settings);
      const out = alertsToSend(decided, alerts, now, Boolean(st.maintenance));
      for (const a of out) log.push(`${i}m ${a.state} ${a.problem}${a.tries ? ` (try ${a.tries + 1}, due ${Math.round((Date.parse(a.at) - T0) / MIN)}m)` : ''}${st.channelUp ? '' : ' LOST'}`);
      state = afterSend(decided, out.map((alert) => ({ alert, delivered: st.channelUp })), Boolean(st.maintenance));
    });
    return { log, state };
  }
  const rows: { name: string; steps: { obs: Observations; channelUp: boolean; maintenance?: boolean }[]; want: string[]; undelivered?: number }[] = [
    {
      name: 'channels up: each alert once',
      steps: [{ obs: up, channelUp: true }, { obs: down, channelUp: true }, { obs: down, channelUp: true }, { obs: down, channelUp: true }, { obs: up, channelUp: true }],
      want: ['2m started app-down', '4m resolved app-down'],
    },
    {
      name: 'the channel is down for two runs, then up: the alert is sent again until it arrives, then never again',
      steps: [{ obs: down, channelUp: false }, { obs: down, channelUp: false }, { obs: down, channelUp: false }, { obs: down, channelUp: true }, { obs: down, channelUp: true }],
      want: ['1m started app-down LOST', '2m started app-down (try 2, due 1m) LOST', '3m started app-down (try 3, due 1m)'],
      undelivered: 0,
    },
    {
      name: 'an outage that ends while the channel is down: both alerts arrive, in order, when it is back',
      steps: [{ obs: down, channelUp: true }, { obs: down, channelUp: false }, { obs: up, channelUp: false }, { obs: up, channelUp: true }, { obs: up, channelUp: true }],
      want: ['1m started app-down LOST', '2m started app-down (try 2, due 1m) LOST', '2m resolved app-down LOST', '3m started app-down (try 3, due 1m)', '3m resolved app-down (try 2, due 2m)'],
      undelivered: 0,
    },
    {
      name: 'maintenance: nothing is judged or sent while it lasts; an undelivered alert waits for its end',
      steps: [{ obs: down, channelUp: true }, { obs: down, channelUp: false }, { obs: down, channelUp: true, maintenance: true }, { obs: down, channelUp: true, maintenance: true }, { obs: up, channelUp: true }],
      want: ['1m started app-down LOST', '4m started app-down (try 2, due 1m)', '4m resolved app-down'],
      undelivered: 0,
    },
    {
      name: 'an outage only during maintenance is never announced',
      steps: [{ obs: up, channelUp: true }, { obs: down, channelUp: true, maintenance: true }, { obs: down, channelUp: true, maintenance: true }, { obs: down, channelUp: true, maintenance: true }, { obs: up, channelUp: true }, { obs: up, channelUp: true }],
      want: [],
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const { log, state } = runs(r.steps);
      expect(log).toEqual(r.want);
      if (r.undelivered !== undefined) expect(state.undelivered ?? []).toHaveLength(r.undelivered);
    });
  }

  it('a channel down for days keeps only the newest MAX_UNDELIVERED alerts', () => {
    const many = Array.from({ length: MAX_UNDELIVERED + 5 }, (_, i) => ({ problem: `p${i}`, state: 'started' as const, since: '', detail: '', at: '', tries: 0 }));
    const s = afterSend(emptyState(), many.map((alert) => ({ alert, delivered: false })));
    expect(s.undelivered).toHaveLength(MAX_UNDELIVERED);
    expect(s.undelivered![0].problem).toBe('p5');
  });

  it('delivered: any channel took it; no channel configured is not retried', () => {
    expect([delivered([{ ok: false }, { ok: true }]), delivered([{ ok: false }, { ok: false }]), delivered([])]).toEqual([true, false, true]);
  });

  it("Telegram's 503s during a maintenance window are not a delivery problem, before or after its end; a later error is", () => {
    const endedAt = T0 + 10 * MIN;
    const tg = (errMin: number, message = 'Wrong response from the webhook: 503 Service Unavailable'): Observations => ({
      problems: {},
      telegram: { pending: 0, lastErrorDate: (T0 + errMin * MIN) / 1000, lastErrorMessage: message },
      maintenance: { on: false, window: { since: T0, endedAt } },
    });
    const at = (m: number) => new Date(T0 + m * MIN);
    const failing = (o: Observations, m: number) => decide(emptyState(), o, at(m), settings).state.problems['telegram-delivery'] !== undefined;
    expect(failing(tg(9), 11)).toBe(false);
    expect(failing(tg(12), 13)).toBe(true); // after the end: the app's
    expect(failing(tg(9, 'Wrong response from the webhook: 500 Internal Server Error'), 11)).toBe(true);
  });
});
