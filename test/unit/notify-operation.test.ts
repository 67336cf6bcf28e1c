// One notification per operation: what each operation's result is reported as (pure), the one line
// a failure is explained by, secrets of the env file kept out, and OperationNotice sending exactly
// once (a second report, a handed-off notice and a UsageError send nothing) against a local
// receiver, including a receiver that is down (the operation's result is unchanged).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainingLine, formatText, redactEnvSecrets, webhookPayload } from '../../scripts/lib/notify/message.mts';
import { OperationNotice, releaseLabel, withNotice } from '../../scripts/lib/notify/operation.mts';
import { drillReport, recoveryReport, releaseReport } from '../../scripts/lib/notify/reports.mts';
import { UsageError, StepError } from '../../scripts/lib/cli/errors.mts';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts';
import type { OpResult } from '../../scripts/lib/release/rollout.mts';

const now = new Date('2026-12-01T10:00:00.000Z');

describe('message text for operations', () => {
  const rows: { name: string; m: Parameters<typeof formatText>[0]; text: string }[] = [
    { name: 'backup ok names the backup', m: { operation: 'backup', outcome: 'ok', release: 'abc (r1)', backup: '20261201T100000Z-cron', durationMs: 2100, host: 'h' }, text: '✅ lazyflow backup ok abc (r1) backup 20261201T100000Z-cron in 2.1 s [h]' },
    { name: 'rollout failed and reverted, data kept', m: { operation: 'rollout', outcome: 'failed', release: 'new (r2)', durationMs: 40_000, reason: 'smoke failed: cors', revert: { ok: true, to: 'old', restoredDb: false }, host: 'h' }, text: '❌ lazyflow rollout FAILED new (r2) in 40.0 s: smoke failed: cors; reverted to old, data kept [h]' },
    { name: 'reverted with the backup restored', m: { operation: 'rollout', outcome: 'failed', release: 'new', reason: 'swap failed: crash', revert: { ok: true, to: 'old', restoredDb: true }, host: 'h' }, text: '❌ lazyflow rollout FAILED new: swap failed: crash; reverted to old, pre-deploy backup restored [h]' },
    { name: 'revert failed', m: { operation: 'rollback', outcome: 'failed', release: 'x', reason: 'health failed: 502', revert: { ok: false, to: 'old', restoredDb: false, error: 'start-app failed: timeout' }, host: 'h' }, text: '❌ lazyflow rollback FAILED x: health failed: 502; automatic revert FAILED: start-app failed: timeout [h]' },
    { name: 'first deploy failed: nothing to go back to', m: { operation: 'rollout', outcome: 'failed', release: 'x', reason: 'swap failed: crash', revert: { ok: true, to: null, restoredDb: false }, host: 'h' }, text: '❌ lazyflow rollout FAILED x: swap failed: crash; reverted: the failed app is stopped, there was nothing to go back to [h]' },
  ];
  for (const r of rows) it(r.name, () => expect(formatText(r.m, now)).toBe(r.text));

  it('the payload carries backup and revert', () => {
    const p = webhookPayload({ operation: 'rollout', outcome: 'failed', release: 'n', backup: 'b1', reason: 'r', revert: { ok: true, to: 'o', restoredDb: true }, host: 'h' }, now);
    expect(p).toMatchObject({ backup: 'b1', revert: { ok: true, to: 'o', restoredDb: true } });
  });
});

describe('the one line that explains a failure', () => {
  const rows: [string, string][] = [
    ['disk full', 'disk full'],
    ['swap failed: app crashes at boot\ndiagnostics:\n  logs...', 'swap failed: app crashes at boot'],
    ['build failed: docker build failed:\n#5 [2/4] RUN bun install\n#5 ERROR: failed to solve: exit code 1', 'build failed: docker build failed: #5 ERROR: failed to solve: exit code 1'],
    ['\n\n  leading blank lines  \nrest', 'leading blank lines'],
    ['', ''],
  ];
  for (const [input, want] of rows) it(JSON.stringify(input).slice(0, 50), () => expect(explainingLine(input)).toBe(want));

  it('secrets of the env file never reach a reason', () => {
    const values = { BOT_TOKEN: '123456:ABCDEFabcdef', WEBHOOK_SECRET: 'wh-secret-1', ALERT_WEBHOOK_URL: 'https://h/hook/xyz', DOMAIN: 'example.org', ADMIN_CHAT_ID: '42' };
    const out = redactEnvSecrets('call https://api/bot123456:ABCDEFabcdef/x with wh-secret-1 to https://h/hook/xyz on example.org chat 42', values);
    expect(out).toBe('call https://api/bot<redacted>/x with <redacted> to <redacted> on example.org chat 42');
  });
});

describe('reports per operation result', () => {
  const decision = { toAppTag: 'old', toRelease: 'r0', restoreDb: false, backupId: null, why: [] };
  const base: OpResult = { id: 'r1', exitCode: 0, result: 'ok', appTag: 'new', phases: {} };
  const rows: { name: string; r: OpResult; want: ReturnType<typeof releaseReport> }[] = [
    { name: 'dry run: nothing', r: { ...base, result: 'dry-run' }, want: null },
    { name: 'ok', r: base, want: { outcome: 'ok', release: 'new (r1)' } },
    { name: 'preflight failed before any id', r: { ...base, id: '', appTag: undefined, exitCode: 2, result: 'failed', reason: 'preflight failed: env: BOT_TOKEN missing' }, want: { outcome: 'failed', release: undefined, reason: 'preflight failed: env: BOT_TOKEN missing' } },
    { name: 'build failed: nothing live changed', r: { ...base, exitCode: 1, result: 'failed', reason: 'build failed: x' }, want: { outcome: 'failed', release: 'new (r1)', reason: 'build failed: x' } },
    { name: 'gate failed and reverted', r: { ...base, exitCode: 1, result: 'rolled-back', reason: 'smoke failed: cors', rollback: { decision, ok: true } }, want: { outcome: 'failed', release: 'new (r1)', reason: 'smoke failed: cors', revert: { ok: true, to: 'old', restoredDb: false } } },
    { name: 'gate failed, revert failed', r: { ...base, exitCode: 1, result: 'failed', reason: 'health failed: 502', rollback: { decision: { ...decision, restoreDb: true }, ok: false }, revertError: 'start-app failed' }, want: { outcome: 'failed', release: 'new (r1)', reason: 'health failed: 502', revert: { ok: false, to: 'old', restoredDb: true, error: 'start-app failed' } } },
  ];
  for (const r of rows) it(`release: ${r.name}`, () => expect(releaseReport(r.r)).toEqual(r.want));

  it('drill: ok names the backup; failed names the first failing check', () => {
    const d = { backupId: 'b1', image: 'i', ms: 1, resources: { container: '', network: '', scratch: '' } };
    expect(drillReport({ ...d, failed: false, checks: [{ name: 'health', status: 'pass', detail: '200' }] })).toEqual({ outcome: 'ok', backup: 'b1' });
    expect(drillReport({ ...d, failed: true, checks: [{ name: 'health', status: 'pass', detail: '200' }, { name: 'rows', status: 'fail', detail: 'tasks: 3 != 4' }] })).toEqual({ outcome: 'failed', backup: 'b1', reason: 'rows: tasks: 3 != 4' });
  });

  it('recovery: silent with nothing to do; ok names what it did; failed names why', () => {
    expect(recoveryReport({ actions: [], exitCode: 0, restored: false })).toBeNull();
    const act = { kind: 'mark-failed', releaseId: 'r9', reason: 'killed before the swap' } as const;
    expect(recoveryReport({ actions: [act], exitCode: 0, restored: false })).toEqual({ outcome: 'ok', reason: 'recovered: mark r9 failed: killed before the swap' });
    expect(recoveryReport({ actions: [act], exitCode: 1, restored: false, error: 'start-app failed: unhealthy' })).toEqual({ outcome: 'failed', reason: 'start-app failed: unhealthy' });
    expect(recoveryReport({ actions: [], exitCode: 1, restored: false, next: 'node scripts/restore.mts --recover' })).toEqual({ outcome: 'failed', reason: 'stopped to ask: node scripts/restore.mts --recover' });
  });

  it('release labels', () => {
    expect(releaseLabel('abc', 'r1')).toBe('abc (r1)');
    expect(releaseLabel('abc', '')).toBe('abc');
    expect(releaseLabel(null, undefined)).toBeUndefined();
  });
});

describe('OperationNotice: exactly once, never failing the operation', () => {
  let hook: WebhookReceiver;
  const env = () => ({ values: { ALERT_WEBHOOK_URL: `${hook.url}/h` } });
  const posts = () => hook.received.filter((r) => r.method === 'POST').map((r) => r.json);
  beforeAll(async () => {
    hook = await startWebhookReceiver();
  });
  afterAll(async () => {
    await hook?.stop().catch(() => {});
  });

  it('ok on return, with the duration measured and the release learnt on the way', async () => {
    hook.received.length = 0;
    const r = await withNotice({ env: env(), operation: 'backup' }, async (n) => {
      await new Promise((res) => setTimeout(res, 30));
      n.backup = 'b42';
      return 7;
    }, () => ({ outcome: 'ok' }));
    expect(r).toBe(7);
    expect(posts()).toHaveLength(1);
    expect(posts()[0]).toMatchObject({ operation: 'backup', outcome: 'ok', backup: 'b42', reason: null });
    expect(posts()[0].duration_ms).toBeGreaterThanOrEqual(25);
  });

  it('failed on a throw, with its one line; the error is rethrown unchanged', async () => {
    hook.received.length = 0;
    const err = new StepError('no space left on device\n  at write', { step: 'snapshot' });
    await expect(withNotice({ env: env(), operation: 'backup', release: 'v1 (r1)' }, async () => { throw err; }, () => ({ outcome: 'ok' }))).rejects.toBe(err);
    expect(posts()).toEqual([expect.objectContaining({ operation: 'backup', outcome: 'failed', release: 'v1 (r1)', reason: 'snapshot: no space left on device' })]);
  });

  it('a second report, a handed-off notice, a null judgement and a UsageError send nothing', async () => {
    hook.received.length = 0;
    const n = new OperationNotice({ env: env(), operation: 'rollout' });
    await n.report({ outcome: 'ok' });
    await n.report({ outcome: 'failed', reason: 'again' });
    await n.fail(new Error('and again'));
    const h = new OperationNotice({ env: env(), operation: 'rollout' });
    h.handOff();
    await h.report({ outcome: 'ok' });
    await withNotice({ env: env(), operation: 'recovery' }, async () => 0, () => null);
    await expect(withNotice({ env: env(), operation: 'rollback' }, async () => { throw new UsageError('not confirmed'); }, () => ({ outcome: 'ok' }))).rejects.toThrow('not confirmed');
    await withNotice({ env: env(), operation: 'rollout', enabled: false }, async () => 0, () => ({ outcome: 'ok' }));
    expect(posts().map((p) => `${p.operation} ${p.outcome}`)).toEqual(['rollout ok']);
  });

  it('a continued operation adds the time it had run before the handover', async () => {
    hook.received.length = 0;
    await new OperationNotice({ env: env(), operation: 'rollout', elapsedBeforeMs: 60_000 }).report({ outcome: 'ok' });
    expect(posts()[0].duration_ms).toBeGreaterThanOrEqual(60_000);
    expect(posts()[0].duration_ms).toBeLessThan(61_000);
  });

  it('the receiver is down: the operation returns its result, the failure is only logged', async () => {
    await hook.stop();
    try {
      const warned: string[] = [];
      const log = { debug() {}, info() {}, warn: (s: string) => warned.push(s) } as unknown as Parameters<typeof withNotice>[0]['log'];
      const r = await withNotice({ env: env(), log, operation: 'drill', timeoutMs: 2000 }, async () => 'result', () => ({ outcome: 'ok' }));
      expect(r).toBe('result');
      expect(warned).toEqual([expect.stringMatching(/^notification not sent via webhook: http:\/\/127\.0\.0\.1:\d+\/<redacted>: unreachable/)]);
    } finally {
      await hook.restart();
    }
  });
});
