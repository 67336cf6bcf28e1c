// Gates judge the release: pre-existing host conditions are warnings; a Telegram delivery error
// counts only when the new release caused it.
import { describe, expect, it } from 'vitest';
import { DELIVERY_TIMEOUT_GRACE_MS, holdAfterFailedGate, judgePollingQueue, judgeQueue, judgeSmoke, judgeWebhookError, SWAP_WINDOW_GRACE_MS, type PollingObs, type QueueObs } from '../../scripts/lib/release/judge.mts';
import type { SmokeResult } from '../../scripts/lib/checks/evaluate.mts';

const r = (name: string, status: SmokeResult['status'], detail = name): SmokeResult => ({ name, status, detail });

describe('smoke gate judgement', () => {
  it('low disk, TLS near expiry, an old backup and dead letters warn; a broken release still fails', () => {
    const j = judgeSmoke([r('disk', 'fail'), r('tls', 'fail'), r('backups', 'warn'), r('dead-letters', 'warn'), r('health', 'fail'), r('headers', 'pass')]);
    expect(j.failed.map((x) => x.name)).toEqual(['health']);
    expect(j.warnings.map((x) => x.name)).toEqual(['disk', 'tls', 'backups', 'dead-letters']);
    expect(j.warnings[0].detail).toMatch(/not caused by this release/);
  });
  it('nothing failed: nothing blamed', () => {
    expect(judgeSmoke([r('health', 'pass'), r('disk', 'warn')]).failed).toEqual([]);
  });
});

describe('whose Telegram delivery error', () => {
  const began = Date.parse('2026-12-01T12:00:00Z');
  const w = { beganAt: began, endedAt: began + 2000 };
  const at = (ms: number) => Math.floor((began + ms) / 1000);
  const rows: [string, { last_error_date?: number; last_error_message?: string }, string][] = [
    ['no error', {}, 'none'],
    ['an error from before the swap (an older run), even a 500', { last_error_date: at(-60_000), last_error_message: 'Wrong response from the webhook: 500 Internal Server Error' }, 'before-swap'],
    ['the old app\'s in-flight 503 during the swap', { last_error_date: at(500), last_error_message: 'Wrong response from the webhook: 503 Service Unavailable' }, 'swap-window'],
    ['a 502 from Caddy giving up a held request, within the grace', { last_error_date: at(2000 + SWAP_WINDOW_GRACE_MS - 1000), last_error_message: 'Wrong response from the webhook: 502 Bad Gateway' }, 'swap-window'],
    ['a 500 during the swap: the new release answered it', { last_error_date: at(1500), last_error_message: 'Wrong response from the webhook: 500 Internal Server Error' }, 'release'],
    ['a 503 well after the swap', { last_error_date: at(2000 + SWAP_WINDOW_GRACE_MS + 5000), last_error_message: 'Wrong response from the webhook: 503 Service Unavailable' }, 'release'],
    ['a connection error after the swap', { last_error_date: at(30_000), last_error_message: 'Connection refused' }, 'release'],
    ['a connection closed after the swap, no Caddy reload', { last_error_date: at(3000), last_error_message: 'Webhook connection closed' }, 'release'],
    ['a delivery Caddy held through the swap that timed out afterwards', { last_error_date: at(2000 + 10_000), last_error_message: 'Read timeout expired' }, 'swap-window'],
    ['a connect timeout within the delivery timeout after the swap', { last_error_date: at(2000 + DELIVERY_TIMEOUT_GRACE_MS - 1000), last_error_message: 'Connection timed out' }, 'swap-window'],
    ['a timeout long after the swap: the release hangs', { last_error_date: at(2000 + DELIVERY_TIMEOUT_GRACE_MS + 5000), last_error_message: 'Read timeout expired' }, 'release'],
  ];
  for (const [name, info, want] of rows) it(name, () => expect(judgeWebhookError(info, w)).toBe(want));

  // the front end's switch reloads Caddy 4 s after the swap began, which closes idle keep-alive connections
  const wr = { ...w, proxyReloadAt: began + 4000 };
  const reloadRows: [string, { last_error_date?: number; last_error_message?: string }, string][] = [
    ['a delivery closed by the reload', { last_error_date: at(4000), last_error_message: 'Webhook connection closed' }, 'swap-window'],
    ['a reset by the reload, within the grace', { last_error_date: at(4000 + SWAP_WINDOW_GRACE_MS - 1000), last_error_message: 'Connection reset by peer' }, 'swap-window'],
    ['a reset long after the reload', { last_error_date: at(4000 + SWAP_WINDOW_GRACE_MS + 5000), last_error_message: 'Connection reset by peer' }, 'release'],
    ['a 500 at the reload: still the release', { last_error_date: at(4000), last_error_message: 'Wrong response from the webhook: 500 Internal Server Error' }, 'release'],
    ['a refused connection at the reload: Caddy keeps its listeners, so not the reload', { last_error_date: at(4000), last_error_message: 'Connection refused' }, 'release'],
  ];
  for (const [name, info, want] of reloadRows) it(`Caddy reloaded: ${name}`, () => expect(judgeWebhookError(info, wr)).toBe(want));
});

describe('is the queue moving (Telegram gate)', () => {
  const q = (pending: number, handledMax: number | null, urlOk = true): QueueObs => ({ urlOk, pending, handledMax });
  // first look, previous look, this look, expected status, detail matching
  const rows: [string, QueueObs, QueueObs | undefined, QueueObs, 'pass' | 'wait', RegExp][] = [
    ['drained', q(3, 100), undefined, q(3, 100), 'pass', /pending 3/],
    ['webhook not the release\'s yet, even with an empty queue', q(0, 100, false), undefined, q(0, 100, false), 'wait', /url/],
    ['a backlog, and the app handled updates since the gate began', q(40, 100), q(45, 101), q(50, 130), 'pass', /handled updates up to 130.*pending 50/],
    ['a backlog, nothing handled since the gate began: wait (the deadline fails it)', q(40, 100), q(45, 100), q(50, 100), 'wait', /no update handled/],
    ['a backlog that shrinks does not count when the app keeps a record and it did not move', q(40, 100), q(50, 100), q(45, 100), 'wait', /no update handled/],
    ['no record table: a queue that shrank between two looks is moving', q(40, null), q(50, null), q(45, null), 'pass', /fell from 50 to 45/],
    ['no record table: a queue that only grows is not', q(40, null), q(45, null), q(50, null), 'wait', /no update handled/],
    ['no record table, first look: nothing to compare yet', q(40, null), undefined, q(40, null), 'wait', /no update handled/],
    ['a record table created after the gate began (first look had none)', q(40, null), q(40, null), q(41, 7), 'pass', /up to 7/],
  ];
  for (const [name, first, prev, now, status, detail] of rows) {
    it(name, () => {
      const v = judgeQueue(first, prev, now, 10);
      expect(v.status).toBe(status);
      expect(v.detail).toMatch(detail);
    });
  }
});

describe('the Telegram gate of a polling bot: no webhook set, the queue moving', () => {
  const o = (url: string, pending: number, handledMax: number | null): PollingObs => ({ url, pending, handledMax });
  const rows: [string, PollingObs, PollingObs | undefined, PollingObs, 'pass' | 'wait', RegExp][] = [
    ['no webhook, queue drained', o('', 0, 5), undefined, o('', 0, 5), 'pass', /no webhook set, pending 0/],
    ['no webhook, a busy queue the app works through (its record grows)', o('', 40, 10), o('', 40, 10), o('', 45, 12), 'pass', /queue moving: the app handled updates up to 12/],
    ['no webhook, no record of its own, the queue shrinks', o('', 40, null), o('', 40, null), o('', 30, null), 'pass', /pending fell from 40 to 30/],
    ['no webhook, the queue stuck (nothing handled, nothing taken)', o('', 40, 10), o('', 40, 10), o('', 41, 10), 'wait', /pending_update_count 41 >= 10 and no update handled/],
    ['no record, the queue grows', o('', 40, null), o('', 40, null), o('', 44, null), 'wait', /no update handled/],
    ['a webhook is set: getUpdates gets 409, whatever the queue', o('', 0, 5), undefined, o('https://x.example/webhook/s', 0, 5), 'wait', /webhook is set .*409 Conflict/],
    ['a webhook is set even with the record growing', o('', 40, 1), o('', 40, 1), o('https://x.example/webhook/s', 40, 9), 'wait', /409/],
  ];
  for (const [name, first, prev, now, status, detail] of rows) {
    it(name, () => {
      const v = judgePollingQueue(first, prev, now, 10);
      expect(v.status).toBe(status);
      expect(v.detail).toMatch(detail);
    });
  }
});

describe('a failed gate: held for the operator instead of reverted with the restore', () => {
  const base = { phase: 'telegram', polling: false, answered: true, backupId: 'b1', userVersionBefore: 3, userVersionNow: 4 };
  it.each<[string, Partial<typeof base>, boolean]>([
    ['webhook, Telegram gate, answered, schema moved: held (the restore would drop what it answered)', {}, true],
    ['webhook, smoke gate: the webhook hold kept updates out, nothing answered to drop: reverted', { phase: 'smoke' }, false],
    ['webhook, health gate, answered (cannot happen under the hold): reverted', { phase: 'health', answered: true }, false],
    ['polling, swap (crashed after it answered): held, a poller answers from its start', { phase: 'swap', polling: true }, true],
    ['polling, health gate, answered, schema moved: held', { phase: 'health', polling: true }, true],
    ['polling, smoke gate, answered nothing: reverted with the restore (nothing to drop)', { phase: 'smoke', polling: true, answered: false }, false],
    ['polling, answered, schema unchanged: reverted, no restore, nothing dropped', { phase: 'health', polling: true, userVersionNow: 3 }, false],
    ['polling, answered, no pre-deploy backup: reverted (nothing restored)', { phase: 'health', polling: true, backupId: null as unknown as string }, false],
    ['polling, answered, no database before: reverted', { phase: 'health', polling: true, userVersionBefore: null as unknown as number }, false],
    ['polling, answered, user_version unreadable now (null): held (never counted as unchanged)', { phase: 'health', polling: true, userVersionNow: null as unknown as number }, true],
  ])('%s', (_what, o, held) => {
    expect(holdAfterFailedGate({ ...base, ...o })).toBe(held);
  });
});
