// Gates judge the release: pre-existing host conditions are warnings; a Telegram delivery error
// counts only when the new release caused it.
import { describe, expect, it } from 'vitest';
import { judgeSmoke, judgeWebhookError, SWAP_WINDOW_GRACE_MS } from '../../scripts/lib/release/judge.mts';
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
